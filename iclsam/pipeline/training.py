"""Training UniverSeg-architecture weights from scratch on procedurally generated segmentation tasks,
so that ICL-SAM works without the official checkpoint.

The tasks are generic on purpose (random shapes, random textures, intensity and contrast shifts, in
the spirit of UniverSeg's synthetic-task augmentation) and unlike the bundled benchmark's fundus /
brain / abdomen families, which stay held out. A *task* fixes a style (shape family, foreground and
background texture and intensity, noise, blur); its images vary the shapes' number, place and size.
Training is episodic: each step draws tasks, a support size, support pairs and a query of each task,
and minimises soft Dice + BCE on the query.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage

from iclsam.common.atomic import write_atomic, write_text_atomic
from iclsam.method.universeg import UniverSeg, init_universeg_weights

SHAPES = ("ellipses", "star_polygons", "noise_blobs", "rings", "strokes")


@dataclass(frozen=True)
class TaskStyle:
    """What all images of one generated task share."""

    shape: str
    count: tuple[int, int]  # objects per image, min..max
    size: float  # typical object radius, fraction of the image
    fg_level: float
    bg_level: float
    fg_texture: float  # amplitude of the foreground texture
    bg_texture: float
    texture_scale: float  # smoothing (px) of the textures
    noise: float
    blur: float
    distractors: bool  # objects of another level that are not target


def random_style(rng: np.random.Generator) -> TaskStyle:
    fg, bg = rng.uniform(0, 1, 2)
    if abs(fg - bg) < 0.12:  # keep the target visible, sometimes barely
        fg = np.clip(bg + rng.choice([-1, 1]) * rng.uniform(0.12, 0.4), 0, 1)
    low = int(rng.integers(1, 3))
    return TaskStyle(
        shape=str(rng.choice(SHAPES)),
        count=(low, low + int(rng.integers(0, 3))),
        size=float(rng.uniform(0.06, 0.22)),
        fg_level=float(fg),
        bg_level=float(bg),
        fg_texture=float(rng.uniform(0, 0.25)),
        bg_texture=float(rng.uniform(0, 0.3)),
        texture_scale=float(rng.uniform(0.8, 6)),
        noise=float(rng.uniform(0, 0.08)),
        blur=float(rng.uniform(0, 1.5)),
        distractors=bool(rng.random() < 0.4),
    )


def _shape(rng, style: TaskStyle, size: int) -> np.ndarray:
    yy, xx = np.mgrid[:size, :size] / size
    cy, cx = rng.uniform(0.15, 0.85, 2)
    r = style.size * rng.uniform(0.6, 1.4)
    if style.shape == "ellipses":
        a, b, t = r, r * rng.uniform(0.4, 1.0), rng.uniform(0, np.pi)
        u, v = (xx - cx) * np.cos(t) + (yy - cy) * np.sin(t), -(xx - cx) * np.sin(t) + (yy - cy) * np.cos(t)
        return (u / a) ** 2 + (v / b) ** 2 <= 1
    if style.shape == "star_polygons":
        k = int(rng.integers(3, 9))
        radii = r * rng.uniform(0.5, 1.2, k)
        angle = np.arctan2(yy - cy, xx - cx) % (2 * np.pi)
        edge = np.interp(angle, np.linspace(0, 2 * np.pi, k + 1), np.append(radii, radii[0]))
        return np.hypot(yy - cy, xx - cx) <= edge
    if style.shape == "noise_blobs":
        field = ndimage.gaussian_filter(rng.standard_normal((size, size)), size * r * 0.4)
        field /= np.abs(field).max() + 1e-9
        return (np.hypot(yy - cy, xx - cx) / r) + 0.6 * field < 1
    if style.shape == "rings":
        d = np.hypot((yy - cy) / rng.uniform(0.7, 1.0), xx - cx)
        return (d <= r) & (d >= r * rng.uniform(0.4, 0.75))
    # strokes: a thick smooth curve
    t = np.linspace(0, 1, 64)
    angle = rng.uniform(0, 2 * np.pi) + rng.uniform(-3, 3) * t
    py, px = cy + np.cumsum(np.sin(angle)) * r / 16, cx + np.cumsum(np.cos(angle)) * r / 16
    canvas = np.zeros((size, size), bool)
    keep = (py > 0) & (py < 1) & (px > 0) & (px < 1)
    canvas[(py[keep] * size).astype(int), (px[keep] * size).astype(int)] = True
    return ndimage.binary_dilation(canvas, iterations=max(1, int(r * size * 0.25)))


def _texture(rng, style: TaskStyle, size: int) -> np.ndarray:
    t = ndimage.gaussian_filter(rng.standard_normal((size, size)), style.texture_scale)
    return t / (t.std() + 1e-9)


def generate_pair(rng: np.random.Generator, style: TaskStyle, size: int = 128, shift: float = 0.0):
    """One image (size x size, [0, 1]) and its label from a task style; `shift` moves the
    intensities (an acquisition change between support and query)."""
    label = np.zeros((size, size), bool)
    for _ in range(int(rng.integers(style.count[0], style.count[1] + 1))):
        label |= _shape(rng, style, size)
    if not label.any():
        label = _shape(rng, style, size) | label
    image = style.bg_level + style.bg_texture * 0.3 * _texture(rng, style, size)
    image = np.where(label, style.fg_level + style.fg_texture * 0.3 * _texture(rng, style, size), image)
    if style.distractors:
        distractor = _shape(rng, style, size) & ~label
        image = np.where(distractor, 1 - style.fg_level * rng.uniform(0.5, 1.0), image)
    image = ndimage.gaussian_filter(image, style.blur) if style.blur > 0.3 else image
    image = image + style.noise * rng.standard_normal((size, size))
    if shift:
        image = (image - 0.5) * (1 + shift) + 0.5 + shift * 0.5
    lo, hi = image.min(), image.max()
    return ((image - lo) / max(hi - lo, 1e-6)).astype(np.float32), label.astype(np.float32)


def episode_batch(rng: np.random.Generator, batch: int, support: int, size: int = 128):
    """B episodes of one support size: target B x 1 x H x W, support images / labels B x S x 1 x H x W,
    target labels B x 1 x H x W."""
    targets, target_labels, images, labels = [], [], [], []
    for _ in range(batch):
        style = random_style(rng)
        pairs = [generate_pair(rng, style, size) for _ in range(support)]
        shift = float(rng.uniform(-0.3, 0.3)) if rng.random() < 0.5 else 0.0
        target, target_label = generate_pair(rng, style, size, shift)
        targets.append(target[None])
        target_labels.append(target_label[None])
        images.append(np.stack([p[0] for p in pairs])[:, None])
        labels.append(np.stack([p[1] for p in pairs])[:, None])
    as_tensor = lambda x: torch.from_numpy(np.stack(x))  # noqa: E731
    return as_tensor(targets), as_tensor(images), as_tensor(labels), as_tensor(target_labels)


def dice_bce_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Soft Dice (per image) + binary cross-entropy on logits."""
    p = torch.sigmoid(logits)
    inter = (p * target).sum(dim=(-2, -1))
    dice = (2 * inter + 1) / (p.sum(dim=(-2, -1)) + target.sum(dim=(-2, -1)) + 1)
    return (1 - dice).mean() + F.binary_cross_entropy_with_logits(logits, target)


