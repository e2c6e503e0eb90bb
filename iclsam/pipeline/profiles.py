"""The pipeline's parameters: reading params.yaml (a link to the active profile), describing the data
a profile runs on, and what it needs that is missing (checked before any stage runs)."""

from __future__ import annotations

from pathlib import Path

import yaml

from iclsam.pipeline.params_read import RecordedParams


def load_params(path: str | Path = "params.yaml") -> RecordedParams:
    """params.yaml, noting what is read of it (`params_read.check_declared` compares that with dvc.yaml)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"parameters file not found: {path}")
    return RecordedParams(yaml.safe_load(path.read_text()))


def data_description(params: dict) -> str:
    datasets = params["prepare"]["datasets"]
    if datasets == ["synthetic"]:
        return f"SYNTHETIC benchmark (seed {params['prepare']['seed']}; not medical images)"
    return ", ".join(datasets)


def missing_inputs(params: dict) -> list[str]:
    """What a run needs and cannot find: raw data sets and checkpoint files, each with where it goes."""
    from iclsam.method.sam.build import SAM_BACKBONES  # here, so that reading params does not load the models

    missing = []
    raw = Path(params["prepare"]["raw"])
    for dataset in params["prepare"]["datasets"]:
        if dataset != "synthetic" and not (raw / dataset).is_dir():
            missing.append(
                f"data set {dataset}: put the official download, unpacked, in {raw / dataset}/ "
                "(docs/data.md: expected layout)"
            )
    grid = params["grid"]
    for sam in grid["sam"]:
        checkpoint = (grid.get("sam_checkpoint") or {}).get(sam)
        if sam != "lite" and (checkpoint is None or not Path(checkpoint).is_file()):
            where = Path(checkpoint).parent if checkpoint else Path("checkpoints")
            missing.append(
                f"{SAM_BACKBONES[sam].name} checkpoint: expected at {checkpoint} "
                f"(grid.sam_checkpoint in params.yaml); get it with `iclsam weights fetch {sam} --dest {where}`"
            )
    universeg = grid.get("universeg_checkpoint")
    if "universeg" in grid["icl"] and universeg is not None and not Path(universeg).is_file():
        missing.append(
            f"UniverSeg checkpoint: expected at {universeg} (universeg_v1_nf64_ss64_STA.pt from the "
            f"UniverSeg GitHub release 'weights'); get it with `iclsam weights fetch universeg --dest {Path(universeg).parent}`"
        )
    return missing
