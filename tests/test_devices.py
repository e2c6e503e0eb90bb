"""Where the models run: "auto" and torch device strings; the CPU path unchanged by them."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from iclsam import ICLSAM
from iclsam.cli import main
from iclsam.common.devices import resolve_device
from iclsam.method.confidence import fit_confidence_classifier, solver_for


def test_auto_is_cuda_only_where_there_is_one():
    assert resolve_device("auto") == torch.device("cuda" if torch.cuda.is_available() else "cpu")
    assert resolve_device("cpu") == torch.device("cpu") and resolve_device(torch.device("cpu")) == torch.device("cpu")
    with pytest.raises(ValueError, match="gpu0"):
        resolve_device("gpu0")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA GPU"):
            resolve_device("cuda:1")


def test_the_model_puts_every_part_on_its_device(lite):
    model = ICLSAM(sam=lite, icl="universeg", device="cpu")
    assert model.device == lite.device == model.icl_model.device == torch.device("cpu")
    assert next(model.icl_model.network.parameters()).device == model.device
    assert model.config.solver == "lbfgs"  # auto: sklearn's lbfgs (the public code) on the CPU
    assert solver_for("cpu") == "lbfgs" and solver_for("cuda:1") == "torch"
    assert ICLSAM(sam=lite, solver="torch").config.solver == "torch"


def test_the_torch_fit_on_a_named_device_is_the_default_fit():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3000, 256)).astype(np.float32)
    y = x[:, :4].sum(1) + rng.normal(size=3000) > 1.0
    default = fit_confidence_classifier(x, y, solver="torch")
    placed = fit_confidence_classifier(x, y, solver="torch", device=resolve_device("auto"))
    np.testing.assert_allclose(placed.weight, default.weight, rtol=0, atol=1e-5)
    assert placed.bias == pytest.approx(default.bias, abs=1e-5) and placed.converged == default.converged


def test_a_bad_device_is_one_line(tmp_path, capsys):
    code = main(
        [
            "segment",
            "--support-images",
            str(tmp_path),
            "--support-masks",
            str(tmp_path),
            "--query",
            str(tmp_path),
            "--out",
            str(tmp_path / "out"),
            "--device",
            "gpu0",
        ]
    )
    assert code == 2 and "gpu0" in capsys.readouterr().err and not (tmp_path / "out").exists()
