"""A folder annotated image by image: the graphical annotator's engine, with no GUI in it, so that
what the annotator does is tested without a screen.

`FolderAnnotation(model, images, masks)` lists the images of a folder (PNG, JPEG, TIFF, BMP, or
2-D NIfTI slices) and keeps one mask file per annotated image in the masks folder (`<stem>.png`,
`<stem>.nii.gz` for a NIfTI image, with its header and affine). A mask is written atomically the
moment it is accepted, so stopping loses at most the image on screen; the masks folder is never the
image folder, and no file outside it is ever written. Opening a folder again resumes: the images
that have a mask join the context (in file order) and are passed over.

`open(k)` reads image k and gives ICL-SAM's proposal from the context (`Annotator.propose`);
`correct` and `accept` are the `Annotator`'s, `accept` writing the mask first. An image whose file
cannot be read is set aside with the reason (`problems`), and the next one opens."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from iclsam.apps.annotation import PROPOSAL_MIN_CONFIDENCE, Annotator
from iclsam.apps.segment import png_writer
from iclsam.apps.segment_inputs import list_images, output_name, unique_stems
from iclsam.common.atomic import write_atomic
from iclsam.common.inputs import check_image, check_mask
from iclsam.common.readers import is_nifti, read_image, read_mask_values, read_volume

if TYPE_CHECKING:
    from iclsam.method.model import ICLSAM


@dataclass
class Opened:
    """The image on screen: its index in the folder, its pixels and (NIfTI) its header."""

    index: int
    image: np.ndarray
    header: object | None = None
    proposal: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), bool))


class FolderAnnotation:
    """See the module. `max_context`, `min_confidence`: the `Annotator`'s."""

    def __init__(
        self,
        model: ICLSAM,
        images: str | Path,
        masks: str | Path,
        max_context: int = 16,
        min_confidence: float = PROPOSAL_MIN_CONFIDENCE,
    ):
        self.folder, self.masks = Path(images), Path(masks)
        self.files = list_images(self.folder, "image", allow_nifti=True)
        unique_stems(self.files, "images")
        if self.masks.resolve() == self.folder.resolve():
            raise ValueError(
                f"the masks folder {self.masks} is the image folder: choose another one (the annotator "
                "writes only into its masks folder, never beside your images)"
            )
        if self.masks.exists() and not self.masks.is_dir():
            raise ValueError(f"the masks folder {self.masks} is a file")
        self.annotator = Annotator(model, max_context=max_context, min_confidence=min_confidence)
        self.problems: dict[int, str] = {}
        self.current: Opened | None = None
        for k in range(len(self.files)):
            if self.is_done(k):
                self._resume(k)

    def mask_path(self, k: int) -> Path:
        return self.masks / output_name(self.files[k])

    def is_done(self, k: int) -> bool:
        return self.mask_path(k).is_file()

    def remaining(self) -> list[int]:
        """The images still to annotate: no mask saved, no unreadable file."""
        return [k for k in range(len(self.files)) if not self.is_done(k) and k not in self.problems]

    def next_index(self, after: int = -1) -> int | None:
        """The first image after `after` still to annotate (wrapping round), None when all are done."""
        left = self.remaining()
        return next((k for k in left if k > after), left[0] if left else None)

    def open(self, k: int) -> np.ndarray:
        """Image k on screen with ICL-SAM's proposal from the context (returned). An unreadable file
        is set aside (`problems`) and its error raised, naming the file."""
        try:
            image, header = self.read(k)
        except (ValueError, OSError) as error:
            self.problems[k] = str(error)
            raise
        self.current = Opened(k, image, header, self.annotator.propose(image))
        return self.current.proposal.copy()

    def read(self, k: int) -> tuple[np.ndarray, object | None]:
        path = self.files[k]
        if not is_nifti(path):
            return read_image(path), None
        import nibabel as nib

        volume = read_volume(path)
        image = np.squeeze(volume)
        if image.ndim != 2:
            raise ValueError(
                f"{path}: the annotator takes 2-D images; this NIfTI holds shape {volume.shape} "
                "(annotate a few slices of a scan and segment the rest with `iclsam segment-volume`)"
            )
        return check_image(image.astype(np.float32), str(path)), nib.load(str(path))

    def correct(self, positive=(), negative=(), box=None, clicks=None) -> np.ndarray:
        self._opened()
        return self.annotator.correct(positive, negative, box, clicks)

    def accept(self, mask) -> Path:
        """Writes the image's mask (atomically), then adds the image to the context; an empty mask
        is saved (the image holds no target) but teaches the context nothing. Returns the mask file."""
        opened = self._opened()
        mask = np.asarray(mask)
        if mask.shape != opened.image.shape[:2]:
            raise ValueError(
                f"the mask is {mask.shape[0]} x {mask.shape[1]} but {self.files[opened.index]} is "
                f"{opened.image.shape[0]} x {opened.image.shape[1]}"
            )
        mask = mask != 0
        path = write_atomic(self.mask_path(opened.index), self._writer(opened, mask))
        if mask.any():
            self.annotator.accept(mask)
        else:
            self.annotator.skip()
        self.current = None
        return path

    def skip(self) -> None:
        """Passes over the image on screen: nothing is written, the context is unchanged."""
        self._opened()
        self.annotator.skip()
        self.current = None

    def _writer(self, opened: Opened, mask: np.ndarray):
        if opened.header is None:
            return png_writer(mask)
        import nibabel as nib

        stored = mask.reshape(np.asarray(opened.header.dataobj).shape).astype(np.uint8)
        result = nib.Nifti1Image(stored, opened.header.affine, opened.header.header)
        result.set_data_dtype(np.uint8)
        return lambda p: nib.save(result, str(p))

    def _resume(self, k: int) -> None:
        """An image annotated before joins the context; an unreadable pair is set aside."""
        try:
            image, _ = self.read(k)
            values = read_mask_values(self.mask_path(k))
            if (values != 0).any():  # an empty mask: an image without target, nothing to learn from
                self.annotator.add_context(image, check_mask(values, image.shape[:2], str(self.mask_path(k))))
        except (ValueError, OSError) as error:
            self.problems[k] = str(error)

    def _opened(self) -> Opened:
        if self.current is None:
            raise ValueError("no image is open: open one first")
        return self.current
