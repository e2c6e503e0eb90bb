import math

import numpy as np
import pytest
import torch

from iclsam.common.metrics import assd, dice
from iclsam.method.fusion import fuse, fusion_weight


def test_fusion_weight_grows_with_m():
    assert fusion_weight(0.5, 0.1, 1) == pytest.approx(0.5 * (1 - math.exp(-0.1)))
    assert fusion_weight(0.5, 0.1, 64) == pytest.approx(0.5 * (1 - math.exp(-6.4)))
    assert fusion_weight(0.0, 0.1, 8) == 0.0


def test_fuse_matches_an_independent_computation():
    rng = np.random.default_rng(0)
    logits = rng.standard_normal((40, 60)) * 5
    p = rng.random((20, 30))
    gamma = 0.3
    fused = fuse(torch.as_tensor(logits), torch.as_tensor(p), gamma).numpy()
    u = (p - 0.5) / p.std(ddof=1)
    u_up = torch.nn.functional.interpolate(
        torch.as_tensor(u)[None, None], size=(40, 60), mode="bilinear", align_corners=False
    )[0, 0].numpy()
    expected = (1 - gamma) * logits / logits.std(ddof=1) + gamma * u_up
    np.testing.assert_allclose(fused, expected, rtol=1e-10)


def test_gamma_zero_keeps_the_sam_mask_and_gamma_one_the_icl_mask():
    rng = np.random.default_rng(1)
    logits, p = torch.as_tensor(rng.standard_normal((32, 32))), torch.as_tensor(rng.random((32, 32)))
    assert torch.equal(fuse(logits, p, 0.0) > 0, logits > 0)
    assert torch.equal(fuse(logits, p, 1.0) > 0, p > 0.5)


def brute_force_assd(a, b):
    """medpy 0.5's definition by hand: a surface pixel has a background 4-neighbour (or the border);
    the distances from both surfaces to the other, pooled, averaged."""

    def surface(m):
        pts = []
        padded = np.pad(m, 1)
        for y, x in zip(*np.nonzero(m)):
            if not (padded[y, x + 1] and padded[y + 2, x + 1] and padded[y + 1, x] and padded[y + 1, x + 2]):
                pts.append((y, x))
        return np.array(pts, float)

    sa, sb = surface(a), surface(b)
    d = np.sqrt(((sa[:, None] - sb[None]) ** 2).sum(-1))
    return (d.min(1).sum() + d.min(0).sum()) / (len(sa) + len(sb))


def test_dice_and_assd_on_known_shapes():
    a = np.zeros((40, 40), bool)
    a[5:15, 5:15] = True
    b = np.zeros((40, 40), bool)
    b[8:20, 6:16] = True
    assert dice(a, b) == pytest.approx(2 * (7 * 9) / (100 + 120))
    assert dice(a, a) == 1.0 and assd(a, a) == 0.0
    assert assd(a, b) == pytest.approx(brute_force_assd(a, b))
    shifted = np.roll(a, 3, axis=1)
    assert assd(a, shifted) == pytest.approx(brute_force_assd(a, shifted))
    empty = np.zeros_like(a)
    assert dice(empty, empty) == 1.0 and dice(a, empty) == 0.0
    assert assd(empty, empty) == 0.0 and math.isnan(assd(a, empty))
    with pytest.raises(ValueError, match="shape"):
        dice(a, a[:10])


def test_assd_matches_medpy_on_real_masks():
    """Within 1 % of medpy.metric.binary.assd (0.5) on 40 pairs of real lesion masks (at 512 x 512)."""
    binary = pytest.importorskip("medpy.metric.binary", reason="medpy (test extra) not installed")
    from tests.conftest import REAL_DEV, load_pair, real_dev_ids

    if not REAL_DEV.is_dir():
        pytest.skip(f"real-dev data not found at {REAL_DEV}")
    from iclsam.common.resampling import resized_mask

    for name in ("busi-lesion", "ph2-lesion"):
        ids = real_dev_ids(name)[:21]
        masks = [resized_mask(load_pair(name, i)[1]) for i in ids]
        for a, b in zip(masks[:-1], masks[1:]):
            assert assd(a, b) == pytest.approx(binary.assd(a, b), rel=0.01)


