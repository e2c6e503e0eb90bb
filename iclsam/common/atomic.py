"""Every output is written atomically: to a hidden file beside its destination, then renamed into
place, so a failed or interrupted write leaves the destination as it was."""

from __future__ import annotations

import contextlib
import os
import secrets
import socket
from collections.abc import Callable
from pathlib import Path


def write_atomic(path: str | Path, write: Callable[[Path], object], shown_as: str | Path | None = None) -> Path:
    """Calls `write(partial)` on a hidden file in `path`'s folder (created if needed), named with
    this machine, this process and a random token (unique among concurrent writers, on a shared
    file system too) and ending in `path`'s suffixes (writers that read the format from the name
    keep working), then renames it to `path`. On failure the partial file is removed and the error
    raised; an OSError names `path` (or `shown_as`, the place the file is meant for)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = f"{socket.gethostname()}.{os.getpid()}.{secrets.token_hex(4)}"
    partial = path.with_name(f".{path.name}.{writer}.partial{''.join(path.suffixes)}")
    try:
        write(partial)
        partial.replace(path)
    except OSError as error:
        discard(partial)
        raise naming(error, shown_as or path, partial) from error
    except BaseException:
        discard(partial)
        raise
    return path


def discard(partial: Path) -> None:
    """Removes a partial file if it is there; a clean-up that fails too (a read-only folder) must not
    hide the error that made it necessary."""
    with contextlib.suppress(OSError):
        partial.unlink(missing_ok=True)


def naming(error: OSError, path: str | Path, partial: Path | None = None) -> OSError:
    """`error` as one that names `path` ("No space left on device" alone does not say where); an
    error that already names another file is returned as it is."""
    if error.filename is not None and Path(error.filename) != partial:
        return error
    message = f"could not write {path}: {error.strerror or error}"
    return OSError(error.errno, message) if error.errno else OSError(message)


def write_text_atomic(path: str | Path, text: str) -> Path:
    return write_atomic(path, lambda p: p.write_text(text))


def write_csv_atomic(frame, path: str | Path) -> Path:
    """A pandas DataFrame as CSV (no index), written beside its destination, then renamed into place."""
    return write_atomic(path, lambda p: frame.to_csv(p, index=False))
