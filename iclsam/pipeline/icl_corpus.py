"""The training corpus of the learned ICL model: real 2-D tasks grouped in families (real-wide's
layout: a prepared folder plus `manifest.json` naming each task's family and licence), each image
also in a few augmented versions, and every version's SAM encoder tokens.

Augmentation happens on the image, before encoding (a flip or a quarter turn, a gamma and a contrast
change), because SAM's encoder is not equivariant: flipping tokens is not flipping the image. One
image shared by several tasks of a family gets the same transform in each, from a seed and the
image's content. The tokens come from `SamPredictor.encode_many`, so its disk cache keeps them
between runs (and serves the evaluation of the original images too)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from iclsam.data.folder import open_task
from iclsam.data.splits import case_column
from iclsam.method.icl.label_attention_backend import grid_labels
from iclsam.method.sam import SamPredictor
from iclsam.method.sam.cache import image_key


@dataclass(frozen=True)
class CorpusTask:
    """One binary task of the corpus: its folder, family and licence."""

    name: str
    family: str
    licence: str
    root: Path


def read_corpus(root: str | Path) -> list[CorpusTask]:
    """The tasks listed in `<root>/manifest.json` ("tasks": {name: {"family", "licence", ...}}), by name;
    each must be a prepared task folder."""
    root = Path(root)
    manifest = root / "manifest.json"
    if not manifest.is_file():
        raise FileNotFoundError(f"{manifest} not found: a training corpus lists its tasks and their families there")
    try:
        tasks = json.loads(manifest.read_text())["tasks"]
    except (ValueError, KeyError, TypeError) as error:
        raise ValueError(f"{manifest}: not a corpus manifest with a 'tasks' mapping ({error})") from None
    out = []
    for name in sorted(tasks):
        entry = tasks[name]
        if "family" not in entry:
            raise ValueError(f"{manifest}: task {name!r} has no 'family'")
        if not (root / name / "meta.csv").is_file():
            raise FileNotFoundError(f"{manifest} lists {name!r} but {root / name / 'meta.csv'} is missing")
        out.append(CorpusTask(name, str(entry["family"]), str(entry.get("licence", "unknown")), root / name))
    if not out:
        raise ValueError(f"{manifest} lists no tasks")
    return out


def augment(image: np.ndarray, mask: np.ndarray, seed: int, version: int) -> tuple[np.ndarray, np.ndarray]:
    """Version 0 is the pair itself; version v > 0 a flip or quarter turn, a gamma in [0.7, 1.4] and a
    contrast change, drawn from (seed, the image's content, v) so that every task sharing the image
    gets the same transform. uint8 in, uint8 out."""
    if version == 0:
        return image, mask
    rng = np.random.default_rng([seed, version, int(image_key(image)[:12], 16)])
    turns, flip = int(rng.integers(4)), bool(rng.integers(2))
    gamma, contrast, shift = rng.uniform(0.7, 1.4), rng.uniform(0.8, 1.2), rng.uniform(-0.08, 0.08)

    def geometry(x: np.ndarray) -> np.ndarray:
        x = np.rot90(x, turns, axes=(0, 1))
        return np.ascontiguousarray(x[:, ::-1] if flip else x)

    x = np.asarray(image, dtype=np.float32) / 255.0
    x = np.clip((x**gamma - 0.5) * contrast + 0.5 + shift, 0.0, 1.0)
    return geometry(np.round(x * 255).astype(np.uint8)), geometry(mask)


@dataclass
class TokenCorpus:
    """Tokens of every image version (N x 256 x 64 x 64, float16, padded grid) and, per task, its
    items: `items[task][pair][version]` is the version's token row, its token labels (target
    fraction per token, 64 x 64, zero outside the valid grid) and its valid grid size."""

    tokens: torch.Tensor
    tasks: list[CorpusTask]
    items: dict[str, list[list[tuple[int, torch.Tensor, tuple[int, int]]]]] = field(default_factory=dict)
    groups: dict[str, list[str]] = field(default_factory=dict)  # per task, each pair's patient / case
    versions: int = 1


def encode_corpus(
    sam: SamPredictor,
    tasks: list[CorpusTask],
    versions: int = 2,
    seed: int = 0,
    progress: Callable | None = None,
) -> TokenCorpus:
    """Every pair of `tasks` in `versions` versions (see `augment`) through SAM's encoder (cached)."""
    rows: dict[str, int] = {}
    tokens: list[torch.Tensor] = []
    corpus = TokenCorpus(torch.empty(0), tasks, versions=versions)
    for n, task in enumerate(tasks):
        folder = open_task(task.root)
        pairs = [folder.load(i) for i in folder.ids]
        items: list[list] = [[] for _ in pairs]
        for version in range(versions):
            augmented = [augment(image, mask, seed, version) for image, mask in pairs]
            embeddings = sam.encode_many([image for image, _ in augmented])
            for pair, ((image, mask), embedding) in enumerate(zip(augmented, embeddings)):
                key = image_key(image)
                if key not in rows:
                    rows[key] = len(tokens)
                    tokens.append(embedding.features[0].to(torch.float16).cpu())
                labels = grid_labels(mask, embedding, sam.input_size)
                items[pair].append((rows[key], labels, tuple(embedding.valid)))
        corpus.items[task.name] = items
        corpus.groups[task.name] = [str(g) for g in folder.meta[case_column(folder.meta)]]
        if progress is not None:
            progress(n + 1, len(tasks), task.name)
    corpus.tokens = torch.stack(tokens) if tokens else torch.empty(0, 256, 64, 64, dtype=torch.float16)
    return corpus