@dataclass(frozen=True)
class TrainingConfig:
    encoder_widths: tuple[int, ...] = (32, 32, 32, 32)
    size: int = 64
    minutes: float = 50.0  # wall-clock budget; training stops at the first of minutes / steps
    steps: int = 100_000
    batch: int = 4
    max_support: int = 12
    lr: float = 1e-3
    seed: int = 0


def support_size(rng: np.random.Generator, max_support: int) -> int:
    """Log-uniform in 1..max_support: small support sets are seen as often as large ones."""
    return int(np.clip(round(math.exp(rng.uniform(0, math.log(max_support)))), 1, max_support))


def fit(
    net, next_batch, lr: float, minutes: float, steps: int | None = None, log_every: int = 25
) -> tuple[int, list[dict]]:
    """Episodic training of a UniverSeg-architecture `net` in place: Adam on soft Dice + BCE, the
    learning rate cosine-decayed from `lr` over the `minutes` budget, until the budget or `steps`.
    `next_batch()` gives (query, support images, support labels, query label). Returns the steps
    taken and the loss curve (the mean loss every `log_every` steps)."""
    optimiser = torch.optim.Adam(net.parameters(), lr=lr)
    start, curve, running = time.perf_counter(), [], []
    budget = minutes * 60
    step = 0
    while (steps is None or step < steps) and time.perf_counter() - start < budget:
        fraction = (time.perf_counter() - start) / budget
        for group in optimiser.param_groups:  # cosine decay over the time budget
            group["lr"] = lr * 0.5 * (1 + math.cos(math.pi * min(fraction, 1.0)))
        target, images, labels, target_label = next_batch()
        loss = dice_bce_loss(net(target, images, labels), target_label)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        running.append(loss.item())
        step += 1
        if step % log_every == 0:
            curve.append(
                {
                    "step": step,
                    "seconds": round(time.perf_counter() - start, 1),
                    "loss": round(float(np.mean(running)), 4),
                }
            )
            running = []
            print(f"step {step:6d}  {curve[-1]['seconds']:7.0f} s  loss {curve[-1]['loss']:.4f}", flush=True)
    return step, curve


def train(config: TrainingConfig, out: str | Path, log_every: int = 25) -> dict:
    """Trains from the official init, writes `<out>.pt` (a raw state_dict, loadable by
    `load_universeg`) and `<out>.json` (config, steps, seconds, loss curve). Seeded."""
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    net = init_universeg_weights(UniverSeg(config.encoder_widths)).train()
    start = time.perf_counter()

    def next_batch():
        return episode_batch(rng, config.batch, support_size(rng, config.max_support), config.size)

    steps, curve = fit(net, next_batch, config.lr, config.minutes, config.steps, log_every)
    out = Path(out)
    write_atomic(out.with_suffix(".pt"), lambda p: torch.save(net.eval().state_dict(), p))
    record = {
        "config": asdict(config),
        "steps": steps,
        "seconds": round(time.perf_counter() - start, 1),
        "threads": torch.get_num_threads(),
        "loss_curve": curve,
    }
    write_text_atomic(out.with_suffix(".json"), json.dumps(record, indent=1) + "\n")
    return record
