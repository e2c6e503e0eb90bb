"""Reproducible by construction: a stage reads only parameters dvc.yaml lists for it, a changed
parameter makes DVC re-run exactly the stages that list it, the settings have one source
(ICLSAMConfig), and `iclsam check-reproduced` finds a stale dvc.lock, table or README block."""

from __future__ import annotations

import json
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from iclsam.method.config import ICLSAMConfig
from iclsam.method.prompts import PAPER_MIN_FRACTION
from iclsam.pipeline.grid import MODEL_SETTINGS, model_settings
from iclsam.pipeline.params_read import RecordedParams, check_declared, covered, declared_params
from iclsam.pipeline.reproduced import check_reproduced, flat_params, stale_lock, table_body

ROOT = Path(__file__).resolve().parents[1]
DVC = Path(sys.executable).with_name("dvc")


def test_recorded_params_note_each_value_read_and_only_those():
    params = RecordedParams(
        {"grid": {"seed": 0, "sam_checkpoint": {"sam": "x.pth"}, "fusion": "paper", "empty": {}}, "tasks": [1]}
    )
    assert params["grid"]["seed"] == 0 and params.reads == {"grid.seed"}
    assert (params["grid"].get("sam_checkpoint") or {}).get("sam") == "x.pth"
    assert "tasks" in params and params["grid"].get("absent", 3) == 3
    assert params.reads == {"grid.seed", "grid.sam_checkpoint.sam", "tasks", "grid.absent"}
    params["grid"]["empty"]  # noqa: B018 (an empty section is a value: DVC records it as one)
    assert "grid.empty" in params.reads
    json.dumps(params["grid"])  # serialising a section reads all of it
    assert "grid.fusion" in params.reads
    # to another process as the plain dict it is
    assert type(pickle.loads(pickle.dumps(params["grid"]))) is dict


def test_a_read_outside_the_stage_params_is_an_error_naming_it(tmp_path):
    (tmp_path / "dvc.yaml").write_text(
        yaml.safe_dump(
            {
                "stages": {
                    "s": {"cmd": "x", "params": ["tasks", "grid.seed"]},
                    "t": {"foreach": [1], "do": {"cmd": "y", "params": ["grid", "tasks"]}},
                }
            }
        )
    )
    params = RecordedParams({"grid": {"seed": 0, "box_min_area": 0.2}, "tasks": []})
    params["grid"]["seed"], params["tasks"]  # noqa: B018
    assert check_declared(params, "s", tmp_path / "dvc.yaml") == ["grid.seed", "tasks"]
    params["grid"]["box_min_area"]  # noqa: B018
    with pytest.raises(ValueError, match=r"stage s read grid.box_min_area .* Add them"):
        check_declared(params, "s", tmp_path / "dvc.yaml")
    assert declared_params(tmp_path / "dvc.yaml", "t") == ["grid", "tasks"]
    check_declared(params, "t", tmp_path / "dvc.yaml")
    assert covered("grid.sam_checkpoint.sam", ["grid.sam_checkpoint"]) and not covered("grid.seeds", ["grid.seed"])


def leaves(value, prefix=""):
    if isinstance(value, dict) and value:
        return [leaf for k, v in value.items() for leaf in leaves(v, f"{prefix}{k}.")]
    return [prefix.rstrip(".")]


def changed_value(value):
    """Another value of the same kind, so that DVC sees the parameter modified."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, (int, float)):
        return value + 1
    if isinstance(value, list):
        return [*value, "changed"]
    if value is None or isinstance(value, dict):
        return "changed"
    return f"{value}-changed"


def set_leaf(params: dict, name: str, value) -> None:
    *sections, last = name.split(".")
    for section in sections:
        params = params[section]
    params[last] = value


def changed_params_by_stage(status: dict) -> dict[str, set[str]]:
    """`dvc status --json`'s changed parameters per stage."""
    found = {}
    for stage, entries in status.items():
        for entry in entries:
            for dep in (entry.get("changed deps", {}) if isinstance(entry, dict) else {}).items():
                path, change = dep
                if path.endswith("params.yaml") and isinstance(change, dict):
                    found.setdefault(stage.split(":")[-1], set()).update(change)
    return found


