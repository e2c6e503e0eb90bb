"""The project's rule for defaults: a setting replaces the current default only if, over the
development sets at every support size measured, it raises the mean Dice of the full method and
lowers no set at any support size by more than `TOLERANCE`. `iclsam decide-default` applies it to
two `iclsam evaluate` summaries (the current default's and the candidate's)."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

TOLERANCE = 0.02  # the most one set may lose at one support size


@dataclass
class RuleVerdict:
    """table: per set (rows) and support size m (columns), the current default's Dice, the
    candidate's, and the difference; means: the same over the sets per m and over every cell;
    adopt: whether the candidate obeys the rule; reason: why, in words."""

    table: pd.DataFrame
    means: pd.DataFrame
    adopt: bool
    reason: str


def full_method_cells(summary: pd.DataFrame, variant: str = "iclsam", icl: str | None = None) -> pd.Series:
    """One evaluate summary's Dice of `variant` (and ICL model `icl`, when the summary holds several),
    indexed by (task, m)."""
    rows = summary[summary["variant"] == variant]
    if icl is not None:
        rows = rows[rows["icl"] == icl]
    if rows.duplicated(["task", "m"]).any():
        models = sorted(rows["icl"].unique())
        raise ValueError(f"the summary holds several ICL models ({models}) for {variant!r}: name one")
    if rows.empty:
        raise ValueError(f"the summary has no rows of variant {variant!r}" + (f" and ICL model {icl!r}" if icl else ""))
    return rows.set_index(["task", "m"])["dice"].astype(float)


def default_rule(current: pd.Series, candidate: pd.Series, tolerance: float = TOLERANCE) -> RuleVerdict:
    """The rule applied to two sets of (task, m) cells; both must cover the same cells."""
    if set(current.index) != set(candidate.index):
        only = sorted(set(current.index) ^ set(candidate.index))
        raise ValueError(f"the two summaries cover different (task, m) cells, e.g. {only[:3]}")
    both = pd.DataFrame({"current": current, "candidate": candidate.reindex(current.index)})
    both["difference"] = both["candidate"] - both["current"]
    table = both.unstack("m").sort_index()
    per_m = both.groupby(level="m")[["current", "candidate", "difference"]].mean()
    means = pd.concat([per_m, both[["current", "candidate", "difference"]].mean().to_frame("all").T])
    worst = both["difference"].idxmin()
    gain, loss = float(means.loc["all", "difference"]), float(both["difference"].min())
    if gain <= 0:
        adopt, reason = False, f"the mean does not rise ({gain:+.3f})"
    elif loss < -tolerance:
        adopt, reason = False, f"{worst[0]} at m = {worst[1]} falls by {-loss:.3f} (more than {tolerance})"
    else:
        adopt, reason = True, f"the mean rises by {gain:.3f} and no set falls by more than {tolerance}"
    return RuleVerdict(table, means, adopt, reason)


def verdict_markdown(verdict: RuleVerdict, current: str = "current", candidate: str = "candidate") -> str:
    """The per-set table (Dice current -> candidate, difference) and the verdict, as Markdown."""
    ms = sorted(verdict.table.columns.get_level_values("m").unique())
    lines = [f"| set | {' | '.join(f'm = {m}' for m in ms)} |", "|---" * (len(ms) + 1) + "|"]

    def cell(row, m) -> str:
        return f"{row[('current', m)]:.3f} -> {row[('candidate', m)]:.3f} ({row[('difference', m)]:+.3f})"

    for task, row in verdict.table.iterrows():
        lines.append(f"| {task} | " + " | ".join(cell(row, m) for m in ms) + " |")
    means = verdict.means
    lines.append(
        "| **mean** | "
        + " | ".join(
            f"{means.loc[m, 'current']:.3f} -> {means.loc[m, 'candidate']:.3f} ({means.loc[m, 'difference']:+.3f})"
            for m in ms
        )
        + " |"
    )
    word = "adopt" if verdict.adopt else "keep the current default"
    overall = f"{means.loc['all', 'current']:.3f} -> {means.loc['all', 'candidate']:.3f}"
    return (
        f"Full-method Dice, {current} -> {candidate}:\n\n"
        + "\n".join(lines)
        + f"\n\nMean over every cell {overall}. Verdict: **{word}**: {verdict.reason}.\n"
    )
