"""The rule for defaults (iclsam.pipeline.report.default_rule, `iclsam decide-default`)."""

import numpy as np
import pandas as pd
import pytest

from iclsam.cli import main
from iclsam.pipeline.report.default_rule import default_rule, full_method_cells

TASKS, MS = ("a", "b", "c"), (1, 4, 8)


def summary(dice: np.ndarray, icl: str = "features") -> pd.DataFrame:
    rows = [
        {"task": t, "m": m, "icl": icl, "variant": v, "dice": dice[i, j] + (0.1 if v == "sam" else 0.0), "n": 16}
        for i, t in enumerate(TASKS)
        for j, m in enumerate(MS)
        for v in ("sam", "iclsam")
    ]
    return pd.DataFrame(rows)


def test_rule_adopts_a_uniform_gain_and_reports_the_means():
    rng = np.random.default_rng(0)
    base = rng.uniform(0.3, 0.9, (3, 3))
    gain = rng.uniform(-0.015, 0.04, (3, 3))
    verdict = default_rule(full_method_cells(summary(base)), full_method_cells(summary(base + gain)))
    assert verdict.adopt == (gain.mean() > 0)
    assert verdict.means.loc["all", "difference"] == pytest.approx(gain.mean())
    assert verdict.means.loc[4, "candidate"] == pytest.approx((base + gain)[:, 1].mean())


def test_rule_refuses_a_gain_that_costs_one_set_more_than_the_tolerance():
    base = np.full((3, 3), 0.5)
    gain = np.full((3, 3), 0.1)
    gain[1, 2] = -0.03  # set b at m = 8
    verdict = default_rule(full_method_cells(summary(base)), full_method_cells(summary(base + gain)))
    assert not verdict.adopt and "b at m = 8" in verdict.reason


def test_decide_default_command_prints_the_table_and_exits_by_the_verdict(tmp_path, capsys):
    base = np.full((3, 3), 0.5)
    summary(base).to_csv(tmp_path / "current.csv", index=False)
    summary(base + 0.01).to_csv(tmp_path / "better.csv", index=False)
    summary(base - 0.01).to_csv(tmp_path / "worse.csv", index=False)
    assert main(["decide-default", str(tmp_path / "current.csv"), str(tmp_path / "better.csv")]) == 0
    assert "| a | 0.500 -> 0.510 (+0.010)" in capsys.readouterr().out
    assert main(["decide-default", str(tmp_path / "current.csv"), str(tmp_path / "worse.csv")]) == 1
    mixed = pd.concat([summary(base), summary(base, icl="universeg")])
    mixed.to_csv(tmp_path / "mixed.csv", index=False)
    assert main(["decide-default", str(tmp_path / "mixed.csv"), str(tmp_path / "better.csv")]) == 2
    assert "several ICL models" in capsys.readouterr().err