def test_check_tables_accepts_cross_cpu_noise_and_rejects_more(tmp_path):
    import pandas as pd

    from iclsam.pipeline.report import compare_tables

    reference, ours = tmp_path / "reference", tmp_path / "ours"
    reference.mkdir()
    ours.mkdir()
    table = pd.DataFrame(
        {"dataset": ["brats", "kits23"], "m": [1, 2], "ours": [0.5, 0.25], "paper": [0.3, float("nan")]}
    )
    table.to_csv(reference / "table1_dice.csv", index=False)
    table.assign(ours=table["ours"] + 2.8e-4).to_csv(ours / "table1_dice.csv", index=False)
    assert compare_tables(ours, reference) == []
    table.assign(ours=table["ours"] + 0.01).to_csv(ours / "table1_dice.csv", index=False)
    assert "column ours differs by up to 0.01" in compare_tables(ours, reference)[0]
    table.assign(dataset=["brats", "fundus"]).to_csv(ours / "table1_dice.csv", index=False)
    assert "column dataset differs in text" in compare_tables(ours, reference)[0]
    table.to_csv(ours / "extra.csv", index=False)  # a table the reference lacks
    assert any("extra.csv: not in the reference" in line for line in compare_tables(ours, reference))


def test_check_tables_against_nothing_or_a_non_csv_is_an_error(tmp_path, capsys):
    import pandas as pd

    from iclsam.cli import main

    ours, empty = tmp_path / "ours", tmp_path / "empty"
    ours.mkdir()
    empty.mkdir()
    pd.DataFrame({"m": [1], "ours": [0.5]}).to_csv(ours / "table1_dice.csv", index=False)
    for reference, words in ((tmp_path / "missing", "not found"), (empty, "holds no CSV table")):
        assert main(["check-tables", str(ours), "--reference", str(reference)]) == 2
        error = capsys.readouterr().err
        assert str(reference) in error and words in error and error.count("\n") == 1
    (empty / "table1_dice.csv").write_bytes(bytes(range(256)) * 4)  # not a CSV
    assert main(["check-tables", str(ours), "--reference", str(empty)]) == 2
    error = capsys.readouterr().err
    assert str(empty / "table1_dice.csv") in error and "not a readable CSV" in error and error.count("\n") == 1


