"""SAM image embeddings kept in memory (least recently used first out) and, optionally, on disk.

A disk entry `<dir>/<image key>.pt` records what it was computed from: the image's key and size,
the backbone, its checkpoint's sha256, the resizing mode and the version of the pre-processing
code. An entry is used only when all of these match the request and its features have the
expected shape and are finite; any other entry (damaged, truncated, from another image or
another pre-processing) is reported with a warning naming the file and replaced. A cache folder
that cannot be written (a full disk) is reported once and skipped: never fatal."""

from __future__ import annotations

import hashlib
import warnings
from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch

from iclsam.common.atomic import write_atomic
from iclsam.method.sam.embedding import ImageEmbedding

ENTRY_FORMAT = 2


def image_key(image: np.ndarray) -> str:
    """A content key: the same pixels (same dtype and shape) give the same key."""
    x = np.ascontiguousarray(image)
    h = hashlib.sha256(f"{x.dtype.str}{x.shape}".encode())
    h.update(x.tobytes())
    return h.hexdigest()


class EmbeddingCache:
    """Memory (`memory_size` entries) and optional disk store of `ImageEmbedding`s by image key.
    `identity` names what every entry must have been computed with (backbone, checkpoint,
    pre-processing); `features_shape` the shape every entry's features must have."""

    def __init__(
        self,
        identity: dict[str, str],
        features_shape: tuple[int, ...],
        memory_size: int = 256,
        directory: str | Path | None = None,
    ):
        self.identity = dict(identity)
        self.features_shape = tuple(features_shape)
        self.memory_size = memory_size
        self.directory = None if directory is None else Path(directory)
        self._memory: OrderedDict[str, ImageEmbedding] = OrderedDict()
        self.disk_hits = 0
        self.replaced: list[Path] = []
        self.unwritable = False  # set, with one warning, when a disk write fails: the run goes on

    def get(self, key: str, image_size: tuple[int, int], device: torch.device) -> ImageEmbedding | None:
        """The embedding of the image with this key and size, from memory or disk, or None."""
        if key in self._memory:
            self._memory.move_to_end(key)
            return self._memory[key]
        embedding = self._read(key, tuple(image_size), device)
        if embedding is not None:
            self.disk_hits += 1
            self._remember(key, embedding)
        return embedding

    def forget(self) -> None:
        """Empties the memory store (the disk store stays)."""
        self._memory.clear()

    def put(self, key: str, embedding: ImageEmbedding) -> None:
        self._remember(key, embedding)
        if self.directory is not None and not self.unwritable:
            stored = {
                "format": ENTRY_FORMAT,
                "image": key,
                **self.identity,
                "features": embedding.features.detach().cpu(),
                "original": list(embedding.original),
                "resized": list(embedding.resized),
                "valid": list(embedding.valid),
            }
            try:
                write_atomic(self.directory / f"{key}.pt", lambda p: torch.save(stored, p))
            except (OSError, RuntimeError) as error:  # a full disk, a read-only folder; torch's writer: RuntimeError
                self.unwritable = True
                reason = (str(error).strip().splitlines() or [type(error).__name__])[0]
                warnings.warn(
                    f"embedding cache {self.directory} cannot be written ({reason}); embeddings are kept in "
                    "memory only for the rest of this run",
                    RuntimeWarning,
                    stacklevel=2,
                )

    def _remember(self, key: str, embedding: ImageEmbedding) -> None:
        self._memory[key] = embedding
        if len(self._memory) > self.memory_size:
            self._memory.popitem(last=False)

    def _read(self, key: str, image_size: tuple[int, int], device: torch.device) -> ImageEmbedding | None:
        if self.directory is None:
            return None
        path = self.directory / f"{key}.pt"
        if not path.is_file():
            return None
        problem = None
        try:
            stored = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as error:  # truncated, empty or foreign file: torch raises several types
            stored, problem = None, f"unreadable ({type(error).__name__})"
        if problem is None:
            problem = self._mismatch(stored, key, image_size)
        if problem is not None:
            warnings.warn(
                f"embedding cache entry {path} is {problem}; the image is encoded again and the entry replaced",
                RuntimeWarning,
                stacklevel=3,
            )
            self.replaced.append(path)
            return None
        return ImageEmbedding(
            stored["features"].to(device), tuple(stored["original"]), tuple(stored["resized"]), tuple(stored["valid"])
        )

    def _mismatch(self, stored, key: str, image_size: tuple[int, int]) -> str | None:
        """What is wrong with a loaded entry, in words, or None."""
        if not isinstance(stored, dict) or stored.get("format") != ENTRY_FORMAT:
            return "not an entry of this cache format"
        if stored.get("image") != key:
            return "of another image"
        for name, value in self.identity.items():
            if stored.get(name) != value:
                return f"from another {name} ({stored.get(name)!r}, expected {value!r})"
        if tuple(stored.get("original", ())) != image_size:
            return f"of a {tuple(stored.get('original', ()))} image, expected {image_size}"
        features = stored.get("features")
        if not isinstance(features, torch.Tensor) or tuple(features.shape) != self.features_shape:
            shape = tuple(features.shape) if isinstance(features, torch.Tensor) else None
            return f"damaged (features of shape {shape}, expected {self.features_shape})"
        if not torch.isfinite(features).all():
            return "damaged (non-finite features)"
        return None
