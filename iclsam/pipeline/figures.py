"""The paper's figures from our results: Fig. 3 (Dice vs m, mean +- std over draws), Figs. 4/5 (the
refinement stages on example queries), Fig. 6 (sensitivity to a, b, tau, beta); and, not in the paper,
Dice against annotation time for weak context. PNGs are written atomically and without metadata,
so the same results give the same bytes."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from iclsam.common.atomic import write_atomic  # noqa: E402
from iclsam.pipeline.report import ICL_NAME, PAPER_TASK, Provenance, paper_long, paper_table, per_draw_means, task_rank  # noqa: E402

# Fig. 3: one colour per ICL model, one line style (and marker) per variant; the paper's curves dotted
ICL_COLOUR = {"universeg": "#1f77b4", "features": "#d62728", "label-attention": "#2ca02c"}
PAPER_COLOUR = "black"
VARIANT_LINE = {
    "alone": ("ICL model alone", "--", "o"),
    "iclsam": ("ICL-SAM (full method)", "-", "s"),
    "sam+gt": ("SAM + GT boxes", "-.", None),
}
PAPER_LINES = (("UniverSeg", "alone"), ("MedSAM+UniverSeg", "iclsam"))  # the paper's rows, as our variants


def save_figure(fig, path: str | Path, dpi: int = 110) -> Path:
    try:
        return write_atomic(path, lambda p: fig.savefig(p, dpi=dpi, metadata={"Software": None}))
    finally:
        plt.close(fig)


def _save_with_footer(fig, provenance: Provenance, path: str | Path, bottom: float = 0.04) -> Path:
    """Lays the figure out above a strip of height `bottom`, states its provenance there, saves it."""
    fig.tight_layout(rect=(0, bottom, 1, 1))
    fig.text(0.01, 0.005, provenance.line(), fontsize=6.5, va="bottom", wrap=True)
    return save_figure(fig, path)


def _task_panels(count: int):
    """A grid of `count` panels, at most 4 per row (the spare ones blank): fig, axes."""
    cols = min(4, count)
    rows = int(np.ceil(count / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(3.3 * cols, 2.8 * rows + 0.5), squeeze=False)
    for ax in list(axes.flat)[count:]:
        ax.axis("off")
    return fig, axes


def _dice_panel(ax, title: str, xlabel: str, ylabel: str, log_base: int) -> None:
    """A task's panel: Dice (0-1) against a log-scale x axis."""
    ax.set_xscale("log", base=log_base)
    ax.set_title(title, fontsize=9)
    ax.set_xlabel(xlabel, fontsize=8)
    ax.set_ylabel(ylabel, fontsize=8)
    ax.set_ylim(0, 1)
    ax.tick_params(labelsize=7)


def dice_vs_m_figure(
    scores: pd.DataFrame, provenance: Provenance, path: str | Path, icl_first: str | None = None
) -> Path:
    """Fig. 3: per task, Dice vs support size (mean over draws of the per-query mean; band = std
    over draws): for each ICL model (one colour) the model alone (dashed) and the full method
    (solid); SAM with ground-truth boxes once (grey, dash-dot); the paper's UniverSeg and
    MedSAM+UniverSeg dotted in black. One legend names each colour and each line style once."""
    from matplotlib.lines import Line2D

    draws = per_draw_means(scores)
    icls = sorted(draws["icl"].unique(), key=lambda i: (i != icl_first, i))
    draws = draws.assign(kind=np.where(draws["variant"] == draws["icl"], "alone", draws["variant"]))
    draws = draws[draws["kind"].isin(list(VARIANT_LINE))]
    tasks = sorted(draws["task"].unique(), key=task_rank)
    sizes = sorted(draws["m"].unique())
    paper = paper_long(paper_table("dice_per_task").drop(columns=["table"]), ["task", "model"])
    fig, axes = _task_panels(len(tasks) + 1)  # the last panel holds the legend
    for ax, task in zip(axes.flat, tasks):
        part = draws[draws["task"] == task]
        for icl in icls:
            for kind in ("alone", "iclsam"):
                group = part[(part["icl"] == icl) & (part["kind"] == kind)]
                if len(group):
                    _curve(ax, group, ICL_COLOUR.get(icl, "#2ca02c"), *VARIANT_LINE[kind][1:])
        gt = part[(part["kind"] == "sam+gt") & (part["icl"] == icls[0])]
        if len(gt):
            _curve(ax, gt, "#7f7f7f", *VARIANT_LINE["sam+gt"][1:])
        for model, kind in PAPER_LINES:  # over our range of m
            ref = paper[(paper["task"] == PAPER_TASK.get(task)) & (paper["model"] == model) & (paper["m"] <= sizes[-1])]
            if len(ref):
                ax.plot(
                    ref["m"],
                    ref["dice"],
                    ":",
                    color=PAPER_COLOUR,
                    marker=VARIANT_LINE[kind][2],
                    ms=2.5,
                    mfc="none",
                    lw=1,
                )
        _dice_panel(ax, task, "support size m", "Dice", log_base=2)
        ax.set_xticks(sizes, [str(m) for m in sizes])
    legend = axes.flat[len(tasks)]
    legend.axis("off")
    handles = [
        Line2D([], [], color=ICL_COLOUR.get(icl, "#2ca02c"), lw=2, label=f"ours, ICL model: {ICL_NAME.get(icl, icl)}")
        for icl in icls
    ]
    handles.append(Line2D([], [], color=PAPER_COLOUR, ls=":", lw=1, label="the paper (UniverSeg, MedSAM)"))
    handles += [
        Line2D(
            [], [], color="#555555", ls=style, marker=marker, ms=3, mfc="none" if marker else None, lw=1.2, label=label
        )
        for label, style, marker in VARIANT_LINE.values()
    ]
    legend.legend(handles=handles, loc="center", fontsize=7, frameon=False)
    fig.suptitle("Dice vs support size (mean ± std over support draws)", fontsize=10)
    return _save_with_footer(fig, provenance, path)


