"""Reading model weights from a path the user gives: on the CPU, `weights_only=True`, strict, and
with an error that names the file and what is wrong with it."""

from __future__ import annotations

import functools
import hashlib
import json
import pickle
from pathlib import Path

import torch
from torch import Tensor, nn


def read_state_dict(path: str | Path, what: str) -> dict[str, Tensor]:
    """The raw state_dict stored at `path` (a checkpoint of `what`, e.g. "SAM ViT-B")."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what} checkpoint not found: {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises several types for corrupt or foreign files
        raise ValueError(f"{what} checkpoint {path} could not be read: {unreadable_reason(error)}") from None
    if not isinstance(state, dict) or not all(isinstance(v, Tensor) for v in state.values()):
        raise ValueError(f"{what} checkpoint {path} is not a raw state_dict of tensors")
    return state


def unreadable_reason(error: Exception) -> str:
    """Why torch could not load a file, in one line of our own (torch's text spans many lines and,
    for a file holding code, proposes loading it unsafely: never repeat that)."""
    text = str(error).lower()
    if isinstance(error, pickle.UnpicklingError) and "global" in text:  # a class or function to import and call
        return (
            "it holds Python objects other than tensors and was refused, since loading them could run code; "
            "a checkpoint is a raw state_dict of tensors"
        )
    if isinstance(error, EOFError):
        return "the file ends early (truncated)"
    return f"not a PyTorch checkpoint file (damaged, or another format; {type(error).__name__})"


def check_finite(state: dict[str, Tensor], path: str | Path, what: str) -> None:
    """A checkpoint with NaN or infinite weights gives empty or NaN predictions: refused, naming a key."""
    for key, value in state.items():
        if value.is_floating_point() and not bool(torch.isfinite(value).all()):
            count = int((~torch.isfinite(value)).sum())
            raise ValueError(
                f"{what} checkpoint {path} holds {count} non-finite values (NaN or infinity) in {key}; "
                "the file is damaged or came from a diverged training"
            )


def load_strict(module: nn.Module, state: dict[str, Tensor], path: str | Path, what: str) -> nn.Module:
    """Loads `state` into `module` strict, or says which keys and shapes do not match."""
    expected = module.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = sorted(k for k in set(expected) & set(state) if expected[k].shape != state[k].shape)
    if missing or unexpected or wrong:
        raise ValueError(
            f"{what} checkpoint {path} does not match the network: {len(missing)} missing keys "
            f"{missing[:3]}, {len(unexpected)} unexpected keys {unexpected[:3]}, "
            f"{len(wrong)} keys with other shapes {wrong[:3]}"
        )
    check_finite(state, path, what)
    module.load_state_dict(state, strict=True)
    return module


def shipped_card(directory: str | Path, stem: str, what: str, remedy: str) -> tuple[Path, dict]:
    """Weights shipped with iclsam: `<stem>.pt` and its card `<stem>.json` in `directory`. Returns
    the weights' path and the card once the file's sha256 matches the card's; else an error naming
    the files (`what`: the weights in words; `remedy`: what to do when they are missing)."""
    path, card_path = Path(directory) / f"{stem}.pt", Path(directory) / f"{stem}.json"
    if not path.is_file() or not card_path.is_file():
        raise FileNotFoundError(f"shipped {what} weights not found: {path} and {card_path} ({remedy})")
    card = json.loads(card_path.read_text())
    if file_sha256(path) != card.get("sha256"):
        raise ValueError(f"{path}: sha256 differs from the one in {card_path}; the file is damaged or replaced")
    return path, card


def file_sha256(path: str | Path) -> str:
    """sha256 of a file, memoised per (path, size, modification time): a checkpoint's identity."""
    stat = Path(path).stat()
    return _sha256(str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=16)
def _sha256(path: str, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
