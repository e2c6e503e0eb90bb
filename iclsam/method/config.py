"""ICL-SAM's settings in one frozen object: the paper's constants, the confidence map's fit, and
our refinements (each marked "not in the paper"), validated on construction."""

from __future__ import annotations

from dataclasses import dataclass

from iclsam.method.confidence import SOLVERS
from iclsam.method.fusion import FUSIONS
from iclsam.method.icl.universeg_backend import CHANNELS


@dataclass(frozen=True)
class ICLSAMConfig:
    """a, b, tau, beta: the paper's constants (Eq. 1's gamma = a (1 - exp(-tau m)); Eq. 4's alpha =
      b exp(-tau m); Eq. 3's beta).
    solver: the confidence map's logistic regression (Eq. 2), "lbfgs" (sklearn, the public code),
      "saga" (sklearn, the paper's wording) or "torch" (our L-BFGS in torch, the same objective);
      "auto": lbfgs on the CPU, torch on any other device (the fit then runs there).
    confidence_tokens: fit Eq. 2 on a seeded 80 % of the support tokens, at most this many (30,000:
      the public code's protocol); None fits every token. seed: that draw's seed.
    universeg_channel: how RGB becomes grey for UniverSeg, "first" (the code) or "luminance".
    sam_aspect: how SAM's input is resized ("keep": the longest side, as segment-anything).
    box_confidence: not in the paper: from m = 2 on, prompt SAM only with the pseudo-label's boxes
      whose peak confidence (Eq. 2's map) is at least this (else the best box; `confident_boxes`).
      None: every box, as the paper.
    box_min_area: not in the paper: a box for the pseudo-label's largest region and for every other
      region larger than this fraction of it (0.2: drops more small false regions; chosen by the
      ten-set rule, docs/false-regions.md). 0.05: the paper's code. Ground-truth boxes ("sam+gt")
      always use the paper's 0.05.
    fusion: "paper" (Eq. 1 with the paper's gamma) or "auto" (not in the paper: gamma and SAM's
      steering chosen per support set by leave-one-out on the support; with m = 1 the steering
      alone, on the support image segmented from itself; `fusion_auto`), or "in-sample" (not in the
      paper: the paper's gamma, SAM's steering chosen per support set on the support images
      segmented with the support's own fit: no extra Eq. 2 fit).
    sam_steering: whether the map steers SAM's decoder (Eq. 3) in the fused prediction ("iclsam"):
      True (the paper), False (Eq. 1 fuses the ICL model with stock SAM), or "auto": the ICL model's
      own default (UniverSeg: True, as the paper; features: False, not in the paper: there the map is
      the ICL model). The "sam+conf" variant is always the steered SAM.
    device: "auto" (a CUDA GPU when there is one, else the CPU) or any torch device string.
    batch_queries: whether the queries of one support set go through SAM's encoder and the ICL model
      `query_batch` at a time; None: off the CPU only (on the CPU batching measured slower).
      Results equal the one-at-a-time path to float tolerance.
    support_set_cache_size: prepared support sets kept (least recently used first out)."""

    a: float = 0.5
    b: float = 0.3
    tau: float = 0.1
    beta: float = 2.0
    solver: str = "auto"
    confidence_tokens: int | None = 30_000
    seed: int = 0
    universeg_channel: str = "first"
    sam_aspect: str = "keep"
    box_confidence: float | None = 0.95
    box_min_area: float = 0.2
    fusion: str = "paper"
    sam_steering: bool | str = "auto"
    device: str = "auto"
    batch_queries: bool | None = None
    query_batch: int = 8
    support_set_cache_size: int = 64

    def __post_init__(self):
        if self.solver != "auto" and self.solver not in SOLVERS:
            raise ValueError(f"solver must be 'auto' or one of {SOLVERS}, got {self.solver!r}")
        if self.fusion not in FUSIONS:
            raise ValueError(f"fusion must be one of {FUSIONS}, got {self.fusion!r}")
        if self.sam_steering not in ("auto", True, False):
            raise ValueError(f"sam_steering must be 'auto', True or False, got {self.sam_steering!r}")
        if self.box_confidence is not None and not 0.0 <= self.box_confidence <= 1.0:
            raise ValueError(f"box_confidence must be in [0, 1] or None, got {self.box_confidence!r}")
        if not 0.0 <= self.box_min_area <= 1.0:
            raise ValueError(f"box_min_area must be in [0, 1], got {self.box_min_area!r}")
        if self.universeg_channel not in CHANNELS:
            raise ValueError(f"universeg_channel must be one of {CHANNELS}, got {self.universeg_channel!r}")
        if self.confidence_tokens is not None and self.confidence_tokens < 1:
            raise ValueError(f"confidence_tokens must be at least 1 or None, got {self.confidence_tokens!r}")
        if self.query_batch < 1 or self.support_set_cache_size < 1:
            raise ValueError("query_batch and support_set_cache_size must be at least 1")
