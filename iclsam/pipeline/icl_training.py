"""Episodic training of the label-attention network (`method/icl/label_attention.py`) on a token
corpus (`icl_corpus`): each step draws, for a batch of episodes, a support size m (1 to 8), and per
episode a family, one of its tasks, a query pair and m support pairs from other patients of that
task, each pair in one of its augmented versions. Loss: binary cross-entropy plus soft Dice on the
query's token labels, over the image's tokens. Seeded: the same corpus, settings and machine give the
same weights."""

from __future__ import annotations

import hashlib
import io
import json
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from iclsam.common.atomic import write_atomic, write_text_atomic
from iclsam.common.checkpoints import file_sha256
from iclsam.method.icl.label_attention import LabelAttention
from iclsam.method.icl.label_attention_backend import grid_valid
from iclsam.method.sam import SamPredictor
from iclsam.method.sam.build import checkpoint_path
from iclsam.pipeline.icl_corpus import CorpusTask, TokenCorpus, encode_corpus, read_corpus


@dataclass(frozen=True)
class TrainingSettings:
    steps: int = 1500
    batch: int = 4  # episodes per step
    m_max: int = 8  # support sizes 1..m_max, uniform
    lr: float = 1e-3
    weight_decay: float = 1e-4
    warmup: int = 50
    seed: int = 0
    width: int = 64
    heads: int = 4
    key_dim: int = 16


def draw_episode(corpus: TokenCorpus, task: CorpusTask, m: int, rng: np.random.Generator) -> list[tuple]:
    """The query's item first, then m support items: support pairs from other groups (patients) than
    the query's when the task has enough, each item in a random version."""
    groups = corpus.groups[task.name]
    query = int(rng.integers(len(groups)))
    others = [i for i, g in enumerate(groups) if g != groups[query]]
    if len(others) < m:  # too few other patients: any other pair, then repeats
        others = [i for i in range(len(groups)) if i != query]
    chosen = rng.choice(others, size=m, replace=len(others) < m)
    items = corpus.items[task.name]
    return [items[i][int(rng.integers(len(items[i])))] for i in [query, *chosen.tolist()]]


def episode_batch(corpus: TokenCorpus, tasks: list[CorpusTask], m: int, batch: int, rng: np.random.Generator):
    """Tensors of `batch` episodes of support size m: a family uniformly, then one of its tasks."""
    families = sorted({t.family for t in tasks})
    episodes = []
    for _ in range(batch):
        family = families[int(rng.integers(len(families)))]
        of_family = [t for t in tasks if t.family == family]
        episodes.append(draw_episode(corpus, of_family[int(rng.integers(len(of_family)))], m, rng))
    grid = corpus.tokens.shape[-1]
    rows = torch.tensor([[row for row, _, _ in e] for e in episodes])
    tokens = corpus.tokens[rows.flatten()].float().view(batch, m + 1, *corpus.tokens.shape[1:])
    labels = torch.stack([torch.stack([lab for _, lab, _ in e]) for e in episodes])
    valid = torch.stack([torch.stack([grid_valid(v, grid) for _, _, v in e]) for e in episodes])
    return tokens[:, 0], labels[:, 0], valid[:, 0], tokens[:, 1:], labels[:, 1:], valid[:, 1:]


