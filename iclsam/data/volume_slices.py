"""2-D development sets cut from real volumes (the real-dev-3d layout: `<set>/<case>_image.nii.gz`
and `<case>_label.nii.gz`), written in the prepared format so that `iclsam evaluate` measures them
beside the 2-D sets. Each volume gets one intensity window (as `segment_volume` sees it); the axial
slices holding the target (at least a tenth of its largest cross-section), up to `per_volume` of
them evenly spread, become images (longest side
at most `max_side`, bilinear; masks nearest). Slices of one volume stay on one side of the
meta-support / query split; a set of one volume is split into contiguous slabs instead, so that
no query slice has a support slice next to it."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from iclsam.apps.volumes.checks import normalise_intensities
from iclsam.apps.volumes.evaluate_volumes import read_case, volume_pairs
from iclsam.data.splits import split_cases
from iclsam.data.writer import writing_tasks

# task: (set folder, label values that are the target (None: every label > 0))
VOLUME_TASKS = {
    "rd3d-brats-t1c": ("deepmedic_brats2013_t1c", None),
    "rd3d-liver-ct": ("chaos_ct_liver", None),
    "rd3d-chest-lungs": ("nsclc_radiomics_lung1_ct", (1, 2)),
    "rd3d-chest-tumour": ("nsclc_radiomics_lung1_ct", (4,)),
    "rd3d-brain-t1post": ("tcia_btp_t1post", None),
}
MIN_AREA = 0.1  # a slice is used when its target is at least this fraction of the largest slice's
SLABS = 4  # a one-volume set: its target's slices in this many contiguous groups


def chosen_slices(truth: np.ndarray, per_volume: int) -> list[int]:
    """Up to `per_volume` slices (last axis) whose target is at least `MIN_AREA` of the largest
    slice's, evenly spread over them (the few-pixel tips of a target are left out)."""
    areas = truth.sum(axis=(0, 1))
    holding = np.nonzero(areas >= MIN_AREA * areas.max())[0]
    picks = np.linspace(0, len(holding) - 1, min(per_volume, len(holding))).round().astype(int)
    return [int(z) for z in dict.fromkeys(holding[picks].tolist())]


def resized(image: np.ndarray, mask: np.ndarray, max_side: int) -> tuple[np.ndarray, np.ndarray]:
    """The slice with its longest side at most `max_side` (image bilinear, mask nearest)."""
    scale = max_side / max(image.shape)
    if scale >= 1:
        return image, mask
    size = (max(1, round(image.shape[1] * scale)), max(1, round(image.shape[0] * scale)))
    small = np.asarray(Image.fromarray(image).resize(size, Image.BILINEAR))
    return small, np.asarray(Image.fromarray(mask.astype(np.uint8)).resize(size, Image.NEAREST)) != 0


def task_slices(
    root: Path, set_name: str, labels, per_volume: int
) -> list[tuple[str, str, np.ndarray, np.ndarray, str]]:
    """(id, group, image, mask, source) per chosen slice of every volume of a set."""
    found = volume_pairs(root)
    if set_name not in found:
        raise FileNotFoundError(f"{root / set_name}: no <case>_image.nii.gz / <case>_label.nii.gz pairs")
    pairs = found[set_name]
    records = []
    for case, image_path, label_path in pairs:
        scan, truth = read_case(image_path, label_path, labels, 2)
        window = np.moveaxis(normalise_intensities(np.moveaxis(scan.array, 2, 0)), 0, 2)
        slices = chosen_slices(truth, per_volume)
        for rank, z in enumerate(slices):
            group = case if len(pairs) > 1 else f"{case}_slab{rank * SLABS // len(slices)}"
            records.append((f"{case}_{z:03d}", group, window[..., z], truth[..., z], f"{image_path} slice {z}"))
    return records


def slice_volume_tasks(
    root: str | Path,
    out: str | Path,
    tasks: Sequence[str] | None = None,
    per_volume: int = 24,
    max_side: int = 384,
    seed: int = 0,
) -> list[Path]:
    """Writes each task of `VOLUME_TASKS` (or `tasks`) under `out` in the prepared format, with a
    `split` column by volume (or slab); every task appears only if all were written whole."""
    root, names = Path(root), list(tasks or VOLUME_TASKS)
    unknown = sorted(set(names) - set(VOLUME_TASKS))
    if unknown:
        raise ValueError(f"unknown volume tasks {unknown}; known: {sorted(VOLUME_TASKS)}")
    with writing_tasks(out, names) as writers:
        for name in names:
            set_name, labels = VOLUME_TASKS[name]
            records = task_slices(root, set_name, labels, per_volume)
            splits = split_cases(sorted({group for _, group, *_ in records}), 0.5, seed, key=name)
            for image_id, group, image, mask, source in records:
                image, mask = resized(image, mask, max_side)
                if not mask.any():  # a target of a few pixels lost in the downscaling
                    continue
                writers[name].add(image_id, group, splits[group], image, mask, source)
    return [Path(out) / name for name in names]
