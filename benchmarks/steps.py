"""Seconds per step of ICL-SAM on this machine (CPU): encode, confidence-map fit at m = 1/8/64,
decode per box, UniverSeg at m = 1/8/64. Images: the bundled synthetic benchmark (brain_flair);
UniverSeg: the official architecture with random weights (timing does not depend on the values).

    python benchmarks/steps.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from timing import best_of

from iclsam.data.synthetic import synthetic_cases
from iclsam.method.confidence import fit_confidence_classifier, support_tokens
from iclsam.method.sam import SamPredictor
from iclsam.method.universeg import UniverSeg, init_universeg_weights, universeg_image, universeg_label


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--sam", default="lite")
    args = parser.parse_args()
    torch.manual_seed(0)
    cases = [c[2]["brain_flair"] for c in synthetic_cases("brain", 0, 64, 1)]
    images, masks = [x for x, _ in cases], [y for _, y in cases]
    sam = SamPredictor(args.sam)
    print(f"threads {torch.get_num_threads()}, SAM backbone {sam.backbone.name}, best of {args.repeats}")

    start = time.perf_counter()
    embeddings = [sam.encode(x) for x in images]
    print(f"encode               {(time.perf_counter() - start) / len(images):7.3f} s per image ({len(images)} images)")
    boxes = np.array([[30, 40, 100, 120]])
    print(f"decode, 1 box        {best_of(args.repeats, lambda: sam.decode(embeddings[0], boxes)):7.3f} s")
    eight = np.repeat(boxes, 8, axis=0)
    print(
        f"decode, 8 boxes      {best_of(args.repeats, lambda: sam.decode(embeddings[0], eight)) / 8:7.3f} s per box (one batch)"
    )
    for m in (1, 8, 64):
        x, y = support_tokens(embeddings[:m], masks[:m], sam.input_size)
        seconds = best_of(args.repeats, lambda: fit_confidence_classifier(x, y))
        print(f"LR fit, m = {m:<3}      {seconds:7.3f} s ({len(y)} tokens, {min(len(y) * 4 // 5, 30000)} fitted)")

    net = init_universeg_weights(UniverSeg()).eval()
    query = universeg_image(images[-1], "query")[None]
    for m in (1, 8, 64):
        support = torch.stack([universeg_image(x, "support") for x in images[:m]])[None]
        labels = torch.stack([universeg_label(y) for y in masks[:m]])[None]
        with torch.inference_mode():
            seconds = best_of(args.repeats, lambda: net(query, support, labels))
        print(f"UniverSeg, m = {m:<3}   {seconds:7.3f} s")


if __name__ == "__main__":
    main()
