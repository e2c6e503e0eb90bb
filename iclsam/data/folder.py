"""The prepared folder format every downstream step reads:

<root>/<task>/images/<id>.<ext>    (PNG, JPEG, TIFF, or .npy)
<root>/<task>/masks/<id>.png       (0 background, 255 target, the image's size; or a label map:
                                    0 background, two or more label values over the task)
<root>/<task>/meta.csv             (at least `id`; `case` or `group` keeps related images together)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from iclsam.common.readers import IMAGE_SUFFIXES, read_image, read_mask, read_mask_values


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

    def load_label_map(self, image_id: str) -> tuple[np.ndarray, np.ndarray]:
        """The image and its mask's stored values (a label map)."""
        image = read_image(self.image_path(image_id))
        values = read_mask_values(self.root / "masks" / f"{image_id}.png")
        if values.shape != image.shape[:2]:
            raise ValueError(f"{self.root / 'masks' / f'{image_id}.png'}: {values.shape} differs from its image's size")
        return image, values

    def holds_label_maps(self) -> bool:
        """Whether the task's masks hold two or more label values over the task."""
        found: set = set()
        for image_id in self.ids:
            found |= set(np.unique(read_mask_values(self.root / "masks" / f"{image_id}.png")).tolist()) - {0}
            if len(found) > 1:
                return True
        return False


def open_task(root: str | Path) -> Task:
    """Reads `<root>/meta.csv` and checks that the folder has the prepared layout."""
    root = Path(root)
    meta_path = root / "meta.csv"
    if not meta_path.is_file():
        raise FileNotFoundError(f"{meta_path} not found: a task folder has images/, masks/ and meta.csv")
    try:
        meta = pd.read_csv(meta_path, dtype={"id": str})
    except pd.errors.EmptyDataError:
        raise ValueError(f"{meta_path} is empty: it needs a header line with at least an 'id' column") from None
    except (ValueError, OSError, UnicodeDecodeError) as error:
        raise ValueError(f"{meta_path}: not a readable CSV ({str(error).strip().splitlines()[0]})") from None
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
