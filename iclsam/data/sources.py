"""The paper's official downloads (REFUGE, RIM-ONE r3, Drishti-GS1, BraTS 2020, KiTS23): where each
keeps its files, how to list its cases, how to read one case into (task, id, image, mask) records.

Stored intensities: fundus RGB as it comes (longest side capped, default 1024 px); MRI per volume
clipped to the 0.5-99.5 percentiles of its non-zero voxels and scaled to 0..255; CT windowed to
[-79, 304] HU and scaled to 0..255. Every image is an 8-bit PNG: downstream every model min-max
normalises its input, so 8 bits of a sensible window lose nothing it uses.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from ..readers import read_picture, read_volume
from .synthetic import CT_WINDOW


def find_one(root: Path, pattern: str, what: str) -> Path:
    """The single file under `root` matching `pattern` (case-insensitive glob), or a clear error."""
    regex = re.compile(_glob_to_regex(pattern), re.IGNORECASE)
    hits = sorted(
        p for p in root.rglob("*") if regex.fullmatch(p.relative_to(root).as_posix()) and "__MACOSX" not in p.parts
    )
    if not hits:
        raise FileNotFoundError(f"{what} not found: looked for {pattern} under {root}")
    return hits[0]


def find_all(root: Path, pattern: str) -> list[Path]:
    regex = re.compile(_glob_to_regex(pattern), re.IGNORECASE)
    return sorted(
        p
        for p in root.rglob("*")
        if p.is_file()
        and regex.fullmatch(p.relative_to(root).as_posix())
        and "__MACOSX" not in p.parts
        and "illustration" not in p.as_posix().lower()
    )


def _glob_to_regex(pattern: str) -> str:
    out = ""
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return out


def cap_size(image: np.ndarray, masks: list[np.ndarray], max_side: int | None):
    """Resizes so that the longest side is at most `max_side` (image bilinear, masks nearest)."""
    h, w = image.shape[:2]
    if not max_side or max(h, w) <= max_side:
        return image, masks
    scale = max_side / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    small = np.asarray(Image.fromarray(image).resize(size, Image.BILINEAR))
    return small, [np.asarray(Image.fromarray(m.astype(np.uint8)).resize(size, Image.NEAREST)) > 0 for m in masks]


def mri_to_uint8(volume: np.ndarray) -> np.ndarray:
    """Clip to the 0.5-99.5 percentiles of the non-zero voxels, scale to 0..255 (zero stays zero
    when the volume is non-negative, as skull-stripped MRI is)."""
    volume = volume.astype(np.float32)
    nonzero = volume[volume != 0]
    if nonzero.size == 0:
        return np.zeros(volume.shape, np.uint8)
    lo, hi = np.percentile(nonzero, [0.5, 99.5])
    lo = min(lo, 0.0) if volume.min() >= 0 else lo
    scaled = (np.clip(volume, lo, hi) - lo) / max(hi - lo, 1e-6)
    return np.round(scaled * 255).astype(np.uint8)


def ct_to_uint8(volume: np.ndarray, window: tuple[float, float] = CT_WINDOW) -> np.ndarray:
    lo, hi = window
    return np.round((np.clip(volume.astype(np.float32), lo, hi) - lo) / (hi - lo) * 255).astype(np.uint8)


@dataclass
class Case:
    case: str
    files: dict[str, Path]
    official_split: str | None = None
    extra: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Source:
    """One data set: its tasks, how to list its cases, how to read one case, and the paper's
    meta-support / query sizes (Table 3) for a seeded split by case when there is no official one."""

    name: str
    tasks: tuple[str, ...]
    list_cases: Callable[[Path], list[Case]]
    read_case: Callable[[Case, dict], Iterator[tuple[str, str, np.ndarray, np.ndarray, str]]]
    table3: tuple[int, int]
    layout: str


def _fundus(case: Case, image: np.ndarray, disc: np.ndarray, cup: np.ndarray, prefix: str, options):
    image, (disc, cup) = cap_size(image, [disc, cup], options.get("max_side", 1024))
    source = ", ".join(str(p) for p in case.files.values())
    yield f"{prefix}_disc", case.case, image, disc, source
    yield f"{prefix}_cup", case.case, image, cup, source


# REFUGE -----------------------------------------------------------------------------------------


def refuge_cases(raw: Path) -> list[Case]:
    images = find_all(raw, "**/Training400/*/*.jpg")
    if not images:
        raise FileNotFoundError(f"REFUGE: no Training400/{{Glaucoma,Non-Glaucoma}}/*.jpg under {raw}")
    # one walk of the tree for all masks, keyed like the images: (group folder, stem), case-insensitive
    masks = {
        (p.parent.name.lower(), p.stem.lower()): p
        for p in find_all(raw, "**/Annotation-Training400/Disc_Cup_Masks/*/*.bmp")
    }
    cases = []
    for image in images:
        mask = masks.get((image.parent.name.lower(), image.stem.lower()))
        if mask is None:
            raise FileNotFoundError(
                f"REFUGE mask for {image} not found: looked for "
                f"Annotation-Training400/Disc_Cup_Masks/{image.parent.name}/{image.stem}.bmp under {raw}"
            )
        cases.append(Case(image.stem, {"image": image, "mask": mask}))
    return cases


def refuge_read(case: Case, options):
    grey = read_picture(case.files["mask"], "L")
    # 0 = cup, 128 = disc rim, 255 = background
    yield from _fundus(case, read_picture(case.files["image"], "RGB"), grey <= 150, grey <= 100, "refuge", options)


# RIM-ONE r3 -------------------------------------------------------------------------------------


def rimone_cases(raw: Path) -> list[Case]:
    images = find_all(raw, "**/Stereo Images/*.jpg")
    if not images:
        raise FileNotFoundError(f"RIM-ONE r3: no '<group>/Stereo Images/*.jpg' under {raw}")
    cases = []
    for image in images:
        group = image.parent.parent
        files = {"image": image}
        for part in ("Disc", "Cup"):
            files[part] = find_one(
                group, f"Average_masks/{image.stem}-{part}-Avg.png", f"RIM-ONE r3 {part.lower()} mask for {image}"
            )
        patient = re.sub(r"-[LR]$", "", image.stem, flags=re.IGNORECASE)  # both eyes of a patient together
        cases.append(Case(image.stem, files, extra={"patient": patient}))
    return cases


def _majority(mask: np.ndarray) -> np.ndarray:
    """Target where at least half of the experts agree (binary masks pass through unchanged)."""
    top = mask.max()
    return mask >= top / 2 if top > 0 else mask > 0


def rimone_read(case: Case, options):
    stereo = read_picture(case.files["image"], "RGB")
    left = stereo[:, : stereo.shape[1] // 2]  # the masks annotate the left image of the stereo pair
    masks = []
    for part in ("Disc", "Cup"):
        mask = read_picture(case.files[part], "L")
        if mask.shape[1] == stereo.shape[1]:
            mask = mask[:, : stereo.shape[1] // 2]
        masks.append(_majority(mask))
    yield from _fundus(case, left, masks[0], masks[1], "rimone", options)


# Drishti-GS1 ------------------------------------------------------------------------------------


def drishti_cases(raw: Path) -> list[Case]:
    cases = []
    for split, folder in (("support", "Training"), ("query", "Test")):
        for image in find_all(raw, f"**/{folder}/Images/*.png"):
            split_root = next(p for p in image.parents if p.name.lower() == folder.lower())
            files = {"image": image}
            for part, name in (("disc", "OD"), ("cup", "cup")):
                files[part] = find_one(
                    split_root,
                    f"**/{image.stem}/SoftMap/{image.stem}_{name}segSoftmap.png",
                    f"Drishti-GS1 {part} soft map for {image}",
                )
            cases.append(Case(image.stem, files, official_split=split))
    if not cases:
        raise FileNotFoundError(f"Drishti-GS1: no Training/Images/*.png or Test/Images/*.png under {raw}")
    return cases


def drishti_read(case: Case, options):
    # soft maps: grey value = fraction of experts; target where at least half marked it (>= 128)
    disc, cup = (read_picture(case.files[p], "L") >= 128 for p in ("disc", "cup"))
    yield from _fundus(case, read_picture(case.files["image"], "RGB"), disc, cup, "drishti", options)


# BraTS 2020 (LGG) -------------------------------------------------------------------------------

BRATS_MODALITIES = ("flair", "t1", "t1ce", "t2")


def brats_cases(raw: Path) -> list[Case]:
    mapping_path = find_one(raw, "**/name_mapping.csv", "BraTS2020 name_mapping.csv")
    mapping = pd.read_csv(mapping_path)
    for column in ("Grade", "BraTS_2020_subject_ID"):
        if column not in mapping.columns:
            raise ValueError(f"{mapping_path}: no column {column!r} (columns: {', '.join(mapping.columns)})")
    lgg = sorted(mapping.loc[mapping["Grade"].str.upper() == "LGG", "BraTS_2020_subject_ID"])
    if not lgg:
        raise ValueError(f"{mapping_path}: no LGG cases")
    cases = []
    for subject in lgg:
        folder = find_one(mapping_path.parent, subject, f"BraTS2020 case folder {subject}")
        files = {
            m: find_one(folder, f"{subject}_{m}.nii*", f"BraTS2020 {m} volume of {subject}") for m in BRATS_MODALITIES
        }
        try:
            files["seg"] = find_one(folder, f"{subject}_seg.nii*", "seg")
        except FileNotFoundError:  # one release names a mask differently (e.g. W39_1998.09.19_Segm.nii)
            files["seg"] = find_one(folder, "*Segm*.nii*", f"BraTS2020 segmentation of {subject}")
        cases.append(Case(subject, files))
    return cases


def brats_read(case: Case, options):
    seg = read_volume(case.files["seg"])
    labels = set(np.unique(seg).astype(int).tolist())
    if not labels <= {0, 1, 2, 4}:
        raise ValueError(f"{case.files['seg']}: labels {sorted(labels)}, expected a subset of 0, 1, 2, 4")
    tumour = seg > 0  # whole tumour = 1 NCR/NET + 2 oedema + 4 enhancing
    volumes = {}
    for m in BRATS_MODALITIES:
        volume = read_volume(case.files[m])
        if volume.shape != seg.shape:
            raise ValueError(f"{case.files[m]}: shape {volume.shape} differs from the mask's {seg.shape}")
        volumes[m] = mri_to_uint8(volume)
    for z in np.flatnonzero(tumour.any(axis=(0, 1))):  # axial slices are on the last axis
        for m in BRATS_MODALITIES:
            yield (
                f"brats_{m}",
                f"{case.case}_z{z:03d}",
                np.ascontiguousarray(np.rot90(volumes[m][:, :, z])),
                np.ascontiguousarray(np.rot90(tumour[:, :, z])),
                f"{case.files[m]} slice {z}",
            )


# KiTS23 -----------------------------------------------------------------------------------------


def kits_cases(raw: Path) -> list[Case]:
    folders = sorted({p.parent for p in find_all(raw, "**/case_*/imaging.nii.gz")})
    if not folders:
        raise FileNotFoundError(f"KiTS23: no case_NNNNN/imaging.nii.gz under {raw}")
    cases = []
    for folder in folders:
        seg = folder / "segmentation.nii.gz"
        if not seg.is_file():
            raise FileNotFoundError(f"KiTS23 segmentation not found: {seg}")
        cases.append(Case(folder.name, {"image": folder / "imaging.nii.gz", "seg": seg}))
    return cases


def kits_read(case: Case, options):
    seg, ct = read_volume(case.files["seg"]), read_volume(case.files["image"])
    if seg.shape != ct.shape:
        raise ValueError(f"{case.files['image']}: shape {ct.shape} differs from the segmentation's {seg.shape}")
    target = (seg == 1) | (seg == 2)  # kidney + tumour; cysts (3) count as background
    ct = ct_to_uint8(ct, options.get("window", CT_WINDOW))
    for z in np.flatnonzero(target.any(axis=(1, 2))):  # axial slices are on the first axis
        yield "kits23", f"{case.case}_z{z:03d}", ct[z], target[z], f"{case.files['image']} slice {z}"


SOURCES: dict[str, Source] = {
    "refuge": Source(
        "REFUGE",
        ("refuge_disc", "refuge_cup"),
        refuge_cases,
        refuge_read,
        (320, 80),
        "Training400/{Glaucoma,Non-Glaucoma}/*.jpg + Annotation-Training400/Disc_Cup_Masks/{Glaucoma,Non-Glaucoma}/*.bmp",
    ),
    "rimone": Source(
        "RIM-ONE r3",
        ("rimone_disc", "rimone_cup"),
        rimone_cases,
        rimone_read,
        (99, 60),
        "<group>/Stereo Images/*.jpg + <group>/Average_masks/<stem>-{Disc,Cup}-Avg.png",
    ),
    "drishti": Source(
        "Drishti-GS1",
        ("drishti_disc", "drishti_cup"),
        drishti_cases,
        drishti_read,
        (50, 51),
        "{Training,Test}/Images/*.png + {Training/GT,Test/Test_GT}/<stem>/SoftMap/<stem>_{OD,cup}segSoftmap.png",
    ),
    "brats": Source(
        "BraTS2020",
        tuple(f"brats_{m}" for m in BRATS_MODALITIES),
        brats_cases,
        brats_read,
        (53, 23),
        "MICCAI_BraTS2020_TrainingData/{name_mapping.csv, BraTS20_Training_NNN/BraTS20_Training_NNN_{flair,t1,t1ce,t2,seg}.nii.gz}",
    ),
    "kits23": Source(
        "KiTS23",
        ("kits23",),
        kits_cases,
        kits_read,
        (245, 244),
        "kits23/dataset/case_NNNNN/{imaging,segmentation}.nii.gz",
    ),
}
