"""What a pipeline stage reads of params.yaml, and whether dvc.yaml says so.

`load_params` gives params.yaml as `RecordedParams`: plain nested dicts that also note the dotted
name of every value read from them ("grid.box_min_area"). At its end each stage calls
`check_declared`, which fails when the stage read a parameter that its `params` in dvc.yaml do not
cover: DVC would then leave the stage's outputs "up to date" after that parameter changed."""

from __future__ import annotations

from pathlib import Path

import yaml


class RecordedParams(dict):
    """A section of params.yaml (the whole file at the top) that records, in `reads` (shared by every
    section of one file), the dotted name of each value read: by `[]`, `get`, `in`, or by iterating
    over the section's values. A section read as a whole and then iterated records its every value."""

    def __init__(self, data: dict, prefix: str = "", reads: set[str] | None = None):
        self.prefix = prefix
        self.reads = set() if reads is None else reads
        super().__init__(
            {k: RecordedParams(v, f"{prefix}{k}.", self.reads) if isinstance(v, dict) else v for k, v in data.items()}
        )

    def _note(self, key) -> None:
        value = dict.get(self, key)
        if not isinstance(value, RecordedParams) or not value:  # a value, or an empty section (`{}`)
            self.reads.add(f"{self.prefix}{key}")

    def _note_all(self) -> None:
        for key, value in dict.items(self):
            if isinstance(value, RecordedParams) and value:
                value._note_all()
            else:
                self._note(key)

    def __getitem__(self, key):
        self._note(key)
        return dict.__getitem__(self, key)

    def get(self, key, default=None):
        self._note(key)
        return dict.get(self, key, default)

    def __contains__(self, key) -> bool:
        self._note(key)
        return dict.__contains__(self, key)

    def items(self):
        self._note_all()
        return dict.items(self)

    def values(self):
        self._note_all()
        return dict.values(self)

    def copy(self) -> dict:
        self._note_all()
        return {k: v.copy() if isinstance(v, RecordedParams) else v for k, v in dict.items(self)}

    def __reduce__(self):  # to another process (a Dask worker) as the plain dict it is
        return dict, (self.copy(),)


def declared_params(dvc_file: str | Path, stage: str) -> list[str]:
    """The parameters `stage` lists in dvc.yaml (a `foreach` stage's by its own name, e.g. "grid")."""
    spec = yaml.safe_load(Path(dvc_file).read_text())["stages"]
    if stage not in spec:
        raise ValueError(f"{dvc_file}: no stage {stage!r}")
    body = spec[stage].get("do", spec[stage])
    names = []
    for entry in body.get("params", []):  # a name, or {file: [names]} for another parameters file
        names += [entry] if isinstance(entry, str) else [n for group in entry.values() for n in group]
    return names


def covered(name: str, declared: list[str]) -> bool:
    """Whether DVC tracks `name` through one of `declared` (a section covers what lies under it)."""
    return any(name == d or name.startswith(d + ".") for d in declared)


def undeclared_reads(params: RecordedParams, declared: list[str]) -> list[str]:
    return sorted(name for name in params.reads if not covered(name, declared))


def check_declared(params: RecordedParams, stage: str, dvc_file: str | Path = "dvc.yaml") -> list[str]:
    """Raises when `stage` read a parameter its dvc.yaml entry does not list; returns what it read.
    Outside a DVC project (no `dvc_file`), returns the reads unchecked."""
    if Path(dvc_file).is_file():
        missing = undeclared_reads(params, declared_params(dvc_file, stage))
        if missing:
            raise ValueError(
                f"stage {stage} read {', '.join(missing)} of params.yaml, which its `params` in {dvc_file} do "
                "not list: DVC would not re-run it when they change. Add them to the stage's params."
            )
    return sorted(params.reads)
