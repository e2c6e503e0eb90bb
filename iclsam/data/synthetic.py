"""A synthetic benchmark generated from a seed (no files shipped), standing in for the paper's
three scenarios. SYNTHETIC: nothing here is a medical image; results on it are not paper results.

Families (tasks):
- fundus (RGB): optic disc and cup on a retina with vessels  -> `fundus_disc`, `fundus_cup`
- brain (MRI-like, 4 contrasts of the same case): tumour with oedema -> `brain_flair`, `brain_t1`,
  `brain_t1ce`, `brain_t2` (target: whole tumour = core + oedema)
- abdomen (CT-like, windowed): kidneys with tumours -> `ct_kidney` (target: kidneys + tumours)

Anatomy varies per case. Meta-support and query cases differ in acquisition (the paper's data sets
mix scanners/cameras): query cases get another colour balance / bias field / noise / contrast.
"""

from __future__ import annotations

from dataclasses import dataclass
import numpy as np
from scipy import ndimage


TASKS = ("fundus_disc", "fundus_cup", "brain_flair", "brain_t1", "brain_t1ce", "brain_t2", "ct_kidney")
FAMILY = {"fundus_disc": "fundus", "fundus_cup": "fundus", "brain_flair": "brain", "brain_t1": "brain",
          "brain_t1ce": "brain", "brain_t2": "brain", "ct_kidney": "abdomen"}


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


def _grid(shape):
    yy, xx = np.mgrid[: shape[0], : shape[1]].astype(np.float64)
    return yy / shape[0], xx / shape[1]


def _ellipse(shape, cy, cx, ry, rx, angle=0.0):
    y, x = _grid(shape)
    c, s = np.cos(angle), np.sin(angle)
    u, v = (x - cx) * c + (y - cy) * s, -(x - cx) * s + (y - cy) * c
    return (u / rx) ** 2 + (v / ry) ** 2


def _blob(rng, shape, cy, cx, radius, roughness=0.35):
    """An irregular blob: an ellipse whose boundary is perturbed by smooth noise."""
    field = ndimage.gaussian_filter(rng.standard_normal(shape), sigma=min(shape) * radius * 0.5)
    field /= np.abs(field).max() + 1e-9
    r = _ellipse(shape, cy, cx, radius * rng.uniform(0.7, 1.3), radius * rng.uniform(0.7, 1.3), rng.uniform(0, np.pi))
    return r + roughness * field < 1


def _smooth_field(rng, shape, sigma_fraction=0.25):
    f = ndimage.gaussian_filter(rng.standard_normal(shape), sigma=min(shape) * sigma_fraction)
    return f / (np.abs(f).max() + 1e-9)


def _texture(rng, shape, sigma=1.5):
    t = ndimage.gaussian_filter(rng.standard_normal(shape), sigma)
    return t / (t.std() + 1e-9)


def _acquire(rng, clean, acq: Acquisition, body=None):
    """Clean intensities in [0, 1] -> acquired image in [0, 1]: bias field, contrast, noise."""
    shape = clean.shape[:2]
    field = 1.0 + acq.bias * _smooth_field(rng, shape, 0.5)
    field = field[..., None] if clean.ndim == 3 else field
    x = clean * field
    x = (x - 0.5) * acq.gain + 0.5 + acq.offset
    x = x + acq.noise * rng.standard_normal(clean.shape)
    if body is not None:
        x = np.where(body[..., None] if clean.ndim == 3 else body, x, clean)
    return np.clip(x, 0, 1)


