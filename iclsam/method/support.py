"""The support set: checked images and masks, and what is derived from them alone (Eq. 2's
logistic regression, the ICL model's prepared tensors, fusion="auto"'s choice), computed once and
shared by every query segmented with it. `SupportSetCache` keeps the last ones used."""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from iclsam.common.inputs import check_support
from iclsam.method.confidence import ConfidenceClassifier
from iclsam.method.sam.cache import image_key


class FusionChoice(NamedTuple):
    """Eq. 1's setting for one support set: whether SAM is steered by the map (Eq. 3), and gamma."""

    sam_steering: bool
    gamma: float


@dataclass
class SupportSet:
    """A checked support set and what is derived from it alone, each computed on first use.
    key: its content and the settings its derived state depends on; content: `support_set_key` of
    its images and masks ("" for the leave-one-out sets of fusion="auto": never shared)."""

    images: list[np.ndarray]
    masks: list[np.ndarray]
    key: str
    content: str = ""
    classifier: ConfidenceClassifier | None = None
    icl_support: object | None = None
    fusion_choices: dict[tuple, FusionChoice] = field(default_factory=dict)  # per model setting

    @property
    def m(self) -> int:
        return len(self.images)

    def without(self, k: int) -> SupportSet:
        """The support set less image k, as leave-one-out segments it from the others (no content
        key: never shared, its Eq. 2 fit never memoised)."""
        rest = [i for i in range(self.m) if i != k]
        return SupportSet([self.images[i] for i in rest], [self.masks[i] for i in rest], "")


def support_set_key(images: Sequence[np.ndarray], masks: Sequence[np.ndarray]) -> str:
    """A content key of a support set: the same pixels and masks in the same order."""
    h = hashlib.sha256()
    for x, y in zip(images, masks):
        h.update(image_key(x).encode())
        h.update(image_key(y).encode())
    return h.hexdigest()


class SupportSetCache:
    """The last `size` support sets used, by content and settings (least recently used first out)."""

    def __init__(self, size: int):
        self.size = size
        self._sets: OrderedDict[str, SupportSet] = OrderedDict()

    def get(self, images: Sequence[np.ndarray], masks: Sequence[np.ndarray], settings: tuple) -> SupportSet:
        """The checked support set of these images and masks under `settings`: the one already made
        (with what was computed from it) or a new one."""
        images, masks = check_support(images, masks)
        content = support_set_key(images, masks)
        key = f"{content}|{settings}"
        if key in self._sets:
            self._sets.move_to_end(key)
            return self._sets[key]
        support = SupportSet(images, masks, key, content)
        self._sets[key] = support
        if len(self._sets) > self.size:
            self._sets.popitem(last=False)
        return support

    def clear(self) -> None:
        self._sets.clear()
