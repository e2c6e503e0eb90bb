"""Reading images, masks and volumes from files: every failure is an error that names the file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from iclsam.common.inputs import check_image, check_mask

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".npy")
NIFTI_SUFFIXES = (".nii.gz", ".nii")


def is_nifti(path: Path) -> bool:
    return path.name.lower().endswith(NIFTI_SUFFIXES)


def _too_large(path: Path, error: Exception) -> ValueError:
    """PIL refuses pictures whose header claims more pixels than it allows (a decompression bomb)."""
    return ValueError(
        f"{path}: unreadable image: its header claims more than {2 * Image.MAX_IMAGE_PIXELS:,} pixels "
        f"(PIL's limit against decompression bombs; {error.__class__.__name__})"
    )


def read_image(path: str | Path) -> np.ndarray:
    """An image file as an array (H x W or H x W x 3), or an error naming the file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"image not found: {path}")
    try:
        if path.suffix.lower() == ".npy":
            array = np.load(path, allow_pickle=False)
        else:
            with Image.open(path) as image:
                image = image.convert("RGB") if image.mode in ("P", "RGBA", "LA", "CMYK", "YCbCr") else image
                array = np.asarray(image)
    except Image.DecompressionBombError as error:
        raise _too_large(path, error) from None
    except (UnidentifiedImageError, OSError, ValueError) as error:
        raise ValueError(f"{path}: unreadable image ({error})") from error
    return check_image(array, str(path))


def read_mask(path: str | Path, shape: tuple[int, int]) -> np.ndarray:
    """A binary mask file of the given image size as bool, or an error naming the file (see
    `read_mask_values`)."""
    return check_mask(read_mask_values(path), shape, str(path))


def read_mask_values(path: str | Path) -> np.ndarray:
    """A mask or label-map file's values as they are stored, or an error naming the file. A palette
    (indexed) PNG is read by index, not through its colours: index 0 is background whatever colour
    the palette gives it. A NIfTI mask (.nii, .nii.gz) must hold one 2-D slice."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"mask not found: {path}")
    if is_nifti(path):
        array = np.squeeze(read_volume(path))
        if array.ndim != 2:
            raise ValueError(f"{path}: a NIfTI mask of a 2-D image must hold one slice, got shape {array.shape}")
        return array
    try:
        with Image.open(path) as image:
            indexed = image.mode in ("P", "L", "1", "I", "I;16")  # read by value (a palette by index)
            return np.asarray(image if indexed else image.convert("L"))
    except Image.DecompressionBombError as error:
        raise _too_large(path, error) from None
    except (UnidentifiedImageError, OSError) as error:
        raise ValueError(f"{path}: unreadable mask ({error})") from error


def read_picture(path: Path, mode: str | None = None) -> np.ndarray:
    if not path.is_file():
        raise FileNotFoundError(f"missing file: {path}")
    try:
        with Image.open(path) as image:
            return np.asarray(image.convert(mode) if mode else image)
    except Image.DecompressionBombError as error:
        raise _too_large(path, error) from None
    except (UnidentifiedImageError, OSError) as error:
        raise ValueError(f"{path}: unreadable image ({error})") from error


def read_volume(path: Path) -> np.ndarray:
    import nibabel as nib

    if not path.is_file():
        raise FileNotFoundError(f"missing file: {path}")
    try:
        return np.asarray(nib.load(str(path)).dataobj)
    except Exception as error:  # nibabel raises several types for damaged files
        raise ValueError(f"{path}: unreadable NIfTI ({error})") from error
