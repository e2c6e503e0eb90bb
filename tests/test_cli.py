"""The command line: its help loads no model, its names match the registries they stand for, and
every error is one line."""

from __future__ import annotations

import signal
import subprocess
import sys

import pytest

from iclsam.cli import annotate, main, options


def test_the_help_imports_no_model_or_data_library():
    code = (
        "import sys; from iclsam.cli import parser; parser().format_help(); "
        "print(sorted(m for m in ('torch', 'numpy', 'pandas', 'PIL', 'yaml') if m in sys.modules))"
    )
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert loaded == "[]", loaded


def test_the_offered_names_are_the_registries():
    from iclsam.apps.annotation import PROPOSAL_MIN_CONFIDENCE
    from iclsam.apps.fetch import PUBLISHED
    from iclsam.data.sources import SOURCES
    from iclsam.method.config import ICLSAMConfig
    from iclsam.method.densify import ANNOTATION_KINDS
    from iclsam.method.fusion import FUSIONS
    from iclsam.method.icl import DEFAULT_ICL, ICL_BACKENDS
    from iclsam.method.model import SAM_VARIANTS
    from iclsam.method.sam import SAM_BACKBONES
    from iclsam.pipeline.evaluate_annotation import METHODS

    assert set(options.SAM_CHOICES) == set(SAM_BACKBONES) and set(options.ICL_CHOICES) == set(ICL_BACKENDS)
    assert options.DEFAULT_ICL == DEFAULT_ICL and tuple(options.FUSION_CHOICES) == tuple(FUSIONS)
    assert tuple(options.ANNOTATION_CHOICES) == tuple(ANNOTATION_KINDS)
    assert annotate.PROPOSAL_MIN_CONFIDENCE == PROPOSAL_MIN_CONFIDENCE and annotate.METHOD_CHOICES == METHODS
    assert set(options.DATASET_CHOICES) == set(SOURCES) and set(options.CHECKPOINT_CHOICES) == set(PUBLISHED)
    icl_variants = {v for backend in ICL_BACKENDS.values() for v in (backend.plain_variant, backend.map_variant)}
    assert set(options.VARIANT_CHOICES) == (icl_variants | set(SAM_VARIANTS)) - {None, "sam+gt"}
    defaults = ICLSAMConfig()
    assert (defaults.box_confidence, defaults.box_min_area) == (
        options.DEFAULT_BOX_CONFIDENCE,
        options.DEFAULT_BOX_MIN_AREA,
    )


@pytest.mark.parametrize(
    "argv, words",
    [
        (["profile", "nonexistent"], "no profile"),
        (["prepare", "brats", "--out", "x"], "--raw is required"),
    ],
)
def test_errors_are_one_line(argv, words, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    error = capsys.readouterr().err
    assert error.startswith("iclsam: error:") and words in error and error.count("\n") == 1


@pytest.mark.parametrize(
    "argv",
    [
        ["evaluate-volumes", "--data", "d", "--out", "rows.json"],
        ["evaluate", "--data", "d", "--out", "summary.json"],
        ["evaluate", "--data", "d", "--scores", "scores.txt"],
    ],
)
def test_an_evaluation_table_that_is_not_csv_is_refused_before_any_work(argv, capsys, tmp_path, monkeypatch):
    """The run record goes beside the table as .json: `--out rows.json` would have been replaced by it."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as stop:
        main(argv)
    assert stop.value.code == 2 and f"must name a .csv file, got {argv[-1]!r}" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


def test_a_variant_outside_the_choices_is_refused_by_argparse(capsys):
    with pytest.raises(SystemExit) as stop:
        main(
            [
                "segment",
                "--support-images",
                "s",
                "--support-masks",
                "m",
                "--query",
                "q",
                "--out",
                "o",
                "--variant",
                "medsam",
            ]
        )
    assert stop.value.code == 2 and "invalid choice" in capsys.readouterr().err


def test_ctrl_c_as_the_program_exits_gets_one_line_and_130(tmp_path):
    """A Ctrl-C that arrives after the command's work, as the interpreter shuts down (here from an
    exit handler, after `iclsam profile default` succeeded): one line and exit 130, no traceback."""
    (tmp_path / "profiles").mkdir()
    (tmp_path / "profiles" / "default.yaml").write_text("profile: default\n")
    code = (
        "import atexit, os, signal; atexit.register(lambda: os.kill(os.getpid(), signal.SIGINT)); "
        "import sys; from importlib.metadata import entry_points; "  # the installed `iclsam` program
        "sys.exit(entry_points(group='console_scripts')['iclsam'].load()())"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, "profile", "default"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # as from a terminal
    )
    assert done.returncode == 130, done.stderr
    assert done.stderr.strip().splitlines() == ["iclsam: interrupted; every output file is either whole or absent"]
    assert (tmp_path / "params.yaml").is_symlink()  # the work was done and kept
