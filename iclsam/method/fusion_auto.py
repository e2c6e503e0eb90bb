"""fusion="auto" (not in the paper): Eq. 1's gamma, and whether SAM's decoder is steered by the map
(Eq. 3), chosen per support set by leave-one-out on the support itself: each support image is
segmented from the other m - 1 through Figure 1's steps, and the setting whose fused mask is best
on them replaces the default only on consistent evidence (`leave_one_out_fusion`). With one support
image there is nothing to leave out: the image is segmented from itself, and only SAM's steering is
chosen (the in-sample map flatters the ICL model, so gamma stays the paper's). fusion="in-sample"
does that at every m: no extra Eq. 2 fit, two SAM decoder calls per support image."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from iclsam.common.metrics import dice
from iclsam.method.figure1 import run_figure1, sam_logits
from iclsam.method.fusion import fuse, fusion_weight
from iclsam.method.support import FusionChoice, SupportSet

if TYPE_CHECKING:
    from iclsam.method.model import ICLSAM

FUSION_GAMMAS = tuple(round(0.1 * k, 1) for k in range(11))  # fusion="auto" chooses among these
# In-sample, the map is fit on the image it is judged on and flatters the steered SAM: the choice
# moves only on a larger gain. On the ten development sets (benchmarks/defaults/steering_signal.csv,
# m = 1) every support set whose in-sample gain exceeded 0.03 also gained on its queries; one at
# 0.023 (pancreas) lost 0.069.
IN_SAMPLE_MARGIN = 0.03


def held_out_inputs(model: ICLSAM, support: SupportSet, k: int, in_sample: bool = False) -> dict:
    """Eq. 1's inputs for support image k segmented from the others (in-sample, or with one support
    image: from the whole support set, its own fit): "sam_logits" (steered by the map),
    "plain_sam_logits" and "icl_probability"; or "pseudo_label" when it has no box (SAM is then not
    prompted, whatever the setting)."""
    subset = support if support.m == 1 or in_sample else support.without(k)
    state = run_figure1(model, subset, model.query_state(subset, support.images[k], None, {"sam+conf"}), until="boxes")
    if not len(state.boxes):
        return {"pseudo_label": state.masks[model.icl_model.map_variant]}
    plain, steered = sam_logits(model.sam, state, model.config.beta, plain=True, steered=True)
    return {"sam_logits": steered, "plain_sam_logits": plain, "icl_probability": state.icl_probability}


def chooses_in_sample(fusion: str, m: int) -> bool:
    """Whether the choice is made on the support images segmented with the support's own fit:
    fusion="in-sample", or "auto" with one support image (nothing to leave out)."""
    return fusion == "in-sample" or m == 1


def held_out_dice(inputs: dict, truth: np.ndarray, steered: bool, gamma: float) -> float:
    """Dice of Eq. 1's mask on one held-out support image (`held_out_inputs`) for one setting: SAM
    steered or not, and gamma; the pseudo-label when SAM was not prompted (every setting gives it)."""
    if "pseudo_label" in inputs:
        return dice(inputs["pseudo_label"], truth)
    logits = inputs["sam_logits"] if steered else inputs["plain_sam_logits"]
    return dice((fuse(logits, inputs["icl_probability"], gamma) > 0).numpy(), truth)


def auto_fusion_choice(model: ICLSAM, support: SupportSet, paper: float) -> FusionChoice:
    """fusion="auto"'s choice for this support set and model setting, computed once and kept on it."""
    config = model.config
    in_sample = chooses_in_sample(config.fusion, support.m)
    setting = (config.a, config.b, config.tau, config.beta, config.box_confidence, model.sam_steering, in_sample)
    if setting not in support.fusion_choices:
        held_out = [(held_out_inputs(model, support, k, in_sample), support.masks[k]) for k in range(support.m)]
        gammas, margin = ((paper,), IN_SAMPLE_MARGIN) if in_sample else (FUSION_GAMMAS, 0.01)
        support.fusion_choices[setting] = leave_one_out_fusion(held_out, gammas, paper, model.sam_steering, margin)
    return support.fusion_choices[setting]


