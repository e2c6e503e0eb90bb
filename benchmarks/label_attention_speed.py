"""What the label-attention ICL model adds to a query's time, against the full method with the
training-free features model, in one run on this machine.

    python benchmarks/label_attention_speed.py [--repeats 3] [--out benchmarks/label_attention_speed.md]

Per query, SAM features cached (a warm encoder cache; SYNTHETIC brain FLAIR, m = 8, 8 queries, one
support set prepared once, as `predict_many` runs them): the full method ("iclsam" with its ICL mask)
with `features`, and with `label-attention` (a network with random weights: timing only). The issue's
bound: the extra time per query at most 20 % of the full method's."""

from __future__ import annotations

import argparse
import platform
import tempfile
from pathlib import Path

import torch
from timing import best_of

from iclsam.common.atomic import write_text_atomic
from iclsam.data.synthetic import synthetic_cases
from iclsam.method.icl.label_attention import LabelAttention
from iclsam.method.model import ICLSAM
from iclsam.method.sam import SamPredictor


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/label_attention_speed.md"))
    args = parser.parse_args()
    cases = [c[2]["brain_flair"] for c in synthetic_cases("brain", 0, 8, 8)]
    images, masks = [a for a, _ in cases[:8]], [b for _, b in cases[:8]]
    query_images = [a for a, _ in cases[8:]]
    sam = SamPredictor("lite", device="cpu")
    sam.encode_many(images + query_images)  # warm cache: the encoder is not what is timed
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as folder:
        weights = Path(folder) / "net.pt"
        torch.save(LabelAttention().state_dict(), weights)
        models = {
            "features": ICLSAM(sam=sam, icl="features"),
            "label-attention": ICLSAM(sam=sam, icl="label-attention", icl_checkpoint=weights),
        }
        seconds = {}
        for name, model in models.items():
            variants = {model.icl_model.map_variant, "iclsam"}

            def run(model=model, variants=variants):
                model.clear_support_sets()
                model.predict_many(images, masks, query_images, None, variants)

            seconds[name] = best_of(args.repeats, run) / len(query_images)
    extra = seconds["label-attention"] - seconds["features"]
    lines = [
        "# Label attention: extra time per query (`benchmarks/label_attention_speed.py`)",
        "",
        f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads; SYNTHETIC brain "
        f"FLAIR, m = 8, {len(query_images)} queries, SAM features cached, best of {args.repeats}.",
        "",
        "| ICL model | seconds per query (full method) |",
        "|---|---|",
        *(f"| {name} | {value:.3f} |" for name, value in seconds.items()),
        "",
        f"Extra per query: {extra:.3f} s = {100 * extra / seconds['features']:.0f} % of the full method's time "
        "with features (the bound: 20 %).",
    ]
    text = "\n".join(lines) + "\n"
    write_text_atomic(args.out, text)
    print(text, end="")


if __name__ == "__main__":
    main()
