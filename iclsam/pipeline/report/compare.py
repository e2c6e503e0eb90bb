"""`iclsam check-tables`: a run's tables against a reference, within the tolerance that holds across CPUs."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

# across CPUs (measured between two x86_64 machines on the default profile: Dice up to 2.8e-4, ASSD up
# to 0.0132 px), floating-point sums differ in their last bits and a few masks by a pixel
TOLERANCE = {"dice": 1e-3, "assd": 0.05}


def compare_tables(tables: str | Path, reference: str | Path, tolerance: dict[str, float] = TOLERANCE) -> list[str]:
    """Differences between two folders of our CSV tables beyond `tolerance` (ASSD tables: "assd",
    the others: "dice"), in words; empty when they agree. Text cells must be equal, and every table on
    either side must have its match. A missing or table-less folder is an error: comparing against
    nothing proves nothing."""
    tables, reference = Path(tables), Path(reference)
    for what, folder in (("tables", tables), ("reference", reference)):
        if not folder.is_dir():
            raise ValueError(f"{what} folder {folder} not found")
        if not any(folder.glob("*.csv")):
            raise ValueError(f"{what} folder {folder} holds no CSV table; nothing to compare")
    ours_only = sorted({p.name for p in tables.glob("*.csv")} - {p.name for p in reference.glob("*.csv")})
    problems = [f"{tables / name}: not in the reference {reference}" for name in ours_only]
    for expected_path in sorted(reference.glob("*.csv")):
        path = tables / expected_path.name
        if not path.is_file():
            problems.append(f"{path}: missing")
            continue
        problems += _compare_table(path, expected_path, tolerance["assd" if "assd" in path.name else "dice"])
    return problems


def read_table(path: Path) -> pd.DataFrame:
    """A CSV table, or an error naming the file."""
    try:
        return pd.read_csv(path)
    except (ValueError, OSError, UnicodeDecodeError) as error:  # pandas' parser errors are ValueErrors
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ValueError(f"{path}: not a readable CSV table ({first})") from None


def _compare_table(path: Path, expected_path: Path, limit: float) -> list[str]:
    ours, expected = read_table(path), read_table(expected_path)
    if list(ours.columns) != list(expected.columns) or len(ours) != len(expected):
        return [
            f"{path}: {len(ours)} rows {list(ours.columns)}, reference {len(expected)} rows {list(expected.columns)}"
        ]
    problems = []
    for column in ours.columns:
        a, b = ours[column], expected[column]
        if a.dtype.kind in "fi" and b.dtype.kind in "fi":
            gap = (a - b).abs().where(~(a.isna() & b.isna()), 0.0)
            if gap.isna().any() or gap.max() > limit:
                problems.append(f"{path}: column {column} differs by up to {gap.max():.3g} (tolerance {limit:g})")
        elif not a.astype(str).equals(b.astype(str)):
            problems.append(f"{path}: column {column} differs in text")
    return problems
