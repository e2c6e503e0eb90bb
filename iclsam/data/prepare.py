"""From the paper's official downloads (and the synthetic benchmark) to the prepared format of
`iclsam.data.folder`. Each source (`sources`) lists its cases cheaply, they are split by case, then
streamed into task folders that appear only when complete (`writer`)."""

from __future__ import annotations

from pathlib import Path

from iclsam.data.sources import SOURCES, Case, Source
from iclsam.data.splits import split_cases
from iclsam.data.synthetic import FAMILY, FAMILY_SEEDS, TASKS, synthetic_cases
from iclsam.data.writer import writing_tasks


def prepare_source(name: str, raw: str | Path, out: str | Path, seed: int = 0, progress=None, **options) -> list[Path]:
    """Prepares every task of one official data set. Returns the task folders written."""
    if name not in SOURCES:
        raise ValueError(f"unknown data set {name!r}; choose one of {sorted(SOURCES)} or 'synthetic'")
    source, raw = SOURCES[name], Path(raw)
    if not raw.is_dir():
        raise FileNotFoundError(f"{source.name}: raw folder not found: {raw} (expected layout: {source.layout})")
    cases = source.list_cases(raw)
    splits = _split(source, cases, seed)
    for side in ("support", "query"):
        if side not in splits.values() and not options.get("allow_partial"):
            raise FileNotFoundError(
                f"{source.name}: no {'meta-support' if side == 'support' else 'query'} cases under {raw}: the download "
                f"looks partial (expected layout: {source.layout}); pass allow_partial=True (--allow-partial) to "
                "prepare it anyway"
            )
    with writing_tasks(out, source.tasks) as writers:
        for case in progress(cases, desc=source.name) if progress else cases:
            for task, image_id, image, mask, origin in source.read_case(case, options):
                writers[task].add(image_id, case.case, splits[case.case], image, mask, origin)
    return [Path(out) / task for task in source.tasks]


def _split(source: Source, cases: list[Case], seed: int) -> dict[str, str]:
    if all(c.official_split for c in cases):
        return {c.case: c.official_split for c in cases}
    groups = {c.case: c.extra.get("patient", c.case) for c in cases}
    support, query = source.table3
    by_group = split_cases(sorted(set(groups.values())), support / (support + query), seed)
    return {case: by_group[group] for case, group in groups.items()}


def prepare_synthetic(
    out: str | Path,
    seed: int = 0,
    n_support: int = 24,
    n_query: int = 12,
    tasks: tuple[str, ...] = TASKS,
    progress=None,
) -> list[Path]:
    """Writes the synthetic benchmark (SYNTHETIC data) in the prepared format."""
    unknown = sorted(set(tasks) - set(TASKS))
    if unknown:
        raise ValueError(f"unknown synthetic tasks {unknown}; choose from {list(TASKS)}")
    for family in FAMILY_SEEDS:
        family_tasks = [t for t in tasks if FAMILY[t] == family]
        if not family_tasks:
            continue
        with writing_tasks(out, family_tasks) as writers:
            cases = synthetic_cases(family, seed, n_support, n_query)
            for case_id, split, case in progress(cases, desc=family, total=n_support + n_query) if progress else cases:
                for task, writer in writers.items():
                    image, mask = case[task]
                    writer.add(case_id, case_id, split, image, mask, f"synthetic {family} case {case_id}")
    return [Path(out) / task for task in tasks]


def prepare_profile(params: dict, out: str | Path, progress=None) -> list:
    """The prepare stage: every data set of the profile's `prepare.datasets` into `out`, then the
    profile's tasks opened (`data.folder.Task`s, by name); a task of `params["tasks"]` that was not
    prepared is an error naming it."""
    from iclsam.data.folder import open_tasks

    p = params["prepare"]
    for dataset in p["datasets"]:
        if dataset == "synthetic":
            prepare_synthetic(out, seed=p["seed"], n_support=p["n_support"], n_query=p["n_query"], progress=progress)
        else:
            prepare_source(
                dataset, Path(p["raw"]) / dataset, out, seed=p["seed"], max_side=p["max_side"], progress=progress
            )
    tasks = [t for t in open_tasks(out) if t.name in set(params["tasks"])]
    missing = sorted(set(params["tasks"]) - {t.name for t in tasks})
    if missing:
        raise ValueError(f"tasks in params.yaml but not prepared into {out}: {missing}")
    return tasks
