import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from iclsam.common.znorm import z_norm
from iclsam.method.universeg import (
    UniverSeg,
    init_universeg_weights,
    load_universeg,
    modulate_support_stream,
    universeg_confidence_weight,
    universeg_image,
    universeg_label,
)


def official_layout() -> dict[str, tuple[int, ...]]:
    """The 44 keys and shapes of universeg_v1_nf64_ss64_STA.pt, written out from the network spec."""
    layout = {}
    cross_in = {
        "enc_blocks.0": 3,
        "enc_blocks.1": 128,
        "enc_blocks.2": 128,
        "enc_blocks.3": 128,
        "dec_blocks.0": 256,
        "dec_blocks.1": 256,
        "dec_blocks.2": 256,
    }
    for block, cin in cross_in.items():
        layout[f"{block}.cross.cross_conv.weight"] = (64, cin, 3, 3)
        layout[f"{block}.cross.cross_conv.bias"] = (64,)
        for stream in ("target", "support"):
            layout[f"{block}.{stream}.vmapped.conv.weight"] = (64, 64, 3, 3)
            layout[f"{block}.{stream}.vmapped.conv.bias"] = (64,)
    layout["out_conv.conv.weight"] = (1, 64, 1, 1)
    layout["out_conv.conv.bias"] = (1,)
    return layout


def test_default_configuration_has_the_official_keys_and_shapes():
    state = UniverSeg().state_dict()
    layout = official_layout()
    assert len(layout) == 44
    assert {k: tuple(v.shape) for k, v in state.items()} == layout
    assert sum(v.numel() for v in state.values()) == 1_182_785


def test_a_checkpoint_in_the_official_layout_loads_strict(tmp_path):
    generator = torch.Generator().manual_seed(0)
    state = {k: torch.randn(shape, generator=generator) * 0.05 for k, shape in official_layout().items()}
    path = tmp_path / "universeg_v1_nf64_ss64_STA.pt"
    torch.save(state, path)
    net = load_universeg(path)
    assert not net.training
    for key, value in net.state_dict().items():
        assert torch.equal(value, state[key]), key


def test_checkpoint_errors_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.pt"):
        load_universeg(tmp_path / "nope.pt")
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="garbage.pt"):
        load_universeg(garbage)
    state = UniverSeg().state_dict()
    state["enc_blocks.1.cross.cross_conv.weight"] = torch.zeros(64, 130, 3, 3)
    del state["out_conv.conv.bias"]
    bad = tmp_path / "bad.pt"
    torch.save(state, bad)
    with pytest.raises(ValueError, match=r"bad.pt.*1 missing.*out_conv.conv.bias.*other shapes"):
        load_universeg(bad)


def test_widths_are_configurable_and_read_back_from_a_file(tmp_path):
    net = init_universeg_weights(UniverSeg((16, 24, 32)))
    assert net.decoder_widths == (24, 16)
    path = tmp_path / "small.pt"
    torch.save(net.state_dict(), path)
    assert load_universeg(path).encoder_widths == (16, 24, 32)
    out = net(torch.rand(2, 1, 32, 32), torch.rand(2, 3, 1, 32, 32), torch.rand(2, 3, 1, 32, 32).round())
    assert out.shape == (2, 1, 32, 32)


def test_cross_op_pairs_the_target_with_each_support_element():
    net = init_universeg_weights(UniverSeg((8, 8)))
    cross = net.enc_blocks[0].cross
    target, support = torch.rand(2, 1, 1, 16, 16), torch.rand(2, 3, 2, 16, 16)
    out = cross(target, support)
    for b in range(2):
        for s in range(3):
            expected = F.conv2d(
                torch.cat([target[b, 0], support[b, s]])[None],
                cross.cross_conv.weight,
                cross.cross_conv.bias,
                padding=1,
            )[0]
            torch.testing.assert_close(out[b, s], expected)


def test_prediction_does_not_depend_on_support_order():
    torch.manual_seed(0)
    net = init_universeg_weights(UniverSeg((8, 8, 8))).eval()
    target, images, labels = torch.rand(1, 1, 32, 32), torch.rand(1, 5, 1, 32, 32), torch.rand(1, 5, 1, 32, 32).round()
    order = torch.tensor([3, 0, 4, 1, 2])
    torch.testing.assert_close(net(target, images, labels), net(target, images[:, order], labels[:, order]))


def test_alpha_zero_is_plain_universeg_to_the_bit():
    torch.manual_seed(1)
    net = init_universeg_weights(UniverSeg()).eval()
    target, images, labels = (
        torch.rand(1, 1, 128, 128),
        torch.rand(1, 2, 1, 128, 128),
        torch.rand(1, 2, 1, 128, 128).round(),
    )
    confidence = torch.rand(1, 1, 128, 128)
    with torch.no_grad():
        plain = net(target, images, labels)
        steered = net(target, images, labels, confidence=confidence, alpha=0.0)
        moved = net(target, images, labels, confidence=confidence, alpha=0.3)
    assert torch.equal(plain, steered)
    assert not torch.equal(plain, moved)


def test_eq4_modulation_matches_an_independent_computation():
    rng = np.random.default_rng(0)
    support = rng.standard_normal((2, 3, 4, 8, 8))
    confidence = rng.random((2, 1, 8, 8))
    alpha = 0.7
    z = torch.as_tensor(confidence)
    result = modulate_support_stream(torch.as_tensor(support), z_norm(z, dims=(-2, -1)), alpha).numpy()
    for b in range(2):
        c = confidence[b, 0]
        a = (c - c.mean()) / c.std(ddof=1)
        scaled = support[b] * np.exp(alpha * a)
        expected = scaled * np.linalg.norm(support[b]) / np.linalg.norm(scaled)
        np.testing.assert_allclose(result[b], expected, rtol=1e-10)


def test_alpha_follows_the_support_size():
    assert universeg_confidence_weight(0.3, 0.1, 1) == pytest.approx(0.3 * math.exp(-0.1))
    assert universeg_confidence_weight(0.3, 0.1, 64) < universeg_confidence_weight(0.3, 0.1, 1)


def test_preprocessing_as_the_code():
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (200, 300, 3)).astype(np.uint8)
    rgb[0, 0] = (255, 255, 255)
    rgb[0, 1] = (0, 0, 0)
    for role in ("support", "query"):
        x = universeg_image(rgb, role)
        assert x.shape == (1, 128, 128) and x.dtype == torch.float32
        assert float(x.min()) >= 0 and float(x.max()) <= 1
    support = universeg_image(rgb, "support")
    assert float(support.min()) == 0 and float(support.max()) == 1  # min-max after the resize
    red_only = rgb.copy()
    red_only[..., 1:] = 0
    red_only[0, 0] = (255, 255, 255)
    torch.testing.assert_close(universeg_image(red_only, "query"), universeg_image(rgb, "query"))
    mask = np.zeros((200, 300), bool)
    mask[50:150, 60:240] = True
    label = universeg_label(mask)
    assert set(label.unique().tolist()) == {0.0, 1.0}
    assert abs(float(label.mean()) - mask.mean()) < 0.02


def test_a_checkpoint_of_zero_dimensional_tensors_is_a_clear_error(tmp_path):
    path = tmp_path / "scalars.pt"
    torch.save({k: torch.tensor(0.0) for k in UniverSeg().state_dict()}, path)
    with pytest.raises(ValueError, match=r"scalars.pt.*expected a 4-D convolution weight"):
        load_universeg(path)
