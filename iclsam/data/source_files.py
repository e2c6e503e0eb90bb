"""What every official download's reader shares: finding files by pattern (case-insensitively, in
any sub-folder), capping an image's size, and the `Case` / `Source` records."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image


def find_one(root: Path, pattern: str, what: str) -> Path:
    """The single file under `root` matching `pattern` (case-insensitive glob), or a clear error."""
    regex = re.compile(_glob_to_regex(pattern), re.IGNORECASE)
    hits = sorted(
        p for p in root.rglob("*") if regex.fullmatch(p.relative_to(root).as_posix()) and "__MACOSX" not in p.parts
    )
    if not hits:
        raise FileNotFoundError(f"{what} not found: looked for {pattern} under {root}")
    return hits[0]


def find_all(root: Path, pattern: str) -> list[Path]:
    regex = re.compile(_glob_to_regex(pattern), re.IGNORECASE)
    return sorted(
        p
        for p in root.rglob("*")
        if p.is_file()
        and regex.fullmatch(p.relative_to(root).as_posix())
        and "__MACOSX" not in p.parts
        and "illustration" not in p.as_posix().lower()
    )


def _glob_to_regex(pattern: str) -> str:
    out = ""
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return out


def cap_size(image: np.ndarray, masks: list[np.ndarray], max_side: int | None):
    """Resizes so that the longest side is at most `max_side` (image bilinear, masks nearest)."""
    h, w = image.shape[:2]
    if not max_side or max(h, w) <= max_side:
        return image, masks
    scale = max_side / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    small = np.asarray(Image.fromarray(image).resize(size, Image.BILINEAR))
    return small, [np.asarray(Image.fromarray(m.astype(np.uint8)).resize(size, Image.NEAREST)) > 0 for m in masks]


@dataclass
class Case:
    case: str
    files: dict[str, Path]
    official_split: str | None = None
    extra: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Source:
    """One data set: its tasks, how to list its cases, how to read one case, and the paper's
    meta-support / query sizes (Table 3) for a seeded split by case when there is no official one."""

    name: str
    tasks: tuple[str, ...]
    list_cases: Callable[[Path], list[Case]]
    read_case: Callable[[Case, dict], Iterator[tuple[str, str, np.ndarray, np.ndarray, str]]]
    table3: tuple[int, int]
    layout: str