def leave_one_out_fusion(
    held_out: Sequence[tuple[dict, np.ndarray]],
    gammas: Sequence[float],
    paper: float,
    sam_steering: bool = True,
    margin: float = 0.01,
) -> FusionChoice:
    """Not in the paper (fusion="auto"): among SAM steered by the map (Eq. 3) or not, times each
    gamma of `gammas`, the pair whose fused mask has the best mean Dice over the held-out support
    images, if it clearly beats the default setting (`sam_steering`, `paper`: the paper's when
    sam_steering is True); else the default. Clearly: its mean gain over the default, image by image, is more than
    `margin` and more than the gain's standard error (a few held-out images are a noisy judge:
    without consistent evidence the default stands; one held-out image: the margin alone). Ties go
    to the default's steering, then to the gamma nearest `paper`. `held_out`: (inputs, mask) per
    support image segmented from the others; inputs hold Eq. 1's "sam_logits" (steered),
    "plain_sam_logits" and "icl_probability", or "pseudo_label" when SAM was not prompted (every
    setting gives it)."""
    if not held_out:
        raise ValueError("leave-one-out needs at least one held-out support image")
    candidates = [(s, g) for s in (sam_steering, not sam_steering) for g in gammas] + [(sam_steering, paper)]
    scores = np.zeros((len(held_out), len(candidates)))  # Dice per held-out image and candidate
    for i, (inputs, truth) in enumerate(held_out):
        for j, (steered, gamma) in enumerate(candidates):
            scores[i, j] = held_out_dice(inputs, truth, steered, gamma)
    means = scores.mean(axis=0)
    best = max(
        range(len(candidates) - 1),
        key=lambda j: (round(float(means[j]), 9), candidates[j][0] == sam_steering, -abs(candidates[j][1] - paper)),
    )
    clear = clear_gain(scores[:, best] - scores[:, -1], margin)
    return FusionChoice(*candidates[best]) if clear else FusionChoice(sam_steering, float(paper))


def clear_gain(gains: np.ndarray, margin: float) -> bool:
    """Whether per-image gains over a default are consistent evidence: their mean is more than
    `margin` and more than its standard error (one image: the margin alone)."""
    error = gains.std(ddof=1) / np.sqrt(len(gains)) if len(gains) > 1 else 0.0
    return bool(gains.mean() > margin and gains.mean() > error)


def fusion_setting(model: ICLSAM, support: SupportSet, notes: list[str], fixed: bool = False) -> tuple[bool, float]:
    """Step 5's setting: whether SAM's decoder is steered by the map (Eq. 3) in the fused
    prediction, and Eq. 1's gamma: (`sam_steering`, the paper's schedule), or with fusion "auto" /
    "in-sample" what `fusion_auto` chooses on the support images (once per support set and
    setting). `fixed`: the former whatever `fusion` says (a volume's slices)."""
    config = model.config
    paper = fusion_weight(config.a, config.tau, support.m)
    if config.fusion == "paper" or fixed:
        if not model.sam_steering:
            auto = config.sam_steering == "auto"
            why = f"; sam_steering auto: the {model.icl} ICL model is the map" if auto else ""
            notes.append("fusion: Eq. 1 with SAM without the map (no Eq. 3)" + why)
        return model.sam_steering, paper
    steer, gamma = auto_fusion_choice(model, support, paper)
    how = "in-sample" if chooses_in_sample(config.fusion, support.m) else "leave-one-out"
    notes.append(
        f"fusion {config.fusion} ({how} on the support): gamma {gamma:.3g} (the default: {paper:.3g}), "
        f"SAM {'steered by the map (Eq. 3)' if steer else 'without the map (no Eq. 3)'}"
    )
    return steer, gamma
