"""`iclsam weights fetch`: the official checkpoints, downloaded from their publishers on demand.

A download goes to a hidden partial file beside its destination, is checked by a strict key-for-key
load into our network, and only then renamed to its name: a cut connection, a wrong file or Ctrl-C
leaves no checkpoint behind. Where a publisher offers no direct file address (MedSAM: a shared
folder), `fetch` says where to get the file and where to put it."""

from __future__ import annotations

import os
import urllib.error
import urllib.request
from dataclasses import dataclass
from http.client import HTTPException
from pathlib import Path


@dataclass(frozen=True)
class Published:
    """A checkpoint as its publisher offers it."""

    what: str
    file: str  # the file name the publisher gives it (and the profiles expect)
    url: str | None  # a direct file address, or None where there is none
    page: str  # where a person finds it


PUBLISHED = {
    "universeg": Published(
        "UniverSeg v1 (the paper's ICL model)",
        "universeg_v1_nf64_ss64_STA.pt",
        "https://github.com/JJGO/UniverSeg/releases/download/weights/universeg_v1_nf64_ss64_STA.pt",
        "https://github.com/JJGO/UniverSeg (release 'weights')",
    ),
    "sam": Published(
        "SAM ViT-B",
        "sam_vit_b_01ec64.pth",
        "https://dl.fbaipublicfiles.com/segment_anything/sam_vit_b_01ec64.pth",
        "https://github.com/facebookresearch/segment-anything#model-checkpoints",
    ),
    "medsam": Published(
        "MedSAM ViT-B",
        "medsam_vit_b.pth",
        None,
        "https://drive.google.com/drive/folders/1ETWmi4AiniJeWOt6HAsYgTjYv_fkgzoN "
        "(the shared folder linked from https://github.com/bowang-lab/MedSAM)",
    ),
}
DEFAULT_DEST = Path("checkpoints")


def verify_checkpoint(kind: str, path: str | Path) -> None:
    """Raises ValueError unless `path` loads key for key into our network of `kind`."""
    if kind == "universeg":
        from iclsam.method.universeg.network import OFFICIAL_WIDTHS
        from iclsam.method.universeg.weights import load_universeg

        load_universeg(path, OFFICIAL_WIDTHS)
    else:
        from iclsam.method.sam.build import build_sam

        build_sam(kind, path)


def download(url: str, partial: Path, progress=None, timeout: float = 60.0, chunk: int = 1 << 20) -> int:
    """Writes the file at `url` to `partial`; raises ConnectionError when the connection fails or
    ends before the announced length. Returns the byte count."""
    written = 0
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            total = response.headers.get("Content-Length")
            total = int(total) if total is not None else None
            bar = (
                progress(
                    total=total,
                    unit="B",
                    unit_scale=True,
                    desc=partial.name.removeprefix(".").removesuffix(".partial"),
                    leave=False,
                )
                if progress
                else None
            )
            try:
                with open(partial, "wb") as handle:
                    while block := response.read(chunk):
                        handle.write(block)
                        written += len(block)
                        if bar is not None:
                            bar.update(len(block))
            finally:
                if bar is not None:
                    bar.close()
    except (urllib.error.URLError, HTTPException, TimeoutError, ConnectionError) as error:
        reason = getattr(error, "reason", None) or error
        raise ConnectionError(
            f"the download from {url} failed after {written} bytes ({type(error).__name__}: {reason})"
        ) from error
    if total is not None and written != total:
        raise ConnectionError(f"the download from {url} ended after {written} of {total} bytes")
    return written


def fetch(
    kind: str, dest: str | Path = DEFAULT_DEST, url: str | None = None, progress=None, timeout: float = 60.0
) -> Path:
    """Downloads the official checkpoint of `kind` (universeg, sam, medsam) into `dest` under its
    published file name, from its publisher (or `url`, e.g. a mirror), and checks it by a strict
    load. Returns its path. An existing checkpoint that loads is kept as it is."""
    if kind not in PUBLISHED:
        raise ValueError(f"unknown checkpoint {kind!r}: one of {sorted(PUBLISHED)}")
    published = PUBLISHED[kind]
    dest = Path(dest)
    target = dest / published.file
    if target.is_file():
        verify_checkpoint(kind, target)
        return target
    url = url or published.url
    if url is None:
        raise ValueError(
            f"{published.what} has no direct download address: get {published.file} from "
            f"{published.page} and put it at {target} (or pass --url)"
        )
    created = not dest.exists()
    dest.mkdir(parents=True, exist_ok=True)
    partial = dest / f".{published.file}.partial"
    try:
        try:
            download(url, partial, progress, timeout)
        except ConnectionError as error:
            raise ConnectionError(f"{published.what}: {error}; nothing written to {target}") from None
        except OSError as error:  # e.g. a full disk: say where, and that nothing was left
            raise OSError(
                error.errno, f"could not write {target}: {error.strerror or error}; nothing written"
            ) from None
        try:
            verify_checkpoint(kind, partial)
        except (ValueError, FileNotFoundError) as error:
            reason = str(error).replace(f"checkpoint {partial} ", "download ")
            raise ValueError(
                f"{published.what} from {url} is not the expected checkpoint, nothing written to {target}: {reason}"
            ) from None
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
        if created and not any(dest.iterdir()):
            dest.rmdir()
    return target
