"""Shared fixtures: the LiteMedSAM predictor (built once), real-dev loaders, small synthetic images."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

REAL_DEV = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "real-dev"
REAL_DEV_SETS = ("busi-lesion", "ph2-lesion")


@pytest.fixture(scope="session")
def features_model():
    """ICL-SAM on the training-free features backend with LiteMedSAM, built once per session."""
    from iclsam import ICLSAM

    return ICLSAM(icl="features")


@pytest.fixture(scope="session")
def lite(features_model):
    """The session's LiteMedSAM predictor (its encoding cache is shared by every test)."""
    return features_model.sam


def ellipse(shape, centre, radii) -> np.ndarray:
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    return ((yy - centre[0]) / radii[0]) ** 2 + ((xx - centre[1]) / radii[1]) ** 2 <= 1


def textured_image(mask: np.ndarray, seed: int) -> np.ndarray:
    """A grey uint8 image: bright noisy target on a darker noisy background."""
    rng = np.random.default_rng(seed)
    x = 60 + 20 * rng.standard_normal(mask.shape) + 110 * mask
    return np.clip(x, 0, 255).astype(np.uint8)


def real_dev_ids(name: str, count: int = 80, seed: int = 1) -> list[str]:
    """The yardstick's protocol: `count` ids drawn with default_rng(seed) from the sorted ids, sorted."""
    ids = sorted(pd.read_csv(REAL_DEV / name / "meta.csv")["id"])
    return sorted(np.random.default_rng(seed).choice(ids, count, replace=False))


def load_pair(name: str, image_id: str) -> tuple[np.ndarray, np.ndarray]:
    image = np.asarray(Image.open(REAL_DEV / name / "images" / f"{image_id}.png"))
    mask = np.asarray(Image.open(REAL_DEV / name / "masks" / f"{image_id}.png")) > 0
    return image, mask


needs_real_dev = pytest.mark.skipif(
    not REAL_DEV.is_dir(), reason=f"real-dev data not found at {REAL_DEV} (it lives beside the repo, not in it)"
)


_MEASURED: list[str] = []


@pytest.fixture(scope="session")
def report():
    """Tests append what they measured; it is printed at the end of the run."""
    return _MEASURED.append


def pytest_terminal_summary(terminalreporter):
    if _MEASURED:
        terminalreporter.section("measured")
        for line in _MEASURED:
            terminalreporter.write_line(line)
