"""A synthetic benchmark generated from a seed (no files shipped), standing in for the paper's
three scenarios. SYNTHETIC: nothing here is a medical image; results on it are not paper results.

Families (tasks):
- fundus (RGB): a photograph cropped around the optic disc, as the public disc-crop data sets are
  (disc and cup on a retina with vessels)  -> `fundus_disc`, `fundus_cup`
- brain (MRI-like, 4 contrasts of the same case): tumour with oedema -> `brain_flair`, `brain_t1`,
  `brain_t1ce`, `brain_t2` (target: whole tumour = core + oedema)
- abdomen (CT-like, windowed): kidneys in their perirenal fat, with tumours -> `ct_kidney` (target:
  kidneys + tumours)

Anatomy varies per case. Meta-support and query cases differ in acquisition (the paper's data sets
mix scanners/cameras): query cases get another colour balance / bias field / noise / contrast, and
each case varies a little around its split's acquisition (`jittered`). The benchmark is built so
that the method can work on it: SAM with ground-truth boxes reaches >= 0.85 Dice on every task
(tests/test_data.py keeps it so).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from iclsam.data.synthetic_shapes import blob, ellipse, grid, smooth_field, texture

TASKS = ("fundus_disc", "fundus_cup", "brain_flair", "brain_t1", "brain_t1ce", "brain_t2", "ct_kidney")
FAMILY = {
    "fundus_disc": "fundus",
    "fundus_cup": "fundus",
    "brain_flair": "brain",
    "brain_t1": "brain",
    "brain_t1ce": "brain",
    "brain_t2": "brain",
    "ct_kidney": "abdomen",
}


@dataclass(frozen=True)
class Acquisition:
    """How a case was 'acquired': the shift between meta-support and query cases."""

    gain: float  # contrast
    offset: float  # brightness
    noise: float  # noise std (fraction of range)
    bias: float  # strength of a smooth multiplicative bias field / vignetting
    tint: tuple[float, float, float]  # colour balance (fundus only)


SUPPORT_ACQUISITION = Acquisition(1.0, 0.0, 0.03, 0.15, (1.0, 1.0, 1.0))
QUERY_ACQUISITION = Acquisition(0.85, 0.04, 0.05, 0.3, (0.92, 1.0, 1.15))


def jittered(rng, acq: Acquisition) -> Acquisition:
    """One case's acquisition: its split's, varied a little per case (contrast, brightness, colour
    balance), as images of one camera or scanner vary."""
    return Acquisition(
        acq.gain * rng.uniform(0.92, 1.08),
        acq.offset + rng.uniform(-0.03, 0.03),
        acq.noise,
        acq.bias,
        tuple(float(t * rng.uniform(0.95, 1.05)) for t in acq.tint),
    )


def _acquire(rng, clean, acq: Acquisition, body=None):
    """Clean intensities in [0, 1] -> acquired image in [0, 1]: bias field, contrast, noise."""
    shape = clean.shape[:2]
    field = 1.0 + acq.bias * smooth_field(rng, shape, 0.5)
    field = field[..., None] if clean.ndim == 3 else field
    x = clean * field
    x = (x - 0.5) * acq.gain + 0.5 + acq.offset
    x = x + acq.noise * rng.standard_normal(clean.shape)
    if body is not None:
        x = np.where(body[..., None] if clean.ndim == 3 else body, x, clean)
    return np.clip(x, 0, 1)


def _vessel_tree(rng, shape, cy, cx, trunks=4, width=2.0):
    """Dark vessels leaving the disc centre: a few curved trunks (mostly up and down, as the
    arcades), each with a branch; returns a soft 0..1 map."""
    vessels = np.zeros(shape)
    h, w = shape

    def draw(y0, x0, angle, length, thickness):
        t = np.linspace(0, length, 300)
        bend = rng.uniform(-1.2, 1.2)
        py, px = y0 + t * np.sin(angle + bend * t), x0 + t * np.cos(angle + bend * t)
        ok = (py > 0) & (py < 1) & (px > 0) & (px < 1)
        canvas = np.zeros(shape, bool)
        canvas[(py[ok] * h).astype(int), (px[ok] * w).astype(int)] = True
        nonlocal vessels
        vessels = np.maximum(
            vessels,
            ndimage.gaussian_filter(
                ndimage.binary_dilation(canvas, iterations=max(1, int(thickness))).astype(float), 0.7
            ),
        )
        k = len(t) // 2
        return py[k], px[k], angle + bend * t[k]

    for k in range(trunks):
        angle = (-np.pi / 2 if k % 2 == 0 else np.pi / 2) + rng.uniform(-0.6, 0.6)
        y, x, a = draw(cy, cx, angle, rng.uniform(0.5, 0.8), width)
        draw(y, x, a + rng.choice([-1, 1]) * rng.uniform(0.4, 0.9), rng.uniform(0.2, 0.4), max(1.0, width - 1))
    return np.clip(vessels, 0, 1)


def fundus_case(rng, acq: Acquisition, shape=(192, 192)):
    """An RGB fundus-like photograph cropped around the optic disc (as the public disc-crop data
    sets are: the disc spans about a third to a half of the crop), with optic disc and cup masks.
    Pale cup inside a yellow-orange disc on a red-orange retina, vessels leaving the disc."""
    cy, cx = 0.5 + rng.uniform(-0.07, 0.07), 0.5 + rng.uniform(-0.07, 0.07)
    r_disc = rng.uniform(0.19, 0.25)
    disc = ellipse(shape, cy, cx, r_disc * rng.uniform(1.0, 1.12), r_disc, rng.uniform(-0.3, 0.3))
    disc = disc + 0.06 * smooth_field(rng, shape, 0.08) < 1
    cup_ratio = rng.uniform(0.4, 0.7)
    temporal = rng.choice([-1, 1]) * rng.uniform(0.0, 0.1) * r_disc  # the cup sits off-centre, temporally
    cup = (
        ellipse(
            shape,
            cy + rng.uniform(-0.05, 0.05) * r_disc,
            cx + temporal,
            r_disc * cup_ratio * rng.uniform(0.95, 1.15),
            r_disc * cup_ratio,
        )
        < 1
    )
    cup &= ndimage.binary_erosion(disc, iterations=3)
    y, x = grid(shape)
    glow = np.exp(-((y - cy) ** 2 + (x - cx) ** 2) / (2 * (2.2 * r_disc) ** 2))  # brighter retina near the disc
    base = np.stack([0.62 + 0.12 * glow, 0.24 + 0.08 * glow, 0.10 + 0.04 * glow], -1)
    base += 0.025 * texture(rng, shape, 2.5)[..., None]
    soft = lambda m, s: ndimage.gaussian_filter(m.astype(float), s)[..., None]  # noqa: E731
    rim_colour = np.array([0.93, 0.56, 0.26]) + rng.uniform(-0.04, 0.04, 3)
    cup_colour = np.array([1.0, 0.94, 0.84]) + rng.uniform(-0.03, 0.0, 3)
    img = base * (1 - soft(disc, 1.2)) + rim_colour * soft(disc, 1.2)
    img = img * (1 - soft(cup, 1.0)) + cup_colour * soft(cup, 1.0)
    img += 0.015 * texture(rng, shape, 1.0)[..., None]
    vessels = _vessel_tree(rng, shape, cy, cx + temporal / 2, trunks=int(rng.integers(3, 5)), width=1.5)
    # vessels: dark on the retina, faint where they cross the pale disc and cup (as on photographs)
    on_disc = 1 - 0.75 * soft(disc, 1.5)
    img = img * (1 - vessels[..., None] * on_disc * np.array([0.45, 0.6, 0.6]))
    img = np.clip(_acquire(rng, img, acq) * np.array(acq.tint), 0, 1)
    return (img * 255).astype(np.uint8), {"fundus_disc": disc, "fundus_cup": cup}


# tissue -> intensity per contrast (0..1): background, skull, csf, grey, white, tumour core, oedema, enhancing rim
BRAIN_CONTRASTS = {
    "flair": dict(bg=0.0, skull=0.15, csf=0.08, grey=0.45, white=0.38, core=0.55, oedema=0.85, rim=0.7),
    "t1": dict(bg=0.0, skull=0.7, csf=0.12, grey=0.45, white=0.65, core=0.24, oedema=0.32, rim=0.36),
    "t1ce": dict(bg=0.0, skull=0.7, csf=0.12, grey=0.45, white=0.62, core=0.25, oedema=0.25, rim=0.6),
    "t2": dict(bg=0.0, skull=0.25, csf=0.95, grey=0.6, white=0.42, core=0.75, oedema=0.85, rim=0.7),
}


def brain_case(rng, acq: Acquisition, shape=(176, 144)):
    """Four MRI-like contrasts of one axial brain slice with a tumour, and the whole-tumour mask."""
    head_ry, head_rx = rng.uniform(0.4, 0.46), rng.uniform(0.38, 0.45)
    head = ellipse(shape, 0.5, 0.5, head_ry, head_rx)
    brain = head < 0.86
    skull = (head < 1) & ~brain
    wobble = 0.12 * smooth_field(rng, shape, 0.08)
    white = (ellipse(shape, 0.5, 0.5, head_ry * 0.7, head_rx * 0.62) + wobble < 1) & brain
    ventricles = (ellipse(shape, 0.47, 0.44, 0.1, 0.025, 0.25) < 1) | (
        ellipse(shape, 0.47, 0.56, 0.1, 0.025, -0.25) < 1
    )
    ventricles &= brain
    side = rng.choice([-1, 1])
    ty, tx = rng.uniform(0.3, 0.68), 0.5 + side * rng.uniform(0.1, 0.22)
    r = rng.uniform(0.06, 0.13)
    core = blob(rng, shape, ty, tx, r) & brain
    oedema = (blob(rng, shape, ty, tx, r * rng.uniform(1.4, 1.9), 0.5) | core) & brain & ~ventricles
    rim = core & ~ndimage.binary_erosion(core, iterations=2)
    images = {}
    for name, v in BRAIN_CONTRASTS.items():
        x = np.full(shape, v["bg"])
        x[skull] = v["skull"]
        x[brain] = v["grey"]
        x[white] = v["white"]
        x[ventricles] = v["csf"]
        x[oedema] = v["oedema"]
        x[core] = v["core"]
        x[rim] = v["rim"]
        x = ndimage.gaussian_filter(x, 0.8) + 0.02 * texture(rng, shape) * (head < 1)
        images[name] = (_acquire(rng, x, acq, body=head < 1.05) * 255).astype(np.uint8)
    return images, oedema


CT_WINDOW = (-79.0, 304.0)


def abdomen_case(rng, acq: Acquisition, shape=(192, 192)):
    """A CT-like axial abdominal slice (Hounsfield units, then windowed to 0..255) with kidneys and
    kidney tumours; the target is kidneys + tumours."""
    body = ellipse(shape, 0.52, 0.5, rng.uniform(0.33, 0.4), rng.uniform(0.42, 0.47))
    hu = np.full(shape, -1000.0)
    hu[body < 1] = -100  # subcutaneous fat
    inner = body < 0.8
    hu[inner] = 35 + 8 * texture(rng, shape, 3)[inner]  # muscle / bowel
    liver = (ellipse(shape, 0.45, 0.3, 0.2, 0.17, 0.3) + 0.1 * smooth_field(rng, shape, 0.1) < 1) & inner
    hu[liver] = 60
    spine = ellipse(shape, 0.68, 0.5, 0.055, 0.05) < 1
    hu[spine] = 700
    hu[(ellipse(shape, 0.56, 0.5, 0.035, 0.035) < 1)] = 150  # aorta
    kidneys = np.zeros(shape, bool)
    cortex_hu = 150 * acq.gain + 20
    for side in (-1, 1):
        ky, kx = 0.62 + rng.uniform(-0.04, 0.04), 0.5 + side * rng.uniform(0.15, 0.2)
        ry, rx, tilt = rng.uniform(0.07, 0.1), rng.uniform(0.045, 0.06), side * rng.uniform(0.2, 0.5)
        kidney = ellipse(shape, ky, kx, ry, rx, tilt) < 1
        hilum = ellipse(shape, ky, kx - side * 0.04, 0.03, 0.025) < 1
        kidney &= ~hilum & inner
        tumour = np.zeros(shape, bool)
        if rng.random() < 0.6:  # an exophytic tumour on the kidney's outer side, less enhancing than the cortex
            tumour = (
                blob(
                    rng,
                    shape,
                    ky + rng.uniform(-0.05, 0.05),
                    kx + side * rng.uniform(0.03, 0.05),
                    rng.uniform(0.025, 0.045),
                )
                & inner
            )
        # perirenal fat: the kidney sits in a fat capsule, which gives it its edge on CT
        capsule = ndimage.binary_dilation(kidney | tumour, iterations=int(rng.integers(3, 6))) & inner
        hu[capsule & ~spine] = -90 + 10 * rng.standard_normal()
        hu[kidney] = cortex_hu
        medulla = ndimage.binary_erosion(kidney, iterations=3)
        hu[medulla] = cortex_hu - 25
        hu[hilum & capsule] = -60  # renal sinus fat
        hu[tumour] = rng.uniform(85, 115)
        kidneys |= kidney | tumour
    hu = ndimage.gaussian_filter(hu, 0.7)
    hu = hu + acq.noise * 400 * rng.standard_normal(shape) * (body < 1)
    lo, hi = CT_WINDOW
    return (np.clip((hu - lo) / (hi - lo), 0, 1) * 255).astype(np.uint8), kidneys


def generate_family(family: str, rng, acq: Acquisition) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """One case of a family: {task: (image, mask)}."""
    if family == "fundus":
        image, masks = fundus_case(rng, acq)
        return {task: (image, mask) for task, mask in masks.items()}
    if family == "brain":
        images, mask = brain_case(rng, acq)
        return {f"brain_{contrast}": (image, mask) for contrast, image in images.items()}
    if family == "abdomen":
        image, mask = abdomen_case(rng, acq)
        return {"ct_kidney": (image, mask)}
    raise ValueError(f"unknown family {family!r}; choose one of {sorted(set(FAMILY.values()))}")


FAMILY_SEEDS = {"fundus": 0, "brain": 1, "abdomen": 2}


def synthetic_cases(family: str, seed: int, n_support: int, n_query: int):
    """Yields (case_id, split, {task: (image, mask)}) for a family: `n_support` meta-support cases
    with one acquisition, then `n_query` query cases with another. Same seed, same pixels."""
    if family not in FAMILY_SEEDS:
        raise ValueError(f"unknown family {family!r}; choose one of {sorted(FAMILY_SEEDS)}")
    rng = np.random.default_rng([seed, FAMILY_SEEDS[family]])
    for i in range(n_support + n_query):
        split = "support" if i < n_support else "query"
        acq = jittered(rng, SUPPORT_ACQUISITION if split == "support" else QUERY_ACQUISITION)
        case = generate_family(family, rng, acq)
        while not all(mask.any() for _, mask in case.values()):  # a target fell outside the view
            case = generate_family(family, rng, acq)
        yield f"{family}_{i:04d}", split, case