def test_leave_one_out_fusion_picks_the_source_that_is_right():
    import torch

    from iclsam.method.fusion_auto import FUSION_GAMMAS, leave_one_out_fusion

    truth = np.zeros((32, 32), bool)
    truth[8:20, 8:20] = True
    right = torch.where(torch.as_tensor(truth), 3.0, -3.0)
    wrong_prob = torch.full((16, 16), 0.2)
    wrong_prob[0:6, 0:6] = 0.9  # the ICL model's blob is elsewhere
    sam_right = [
        ({"sam_logits": right + 0.01 * k, "plain_sam_logits": -right, "icl_probability": wrong_prob}, truth)
        for k in range(3)
    ]
    scores = {
        g: np.mean([dice((fuse(i["sam_logits"], i["icl_probability"], g) > 0).numpy(), t) for i, t in sam_right])
        for g in FUSION_GAMMAS
    }
    best = [g for g in FUSION_GAMMAS if scores[g] == max(scores.values())]
    assert scores[0.0] == 1.0 and scores[1.0] < 0.5 and 0.2 in best
    assert leave_one_out_fusion(sam_right, FUSION_GAMMAS, 0.2) == (True, 0.2)  # a tie: the paper's setting
    assert leave_one_out_fusion(sam_right, FUSION_GAMMAS, 0.9) == (True, max(best))
    # a gain of the margin or less keeps the paper's setting
    assert leave_one_out_fusion(sam_right, FUSION_GAMMAS, 0.9, margin=1.0) == (True, 0.9)
    plain_right = [({"sam_logits": -right, "plain_sam_logits": right, "icl_probability": wrong_prob}, truth)]
    steer, gamma = leave_one_out_fusion(plain_right, FUSION_GAMMAS, 0.2)
    assert not steer and dice((fuse(right, wrong_prob, gamma) > 0).numpy(), truth) == 1.0
    icl_right = [
        ({"sam_logits": -right, "plain_sam_logits": -right, "icl_probability": torch.sigmoid(right[::2, ::2])}, truth)
    ]
    steer, gamma = leave_one_out_fusion(icl_right, FUSION_GAMMAS, 0.2)
    fused = fuse(-right, icl_right[0][0]["icl_probability"], gamma) > 0
    assert steer and gamma > 0.5 and dice(fused.numpy(), truth) == 1.0  # on a tie the steered SAM
    # a gain on one held-out image and a loss on another is no clear evidence: the default stands
    mixed = [sam_right[0], ({"sam_logits": -right, "plain_sam_logits": -right, "icl_probability": wrong_prob}, truth)]
    gains = [
        dice((fuse(i["sam_logits"], i["icl_probability"], 0.0) > 0).numpy(), t)
        - dice((fuse(i["sam_logits"], i["icl_probability"], 0.9) > 0).numpy(), t)
        for i, t in mixed
    ]
    assert np.mean(gains) > 0.01 and np.mean(gains) <= np.std(gains, ddof=1) / np.sqrt(2)
    assert leave_one_out_fusion(mixed, FUSION_GAMMAS, 0.9) == (True, 0.9)
    assert leave_one_out_fusion(mixed[:1] * 2, FUSION_GAMMAS, 0.9)[1] != 0.9  # the same gain twice is clear
    steer, gamma = leave_one_out_fusion(icl_right, FUSION_GAMMAS, 0.2, sam_steering=False)
    assert not steer and gamma > 0.5  # ... or the default's steering, when the default is stock SAM
    assert leave_one_out_fusion(sam_right, FUSION_GAMMAS, 0.2, sam_steering=False)[0]  # clear evidence moves it
    assert leave_one_out_fusion(
        empty := [({"pseudo_label": np.zeros_like(truth)}, truth)], FUSION_GAMMAS, 0.33, sam_steering=False
    ) == (False, 0.33)
    empty = [({"pseudo_label": np.zeros_like(truth)}, truth)]  # every setting scores 0: the paper's
    assert leave_one_out_fusion(empty, FUSION_GAMMAS, 0.33) == (True, 0.33)
    with pytest.raises(ValueError):
        leave_one_out_fusion([], FUSION_GAMMAS, 0.2)


def test_assd_on_the_surfaces_box_equals_the_whole_image():
    """assd computes its distance transforms on the box around both surfaces only: the same value,
    to the bit, as on the whole image (independent computation below)."""
    from scipy import ndimage

    from iclsam.common.metrics import surface

    def whole_image(p, t):
        sp, st = surface(p), surface(t)
        to_t, to_p = ndimage.distance_transform_edt(~st), ndimage.distance_transform_edt(~sp)
        return float((to_t[sp].sum() + to_p[st].sum()) / (sp.sum() + st.sum()))

    rng = np.random.default_rng(3)
    for k in range(12):
        p = ndimage.gaussian_filter(rng.random((160, 200)), 6 + k % 4) > 0.5
        t = ndimage.gaussian_filter(rng.random((160, 200)), 8) > 0.5
        if p.any() and t.any():
            assert assd(p, t) == whole_image(p, t)


def test_z_norm_against_numpy_on_each_of_its_uses():
    import torch

    from iclsam.common.znorm import z_norm

    rng = np.random.default_rng(3)
    x = rng.random((2, 1, 6, 5))
    per_map = z_norm(torch.as_tensor(x), dims=(-2, -1)).numpy()  # Eq. 4: each query's map, its own mean
    for b in range(2):
        c = x[b, 0]
        np.testing.assert_allclose(per_map[b, 0], (c - c.mean()) / c.std(ddof=1), rtol=1e-12)
    grid = rng.random((8, 8))  # Eq. 3: centre 0.5, std over the valid 5 x 6 tokens, times beta
    got = z_norm(torch.as_tensor(grid), centre=0.5, spread=torch.as_tensor(grid[:5, :6]), scale=2.0).numpy()
    np.testing.assert_allclose(got, 2.0 * (grid - 0.5) / grid[:5, :6].std(ddof=1), rtol=1e-12)
    flat = torch.full((4, 4), 0.7, dtype=torch.float64)  # a flat map: divided by the floor, not by zero
    assert torch.isfinite(z_norm(flat, centre=0.5)).all()