@pytest.mark.skipif(not DVC.is_file(), reason="dvc is not installed beside this Python")
def test_a_changed_parameter_marks_exactly_the_stages_that_list_it(tmp_path):
    """In a copy of the pipeline (dvc.yaml, dvc.lock, the default profile) with every parameter
    changed at once, `dvc status` reports each parameter changed in exactly the stages whose dvc.yaml
    params cover it; grid.box_min_area in every stage that builds a model and in the report."""
    for name in ("dvc.yaml", "dvc.lock"):
        shutil.copy(ROOT / name, tmp_path / name)
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    names = leaves(params)
    for name in names:
        value = params
        for part in name.split("."):
            value = value[part]
        set_leaf(params, name, changed_value(value))
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    subprocess.run([DVC, "init", "--no-scm", "-q"], cwd=tmp_path, check=True)
    out = subprocess.run([DVC, "status", "--json"], cwd=tmp_path, capture_output=True, text=True, check=True).stdout
    marked = changed_params_by_stage(json.loads(out))
    spec = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    tasks = yaml.safe_load((ROOT / "params.yaml").read_text())["tasks"]
    for stage in spec:
        instances = [f"{stage}@{t}" for t in tasks] if "foreach" in spec[stage] else [stage]
        declared = declared_params(tmp_path / "dvc.yaml", stage)
        expected = {n for n in names if covered(n, declared)}
        for instance in instances:
            reported = {n for n in marked.get(instance, set()) if n in names or not covered(n, names)}
            assert {n for n in names if any(r == n or n.startswith(r + ".") for r in reported)} == expected, instance
    with_box_rule = {
        s.split("@")[0] for s, found in marked.items() if any(covered("grid.box_min_area", [f]) for f in found)
    }
    assert with_box_rule == {"grid", "sensitivity", "weak_context", "volumes", "report"}