def fundus_case(rng, acq: Acquisition, shape=(192, 240)):
    """An RGB fundus-like photograph with optic disc and cup masks."""
    y, x = _grid(shape)
    aspect = shape[1] / shape[0]
    fov = _ellipse(shape, 0.5, 0.5, 0.49, 0.49 / aspect) < 1
    side = rng.choice([0.3, 0.7])
    cy, cx = rng.uniform(0.4, 0.6), side + rng.uniform(-0.05, 0.05)
    r_disc = rng.uniform(0.085, 0.12)
    disc = _ellipse(shape, cy, cx, r_disc * rng.uniform(1.0, 1.15), r_disc / aspect, rng.uniform(-0.3, 0.3)) < 1
    cup_ratio = rng.uniform(0.35, 0.7)
    cup = _ellipse(shape, cy + rng.uniform(-0.01, 0.01), cx + (0.01 if side > 0.5 else -0.01),
                   r_disc * cup_ratio, r_disc * cup_ratio / aspect * rng.uniform(0.9, 1.2)) < 1
    cup &= disc
    # retina: orange-red with darker macula opposite the disc
    macula = np.exp(-(_ellipse(shape, cy, 1 - side, 0.12, 0.12 / aspect)))
    base = np.stack([0.72 - 0.15 * macula, 0.32 - 0.1 * macula, 0.14 - 0.05 * macula], -1)
    base += 0.03 * _texture(rng, shape, 2.0)[..., None]
    # vessels: a few smooth curves leaving the disc
    vessels = np.zeros(shape)
    for _ in range(rng.integers(6, 10)):
        angle = rng.uniform(0, 2 * np.pi)
        t = np.linspace(0, rng.uniform(0.4, 0.8), 200)
        bend = rng.uniform(-1.5, 1.5)
        py = cy + t * np.sin(angle + bend * t)
        px = cx + t * np.cos(angle + bend * t) / aspect
        ok = (py > 0) & (py < 1) & (px > 0) & (px < 1)
        vessels[(py[ok] * shape[0]).astype(int), (px[ok] * shape[1]).astype(int)] = 1
    vessels = ndimage.gaussian_filter(ndimage.binary_dilation(vessels, iterations=1).astype(float), 0.8)
    soft = lambda m, s: ndimage.gaussian_filter(m.astype(float), s)[..., None]  # noqa: E731
    img = base * (1 - soft(disc, 1.5)) + np.array([0.98, 0.78, 0.45]) * soft(disc, 1.5)
    img = img * (1 - soft(cup, 1.2)) + np.array([1.0, 0.93, 0.8]) * soft(cup, 1.2)
    # vessels: dark on the retina, thinner and fainter where they cross the pale disc
    img = img * (1 - vessels[..., None] * (0.5 - 0.3 * soft(disc, 1.0)))
    img = _acquire(rng, img, acq) * np.array(acq.tint)
    img = np.clip(img, 0, 1) * fov[..., None]
    return (img * 255).astype(np.uint8), {"fundus_disc": disc & fov, "fundus_cup": cup & fov}


# tissue -> intensity per contrast (0..1): background, skull, csf, grey, white, tumour core, oedema, enhancing rim
BRAIN_CONTRASTS = {
    "flair": dict(bg=0.0, skull=0.15, csf=0.08, grey=0.45, white=0.38, core=0.55, oedema=0.85, rim=0.7),
    "t1": dict(bg=0.0, skull=0.7, csf=0.12, grey=0.45, white=0.65, core=0.3, oedema=0.38, rim=0.4),
    "t1ce": dict(bg=0.0, skull=0.7, csf=0.12, grey=0.45, white=0.62, core=0.25, oedema=0.4, rim=0.95),
    "t2": dict(bg=0.0, skull=0.25, csf=0.95, grey=0.6, white=0.42, core=0.75, oedema=0.85, rim=0.7),
}


