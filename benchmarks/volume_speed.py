"""What a volume costs: `ICLSAM.segment_volume` from k annotated slices against the encoder's own
time per slice, on this machine, in one run.

    python benchmarks/volume_speed.py [--image scan.nii.gz --label labels.nii.gz] [--slices 3] [--out F]

Without --image: the bundled SYNTHETIC volume. The k slices are placed as `iclsam evaluate-volumes`
places them (evenly inside the target's extent). The model starts with an empty encoder cache (no
on-disk cache), so the wall time includes every encoder pass. Reports: slices segmented, encoder
passes against the unique slices encoded (goal: one pass each), the wall time, seconds per
segmented slice, and the encoder's own seconds per slice (best of `--repeats` passes over up to 8
slices of the same scan, after one warm-up pass), with their ratio. Writes Markdown to --out and
prints it.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
import warnings
from pathlib import Path

import numpy as np
import torch

from iclsam import ICLSAM, segment_volume
from iclsam.apps.volumes.checks import normalise_intensities
from iclsam.apps.volumes.evaluate_volumes import annotated_slices
from iclsam.apps.volumes.scan_io import read_scan
from iclsam.common.atomic import write_text_atomic
from iclsam.method.sam import SamPredictor
from iclsam.pipeline.synthetic_volumes import synthetic_volume


def load(image: str | None, label: str | None):
    """(name, image, target, spacing): the scan given, or the synthetic volume of seed 0."""
    if image is None:
        scan, truth, spacing = synthetic_volume(0)
        return "SYNTHETIC volume (seed 0)", scan, truth != 0, spacing
    scan, labels = read_scan(image), read_scan(label)
    return Path(image).name, scan.array, labels.array != 0, scan.spacing


def encoder_seconds(volume: np.ndarray, truth: np.ndarray, repeats: int) -> float:
    """The encoder's own time per slice: best of `repeats` passes over up to 8 target slices, each
    pass on a fresh predictor (nothing cached), after one warm-up pass."""
    window = np.moveaxis(normalise_intensities(np.moveaxis(volume, 2, 0)), 0, 2)
    holding = np.nonzero(truth.any(axis=(0, 1)))[0]
    picks = holding[np.linspace(0, len(holding) - 1, min(8, len(holding))).round().astype(int)]
    slices = [window[..., z] for z in dict.fromkeys(picks.tolist())]
    SamPredictor("lite").encode(slices[0])  # warm-up
    best = float("inf")
    for _ in range(repeats):
        sam = SamPredictor("lite")  # nothing cached
        start = time.perf_counter()
        for s in slices:
            sam.encode(s)
        best = min(best, time.perf_counter() - start)
    return best / len(slices)


def main() -> None:
    warnings.filterwarnings("ignore", message="Importing from timm")
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--image")
    parser.add_argument("--label")
    parser.add_argument("--slices", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default="benchmarks/volume_speed.md")
    args = parser.parse_args()
    if (args.image is None) != (args.label is None):
        parser.error("--image and --label go together")
    name, volume, truth, spacing = load(args.image, args.label)
    chosen = annotated_slices(truth, args.slices)
    model = ICLSAM(sam=SamPredictor("lite"))
    start = time.perf_counter()
    result = segment_volume(model, volume, {z: truth[..., z] for z in chosen}, axis=2, spacing=spacing)
    wall = time.perf_counter() - start
    segmented = result.record["segmented"]
    per_slice = encoder_seconds(volume, truth, args.repeats)
    lines = [
        f"# Volume speed: {name}, {' x '.join(map(str, volume.shape))} voxels, k = {len(chosen)} annotated slices",
        "",
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch threads {torch.get_num_threads()}, "
        f"LiteMedSAM, ICL model {model.icl}; one run, empty encoder cache.",
        "",
        "| | value |",
        "|---|---|",
        f"| slices segmented (of {volume.shape[2]}; {len(chosen)} annotated) | {segmented} |",
        f"| encoder passes / slices segmented | {model.sam.encoder_passes} / {segmented} |",
        f"| wall time (s) | {wall:.1f} |",
        f"| seconds per segmented slice | {wall / max(segmented, 1):.2f} |",
        f"| encoder's own seconds per slice | {per_slice:.2f} |",
        f"| ratio (per segmented slice / encoder per slice) | {wall / max(segmented, 1) / per_slice:.2f} |",
    ]
    text = "\n".join(lines) + "\n"
    write_text_atomic(args.out, text)
    print(text)


if __name__ == "__main__":
    main()
