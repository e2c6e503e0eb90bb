"""docs/annotator.png: the graphical annotator on real images, after a few of them were annotated.

    xvfb-run -a -s "-screen 0 1600x1000x24" .venv/bin/python scripts/annotator_screenshot.py \
        --task ../shared/data/real-dev/ph2-lesion --images 4 --out docs/annotator.png

The first `--images` - 1 images (in file order) are annotated by the simulated user of
`evaluate-annotation` through the widget (clicks at the centre of the largest error until Dice .90,
then Accept); the last one is shown as opened, with ICL-SAM's proposal from that context and one
click. The images are copied to a temporary folder first: nothing is written beside the data."""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", required=True, help="a prepared task folder (images/, masks/)")
    parser.add_argument("--images", type=int, default=4)
    parser.add_argument("--out", default="docs/annotator.png")
    args = parser.parse_args()

    import napari
    from PIL import Image
    from qtpy.QtWidgets import QApplication

    from iclsam.apps.annotation import next_click
    from iclsam.apps.napari_annotator import AnnotatorWidget
    from iclsam.common.metrics import dice
    from iclsam.common.readers import read_mask

    task = Path(args.task)
    files = sorted((task / "images").glob("*.png"))[: args.images]
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch) / task.name
        folder.mkdir()
        for file in files:
            shutil.copy(file, folder / file.name)
        viewer = napari.Viewer(title="ICL-SAM annotator")
        viewer.window.resize(1500, 850)
        widget = AnnotatorWidget(viewer)
        viewer.window.add_dock_widget(widget, area="right", name="ICL-SAM annotator")
        widget.images_edit.setText(str(folder))
        widget.open_folder()
        for number, file in enumerate(files):
            truth = read_mask(task / "masks" / file.name, widget.session.current.image.shape[:2])
            mask = np.asarray(viewer.layers["mask"].data) != 0
            clicks = 0
            while dice(mask, truth) < 0.9 and clicks < (20 if number < len(files) - 1 else 1):
                x, y, positive = next_click(mask, truth)
                widget.click(x, y, positive)
                mask, clicks = np.asarray(viewer.layers["mask"].data) != 0, clicks + 1
            print(f"{file.name}: {clicks} clicks, Dice {dice(mask, truth):.3f}")
            if number < len(files) - 1:
                widget.accept()
        QApplication.processEvents()  # the dock widget is drawn
        shot = viewer.window.screenshot(canvas_only=False, flash=False)
        viewer.close()
    Image.fromarray(shot).save(args.out, optimize=True)
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
