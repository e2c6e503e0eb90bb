"""The graphical annotator: a napari widget on `FolderAnnotation` (the `gui` extra; the npe2 plugin
`iclsam`, or `iclsam annotate`).

Open a folder of images: the first image without a mask appears with ICL-SAM's proposal from the
images finished so far (the `mask` layer), or nothing when ICL-SAM is unsure of it (a message
says so). A click on the image adds the object under it (next to the mask: pushes its edge out to
the click), Shift+click removes it (inside the mask: pulls an edge in past the click; on a click's
marker: takes that click back); the `clicks` layer shows them, green and magenta; `Undo click`
takes the last back; napari's own brush and eraser on the `mask` layer work too. `Accept` writes
the mask into the masks folder at once (atomically), the image joins the context and the next
image opens; `Skip` passes over it. Clicks are read only while the selected layer is in pan-and-zoom mode, so painting
is never taken for a click."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from napari.utils.colormaps import DirectLabelColormap
from qtpy.QtWidgets import QFileDialog, QHBoxLayout, QLabel, QLineEdit, QPushButton, QVBoxLayout, QWidget

from iclsam.apps.annotation_folder import FolderAnnotation

CLICK_COLOURS = {True: "lime", False: "magenta"}
MASK_COLOURS = DirectLabelColormap(color_dict={None: "transparent", 0: "transparent", 1: "cyan"})


def default_masks_folder(images: Path) -> Path:
    """Beside the image folder, never inside it: `<folder>-masks`."""
    return images.with_name(f"{images.name}-masks")


class AnnotatorWidget(QWidget):
    """See the module. `model`: an `ICLSAM` (built with the defaults on the first Open when None);
    `max_context`: the images the context keeps (`Annotator`)."""

    def __init__(self, napari_viewer, model=None, max_context: int = 16):
        super().__init__()
        self.viewer, self.model, self.max_context = napari_viewer, model, max_context
        self.session: FolderAnnotation | None = None
        self.clicks: list[tuple[int, int, bool]] = []
        self.images_edit, self.masks_edit = QLineEdit(), QLineEdit()
        self.images_edit.setPlaceholderText("a folder of images (PNG, JPEG, TIFF, 2-D NIfTI)")
        self.masks_edit.setPlaceholderText("masks folder (default: <images>-masks)")
        self.open_button, browse = QPushButton("Open"), QPushButton("Browse...")
        self.accept_button, self.skip_button = QPushButton("Accept"), QPushButton("Skip")
        self.undo_button = QPushButton("Undo click")
        self.progress_label, self.message_label = QLabel("no folder open"), QLabel("")
        self.message_label.setWordWrap(True)
        self._lay_out(browse)
        browse.clicked.connect(self._browse)
        self.open_button.clicked.connect(self.open_folder)
        self.accept_button.clicked.connect(self.accept)
        self.skip_button.clicked.connect(self.skip)
        self.undo_button.clicked.connect(self.undo_click)
        self.viewer.mouse_drag_callbacks.append(self._on_mouse)
        self._enable(False)

    def _lay_out(self, browse: QPushButton) -> None:
        layout = QVBoxLayout(self)
        row = QHBoxLayout()
        row.addWidget(self.images_edit)
        row.addWidget(browse)
        layout.addLayout(row)
        layout.addWidget(self.masks_edit)
        layout.addWidget(self.open_button)
        layout.addWidget(self.progress_label)
        buttons = QHBoxLayout()
        for button in (self.accept_button, self.skip_button, self.undo_button):
            buttons.addWidget(button)
        layout.addLayout(buttons)
        layout.addWidget(QLabel("click: add to the mask   Shift+click: remove"))
        layout.addWidget(self.message_label)
        layout.addStretch()

    def _browse(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Folder of images to annotate")
        if folder:
            self.images_edit.setText(folder)

    def _enable(self, on: bool) -> None:
        for button in (self.accept_button, self.skip_button, self.undo_button):
            button.setEnabled(on)

    def say(self, message: str) -> None:
        self.message_label.setText(message)

    def open_folder(self) -> bool:
        """Opens the folder typed in (resuming from the masks already saved) at its next image;
        False (and the reason shown) when it cannot be opened."""
        images = Path(self.images_edit.text().strip()).expanduser()
        masks = Path(self.masks_edit.text().strip()).expanduser() if self.masks_edit.text().strip() else None
        try:
            if self.model is None:
                from iclsam.method.model import ICLSAM

                self.model = ICLSAM()
            session = FolderAnnotation(self.model, images, masks or default_masks_folder(images), self.max_context)
        except (ValueError, OSError) as error:
            self.session = None
            self._enable(False)
            self.say(str(error))
            return False
        self.open_session(session)
        return True

    def open_session(self, session: FolderAnnotation) -> None:
        """Shows an opened folder at its next image."""
        self.session, self.model = session, session.annotator.model
        self.images_edit.setText(str(session.folder))
        self.masks_edit.setText(str(session.masks))
        self.say("")
        self.show_next(-1)

    def show_next(self, after: int) -> None:
        """Opens the next image still to annotate; an unreadable one is reported and passed over."""
        session = self.session
        problems = []
        while (k := session.next_index(after)) is not None:
            try:
                proposal = session.open(k)
                if (state := session.annotator.current).withheld is not None:
                    problems.append(
                        f"ICL-SAM is unsure of this image (confidence {state.confidence:.2f} < "
                        f"{session.annotator.min_confidence:.2f}): it starts empty; click the target"
                    )
                break
            except (ValueError, OSError) as error:
                problems.append(str(error))
                after = k
        self.say("\n".join(problems))
        if k is None:
            self._enable(False)
            self.progress_label.setText(f"all {len(session.files)} images done; masks in {session.masks}")
            return
        self._show(session, k, proposal)

    def _show(self, session: FolderAnnotation, k: int, proposal: np.ndarray) -> None:
        image = session.current.image
        done = sum(session.is_done(i) for i in range(len(session.files)))
        self.progress_label.setText(
            f"{session.files[k].name}: image {k + 1} of {len(session.files)} ({done} done, "
            f"{len(session.annotator.context)} in the context)"
        )
        for name in ("clicks", "mask", "image"):
            if name in self.viewer.layers:
                self.viewer.layers.remove(name)
        rgb = image.ndim == 3
        self.viewer.add_image(image, name="image", rgb=rgb)
        self.viewer.add_labels(proposal.astype(np.uint8), name="mask", opacity=0.45, colormap=MASK_COLOURS)
        self.marker = max(4, min(image.shape[:2]) // 40)  # the click markers' diameter, in pixels
        self.viewer.add_points(np.zeros((0, 2)), name="clicks", size=self.marker)
        self.viewer.layers.selection.active = self.viewer.layers["image"]
        self.viewer.reset_view()
        self.clicks = []
        self._enable(True)

    def click(self, x: int, y: int, positive: bool = True) -> None:
        """One more click at pixel (x, y): the mask is the proposal corrected by every click so far.
        A Shift+click on a positive click's marker takes that click back instead."""
        on = [
            k for k, (u, v, p) in enumerate(self.clicks) if p and (u - x) ** 2 + (v - y) ** 2 <= (self.marker / 2) ** 2
        ]
        place, click = (on[-1], self.clicks.pop(on[-1])) if on and not positive else (len(self.clicks), None)
        if click is None:
            self.clicks.append((x, y, positive))
        if not self._recompute():
            if click:  # put back what was taken
                self.clicks.insert(place, click)
            else:
                self.clicks.pop()

    def undo_click(self) -> None:
        if self.clicks:
            self.clicks.pop()
            self._recompute()

    def _recompute(self) -> bool:
        session = self._session()
        try:
            mask = session.correct(clicks=self.clicks) if self.clicks else session.current.proposal
        except ValueError as error:
            self.say(str(error))
            return False
        self.viewer.layers["mask"].data = mask.astype(np.uint8)
        points = self.viewer.layers["clicks"]
        points.data = np.array([[y, x] for x, y, _ in self.clicks], float).reshape(-1, 2)
        points.face_color = [CLICK_COLOURS[keep] for *_, keep in self.clicks] or "lime"
        self.say("")
        return True

    def accept(self) -> None:
        """Saves the mask as shown (clicks and painting), then opens the next image."""
        session = self._session()
        k = session.current.index
        try:
            path = session.accept(np.asarray(self.viewer.layers["mask"].data) != 0)
        except (ValueError, OSError) as error:
            self.say(str(error))
            return
        self.show_next(k)
        if not self.message_label.text():
            self.say(f"saved {path}")

    def skip(self) -> None:
        session = self._session()
        k = session.current.index
        session.skip()
        self.show_next(k)

    def _session(self) -> FolderAnnotation:
        if self.session is None or self.session.current is None:
            raise RuntimeError("no image is open")
        return self.session

    def _on_mouse(self, viewer, event):
        """A press and release without a drag on the image is a click (Shift: a negative one)."""
        active = viewer.layers.selection.active
        if self.session is None or self.session.current is None or getattr(active, "mode", "pan_zoom") != "pan_zoom":
            return
        start = tuple(event.position)
        dragged = False
        yield
        while event.type == "mouse_move":
            dragged = dragged or np.hypot(*np.subtract(event.position, start)[-2:]) > 1
            yield
        if dragged or "image" not in viewer.layers:
            return
        row, col = viewer.layers["image"].world_to_data(start)[:2]
        self.click(int(round(col)), int(round(row)), positive="Shift" not in event.modifiers)
