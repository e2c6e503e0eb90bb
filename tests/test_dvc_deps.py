"""dvc.yaml is honest: every stage depends on each module its notebook imports (directly or through
iclsam, transitively) and on each data file or folder it reads, so `dvc repro` can never call
stale results up to date."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "iclsam"
# the notebook parameters that name what a stage reads (the rest name what it writes)
INPUT_PARAMETERS = ("data", "splits_file", "draws_file", "grid_dir", "raw")


def module_file(name: str) -> Path | None:
    if not name.startswith("iclsam"):
        return None
    path = ROOT.joinpath(*name.split("."))
    if (path / "__init__.py").is_file():
        return path / "__init__.py"
    return path.with_suffix(".py") if path.with_suffix(".py").is_file() else None


def imported_modules(path: Path, package: str | None) -> set[str]:
    """The iclsam modules a file imports (relative imports resolved against `package`)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                stem = ".".join(base + ([node.module] if node.module else []))
            else:
                stem = node.module
            found.add(stem)
            found |= {f"{stem}.{a.name}" for a in node.names}
    return {m for m in found if m.split(".")[0] == "iclsam" and module_file(m) is not None}


def closure(notebook: Path) -> set[Path]:
    """Every iclsam file the notebook runs: its imports, their packages' __init__s and theirs."""
    return closure_of(imported_modules(notebook, None))


def stages() -> list[tuple[str, dict]]:
    spec = yaml.safe_load((ROOT / "dvc.yaml").read_text(encoding="utf-8"))["stages"]
    return list(spec.items())


def covered(path: Path, deps: list[str]) -> bool:
    relative = path.relative_to(ROOT).as_posix() if path.is_absolute() else path.as_posix()
    return any(relative == d or relative.startswith(d.rstrip("/") + "/") for d in deps)


def notebook_parameters(notebook: Path) -> dict:
    """The literal assignments of the notebook's parameters cell."""
    text = notebook.read_text(encoding="utf-8")
    cell = text.split('# %% tags=["parameters"]', 1)[1].split("# %%", 1)[0]
    return {
        t.id: node.value.value
        for node in ast.parse(cell).body
        if isinstance(node, ast.Assign)
        for t in node.targets
        if isinstance(node.value, ast.Constant)
    }


def closure_of(names: set[str]) -> set[Path]:
    """Every iclsam file that importing these modules runs: theirs, their packages' __init__s and
    what those import, transitively."""
    todo, files = list(names), set()
    while todo:
        name = todo.pop()
        parts = name.split(".")
        for i in range(1, len(parts) + 1):  # importing a.b.c runs a/__init__, a/b/__init__, ...
            path = module_file(".".join(parts[:i]))
            if path is None or path in files:
                continue
            files.add(path)
            package = ".".join(parts[:i]) if path.name == "__init__.py" else ".".join(parts[: i - 1])
            todo += imported_modules(path, package)
    return files


def command_closure(cmd: str) -> set[Path]:
    """The iclsam files an `iclsam <command>` stage runs: the CLI package's own modules, and what
    the command's function imports when it runs."""
    command = cmd.split()[1]
    cli = PACKAGE / "cli"
    for module in ("user", "volumes", "data", "pipeline"):
        tree = ast.parse((cli / f"{module}.py").read_text(encoding="utf-8"))
        for node in tree.body:
            if isinstance(node, ast.FunctionDef) and node.name == command.replace("-", "_"):
                names = set()
                for inner in ast.walk(node):
                    if isinstance(inner, ast.ImportFrom) and (inner.module or "").startswith("iclsam"):
                        names |= {inner.module} | {f"{inner.module}.{a.name}" for a in inner.names}
                found = {m for m in names if module_file(m) is not None}
                # the CLI's modules import one another at the top and everything else inside functions
                return closure_of(found) | set(cli.glob("*.py")) | {PACKAGE / "__init__.py"}
    raise AssertionError(f"no function for the command {command!r} in {cli}")


@pytest.mark.parametrize("name, stage", stages(), ids=[n for n, _ in stages()])
def test_each_stage_depends_on_the_code_and_data_it_reads(name, stage):
    body = stage.get("do", stage)
    deps = [str(d).replace("${item}", "TASK") for d in body.get("deps", [])]
    notebook = ROOT / "notebooks" / f"{name}.py"
    if not notebook.is_file():  # a stage that runs an iclsam command, not a notebook
        assert body["cmd"].startswith("iclsam "), f"{name}: neither a notebook nor an iclsam command"
        missing = sorted(p.relative_to(ROOT).as_posix() for p in command_closure(body["cmd"]) if not covered(p, deps))
        assert not missing, f"{name} runs these modules without depending on them: {missing}"
        return
    assert covered(notebook, deps), f"{name}: its notebook {notebook.name} is not among its deps"
    missing = sorted(p.relative_to(ROOT).as_posix() for p in closure(notebook) if not covered(p, deps))
    assert not missing, f"{name} runs these modules without depending on them: {missing}"
    params = notebook_parameters(notebook)
    for key in INPUT_PARAMETERS:
        if key in params:
            path = Path(params[key]) / ("TASK" if key == "data" and "foreach" in stage else "")
            assert covered(path, deps), f"{name} reads {params[key]} ({key}) without depending on it"


def test_the_module_closure_finds_transitive_imports():
    """The check above can fail: the grid notebook reaches the SAM decoder through two packages."""
    files = {p.relative_to(ROOT).as_posix() for p in closure(ROOT / "notebooks" / "grid.py")}
    assert {
        "iclsam/method/sam/confidence_attention.py",
        "iclsam/method/universeg/network.py",
        "iclsam/method/confidence.py",
    } <= files


def test_missing_inputs_stop_the_pipeline_before_any_result_is_touched(tmp_path, monkeypatch, capsys):
    """check_inputs has no result among its outputs and prepare (the first stage with results)
    depends on it, so DVC never reaches prepare (which would first delete its outputs) when the
    profile's data or checkpoints are missing; the command names each missing input."""
    from iclsam.cli import main

    spec = dict(stages())
    assert set(spec["check_inputs"]["outs"][0]) == {"build/inputs.json"}
    assert "build/inputs.json" in spec["prepare"]["deps"]
    monkeypatch.chdir(tmp_path)
    (tmp_path / "params.yaml").write_text((ROOT / "profiles" / "paper.yaml").read_text(encoding="utf-8"))
    assert main(["check-inputs", "--record", "build/inputs.json"]) == 2
    error = capsys.readouterr().err
    assert "cannot run; missing" in error and "data set refuge" in error and "UniverSeg checkpoint" in error
    assert error.count("\n") == 1 and not (tmp_path / "build").exists()
    (tmp_path / "params.yaml").write_text((ROOT / "profiles" / "default.yaml").read_text(encoding="utf-8"))
    assert main(["check-inputs", "--record", "build/inputs.json"]) == 0
    assert (tmp_path / "build" / "inputs.json").is_file()
