"""The output folder of `iclsam segment`: a run writes everything into a hidden staging folder inside
`--out`, and only when every file is whole does it replace the previous run's files, write its
record (`run.json`) and move its files into place. An interrupted or failed run (Ctrl-C, a full
disk, a bad query) leaves nothing new.

Only our own record may authorise deleting anything: a `run.json` that carries `RUN_FORMAT` and
lists each file it wrote with its sha256. A file in `--out` that no such record lists, or whose
content changed since, is the user's: the run refuses the folder and names that file, rather than
overwrite it or write beside it."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from iclsam.common.atomic import write_atomic, write_text_atomic

RECORD = "run.json"
RUN_FORMAT = "iclsam segment run, v2"
STAGING_PREFIX = ".iclsam-staging."


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_our_record(out: Path) -> dict[str, str]:
    """The files (name -> sha256) that our previous run in `out` recorded; empty without a record.
    A `run.json` that is not ours is an error naming it."""
    record = out / RECORD
    if not record.exists():
        return {}
    try:
        stored = json.loads(record.read_text())
    except (OSError, ValueError, UnicodeDecodeError):
        stored = None
    outputs = stored.get("outputs") if isinstance(stored, dict) and stored.get("format") == RUN_FORMAT else None
    if not isinstance(outputs, dict) or not all(_plain_name(k) and isinstance(v, str) for k, v in outputs.items()):
        raise ValueError(
            f"{record} is not a run record written by iclsam segment; iclsam neither deletes nor "
            "replaces files it did not write: choose an empty or new --out"
        )
    return outputs


def _plain_name(name) -> bool:
    return isinstance(name, str) and name not in ("", ".", "..", RECORD) and "/" not in name and "\\" not in name


def previous_outputs(out: Path) -> dict[str, str]:
    """What a new run into `out` may replace: the files our record there lists, each still with its
    recorded content. Anything else in `out` (a file of the user's, a changed mask) is an error naming
    it; our own staging folders left by a killed run are allowed (they are removed)."""
    if not out.exists():
        return {}
    if not out.is_dir():
        raise ValueError(f"the output folder {out} is a file")
    recorded = read_our_record(out)
    for path in sorted(out.iterdir()):
        if path.name == RECORD or (path.name.startswith(STAGING_PREFIX) and path.is_dir()):
            continue
        if path.name not in recorded:
            raise ValueError(
                f"the output folder {out} holds {path.name}, which no iclsam run recorded there; iclsam "
                "does not write beside or over files it did not write: choose an empty or new --out"
            )
        if not path.is_file() or sha256_of(path) != recorded[path.name]:
            raise ValueError(
                f"{path} changed since iclsam wrote it (its content differs from {out / RECORD}); "
                "it is left alone: move it away or choose another --out"
            )
    return {name: digest for name, digest in recorded.items() if (out / name).is_file()}


class StagedRun:
    """Collects a run's files in a staging folder inside `out`; `commit(record)` puts them in place,
    `discard()` (or leaving the `with` block by an error) removes them. Checks `out` on creation."""

    def __init__(self, out: str | Path):
        self.out = Path(out)
        self.previous = previous_outputs(self.out)
        self.created = not self.out.exists()
        self.out.mkdir(parents=True, exist_ok=True)
        for stale in self.out.glob(f"{STAGING_PREFIX}*"):
            shutil.rmtree(stale, ignore_errors=True)
        self.stage = Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=self.out))
        self.written: dict[str, str] = {}

    def write(self, name: str, write: Callable[[Path], object]) -> None:
        if not _plain_name(name) or name in self.written:
            raise ValueError(f"{self.out / name}: not a file name this run may write (or written twice)")
        path = write_atomic(self.stage / name, write, shown_as=self.out / name)
        self.written[name] = sha256_of(path)

    def commit(self, record: dict) -> Path:
        """Removes the previous run's files, writes the record (listing this run's files with their
        sha256), then moves this run's files into place."""
        for name, digest in self.previous.items():
            path = self.out / name
            if path.is_file() and sha256_of(path) == digest:
                path.unlink()
        record = {"format": RUN_FORMAT, **record, "outputs": dict(self.written)}
        write_text_atomic(self.out / RECORD, json.dumps(record, indent=1) + "\n")
        for name in self.written:
            os.replace(self.stage / name, self.out / name)
        self.stage.rmdir()
        return self.out / RECORD

    def discard(self) -> None:
        shutil.rmtree(self.stage, ignore_errors=True)
        if self.created and self.out.is_dir() and not any(self.out.iterdir()):
            self.out.rmdir()

    def __enter__(self) -> StagedRun:
        return self

    def __exit__(self, kind, error, trace) -> None:
        if self.stage.exists():  # not committed: an error, Ctrl-C, or no commit
            self.discard()
