"""The `iclsam` command: user commands (`user`), data and weights (`data`) and the pipeline's
(`pipeline`), sharing the model options (`options`). Every error is one line (exit 2; Ctrl-C: 130)."""

from __future__ import annotations

import argparse
import os
import signal
import sys

from iclsam.cli.annotate import ANNOTATION_COMMANDS
from iclsam.cli.data import DATA_COMMANDS
from iclsam.cli.pipeline import PIPELINE_COMMANDS
from iclsam.cli.user import USER_COMMANDS
from iclsam.cli.volumes import VOLUME_COMMANDS

DESCRIPTION = """ICL-SAM (MIDL 2024): segment medical images from a few labelled examples. An in-context model
turns the examples into a coarse mask, boxes from it prompt SAM, a confidence map from SAM's own
features steers both, and the two predictions are fused.

  iclsam segment --support-images S --support-masks M --query Q --out OUT   your own images
  iclsam segment-volume --image CT --annotations PARTIAL --out PRED         a scan from a few slices
  iclsam annotate --images FOLDER                                           label a folder in napari
  iclsam evaluate --data PREPARED                                           Dice on a prepared folder
  iclsam demo                                                               a quick look

`iclsam COMMAND --help` for a command's options; the README for the rest."""


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="iclsam", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = top.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in (*USER_COMMANDS, *VOLUME_COMMANDS, *ANNOTATION_COMMANDS, *DATA_COMMANDS, *PIPELINE_COMMANDS):
        add(commands)
    return top


INTERRUPTED = "iclsam: interrupted; every output file is either whole or absent"


def main(argv: list[str] | None = None) -> int:
    try:
        args = parser().parse_args(argv)
        return args.run(args)
    except KeyboardInterrupt:
        print(INTERRUPTED, file=sys.stderr)
        return 130
    except (ValueError, OSError, RuntimeError) as error:  # OSError: missing, unwritable or misplaced paths
        print(f"iclsam: error: {error}", file=sys.stderr)
        return 2


def _interrupted_at_exit(signum, frame) -> None:
    """Ctrl-C after the command's work (its outputs in place), while the interpreter shuts down: the
    same one line and exit 130, not a traceback from whatever was being torn down."""
    sys.stdout.flush()
    print(INTERRUPTED, file=sys.stderr, flush=True)
    os._exit(130)


def program() -> None:
    """The `iclsam` program: `main`, then Ctrl-C handled to the process's last moment."""
    code = main()
    signal.signal(signal.SIGINT, _interrupted_at_exit)
    sys.exit(code)


if __name__ == "__main__":
    program()