def _curve(ax, group: pd.DataFrame, colour: str, style: str, marker: str | None) -> None:
    """Mean over draws against m, with a band of one std over draws."""
    stats = group.groupby("m")["dice"].agg(["mean", "std"]).fillna(0.0)
    ax.plot(stats.index, stats["mean"], style, color=colour, marker=marker, ms=3, lw=1.2)
    ax.fill_between(
        stats.index, stats["mean"] - stats["std"], stats["mean"] + stats["std"], color=colour, alpha=0.12, lw=0
    )


REFINEMENT_STEPS = (
    ("icl", "ICL model"),
    ("confidence", "confidence map + boxes"),
    ("sam", "SAM"),
    ("sam+conf", "SAM + map (Eq. 3)"),
    ("iclsam", "fused (ICL-SAM)"),
    ("truth", "ground truth"),
)
# the example notebook: the ICL model without and with the map, the truth dotted on every panel
EXAMPLE_STEPS = (
    ("icl_alone", "ICL model"),
    ("icl", "ICL + map (Eq. 4)"),
    ("confidence", "confidence map + boxes"),
    ("sam", "SAM, boxes"),
    ("sam+conf", "SAM + map (Eq. 3)"),
    ("iclsam", "fused (Eq. 1)"),
)


def refinement_figure(
    examples: list[dict],
    provenance: Provenance | None,
    path: str | Path | None = None,
    steps=REFINEMENT_STEPS,
    truth_on_panels: bool = False,
):
    """Figs. 4/5: for each example query (dict with task, image, truth, prediction), the stages of
    the method (`steps`; default: ICL mask, confidence map with box prompts, SAM, SAM with the map,
    fused, truth). Written to `path`, or returned (for a notebook) when there is none."""
    fig, axes = plt.subplots(
        len(examples), len(steps), figsize=(2.2 * len(steps), 2.3 * len(examples) + 0.4), squeeze=False
    )
    for row, example in zip(axes, examples):
        prediction, image, truth = example["prediction"], example["image"], example["truth"]
        icl_variant = next(v for v in ("universeg+conf", "features", "label-attention") if v in prediction.masks)
        names = {"icl": icl_variant, "icl_alone": "universeg" if "universeg" in prediction.masks else icl_variant}
        for ax, (key, title) in zip(row, steps):
            ax.imshow(image, cmap="gray")
            if key == "confidence":
                ax.imshow(prediction.confidence, cmap="magma", alpha=0.6, vmin=0, vmax=1)
                for x0, y0, x1, y1 in prediction.boxes:
                    ax.add_patch(plt.Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, color="cyan", lw=1))
            else:
                if truth_on_panels:
                    ax.contour(truth, [0.5], colors="white", linewidths=0.6, linestyles="dotted")
                mask = truth if key == "truth" else prediction.masks[names.get(key, key)]
                ax.contour(mask, [0.5], colors="#39ff14", linewidths=0.9)
                if key != "truth":
                    title = f"{title}\nDice {prediction.dice[names.get(key, key)]:.3f}"
            ax.set_title(title if key != steps[0][0] else f"{example['task']}:\n{title}", fontsize=7)
            ax.axis("off")
    if path is None:
        fig.tight_layout()
        return fig
    return _save_with_footer(fig, provenance, path)


ANNOTATION_STYLE = {
    "mask": ("masks", "#2ca02c", "o"),
    "box": ("boxes", "#ff7f0e", "s"),
    "point": ("clicks", "#9467bd", "^"),
}


