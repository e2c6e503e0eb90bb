"""What the libraries' reproducibility switches change and cost, on this machine.

    python benchmarks/reproducibility.py [--tasks fundus_disc ct_kidney] [--out benchmarks/reproducibility.md]

Floating-point results differ between CPUs because torch, oneDNN and MKL pick their kernels by the
instruction set they find (AVX-512 here, AVX2 or older elsewhere) and sum in a different order. Each
setting below runs one slice of the protocol (SYNTHETIC tasks, LiteMedSAM, both ICL backends,
m = 1 and 4, 2 draws, 3 queries, empty encoder cache) in a fresh process and is compared with the
default setting of the same run: wall time (ratio) and the largest Dice difference over all rows.

- default: what `dvc repro` does.
- threads=1: one intra-op thread (a different sum order than two threads: is the result sensitive?).
- deterministic: `torch.use_deterministic_algorithms(True)` (on the CPU it changes little: its
  switches are about GPU kernels).
- isa=avx2: torch's kernel libraries pinned to AVX2 code paths (torch: `ATEN_CPU_CAPABILITY=avx2`;
  oneDNN: `ONEDNN_MAX_CPU_ISA=AVX2`; MKL: `MKL_CBWR=AVX2`, `MKL_ENABLE_INSTRUCTIONS=AVX2`): the same
  kernels on every x86-64 CPU with AVX2, a precondition of byte-identical results across such CPUs
  (numpy's and scipy's OpenBLAS, which sklearn's solver uses, picks its own: `OPENBLAS_CORETYPE`
  pins it; not measured here).
- isa=avx2+threads=1+deterministic: all of the above together.

Writes the report (Markdown) to `--out` and prints it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
AVX2 = {
    "ATEN_CPU_CAPABILITY": "avx2",
    "ONEDNN_MAX_CPU_ISA": "AVX2",
    "MKL_CBWR": "AVX2",
    "MKL_ENABLE_INSTRUCTIONS": "AVX2",
}
SETTINGS = {
    "default": ({}, []),
    "threads=1": ({"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}, []),
    "deterministic": ({}, ["--deterministic"]),
    "isa=avx2": (AVX2, []),
    "isa=avx2+threads=1+deterministic": ({**AVX2, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}, ["--deterministic"]),
}


def one_slice(data: str, tasks: list[str], out: str, deterministic: bool) -> None:
    """The worker: one protocol slice, scores to `out` (CSV)."""
    import torch

    if deterministic:
        torch.use_deterministic_algorithms(True)
    from iclsam import ICLSAM
    from iclsam.pipeline.evaluate_folder import evaluate_folder

    models = {icl: ICLSAM(icl=icl, sam="lite") for icl in ("universeg", "features")}
    scores = evaluate_folder(models, data, sizes=[1, 4], draws=2, max_queries=3, tasks=tasks)
    scores.to_csv(out, index=False, float_format="%.17g")


def run_setting(name: str, data: str, tasks: list[str], work: Path) -> tuple[float, pd.DataFrame]:
    env_extra, flags = SETTINGS[name]
    out = work / f"{name.replace('=', '-').replace('+', '_')}.csv"
    env = {**os.environ, **env_extra}
    command = [sys.executable, __file__, "--worker", "--data", data, "--csv", str(out), "--tasks", *tasks, *flags]
    start = time.perf_counter()
    subprocess.run(command, env=env, check=True, cwd=ROOT)
    return time.perf_counter() - start, pd.read_csv(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", nargs="+", default=["fundus_disc", "ct_kidney"])
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "reproducibility.md"))
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--deterministic", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    parser.add_argument("--csv", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        one_slice(args.data, args.tasks, args.csv, args.deterministic)
        return

    from iclsam.common.atomic import write_text_atomic
    from iclsam.data.prepare import prepare_synthetic

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        prepare_synthetic(work / "data", seed=0, n_support=8, n_query=4)
        timings, scores = {}, {}
        for name in SETTINGS:
            timings[name], scores[name] = run_setting(name, str(work / "data"), args.tasks, work)
            print(f"{name}: {timings[name]:.1f} s", flush=True)
    key = ["icl", "task", "m", "draw", "query", "variant"]
    base = scores["default"].set_index(key)["dice"]
    lines = [
        "# Reproducibility switches: what they change and cost",
        "",
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
        f"SYNTHETIC tasks {', '.join(args.tasks)}; LiteMedSAM; both ICL backends; m = 1, 4; 2 draws x 3 queries; "
        "each setting in a fresh process with an empty encoder cache (model loading included).",
        "",
        "| setting | wall time (s) | ratio to default | rows | largest abs. Dice difference to default |",
        "|---|---|---|---|---|",
    ]
    for name in SETTINGS:
        other = scores[name].set_index(key)["dice"].reindex(base.index)
        diff = (other - base).abs().max()
        lines.append(
            f"| {name} | {timings[name]:.1f} | {timings[name] / timings['default']:.2f} | "
            f"{len(scores[name])} | {diff:.2e} |"
        )
    lines += ["", "Environment of each setting: " + json.dumps({k: v[0] for k, v in SETTINGS.items()}), ""]
    report = "\n".join(lines)
    write_text_atomic(args.out, report)
    print(report)


if __name__ == "__main__":
    main()
