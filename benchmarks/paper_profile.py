"""The paper profile's work, counted and timed on the machine this runs on: how many ViT-B encoder
passes, UniverSeg calls (per m), SAM decoder calls, Eq. 2 fits and ASSD evaluations the paper's
protocol makes (from Table 3's split sizes and profiles/paper.yaml), the seconds one of each takes
here (`--device`), and the predicted wall time of `dvc repro` with the paper profile.

    python benchmarks/paper_profile.py [--device auto|cpu|cuda] [--repeats 3]

Timings use random weights (SAM ViT-B, official-size UniverSeg), which cost the same as the real
ones. Every count assumes one process and no batching (the pipeline's CPU path).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import yaml
from timing import best_of

from iclsam.common.devices import resolve_device
from iclsam.common.metrics import assd
from iclsam.common.resampling import resized_mask
from iclsam.data.synthetic import synthetic_cases
from iclsam.method.confidence import fit_confidence_classifier, solver_for, support_tokens
from iclsam.method.sam import SamPredictor
from iclsam.method.sam.build import _vit_b
from iclsam.method.universeg import UniverSeg, init_universeg_weights, universeg_image, universeg_label

ROOT = Path(__file__).resolve().parents[1]
# Table 3's query images per task of the paper profile (fundus: disc and cup share each image)
QUERIES = {"refuge": 80, "rimone": 60, "drishti": 51, "brats": 1487, "kits23": 5630}
IMAGES = {"refuge": 320 + 80, "rimone": 99 + 60, "drishti": 50 + 51, "brats": 4 * (3439 + 1487), "kits23": 6396 + 5630}
VARIANTS_SCORED = 6  # universeg, universeg+conf, sam, sam+conf, iclsam, sam+gt
UNIVERSEG_CALLS_PER_QUERY = 2  # UniverSeg alone, and steered by the map (Eq. 4)
DECODER_CALLS_PER_QUERY = 3  # SAM with the ICL boxes, steered by the map (Eq. 3), and with the true boxes


def paper_counts(params: dict) -> dict:
    """The work of the paper profile's grid and sensitivity stages, by kind of operation."""
    tasks = params["tasks"]
    dataset = {t: t.split("_")[0] for t in tasks}
    queries = sum(QUERIES[dataset[t]] for t in tasks)
    sizes, draws = params["sample_support"]["sizes"], params["sample_support"]["draws"]
    backbones = len(params["grid"]["sam"])
    s = params["sensitivity"]
    sweeps = sum(len(v) for v in s["values"].values()) * s["draws"] * QUERIES[dataset[s["task"]]]
    counts = {
        "encoder passes (ViT-B)": sum(IMAGES.values()) * backbones,
        "Eq. 2 fits": len(tasks) * len(sizes) * draws * backbones,
        "SAM decoder calls": (queries * len(sizes) * draws * backbones + sweeps) * DECODER_CALLS_PER_QUERY,
        "ASSD evaluations (512 x 512)": queries * len(sizes) * draws * backbones * VARIANTS_SCORED,
    }
    for m in sizes:
        counts[f"UniverSeg calls, m = {m}"] = queries * draws * backbones * UNIVERSEG_CALLS_PER_QUERY
    counts[f"UniverSeg calls, m = {s['m']}"] += sweeps * UNIVERSEG_CALLS_PER_QUERY
    return counts


def synchronised(device: torch.device, fn):
    def run():
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    return run


def seconds_per_operation(device: torch.device, sizes: list[int], repeats: int) -> dict:
    torch.manual_seed(0)
    cases = [c[2]["brain_flair"] for c in synthetic_cases("brain", 0, max(sizes) + 1, 1)]
    images, masks = [x for x, _ in cases], [y for _, y in cases]
    timings = {}
    vit_b = _vit_b().image_encoder.to(device).eval()
    batch = torch.randn(1, 3, 1024, 1024, device=device)
    with torch.inference_mode():
        timings["encoder passes (ViT-B)"] = best_of(repeats, synchronised(device, lambda: vit_b(batch)))
    vit_b = None  # the ViT-B encoder is only timed: free it
    sam = SamPredictor("lite", device=str(device))  # its decoder is SAM's (the same architecture as ViT-B's)
    embeddings = [sam.encode(x) for x in images[:8]]
    boxes = np.array([[30, 40, 100, 120]])
    timings["SAM decoder calls"] = best_of(repeats, synchronised(device, lambda: sam.decode(embeddings[0], boxes)))
    x, y = support_tokens(embeddings, masks[:8], sam.input_size)  # >= 24,000 tokens, the cap of every m >= 6
    timings["Eq. 2 fits"] = best_of(
        repeats, lambda: fit_confidence_classifier(x, y, solver=solver_for(device), device=device)
    )
    truth = resized_mask(masks[0])
    timings["ASSD evaluations (512 x 512)"] = best_of(repeats, lambda: assd(np.roll(truth, 3, axis=1), truth))
    net = init_universeg_weights(UniverSeg()).to(device).eval()
    query = universeg_image(images[-1], "query")[None].to(device)
    for m in sizes:
        support = torch.stack([universeg_image(x, "support") for x in images[:m]])[None].to(device)
        labels = torch.stack([universeg_label(y) for y in masks[:m]])[None].to(device)
        with torch.inference_mode():
            timings[f"UniverSeg calls, m = {m}"] = best_of(
                repeats, synchronised(device, lambda: net(query, support, labels))
            )
    return timings


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--profile", default=str(ROOT / "profiles" / "paper.yaml"))
    args = parser.parse_args()
    device = resolve_device(args.device)
    params = yaml.safe_load(Path(args.profile).read_text())
    counts = paper_counts(params)
    timings = seconds_per_operation(device, params["sample_support"]["sizes"], args.repeats)
    table = pd.DataFrame(
        {"operation": list(counts), "count": list(counts.values()), "seconds each": [timings[k] for k in counts]}
    )
    table["hours"] = table["count"] * table["seconds each"] / 3600
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"The paper profile's work on {device} ({name}); best of {args.repeats}, random weights\n")
    print("| operation | count | seconds each | hours |\n|---|---|---|---|")
    for row in table.itertuples(index=False):
        print(f"| {row[0]} | {row[1]:,} | {row[2]:.4f} | {row[3]:,.1f} |")
    total = table["hours"].sum()
    print(f"| **predicted total** | | | **{total:,.1f}** ({total / 24:,.1f} days) |")


if __name__ == "__main__":
    main()