def weak_context_figure(table: pd.DataFrame, provenance: Provenance, path: str | Path) -> Path:
    """Weak context: the full method's Dice against the support set's annotation time (log scale),
    one line per kind of annotation through its support sizes m (labelled), one panel per task of
    `report.weak_context_table` (its `mean` last)."""
    tasks = list(dict.fromkeys(table["task"]))
    fig, axes = _task_panels(len(tasks))
    for ax, task in zip(axes.flat, tasks):
        part = table[table["task"] == task]
        for kind, group in part.groupby("annotation", sort=False):
            label, colour, marker = ANNOTATION_STYLE.get(kind, (kind, "k", "o"))
            group = group.sort_values("m")
            ax.plot(group["seconds"], group["ours"], "-", color=colour, marker=marker, ms=4, lw=1.2, label=label)
            for seconds, dice, m in zip(group["seconds"], group["ours"], group["m"]):
                ax.annotate(
                    f"{m}", (seconds, dice), textcoords="offset points", xytext=(3, 3), fontsize=6, color=colour
                )
        _dice_panel(ax, task, "annotation time per support set (s)", "Dice (ICL-SAM)", log_base=10)
    axes.flat[0].legend(
        fontsize=6, loc="lower right", title="support annotated with (m by each point)", title_fontsize=6
    )
    fig.suptitle(
        "Weak context: Dice against annotation time (WS-ICL's estimates: click 5 s, box 10 s, mask 80 s)", fontsize=10
    )
    return _save_with_footer(fig, provenance, path)


def sensitivity_figure(sensitivity: pd.DataFrame, provenance: Provenance, path: str | Path) -> Path:
    """Fig. 6: mean Dice of the full method against each constant (others at their defaults)."""
    constants = list(dict.fromkeys(sensitivity["constant"]))
    fig, axes = plt.subplots(1, len(constants), figsize=(3 * len(constants), 2.8), squeeze=False)
    for ax, constant in zip(axes[0], constants):
        part = sensitivity[sensitivity["constant"] == constant]
        per_draw = part.groupby(["task", "m", "value", "draw"])["dice"].mean()
        for (task, m), group in per_draw.groupby(["task", "m"]):
            stats = group.groupby("value").agg(["mean", "std"]).fillna(0.0)
            ax.plot(stats.index, stats["mean"], marker="o", ms=3, label=f"{task}, m = {m}")
            ax.fill_between(stats.index, stats["mean"] - stats["std"], stats["mean"] + stats["std"], alpha=0.15, lw=0)
        ax.set_xlabel({"tau": "τ", "beta": "β"}.get(constant, constant))
        ax.set_ylabel("Dice (ICL-SAM)", fontsize=8)
        ax.tick_params(labelsize=7)
    axes[0][0].legend(fontsize=6)
    fig.suptitle("Sensitivity to the constants (Fig. 6)", fontsize=10)
    return _save_with_footer(fig, provenance, path, bottom=0.06)


def support_query_figure(
    columns: list[tuple[str, list[tuple[str, np.ndarray, np.ndarray]]]],
    title: str,
    path: str | Path,
    dpi: int = 110,
    value_range: tuple[int, int] | None = None,
) -> Path:
    """One column per task, one row per example (split label, image, mask), the target outlined."""
    rows = max(len(examples) for _, examples in columns)
    fig, axes = plt.subplots(rows, len(columns), figsize=(2.1 * len(columns), 2.3 * rows), squeeze=False)
    for column, (task, examples) in enumerate(columns):
        for row in range(rows):
            ax = axes[row, column]
            ax.axis("off")
            if row >= len(examples):
                continue
            split, image, mask = examples[row]
            vmin, vmax = value_range if value_range else (None, None)
            ax.imshow(image, cmap="gray", vmin=vmin, vmax=vmax)
            ax.contour(mask, [0.5], colors="#39ff14", linewidths=0.8)
            ax.set_title(f"{task}\n{split}" if row == 0 else split, fontsize=8)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return save_figure(fig, path, dpi)


def examples_figure(tasks, data_label: str, path: str | Path) -> Path:
    """One meta-support and one query example of each prepared task, target outlined."""
    columns = []
    for task in tasks:
        meta, examples = task.meta, []
        for row, split in enumerate(("support", "query")):
            ids = list(meta.loc[meta["split"] == split, "id"]) if "split" in meta else list(meta["id"])
            if ids:
                examples.append((split, *task.load(ids[row if "split" not in meta else 0])))
        columns.append((task.name, examples))
    return support_query_figure(
        columns, f"{data_label}: a meta-support (top) and a query (bottom) example per task", path
    )


def synthetic_examples_figure(path, seed: int = 0):
    """A figure of examples: for each task, a meta-support and a query case with the target outlined
    (written without metadata, so the same seed gives the same bytes)."""
    from iclsam.data.synthetic import FAMILY, TASKS, synthetic_cases

    columns = [
        (task, [(split, *case[task]) for _, split, case in synthetic_cases(FAMILY[task], seed, 1, 1)]) for task in TASKS
    ]
    return support_query_figure(
        columns,
        f"SYNTHETIC benchmark (seed {seed}): meta-support (top) and query (bottom) acquisitions",
        path,
        dpi=90,
        value_range=(0, 255),
    )
