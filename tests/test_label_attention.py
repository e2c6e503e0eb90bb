"""The label-attention ICL model: the network's invariants, its closed-form ridge reading against an
independent solution, the training loop on a tiny corpus made here (deterministic, loss falls), the
strict loader, and the backend inside ICL-SAM on LiteMedSAM."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from iclsam.method.icl.label_attention import LabelAttention
from iclsam.method.icl.label_attention_backend import LabelAttentionICL, load_label_attention, shipped_label_attention
from iclsam.method.sam.embedding import ImageEmbedding
from iclsam.pipeline.icl_corpus import augment, encode_corpus, read_corpus
from iclsam.pipeline.icl_training import TrainingSettings, save_label_attention, train_label_attention
from tests.conftest import ellipse, textured_image

GRID = 16


def support_batch(seed: int, m: int = 3, grid: int = GRID):
    g = torch.Generator().manual_seed(seed)
    tokens = torch.randn(1, m, 256, grid, grid, generator=g)
    labels = (torch.rand(1, m, grid, grid, generator=g) > 0.7).float()
    valid = torch.ones(1, m, grid, grid)
    valid[..., grid - 4 :] = 0  # padding on the right
    return tokens, labels * valid, valid


def test_support_order_and_padding_do_not_matter():
    torch.manual_seed(0)
    net = LabelAttention().eval()
    tokens, labels, valid = support_batch(1)
    query = torch.randn(1, 256, GRID, GRID)
    with torch.no_grad():
        out = net(query, tokens, labels, valid)
        order = torch.tensor([2, 0, 1])
        shuffled = net(query, tokens[:, order], labels[:, order], valid[:, order])
        noisy = tokens.clone()
        noisy[..., GRID - 4 :] = 100 * torch.randn_like(noisy[..., GRID - 4 :])
        padded = net(query, noisy, labels, valid)
    assert torch.allclose(out, shuffled, atol=1e-4)
    assert torch.allclose(out, padded, atol=1e-4)
    assert not torch.allclose(out, net(query, tokens, 1 - labels, valid).detach(), atol=1e-3)


def test_ridge_reading_is_weighted_least_squares():
    net = LabelAttention()
    g = torch.Generator().manual_seed(3)
    x = torch.randn(1, 8, 50, generator=g)
    y = (torch.rand(1, 50, generator=g) > 0.6).float()
    valid = torch.ones(1, 50)
    valid[0, 45:] = 0
    y = y * valid
    got = net.ridge_weights(x, y, valid)[0].double().numpy()
    # independently: minimise sum_i s_i (w.x_i + c - t_i)^2 + lambda |w|^2 with numpy
    X = np.concatenate([x[0].T.double().numpy(), np.ones((50, 1))], 1)
    t, v, yy = (2 * y - valid)[0].double().numpy(), valid[0].double().numpy(), y[0].double().numpy()
    s = v * (yy / yy.sum() + (v - yy) / (v - yy).sum()) / 2
    penalty = np.eye(9) * (float(net.ridge_penalty) * 1e-2 + 1e-6)
    penalty[-1, -1] = 0
    expected = np.linalg.solve(X.T @ (s[:, None] * X) + penalty, X.T @ (s * t))
    np.testing.assert_allclose(got, expected, rtol=1e-3, atol=1e-4)


class TokenStub:
    """A stand-in for SamPredictor: 256 fixed random filters of the image, pooled to a 16 x 16 grid
    (the real encoder would take a second per image)."""

    kind, input_size = "stub", 64
    device = torch.device("cpu")

    def __init__(self):
        self.filters = torch.randn(256, 1, 1, 1, generator=torch.Generator().manual_seed(0))

    def encode(self, image):
        return self.encode_many([image])[0]

    def encode_many(self, images, batch_size=None):
        out = []
        for image in images:
            x = torch.as_tensor(np.asarray(image, dtype=np.float32) / 255.0)
            x = x.mean(-1) if x.ndim == 3 else x
            x = torch.nn.functional.interpolate(x[None, None], size=(self.input_size,) * 2, mode="bilinear")
            features = torch.nn.functional.avg_pool2d(torch.sin(3 * x * self.filters.view(1, 256, 1, 1)), 4)
            h, w = np.asarray(image).shape[:2]
            out.append(ImageEmbedding(features, (h, w), (self.input_size,) * 2, (GRID, GRID)))
        return out


def tiny_corpus(root: Path) -> Path:
    """Two families, one task each, six 48 x 48 pairs: bright ellipses on noise."""
    tasks = {}
    for t, (family, radius) in enumerate((("round", 10), ("flat", 6))):
        name = f"{family}-task"
        for sub in ("images", "masks"):
            (root / name / sub).mkdir(parents=True)
        rows = ["id,group"]
        for i in range(6):
            mask = ellipse((48, 48), (20 + i, 24), (radius, 14))
            Image.fromarray(textured_image(mask, 10 * t + i)).save(root / name / "images" / f"{i}.png")
            Image.fromarray((mask * 255).astype(np.uint8)).save(root / name / "masks" / f"{i}.png")
            rows.append(f"{i},p{i}")
        (root / name / "meta.csv").write_text("\n".join(rows) + "\n")
        tasks[name] = {"family": family, "licence": "CC0"}
    (root / "manifest.json").write_text(json.dumps({"tasks": tasks}))
    return root


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tiny_corpus(tmp_path_factory.mktemp("corpus"))
    tasks = read_corpus(root)
    return tasks, encode_corpus(TokenStub(), tasks, versions=2, seed=0)


def test_augmentation_shared_by_tasks_of_one_image():
    image = np.arange(48 * 40, dtype=np.uint8).reshape(48, 40)
    a_image, a_mask = augment(image, image > 100, 0, 1)
    b_image, b_mask = augment(image, image > 200, 0, 1)
    assert np.array_equal(a_image, b_image)  # same transform for the same image
    assert augment(image, image > 100, 0, 0)[0] is image
    assert a_mask.shape == a_image.shape[:2]


def test_training_is_deterministic_and_learns(corpus, tmp_path):
    tasks, tokens = corpus
    settings = TrainingSettings(steps=40, batch=2, m_max=3, warmup=5, lr=3e-3)
    first, log = train_label_attention(tokens, tasks, settings)
    second, _ = train_label_attention(tokens, tasks, settings)
    for key, value in first.state_dict().items():
        assert torch.equal(value, second.state_dict()[key]), key
    assert log["loss_last"] < log["loss_first"]
    card = save_label_attention(first, log, tasks, tmp_path / "net", {"pairs": 12})
    loaded = load_label_attention(tmp_path / "net.pt")
    for key, value in first.state_dict().items():
        assert torch.equal(value, loaded.state_dict()[key])
    assert card["licences"] == {"CC0": ["flat-task", "round-task"]}


def test_loader_refuses_other_files(tmp_path):
    torch.save({"project.weight": torch.zeros(3)}, tmp_path / "bad.pt")
    with pytest.raises(ValueError, match="bad.pt"):
        load_label_attention(tmp_path / "bad.pt")
    net = LabelAttention(width=8, heads=2, key_dim=4)
    state = net.state_dict()
    state["decoder.0.weight"] = state["decoder.0.weight"][:4]
    torch.save(state, tmp_path / "shape.pt")
    with pytest.raises(ValueError, match="shape.pt"):
        load_label_attention(tmp_path / "shape.pt")
    torch.save(net.state_dict(), tmp_path / "x.pt")
    (tmp_path / "x.json").write_text(json.dumps({"sha256": "0" * 64}))
    with pytest.raises(ValueError, match="sha256"):
        shipped_label_attention(tmp_path, "x")


def test_backend_in_iclsam(lite, corpus, tmp_path):
    from iclsam import ICLSAM

    tasks, tokens = corpus
    net, log = train_label_attention(tokens, tasks, TrainingSettings(steps=2, batch=1, m_max=2, warmup=1))
    save_label_attention(net, log, tasks, tmp_path / "w", {})
    model = ICLSAM(sam=lite, icl="label-attention", icl_checkpoint=tmp_path / "w.pt")
    masks = [ellipse((64, 64), (30, 30), (12, 16)), ellipse((64, 64), (34, 28), (10, 14))]
    images = [textured_image(m, i) for i, m in enumerate(masks)]
    prediction = model.predict(images, masks, images[1], masks[1])
    assert set(prediction.masks) >= {"label-attention", "iclsam"}
    assert prediction.masks["label-attention"].shape == (64, 64)
    with pytest.raises(ValueError, match="SamPredictor"):
        from iclsam.method.icl import build_icl

        build_icl("label-attention", sam_name="LiteMedSAM")
    assert isinstance(model.icl_model, LabelAttentionICL)


def test_corpus_errors_name_the_file(tmp_path):
    from iclsam.pipeline.icl_training import train_icl_files

    with pytest.raises(FileNotFoundError, match="manifest.json"):
        read_corpus(tmp_path)
    (tmp_path / "manifest.json").write_text(json.dumps({"tasks": {"ghost": {"family": "x"}}}))
    with pytest.raises(FileNotFoundError, match="ghost"):
        read_corpus(tmp_path)
    root = tiny_corpus(tmp_path / "corpus")
    with pytest.raises(ValueError, match="no family"):
        train_icl_files(root, tmp_path / "net", exclude={"nowhere"}, sam=TokenStub())
    assert not (tmp_path / "net.pt").exists()