@pytest.mark.skipif(not DVC.is_file(), reason="dvc is not installed beside this Python")
def test_dvc_ignores_python_bytecode_in_the_code_folders_stages_depend_on():
    """Bytecode is written beside the code unless PYTHONDONTWRITEBYTECODE is set: counted, it would
    change the hash of iclsam/pipeline/report and the other code folders, so dvc.lock would look stale."""
    found = subprocess.run(
        [
            DVC,
            "check-ignore",
            "iclsam/pipeline/report/__pycache__/tables.cpython-311.pyc",
            "iclsam/method/sam/build.pyc",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert found.returncode == 0 and len(found.stdout.split()) == 2, found.stdout + found.stderr


def test_the_profiles_and_the_cli_take_their_settings_from_iclsam_config():
    from iclsam.cli import parser
    from iclsam.cli.options import model_settings as cli_settings

    defaults = ICLSAMConfig()
    profile = yaml.safe_load((ROOT / "profiles" / "default.yaml").read_text())["grid"]
    assert model_settings(profile) == {name: getattr(defaults, name) for name in MODEL_SETTINGS}
    paper = yaml.safe_load((ROOT / "profiles" / "paper.yaml").read_text())["grid"]
    ICLSAMConfig(**model_settings(paper))  # valid
    assert (paper["box_confidence"], paper["box_min_area"], paper["fusion"]) == (None, PAPER_MIN_FRACTION, "paper")
    # a setting the grid leaves out is ICLSAMConfig's, not a second default
    assert model_settings({})["box_min_area"] == defaults.box_min_area
    args = parser().parse_args(
        ["segment", "--support-images", "s", "--support-masks", "m", "--query", "q", "--out", "o"]
    )
    for name, value in cli_settings(args).items():
        assert value == getattr(defaults, name), name
    assert args.device == defaults.device


def lock(cmd="run", code="a1", param=0.2) -> dict:
    return {
        "s": {
            "cmd": cmd,
            "deps": [{"path": "iclsam/pipeline/grid.py", "md5": code}, {"path": "results/grid", "md5": "r1"}],
            "params": {"params.yaml": {"grid.box_min_area": param, "tasks": ["a"]}},
            "outs": [{"path": "tables/t.csv", "md5": "t1"}],
        },
        "g": {"cmd": "grid", "outs": [{"path": "results/grid", "md5": "r2"}]},
    }


def test_a_stale_lock_names_the_stage_and_what_changed():
    assert stale_lock(lock(), lock()) == []
    assert flat_params(lock()["s"]) == {"grid.box_min_area": 0.2, "tasks": ["a"]}
    since = "changed since dvc.lock was committed; stale: tables/t.csv"
    assert stale_lock(lock(), lock(code="a2")) == [f"stage s: iclsam/pipeline/grid.py {since}"]
    assert stale_lock(lock(), lock(param=0.05)) == [f"stage s: parameter grid.box_min_area {since}"]
    assert stale_lock(lock(cmd="other"), lock()) == [f"stage s: its command {since}"]
    # a dependency that is another stage's output, or a folder of them, is a result (compared within
    # tolerance), not a source
    changed = lock()
    changed["s"]["deps"][1]["md5"] = "r9"
    assert stale_lock(lock(), changed) == []
    per_file, changed = lock(), lock()
    for entry in (per_file, changed):
        entry["g"]["outs"] = [{"path": "results/grid/a.csv", "md5": "r2"}, {"path": "results/grid/a.json", "md5": "r3"}]
    changed["s"]["deps"][1]["md5"] = "r9"  # results/grid: a folder holding the grid's outputs
    assert stale_lock(per_file, changed) == []
    assert stale_lock({"s": lock()["s"]}, lock()) == ["stage g: not in the committed dvc.lock"]


def committed_copy(target: Path) -> Path:
    """The repository's results, and a README whose results block is their Table 1 (whatever state
    the working tree is in: CI runs the tests after `make run`)."""
    target.mkdir()
    for name in ("tables", "metrics.json", "dvc.lock"):
        (shutil.copytree if (ROOT / name).is_dir() else shutil.copy)(ROOT / name, target / name)
    block = table_body((target / "tables" / "table1_dice.md").read_text())
    (target / "README.md").write_text(
        f"# A page\n\n<!-- results:start (scripts/readme_results.py) -->\n{block}\n<!-- results:end -->\n"
    )
    return target


def test_check_reproduced_agrees_with_itself_and_finds_each_kind_of_difference(tmp_path):
    reference, run = committed_copy(tmp_path / "ref"), tmp_path / "run"
    shutil.copytree(reference, run)
    assert check_reproduced(run, reference) == []
    table = run / "tables" / "table1_dice.csv"
    text = table.read_text().splitlines()
    header, row = text[0].split(","), text[1].split(",")
    column = header.index("ours")
    row[column] = str(float(row[column]) + 0.01)
    table.write_text("\n".join([text[0], ",".join(row), *text[2:]]) + "\n")
    (run / "README.md").write_text((run / "README.md").read_text().replace("| fundus |", "| fundus! |", 1))
    metrics = json.loads((run / "metrics.json").read_text())
    metrics["encoder_passes"] += 5  # the encoder cache's counters are not compared
    metrics["dice"]["mean_over_tasks"]["features"]["iclsam"]["m1"] += 0.01
    (run / "metrics.json").write_text(json.dumps(metrics))
    stale = yaml.safe_load((run / "dvc.lock").read_text())
    stale["stages"]["ablation"]["params"]["params.yaml"]["grid.icl"] = ["features"]
    (run / "dvc.lock").write_text(yaml.safe_dump(stale))
    problems = check_reproduced(run, reference)
    assert any("stage ablation: parameter grid.icl changed" in p for p in problems)
    assert any("table1_dice.csv: column ours differs by up to 0.0" in p for p in problems)
    assert any("dice.mean_over_tasks.features.iclsam.m1" in p for p in problems)
    assert any("README.md: its results block" in p for p in problems)
    assert not any("encoder_passes" in p for p in problems) and len(problems) == 4
