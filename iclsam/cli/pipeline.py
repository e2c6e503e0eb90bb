"""The commands the DVC pipeline and its maintainers run: run-notebook, check-inputs, check-tables,
check-reproduced, profile, decide-default."""

from __future__ import annotations

import json
import os
from pathlib import Path

PROFILES = Path("profiles")


def add_run_notebook(commands) -> None:
    p = commands.add_parser("run-notebook", help="execute a jupytext notebook with papermill (a pipeline stage)")
    p.add_argument("notebook", help="notebooks/<stage>.py")
    p.add_argument("output", help="the executed .ipynb to write (kept outside notebooks/)")
    p.add_argument(
        "-p", "--parameter", nargs=2, action="append", metavar=("NAME", "VALUE"), help="a parameter (YAML value)"
    )
    p.set_defaults(run=run_notebook)


def run_notebook(args) -> int:
    import yaml

    from iclsam.pipeline.notebook import run_notebook as execute

    parameters = {name: yaml.safe_load(value) for name, value in args.parameter or []}
    execute(args.notebook, args.output, parameters)
    return 0


def add_check_inputs(commands) -> None:
    p = commands.add_parser("check-inputs", help="check that the active profile's data sets and checkpoints exist")
    p.add_argument("--params", default="params.yaml")
    p.add_argument("--record", help="a JSON file to write when every input is present (the pipeline's first stage)")
    p.set_defaults(run=check_inputs)


def check_inputs(args) -> int:
    """The pipeline's first stage: every data set and checkpoint the active profile needs, present."""
    from iclsam.common.atomic import write_text_atomic
    from iclsam.pipeline.params_read import check_declared
    from iclsam.pipeline.profiles import load_params, missing_inputs

    params = load_params(args.params)
    name = params.get("profile", "custom")
    missing = missing_inputs(params)
    if missing:
        raise ValueError(f"the '{name}' profile cannot run; missing: " + "; ".join(missing))
    if args.record:  # as the pipeline's first stage
        check_declared(params, "check_inputs")
        write_text_atomic(args.record, json.dumps({"profile": params.get("profile"), "missing": []}, indent=1) + "\n")
    print(f"every input of the '{name}' profile is present")
    return 0


def add_check_tables(commands) -> None:
    p = commands.add_parser("check-tables", help="compare tables with a reference within the cross-CPU tolerance")
    p.add_argument("tables", help="folder of CSV tables (e.g. tables)")
    p.add_argument("--reference", required=True, help="folder of the reference CSV tables")
    p.add_argument("--dice", type=float, help="tolerance of Dice-valued tables (default 1e-3)")
    p.add_argument("--assd", type=float, help="tolerance of ASSD tables, pixels (default 0.05)")
    p.set_defaults(run=check_tables)


def check_tables(args) -> int:
    """Compares a run's tables with a reference (e.g. the committed ones) within the tolerance that
    holds across CPUs; exit 1 when they differ."""
    from iclsam.pipeline.report import TOLERANCE, compare_tables

    tolerance = {
        "dice": args.dice if args.dice is not None else TOLERANCE["dice"],
        "assd": args.assd if args.assd is not None else TOLERANCE["assd"],
    }
    problems = compare_tables(args.tables, args.reference, tolerance)
    for line in problems:
        print(line)
    print(
        f"{args.tables} vs {args.reference}: "
        + ("agree" if not problems else f"{len(problems)} differences")
        + f" within Dice {tolerance['dice']:g}, ASSD {tolerance['assd']:g} px"
    )
    return 1 if problems else 0


def add_check_reproduced(commands) -> None:
    p = commands.add_parser(
        "check-reproduced",
        help="after `make run`: the committed tables, metrics.json, dvc.lock and README results against the run's",
    )
    p.add_argument("--reference", required=True, help="a folder holding the committed tables/, metrics.json, dvc.lock")
    p.add_argument("--root", default=".", help="the repository after `make run` (default: here)")
    p.set_defaults(run=check_reproduced)


def check_reproduced(args) -> int:
    """CI's check that `make run` reproduces what is committed; exit 1, saying what to do, when not."""
    from iclsam.pipeline.reproduced import WHAT_TO_DO, check_reproduced

    problems = check_reproduced(Path(args.root), Path(args.reference))
    for line in problems:
        print(line)
    if problems:
        print(f"\n{len(problems)} differences. {WHAT_TO_DO}")
        return 1
    print("the committed tables, metrics.json, dvc.lock and README results are what `make run` made")
    return 0


def add_profile(commands) -> None:
    p = commands.add_parser("profile", help="make profiles/<name>.yaml the active params.yaml (default, paper)")
    p.add_argument("name")
    p.set_defaults(run=profile)


def profile(args) -> int:
    """Makes params.yaml a link to profiles/<name>.yaml (atomically): a profile file is the one copy of
    its parameters, and `dvc exp run -S` edits the active one."""
    source = PROFILES / f"{args.name}.yaml"
    if not source.is_file():
        names = sorted(p.stem for p in PROFILES.glob("*.yaml"))
        raise ValueError(f"no profile {source} (run from the repository root; profiles: {names})")
    link = Path(f".params.yaml.{os.getpid()}.link")
    link.unlink(missing_ok=True)
    link.symlink_to(source)
    link.replace("params.yaml")
    print(f"params.yaml -> {source}: the '{args.name}' profile; run `dvc repro`")
    return 0


def add_decide_default(commands) -> None:
    p = commands.add_parser(
        "decide-default", help="the rule for defaults applied to two `iclsam evaluate` summaries (per-set table)"
    )
    p.add_argument("current", help="summary CSV of the current default (iclsam evaluate --out)")
    p.add_argument("candidate", help="summary CSV of the candidate setting")
    p.add_argument("--icl", help="the current default's ICL model, when its summary holds several")
    p.add_argument("--candidate-icl", help="the candidate's ICL model, when its summary holds several")
    p.add_argument("--variant", default="iclsam", help="the variant compared (default iclsam, the full method)")
    p.add_argument("--tolerance", type=float, default=0.02, help="the most one set may fall (default 0.02)")
    p.set_defaults(run=decide_default)


def decide_default(args) -> int:
    """Prints the per-set table and whether the candidate may become the default (exit 0) or not (exit 1)."""
    from iclsam.pipeline.report.compare import read_table
    from iclsam.pipeline.report.default_rule import default_rule, full_method_cells, verdict_markdown

    current = full_method_cells(read_table(Path(args.current)), args.variant, args.icl)
    candidate = full_method_cells(read_table(Path(args.candidate)), args.variant, args.candidate_icl)
    verdict = default_rule(current, candidate, args.tolerance)
    print(verdict_markdown(verdict, Path(args.current).stem, Path(args.candidate).stem), end="")
    return 0 if verdict.adopt else 1


PIPELINE_COMMANDS = (
    add_run_notebook,
    add_check_inputs,
    add_check_tables,
    add_check_reproduced,
    add_profile,
    add_decide_default,
)
