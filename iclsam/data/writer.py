"""Writing a task folder of the prepared format atomically: records go into a hidden partial folder
that is renamed into place only when every record of every task was valid."""

from __future__ import annotations

import contextlib
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from iclsam.common.inputs import check_image, check_mask


class TaskWriter:
    """Writes `<out>/<task>/{images,masks}/<id>.png` and `meta.csv` into a hidden temporary folder;
    `commit` moves it into place (replacing an older one), `abort` removes it."""

    def __init__(self, out: Path, task: str):
        self.out, self.task = out, task
        self.final = out / task
        self.partial = out / f".{task}.partial-{uuid.uuid4().hex[:8]}"
        (self.partial / "images").mkdir(parents=True)
        (self.partial / "masks").mkdir()
        self.rows: list[dict] = []

    def add(self, image_id: str, case: str, split: str, image: np.ndarray, mask: np.ndarray, source: str) -> None:
        """One image and its mask; `source` names the file(s) they came from, for errors."""
        image = check_image(image, source)
        mask = check_mask(mask, image.shape[:2], source)
        if image.dtype != np.uint8:
            raise ValueError(f"{source}: prepared images are 8-bit, got {image.dtype}")
        Image.fromarray(image).save(self.partial / "images" / f"{image_id}.png")
        Image.fromarray(mask.astype(np.uint8) * 255).save(self.partial / "masks" / f"{image_id}.png")
        self.rows.append(
            dict(
                id=image_id,
                case=case,
                split=split,
                h=image.shape[0],
                w=image.shape[1],
                fg_fraction=round(float(mask.mean()), 5),
            )
        )

    def commit(self) -> Path:
        if not self.rows:
            raise ValueError(f"task {self.task}: no images were found to prepare")
        pd.DataFrame(self.rows).sort_values("id", kind="stable").to_csv(self.partial / "meta.csv", index=False)
        old = self.out / f".{self.task}.old-{uuid.uuid4().hex[:8]}"
        if self.final.exists():
            self.final.rename(old)
        self.partial.rename(self.final)
        shutil.rmtree(old, ignore_errors=True)
        return self.final

    def abort(self) -> None:
        shutil.rmtree(self.partial, ignore_errors=True)


@contextlib.contextmanager
def writing_tasks(out: str | Path, tasks) -> Iterator[dict[str, TaskWriter]]:
    """Writers for several tasks that appear together only when every record was valid: on any
    error none of them is left behind (an older complete version stays)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    writers: dict[str, TaskWriter] = {}
    try:
        for task in tasks:
            writers[task] = TaskWriter(out, task)
        yield writers
        empty = [t for t, w in writers.items() if not w.rows]
        if empty:
            raise ValueError(f"no images were found to prepare for {', '.join(empty)}")
    except BaseException:
        for writer in writers.values():
            writer.abort()
        raise
    for writer in writers.values():
        writer.commit()