def episode_loss(logits: torch.Tensor, target: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Mean over episodes of class-balanced BCE (target and background tokens weigh half each, as in
    Eq. 2's fit: a small target is not worth predicting away) plus soft Dice, against token fractions,
    over the image's tokens."""
    bce = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    positive, negative = (target * valid).sum((1, 2), keepdim=True), ((1 - target) * valid).sum((1, 2), keepdim=True)
    weight = valid * (target / positive.clamp_min(1e-6) + (1 - target) / negative.clamp_min(1e-6)) / 2
    bce = (bce * weight).sum((1, 2))
    p = torch.sigmoid(logits) * valid
    dice = 1 - (2 * (p * target).sum((1, 2)) + 1) / (p.sum((1, 2)) + target.sum((1, 2)) + 1)
    return (bce + dice).mean()


def learning_rate(step: int, settings: TrainingSettings) -> float:
    """Linear warm-up, then cosine decay to zero."""
    if step < settings.warmup:
        return settings.lr * (step + 1) / settings.warmup
    progress = (step - settings.warmup) / max(settings.steps - settings.warmup, 1)
    return settings.lr * 0.5 * (1 + math.cos(math.pi * progress))


def train_label_attention(
    corpus: TokenCorpus,
    tasks: list[CorpusTask],
    settings: TrainingSettings = TrainingSettings(),
    progress: Callable[[int, float], None] | None = None,
) -> tuple[LabelAttention, dict]:
    """Trains a `LabelAttention` on episodes of `tasks`; returns it (eval mode) and a log."""
    if not tasks:
        raise ValueError("train_label_attention: no training tasks")
    torch.manual_seed(settings.seed)
    rng = np.random.default_rng(settings.seed)
    net = LabelAttention(width=settings.width, heads=settings.heads, key_dim=settings.key_dim)
    optimiser = torch.optim.AdamW(net.parameters(), lr=settings.lr, weight_decay=settings.weight_decay)
    losses, start = [], time.perf_counter()
    net.train()
    for step in range(settings.steps):
        m = int(rng.integers(1, settings.m_max + 1))
        query, target, query_valid, support, labels, valid = episode_batch(corpus, tasks, m, settings.batch, rng)
        for group in optimiser.param_groups:
            group["lr"] = learning_rate(step, settings)
        loss = episode_loss(net(query, support, labels, valid), target, query_valid)
        optimiser.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        optimiser.step()
        losses.append(float(loss.detach()))
        if progress is not None:
            progress(step + 1, float(np.mean(losses[-50:])))
    window = max(1, min(50, settings.steps // 4))
    log = {
        "settings": asdict(settings),
        "seconds": round(time.perf_counter() - start, 1),
        "episodes": settings.steps * settings.batch,
        "loss_first": round(float(np.mean(losses[:window])), 4),
        "loss_last": round(float(np.mean(losses[-window:])), 4),
        "loss_window": window,
        "tasks": [t.name for t in tasks],
        "families": sorted({t.family for t in tasks}),
    }
    return net.eval(), log


def licence_summary(tasks: list[CorpusTask]) -> dict[str, list[str]]:
    """Licence -> the tasks trained on under it."""
    out: dict[str, list[str]] = {}
    for task in tasks:
        out.setdefault(task.licence, []).append(task.name)
    return dict(sorted(out.items()))


def save_label_attention(
    network: LabelAttention, log: dict, tasks: list[CorpusTask], stem: str | Path, extra: dict
) -> dict:
    """<stem>.pt (the raw state_dict) and <stem>.json (the card: sha256, settings, data, licences,
    time), each written atomically."""
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    torch.save({k: v.detach().clone() for k, v in network.state_dict().items()}, buffer)
    write_atomic(stem.with_suffix(".pt"), lambda p: p.write_bytes(buffer.getvalue()))
    card = {
        "sha256": hashlib.sha256(buffer.getvalue()).hexdigest(),
        "network": network.config,
        **log,
        "pairs": extra.pop("pairs", None),
        "licences": licence_summary(tasks),
        **extra,
    }
    write_text_atomic(stem.with_suffix(".json"), json.dumps(card, indent=1) + "\n")
    return card


def train_icl_files(
    data: str | Path,
    out: str | Path,
    settings: TrainingSettings = TrainingSettings(),
    versions: int = 2,
    exclude: set[str] = frozenset(),
    cache_dir: str | Path | None = ".cache/embeddings",
    progress: Callable[[int, float], None] | None = None,
    encoding: Callable | None = None,
    sam: SamPredictor | None = None,
) -> dict:
    """`iclsam train-icl`: the corpus at `data` (less the `exclude`d families) encoded with
    LiteMedSAM (cached), a label-attention network trained on it, saved as <out>.pt with its card."""
    tasks = read_corpus(data)
    unknown = sorted(set(exclude) - {t.family for t in tasks})
    if unknown:
        raise ValueError(f"{data}: no family {unknown} to exclude (families: {sorted({t.family for t in tasks})})")
    tasks = [t for t in tasks if t.family not in exclude]
    sam = sam or SamPredictor("lite", cache_size=8, cache_dir=cache_dir)
    start = time.perf_counter()
    corpus = encode_corpus(sam, tasks, versions=versions, seed=settings.seed, progress=encoding)
    encoded = time.perf_counter() - start
    network, log = train_label_attention(corpus, tasks, settings, progress)
    extra = {
        "pairs": sum(len(v) for v in corpus.items.values()),
        "versions": versions,
        "images_encoded": int(corpus.tokens.shape[0]),
        "encoding_seconds": round(encoded, 1),
        "sam": f"{sam.kind} (sha256 {file_sha256(checkpoint_path(sam.kind, None))[:12]})",
        "excluded_families": sorted(exclude),
        "threads": torch.get_num_threads(),
    }
    return save_label_attention(network, log, tasks, out, extra)
