"""Writes the model card of shipped label-attention weights (iclsam/weights/<stem>.md) from their
training record (<stem>.json) and the measured tables (the leave-family-out table and the ten-set
bench's decision, when they exist).

    python scripts/label_attention_card.py [--stem label_attention_realwide]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NON_COMMERCIAL = ("NC", "non-commercial", "no commercial", "research use only")


def licence_lines(licences: dict[str, list[str]]) -> list[str]:
    lines = ["| licence of the training data | tasks |", "|---|---|"]
    for licence, tasks in licences.items():
        mark = " **(non-commercial)**" if any(word in licence for word in NON_COMMERCIAL) else ""
        lines.append(f"| {licence}{mark} | {len(tasks)}: {', '.join(tasks)} |")
    return lines


def card_text(stem: str, card: dict, lofo: str | None, bench: str | None) -> str:
    settings = card["settings"]
    text = [
        f"# Model card: `{stem}`",
        "",
        "The label-attention ICL model (`iclsam/method/icl/label_attention.py`): a small network that reads",
        "LiteMedSAM's encoder tokens of the support images and the query, and the support masks, and gives the",
        "query's target probability on SAM's token grid. Trained by this project on real 2-D tasks of",
        "`shared/data/real-wide` (none of the development sets' families). Not part of the paper.",
        "",
        "| | |",
        "|---|---|",
        f'| file | `iclsam/weights/{stem}.pt` (raw state_dict; `icl="label-attention"` loads it, strict) |',
        f"| sha256 | `{card['sha256']}` |",
        f"| network | `LabelAttention({', '.join(f'{k}={v}' for k, v in card['network'].items())})` |",
        f"| reads | {card['sam']} tokens (the shipped weights do not apply to other backbones) |",
        f"| data | {len(card['tasks'])} tasks of {len(card['families'])} families, {card['pairs']} image/mask pairs, "
        f"{card['versions']} versions of each image (itself and augmented before encoding: flip or quarter "
        f"turn, gamma, contrast), {card['images_encoded']} encoded images |",
        f"| recipe | episodic: a family, then one of its tasks, a query and m = 1..{settings['m_max']} support "
        f"pairs from other patients; {settings['batch']} episodes a step, {settings['steps']} steps "
        f"({card['episodes']} episodes), AdamW lr {settings['lr']} (warm-up {settings['warmup']}, cosine), "
        f"BCE + soft Dice on token labels, seed {settings['seed']} |",
        f"| time | encoding {card['encoding_seconds']:.0f} s (cached after the first run), training "
        f"{card['seconds']:.0f} s on {card['threads']} CPU threads |",
        f"| loss | {card['loss_first']} (first {card['loss_window']} steps) -> {card['loss_last']} (last {card['loss_window']}) |",
        f"| rerun | `iclsam train-icl --data ../shared/data/real-wide --out iclsam/weights/{stem}` then "
        f"`python scripts/label_attention_card.py --stem {stem}` |",
        "",
        "## Licences",
        "",
        "The weights are derived from the training data. Several sources allow non-commercial use only",
        "(marked below); others give no clear licence. Treat these weights as **for non-commercial research**:",
        "using them commercially needs each source's terms checked. iclsam's default ICL model (`features`,",
        "training-free) does not use them, and every command works without them (`--icl features`).",
        "",
        *licence_lines(card["licences"]),
    ]
    if lofo:
        text += ["", "## Leave-family-out on real-wide", "", lofo.strip()]
    if bench:
        text += ["", "## The ten-set development bench", "", bench.strip()]
    return "\n".join(text) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stem", default="label_attention_realwide")
    args = parser.parse_args()
    weights = ROOT / "iclsam" / "weights"
    card = json.loads((weights / f"{args.stem}.json").read_text())
    lofo = ROOT / "benchmarks" / "label_attention" / "lofo.md"
    bench = ROOT / "benchmarks" / "label_attention" / "bench.md"
    text = card_text(
        args.stem,
        card,
        lofo.read_text() if lofo.is_file() else None,
        bench.read_text() if bench.is_file() else None,
    )
    (weights / f"{args.stem}.md").write_text(text)
    print(f"wrote {weights / f'{args.stem}.md'}")


if __name__ == "__main__":
    main()
