"""Measures our shipped UniverSeg weights and writes their model card.

    python scripts/universeg_model_card.py [--stem universeg_synth_w32_s64] [--draws 2] [--queries 8]
                                           [--grid results/grid]

Writes iclsam/weights/<stem>.md (the card), docs/<stem>_loss.png and docs/<stem>_dice_vs_m.csv.
Evaluates UniverSeg alone and the full ICL-SAM (LiteMedSAM) on the held-out SYNTHETIC benchmark and,
with --real-data (or $ICLSAM_REAL_DATA), on your own prepared folder of real images; the training-free `features` backend is measured beside
it on the same support sets and queries. With --grid, the synthetic rows are read from the
pipeline's grid results (`dvc repro`, default profile) instead of being computed again.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
from tqdm import tqdm  # noqa: E402

from iclsam import ICLSAM  # noqa: E402
from iclsam.common.checkpoints import file_sha256  # noqa: E402
from iclsam.data.prepare import prepare_synthetic  # noqa: E402
from iclsam.method.universeg import WEIGHTS_DIR  # noqa: E402
from iclsam.pipeline.evaluate_folder import evaluate_folder  # noqa: E402
from iclsam.pipeline.report import to_markdown  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SIZES = (1, 2, 4, 8)


def finalise(stem: str) -> dict:
    """Adds the weights' sha256 to their JSON record."""
    card_path = WEIGHTS_DIR / f"{stem}.json"
    card = json.loads(card_path.read_text())
    card["sha256"] = file_sha256(WEIGHTS_DIR / f"{stem}.pt")
    card_path.write_text(json.dumps(card, indent=1) + "\n")
    return card


