"""`iclsam check-reproduced`: after `make run`, are the committed results what the committed code and
parameters make? CI copies the committed tables/, metrics.json and dvc.lock aside, runs `make run`,
then compares (see `.ci/run`):

- every table (CSV) and metrics.json's scores with the regenerated ones, within `check-tables`'
  cross-CPU tolerance (byte-identical on the machine that committed them);
- the committed dvc.lock with the one `dvc repro` wrote: each stage's command, parameters and the
  hashes of its source dependencies (code, notebooks, data the user provides) must be the same,
  else the committed results were made by other code or other parameters;
- the README's results block with the regenerated Table 1 (tables/table1_dice.md)."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from iclsam.pipeline.report.compare import TOLERANCE, compare_tables

WHAT_TO_DO = (
    "The committed results are not what the committed code and parameters make. Run `make run`, then "
    "`python scripts/readme_results.py`, and commit dvc.lock, tables/, figures/, metrics.json and README.md "
    "with the change (a change to a stage's code, notebook or a default re-runs it)."
)
# metrics.json counters that depend on the encoder cache a run finds on disk (.cache/embeddings),
# not on the code or the parameters: reported, not compared
CACHE_COUNTERS = ("encoder_passes", "encoder_cache_hits", "encoder_passes_per_image_and_backbone")
README_BLOCK = "results"


def read_lock(path: Path) -> dict:
    try:
        return yaml.safe_load(Path(path).read_text())["stages"]
    except (OSError, KeyError, TypeError, yaml.YAMLError) as error:
        raise ValueError(f"{path}: not a readable dvc.lock ({error})") from None


def stage_outputs(lock: dict) -> set[str]:
    return {out["path"] for stage in lock.values() for out in stage.get("outs", [])}


def is_made(path: str, outputs: set[str]) -> bool:
    """Whether `path` is a stage's output, lies inside one or holds one (a folder of outputs, as
    results/grid): such a dependency is a result, compared as one (run records in it hold their
    seconds), not a source."""
    inside = lambda a, b: a.startswith(b.rstrip("/") + "/")  # noqa: E731
    return any(path == o or inside(path, o) or inside(o, path) for o in outputs)


def flat_params(entry: dict) -> dict[str, object]:
    """A stage's params in dvc.lock ({file: {name: value}}) as {"name": value}, sections flattened."""
    flat = {}

    def walk(prefix, value):
        if isinstance(value, dict) and value:
            for k, v in value.items():
                walk(f"{prefix}.{k}" if prefix else str(k), v)
        else:
            flat[prefix] = value

    for values in entry.get("params", {}).values():
        walk("", values)
    return flat


def stale_lock(committed: dict, regenerated: dict) -> list[str]:
    """Each stage whose command, parameters or source dependencies in the committed dvc.lock differ
    from what `dvc repro` recorded, with what differs, in words."""
    outputs = stage_outputs(regenerated) | stage_outputs(committed)
    problems = []
    for name in sorted(set(committed) | set(regenerated)):
        if name not in committed or name not in regenerated:
            where = "the committed dvc.lock" if name not in committed else "the regenerated dvc.lock"
            problems.append(f"stage {name}: not in {where}")
            continue
        old, new = committed[name], regenerated[name]
        changed = ["its command"] if old.get("cmd") != new.get("cmd") else []
        old_deps = {d["path"]: d.get("md5") for d in old.get("deps", []) if not is_made(d["path"], outputs)}
        new_deps = {d["path"]: d.get("md5") for d in new.get("deps", []) if not is_made(d["path"], outputs)}
        changed += [p for p in sorted(set(old_deps) | set(new_deps)) if old_deps.get(p) != new_deps.get(p)]
        old_params, new_params = flat_params(old), flat_params(new)
        changed += [
            f"parameter {p}"
            for p in sorted(set(old_params) | set(new_params))
            if old_params.get(p, "<absent>") != new_params.get(p, "<absent>")
        ]
        if changed:
            made = ", ".join(o["path"] for o in new.get("outs", [])) or "no outputs"
            problems.append(f"stage {name}: {', '.join(changed)} changed since dvc.lock was committed; stale: {made}")
    return problems


def numbers(value, prefix: str = "") -> dict[str, float]:
    """The numeric leaves of a JSON value by their dotted path."""
    if isinstance(value, dict):
        return {k: v for key, item in value.items() for k, v in numbers(item, f"{prefix}{key}.").items()}
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return {prefix.rstrip("."): float(value)}
    return {}


def metrics_differences(ours: Path, reference: Path, limit: float = TOLERANCE["dice"]) -> list[str]:
    """metrics.json against the committed one: the same entries, numbers within `limit` (the cache
    counters excepted), text equal."""
    try:
        a, b = json.loads(Path(ours).read_text()), json.loads(Path(reference).read_text())
    except (OSError, ValueError) as error:
        raise ValueError(f"metrics.json: cannot compare {ours} with {reference} ({error})") from None
    na, nb = numbers(a), numbers(b)
    problems = [f"{ours}: {k} missing" for k in sorted(set(nb) - set(na))]
    problems += [f"{ours}: {k} not in the reference" for k in sorted(set(na) - set(nb))]
    for key in sorted(set(na) & set(nb)):
        if key.split(".")[0] not in CACHE_COUNTERS and abs(na[key] - nb[key]) > limit:
            problems.append(f"{ours}: {key} is {na[key]:g}, committed {nb[key]:g} (tolerance {limit:g})")
    if a.get("profile") != b.get("profile"):
        problems.append(f"{ours}: profile {a.get('profile')!r}, committed {b.get('profile')!r}")
    return problems


def block_markers(name: str) -> tuple[str, str]:
    """The markers around a page's block that scripts/readme_results.py fills."""
    return f"<!-- {name}:start (scripts/readme_results.py) -->", f"<!-- {name}:end -->"


def readme_block(page: str, name: str = README_BLOCK) -> str:
    """The text between a page's markers of block `name`."""
    start, end = block_markers(name)
    if start not in page or end not in page:
        raise ValueError(f"the page lacks the markers {start} ... {end}")
    return page.split(start, 1)[1].split(end, 1)[0].strip()


def table_body(markdown: str) -> str:
    """A table's Markdown without its first line (its title), as the README shows it."""
    return markdown.strip().split("\n", 1)[1].strip()


def readme_differences(readme: Path, table1: Path) -> list[str]:
    if readme_block(Path(readme).read_text()) != table_body(Path(table1).read_text()):
        return [f"{readme}: its results block is not {table1} (run `python scripts/readme_results.py`)"]
    return []


def check_reproduced(root: Path, reference: Path) -> list[str]:
    """Every difference between the results under `root` (after `make run`) and the committed ones
    copied to `reference` (tables/, metrics.json, dvc.lock), in words; empty when they agree."""
    root, reference = Path(root), Path(reference)
    problems = stale_lock(read_lock(reference / "dvc.lock"), read_lock(root / "dvc.lock"))
    problems += compare_tables(root / "tables", reference / "tables")
    problems += metrics_differences(root / "metrics.json", reference / "metrics.json")
    problems += readme_differences(root / "README.md", root / "tables" / "table1_dice.md")
    return problems
