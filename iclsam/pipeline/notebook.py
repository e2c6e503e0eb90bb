"""Running a pipeline notebook (`iclsam run-notebook`, each DVC stage's command): papermill on the
jupytext source. Kept apart from the stages' work so that starting a stage loads no model; the
notebook's kernel imports what the stage runs."""

from __future__ import annotations

from pathlib import Path


def run_notebook(
    source: str | Path, output: str | Path, parameters: dict | None = None, cwd: str | Path | None = None
) -> Path:
    """Executes a jupytext notebook (`.py`, percent format) with papermill, injecting `parameters`,
    and writes the executed `.ipynb` to `output` (its folder is created)."""
    import jupytext
    import papermill

    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    notebook = jupytext.read(source)
    papermill.execute_notebook(
        notebook,
        str(output),
        parameters=parameters or {},
        kernel_name="python3",
        language="python",
        progress_bar=False,
        cwd=None if cwd is None else str(cwd),
    )
    return output