def loss_figure(card: dict, path: Path) -> None:
    curve = pd.DataFrame(card["loss_curve"])
    fig, ax = plt.subplots(figsize=(6, 3.2))
    ax.plot(curve["step"], curve["loss"], lw=0.8)
    ax.plot(curve["step"], curve["loss"].rolling(20, min_periods=1).mean(), lw=1.5)
    ax.set_xlabel("step (4 episodes each)")
    ax.set_ylabel("soft Dice + BCE (training tasks)")
    ax.set_title(
        f"training loss, {card['steps']} steps in {card['seconds'] / 60:.0f} min on {card['threads']} CPU threads",
        fontsize=9,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=100, metadata={"Software": None})
    plt.close(fig)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--stem", default="universeg_synth_w32_s64")
    parser.add_argument("--draws", type=int, default=2)
    parser.add_argument("--queries", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--grid", help="the pipeline's results/grid: synthetic rows from there")
    parser.add_argument(
        "--real-data",
        default=os.environ.get("ICLSAM_REAL_DATA"),
        help="your own prepared folder of real images (default: $ICLSAM_REAL_DATA)",
    )
    args = parser.parse_args()
    card = finalise(args.stem)
    docs = ROOT / "docs"
    docs.mkdir(exist_ok=True)
    loss_figure(card, docs / f"{args.stem}_loss.png")

    start = time.perf_counter()
    ours = ICLSAM(icl="universeg")
    features = ICLSAM(icl="features")
    features.sam = ours.sam  # one encoder cache for both
    models = {"universeg (ours)": ours, "features": features}
    frames = []
    if args.grid:
        grid = pd.concat([pd.read_csv(p, dtype={"query": str}) for p in sorted(Path(args.grid).glob("*.csv"))])
        grid = grid[grid["sam"] == "lite"].drop(columns=["sam", "assd"])
        frames.append(
            grid.assign(
                data="SYNTHETIC (pipeline grid)",
                icl=grid["icl"].map({"universeg": "universeg (ours)", "features": "features"}),
            )
        )
    else:
        with tempfile.TemporaryDirectory() as tmp:
            prepare_synthetic(tmp, seed=args.seed)
            frames.append(
                evaluate_folder(models, tmp, SIZES, args.draws, args.queries, seed=args.seed, progress=tqdm).assign(
                    data="SYNTHETIC"
                )
            )
    if args.real_data:
        frames.append(
            evaluate_folder(
                models, args.real_data, SIZES, args.draws, 2 * args.queries, seed=args.seed, progress=tqdm
            ).assign(data="real")
        )
    scores = pd.concat(frames, ignore_index=True)
    keep = scores["variant"].isin(["universeg", "features", "iclsam", "sam+gt"])
    summary = (
        scores[keep]
        .groupby(["data", "icl", "task", "variant", "m", "draw"])["dice"]
        .mean()
        .groupby(["data", "icl", "task", "variant", "m"])
        .mean()
        .unstack("m")
        .round(3)
        .reset_index()
    )
    summary.to_csv(docs / f"{args.stem}_dice_vs_m.csv", index=False)
    elapsed = time.perf_counter() - start
    write_card(args, card, summary, elapsed, encoder_passes=ours.sam.encoder_passes)
    print(summary.to_string(index=False))
    print(f"evaluated in {elapsed:.0f} s")
    return 0


def write_card(args, card: dict, summary: pd.DataFrame, seconds: float, encoder_passes: int) -> None:
    config = card["config"]
    lines = [
        f"# Model card: `{args.stem}`",
        "",
        "UniverSeg-architecture weights trained by this project from scratch, so that ICL-SAM works",
        "without the official UniverSeg checkpoint. **Not** the official UniverSeg weights and not the",
        "paper's ICL model: results with them are not paper reproductions.",
        "",
        "| | |",
        "|---|---|",
        f"| file | `iclsam/weights/{args.stem}.pt` (raw state_dict, loads with `iclsam.load_universeg`) |",
        f"| sha256 | `{card['sha256']}` |",
        f"| network | `UniverSeg(encoder_widths={tuple(config['encoder_widths'])})`, input {config['size']} x {config['size']} |",
        "| trained on | procedurally generated tasks (`iclsam/pipeline/training.py`): random ellipses, star polygons, noise blobs, "
        "rings and strokes with random textures, intensities, noise, blur, distractors and support/query intensity "
        "shifts; none of the benchmark's fundus/brain/abdomen families and no real image |",
        f"| recipe | episodic, support size log-uniform in 1..{config['max_support']}, {config['batch']} episodes a step, "
        f"Adam lr {config['lr']} cosine-decayed, soft Dice + BCE, seed {config['seed']} |",
        f"| training | {card['steps']} steps in {card['seconds'] / 60:.1f} min on {card['threads']} CPU threads |",
        f"| rerun | `iclsam train-universeg --out iclsam/weights/{args.stem} --minutes {config['minutes']:g}` then "
        f"`python scripts/universeg_model_card.py --stem {args.stem}` |",
        "| licence | Apache-2.0, as this project |",
        "",
        f"![loss](../../docs/{args.stem}_loss.png)",
        "",
        "## Measured: mean Dice vs support size m",
        "",
        f"Per task: support sets drawn from the meta-support pool ({args.draws} draws per m, seed {args.seed}); "
        + (
            "synthetic rows from the pipeline's grid (default profile: 2 draws, 3 queries per task); "
            if args.grid
            else f"up to {args.queries} query images per synthetic task; "
        )
        + f"{2 * args.queries} query images per real-dev set; mean over queries, then over draws. SAM backbone: LiteMedSAM. `universeg` = the ICL model alone, `iclsam` = the "
        "full method on top of it, `sam+gt` = LiteMedSAM with ground-truth boxes (the SAM upper bound). The "
        "`features` rows are the training-free backend on the same support sets and queries, for comparison.",
        "SYNTHETIC rows are the bundled synthetic benchmark (held out from training); real-dev rows are "
        "real BUSI ultrasound and PH2 dermoscopy images.",
        "",
        to_markdown(summary, digits=3),
        "",
        f"Evaluation: {seconds / 60:.1f} min on this machine, {encoder_passes} LiteMedSAM encoder passes.",
        "",
    ]
    (WEIGHTS_DIR / f"{args.stem}.md").write_text("\n".join(lines))


if __name__ == "__main__":
    sys.exit(main())
