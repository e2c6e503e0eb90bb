"""Where the models run: "auto" (a CUDA GPU when there is one, else the CPU) or any torch device
string ("cpu", "cuda", "cuda:1", "mps")."""

from __future__ import annotations

import torch


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """The torch device `device` names; "auto": cuda when available, else cpu."""
    if isinstance(device, torch.device):
        return device
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as error:
        raise ValueError(
            f"device must be 'auto' or a torch device such as cpu, cuda, cuda:1, got {device!r}"
        ) from error
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r}: torch finds no CUDA GPU on this machine (use 'auto' or 'cpu')")
    return resolved
