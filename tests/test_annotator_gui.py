"""The graphical annotator (issue 41), used as a person uses it: napari on a virtual screen (Xvfb),
the folder typed in and Open pressed, clicks on the canvas at the target's pixels, Accept pressed;
the saved masks read back from disk. SYNTHETIC images (a bright disc and a dark square), LiteMedSAM."""

from __future__ import annotations

import os
import shutil
import subprocess

import numpy as np
import pytest
from PIL import Image
from test_annotation import case

from iclsam.common.metrics import dice

napari = pytest.importorskip("napari", reason="the gui extra is not installed (pip install -e '.[gui]')")


@pytest.fixture(scope="module")
def screen():
    """A virtual screen for Qt (napari draws with OpenGL, which Qt's offscreen platform lacks)."""
    if os.environ.get("DISPLAY"):
        yield os.environ["DISPLAY"]
        return
    if shutil.which("Xvfb") is None:
        pytest.skip("no screen and no Xvfb to make one (Debian: apt-get install xvfb)")
    read, write = os.pipe()
    subprocess.Popen(  # -terminate: the server ends when its last client, this process's Qt, has gone
        ["Xvfb", "-displayfd", str(write), "-screen", "0", "1600x1000x24", "-nolisten", "tcp", "-terminate"],
        pass_fds=(write,),
        stdout=subprocess.DEVNULL,  # holds no pipe of the test run open
        stderr=subprocess.DEVNULL,
    )
    os.close(write)
    number = b""
    while not number.endswith(b"\n") and (chunk := os.read(read, 8)):
        number += chunk
    os.close(read)
    saved = {key: os.environ.get(key) for key in ("DISPLAY", "QT_QPA_PLATFORM")}
    os.environ.update(DISPLAY=f":{number.decode().strip()}", QT_QPA_PLATFORM="xcb")
    yield os.environ["DISPLAY"]
    for key, value in saved.items():  # Qt has read them; later tests see no screen, as before
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


def press(widget, button, modifier=None, at=None):
    from qtpy.QtCore import QPoint, Qt
    from qtpy.QtTest import QTest

    QTest.mouseClick(widget, button, modifier or Qt.KeyboardModifier.NoModifier, at or QPoint())


def canvas_point(viewer, row: float, col: float):
    """Where image pixel (row, col) is on the canvas widget (napari's 2-D camera: centre and zoom)."""
    from qtpy.QtCore import QPoint

    canvas = viewer.window._qt_viewer.canvas.native
    camera = viewer.scene.camera if hasattr(viewer, "scene") else viewer.camera  # napari 0.9 moved it
    cy, cx = camera.center[-2:]
    zoom, size = camera.zoom, canvas.size()
    return canvas, QPoint(
        int(round((col - cx) * zoom + size.width() / 2)), int(round((row - cy) * zoom + size.height() / 2))
    )


def test_open_click_accept_and_resume_in_napari(screen, features_model, tmp_path):
    from qtpy.QtCore import Qt

    from iclsam.apps.napari_annotator import AnnotatorWidget

    images = tmp_path / "scans"
    images.mkdir()
    truths = []
    for seed in range(3):
        picture, truth = case(seed)
        Image.fromarray(picture).save(images / f"case{seed}.png")
        truths.append(truth)
    (images / "case0x.png").write_bytes(b"not a picture")  # unreadable, second in the folder's order
    left = Qt.MouseButton.LeftButton

    viewer = napari.Viewer(show=True)
    try:
        _, widget = viewer.window.add_plugin_dock_widget("iclsam", "Annotate a folder (ICL-SAM)")  # napari's menu
        assert isinstance(widget, AnnotatorWidget)
        widget.model = features_model  # the session's (the same defaults the widget would build on Open)
        widget.images_edit.setText(str(images))
        press(widget.open_button, left)
        assert "case0.png: image 1 of 4" in widget.progress_label.text()
        assert not viewer.layers["mask"].data.any()  # no context yet: nothing proposed

        centre = np.argwhere(truths[0]).mean(axis=0)
        canvas, point = canvas_point(viewer, *centre)
        press(canvas, left, at=point)  # a click on the disc adds it
        assert dice(viewer.layers["mask"].data != 0, truths[0]) > 0.9
        press(canvas, left, Qt.KeyboardModifier.ShiftModifier, point)  # Shift+click on the click takes it back
        assert not viewer.layers["mask"].data.any() and len(viewer.layers["clicks"].data) == 0
        press(canvas, left, at=point)
        _, corner = canvas_point(viewer, 90, 5)
        press(canvas, left, at=corner)  # a click on the background, then undone
        assert len(viewer.layers["clicks"].data) == 2
        press(widget.undo_button, left)
        assert dice(viewer.layers["mask"].data != 0, truths[0]) > 0.9 and len(viewer.layers["clicks"].data) == 1
        press(widget.accept_button, left)

        saved = tmp_path / "scans-masks" / "case0.png"
        assert dice(np.asarray(Image.open(saved)) > 0, truths[0]) > 0.9
        assert "case0x.png: unreadable image" in widget.message_label.text()  # reported, passed over
        assert "case1.png: image 3 of 4 (1 done, 1 in the context)" in widget.progress_label.text()
        assert dice(viewer.layers["mask"].data != 0, truths[1]) > 0.3  # proposed from the first image
        viewer.layers["mask"].data = truths[1].astype(np.uint8)  # the user paints the rest
        press(widget.accept_button, left)
        assert (np.asarray(Image.open(tmp_path / "scans-masks" / "case1.png")) > 0).tolist() == truths[1].tolist()
        shot = viewer.window.screenshot(canvas_only=False, flash=False)
        assert shot.ndim == 3 and shot.std() > 10  # something is drawn

        again = AnnotatorWidget(viewer, model=features_model)  # the folder reopened: it resumes
        again.images_edit.setText(str(images))
        press(again.open_button, left)
        assert "case2.png: image 4 of 4 (2 done, 2 in the context)" in again.progress_label.text()
    finally:
        viewer.close()


def test_annotate_refuses_a_bad_folder_before_any_window(tmp_path, capsys):
    from iclsam.cli import main

    (tmp_path / "images").mkdir()
    assert main(["annotate", "--images", str(tmp_path / "images"), "--icl", "features"]) == 2
    assert f"image folder {tmp_path / 'images'} has no image files" in capsys.readouterr().err
    Image.fromarray(case(0)[0]).save(tmp_path / "images" / "a.png")
    args = ["annotate", "--images", str(tmp_path / "images"), "--masks", str(tmp_path / "images"), "--icl", "features"]
    assert main(args) == 2 and "is the image folder" in capsys.readouterr().err