def brain_case(rng, acq: Acquisition, shape=(176, 144)):
    """Four MRI-like contrasts of one axial brain slice with a tumour, and the whole-tumour mask."""
    head_ry, head_rx = rng.uniform(0.4, 0.46), rng.uniform(0.38, 0.45)
    head = _ellipse(shape, 0.5, 0.5, head_ry, head_rx)
    brain = head < 0.86
    skull = (head < 1) & ~brain
    wobble = 0.12 * _smooth_field(rng, shape, 0.08)
    white = (_ellipse(shape, 0.5, 0.5, head_ry * 0.7, head_rx * 0.62) + wobble < 1) & brain
    ventricles = ((_ellipse(shape, 0.47, 0.44, 0.1, 0.025, 0.25) < 1) | (_ellipse(shape, 0.47, 0.56, 0.1, 0.025, -0.25) < 1))
    ventricles &= brain
    side = rng.choice([-1, 1])
    ty, tx = rng.uniform(0.3, 0.68), 0.5 + side * rng.uniform(0.1, 0.22)
    r = rng.uniform(0.06, 0.13)
    core = _blob(rng, shape, ty, tx, r) & brain
    oedema = (_blob(rng, shape, ty, tx, r * rng.uniform(1.4, 1.9), 0.5) | core) & brain & ~ventricles
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
        x = ndimage.gaussian_filter(x, 0.8) + 0.02 * _texture(rng, shape) * (head < 1)
        images[name] = (_acquire(rng, x, acq, body=head < 1.05) * 255).astype(np.uint8)
    return images, oedema


CT_WINDOW = (-79.0, 304.0)


def abdomen_case(rng, acq: Acquisition, shape=(192, 192)):
    """A CT-like axial abdominal slice (Hounsfield units, then windowed to 0..255) with kidneys and
    kidney tumours; the target is kidneys + tumours."""
    body = _ellipse(shape, 0.52, 0.5, rng.uniform(0.33, 0.4), rng.uniform(0.42, 0.47))
    hu = np.full(shape, -1000.0)
    hu[body < 1] = -100  # subcutaneous fat
    inner = body < 0.8
    hu[inner] = 35 + 8 * _texture(rng, shape, 3)[inner]  # muscle / bowel
    liver = (_ellipse(shape, 0.45, 0.3, 0.2, 0.17, 0.3) + 0.1 * _smooth_field(rng, shape, 0.1) < 1) & inner
    hu[liver] = 60
    spine = _ellipse(shape, 0.68, 0.5, 0.055, 0.05) < 1
    hu[spine] = 700
    hu[(_ellipse(shape, 0.56, 0.5, 0.035, 0.035) < 1)] = 150  # aorta
    kidneys = np.zeros(shape, bool)
    cortex_hu = 150 * acq.gain + 20
    for side in (-1, 1):
        ky, kx = 0.62 + rng.uniform(-0.04, 0.04), 0.5 + side * rng.uniform(0.15, 0.2)
        kidney = _ellipse(shape, ky, kx, rng.uniform(0.07, 0.1), rng.uniform(0.045, 0.06), side * rng.uniform(0.2, 0.5)) < 1
        hilum = _ellipse(shape, ky, kx - side * 0.04, 0.03, 0.025) < 1
        kidney &= ~hilum & inner
        hu[kidney] = cortex_hu
        medulla = ndimage.binary_erosion(kidney, iterations=3)
        hu[medulla] = cortex_hu - 40
        kidneys |= kidney
        if rng.random() < 0.6:
            tumour = _blob(rng, shape, ky + rng.uniform(-0.06, 0.06), kx + side * rng.uniform(0.02, 0.05),
                           rng.uniform(0.025, 0.05)) & inner
            hu[tumour] = 40 + rng.uniform(-10, 30)
            kidneys |= tumour
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
        acq = SUPPORT_ACQUISITION if split == "support" else QUERY_ACQUISITION
        case = generate_family(family, rng, acq)
        while not all(mask.any() for _, mask in case.values()):  # a target fell outside the view
            case = generate_family(family, rng, acq)
        yield f"{family}_{i:04d}", split, case


def render_examples(path, seed: int = 0):
    """A figure of examples: for each task, a meta-support and a query case with the target outlined
    (written without metadata, so the same seed gives the same bytes)."""
    from ..figures import support_query_figure

    columns = [(task, [(split, *case[task]) for _, split, case in synthetic_cases(FAMILY[task], seed, 1, 1)])
               for task in TASKS]
    return support_query_figure(columns, f"SYNTHETIC benchmark (seed {seed}): meta-support (top) and query (bottom) "
                                "acquisitions", path, dpi=90, value_range=(0, 255))
