"""The paper's official downloads (REFUGE, RIM-ONE r3, Drishti-GS1, BraTS 2020, KiTS23): where each
keeps its files, how to list its cases, how to read one case into (task, id, image, mask) records.

Stored intensities: fundus RGB as it comes (longest side capped, default 1024 px); MRI per volume
clipped to the 0.5-99.5 percentiles of its non-zero voxels and scaled to 0..255; CT windowed to
[-79, 304] HU and scaled to 0..255. Every image is an 8-bit PNG: downstream every model min-max
normalises its input, so 8 bits of a sensible window lose nothing it uses.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from iclsam.common.readers import read_picture
from iclsam.data.scan_sources import BRATS_MODALITIES, brats_cases, brats_read, kits_cases, kits_read
from iclsam.data.source_files import Case, Source, cap_size, find_all, find_one


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


# KiTS23 -----------------------------------------------------------------------------------------


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
