"""The prepared folder format every downstream step reads:

    <root>/<task>/images/<id>.<ext>    (PNG, JPEG, TIFF, or .npy)
    <root>/<task>/masks/<id>.png       (0 background, 255 target, the image's size)
    <root>/<task>/meta.csv             (at least `id`; `case` or `group` keeps related images together)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, UnidentifiedImageError

from ..inputs import check_image, check_mask

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".npy")


def read_image(path: str | Path) -> np.ndarray:
    """An image file as an array (H x W or H x W x 3), or an error naming the file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"image not found: {path}")
    try:
        if path.suffix.lower() == ".npy":
            array = np.load(path, allow_pickle=False)
        else:
            with Image.open(path) as image:
                image = image.convert("RGB") if image.mode in ("P", "RGBA", "LA", "CMYK", "YCbCr") else image
                array = np.asarray(image)
    except (UnidentifiedImageError, OSError, ValueError) as error:
        raise ValueError(f"{path}: unreadable image ({error})") from error
    return check_image(array, str(path))


def read_mask(path: str | Path, shape: tuple[int, int]) -> np.ndarray:
    """A binary mask file of the given image size as bool, or an error naming the file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"mask not found: {path}")
    try:
        with Image.open(path) as image:
            array = np.asarray(image.convert("L") if image.mode not in ("L", "1", "I", "I;16") else image)
    except (UnidentifiedImageError, OSError) as error:
        raise ValueError(f"{path}: unreadable mask ({error})") from error
    return check_mask(array, shape, str(path))


@dataclass(frozen=True)
class Task:
    """One segmentation task in the prepared format."""

    root: Path
    meta: pd.DataFrame

    @property
    def name(self) -> str:
        return self.root.name

    @property
    def ids(self) -> list[str]:
        return list(self.meta["id"])

    def image_path(self, image_id: str) -> Path:
        for suffix in IMAGE_SUFFIXES:
            path = self.root / "images" / f"{image_id}{suffix}"
            if path.is_file():
                return path
        raise FileNotFoundError(f"no image for id {image_id!r} in {self.root / 'images'} ({', '.join(IMAGE_SUFFIXES)})")

    def load(self, image_id: str) -> tuple[np.ndarray, np.ndarray]:
        image = read_image(self.image_path(image_id))
        return image, read_mask(self.root / "masks" / f"{image_id}.png", image.shape[:2])


def open_task(root: str | Path) -> Task:
    """Reads `<root>/meta.csv` and checks that the folder has the prepared layout."""
    root = Path(root)
    meta_path = root / "meta.csv"
    if not meta_path.is_file():
        raise FileNotFoundError(f"{meta_path} not found: a task folder has images/, masks/ and meta.csv")
    meta = pd.read_csv(meta_path, dtype={"id": str})
    if "id" not in meta.columns:
        raise ValueError(f"{meta_path} has no 'id' column (columns: {', '.join(meta.columns)})")
    if meta["id"].duplicated().any():
        raise ValueError(f"{meta_path} lists an id twice: {meta['id'][meta['id'].duplicated()].iloc[0]}")
    if len(meta) == 0:
        raise ValueError(f"{meta_path} lists no images")
    for folder in ("images", "masks"):
        if not (root / folder).is_dir():
            raise FileNotFoundError(f"{root / folder} not found: a task folder has images/, masks/ and meta.csv")
    return Task(root, meta.sort_values("id", kind="stable").reset_index(drop=True))


def open_tasks(root: str | Path) -> list[Task]:
    """Every task folder (one with a meta.csv) directly under `root`, by name."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"data folder not found: {root}")
    tasks = [open_task(p) for p in sorted(root.iterdir()) if (p / "meta.csv").is_file()]
    if not tasks:
        raise FileNotFoundError(f"no task folders (with meta.csv) under {root}")
    return tasks
