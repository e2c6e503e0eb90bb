"""The paper's side of every report: its tasks, data sets and rows, its tables (CSV in
iclsam/paper), the order of its rows, and what a result states about itself (`Provenance`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

PAPER_DIR = Path(__file__).resolve().parents[2] / "paper"
# our task -> the paper's task (fundus tasks of the three source data sets are averaged, as the paper does)
PAPER_TASK = {
    "fundus_disc": "fundus_disc",
    "fundus_cup": "fundus_cup",
    "refuge_disc": "fundus_disc",
    "rimone_disc": "fundus_disc",
    "drishti_disc": "fundus_disc",
    "refuge_cup": "fundus_cup",
    "rimone_cup": "fundus_cup",
    "drishti_cup": "fundus_cup",
    "brain_flair": "brats_flair",
    "brain_t1": "brats_t1",
    "brain_t1ce": "brats_t1ce",
    "brain_t2": "brats_t2",
    "brats_flair": "brats_flair",
    "brats_t1": "brats_t1",
    "brats_t1ce": "brats_t1ce",
    "brats_t2": "brats_t2",
    "ct_kidney": "kits23",
    "kits23": "kits23",
}
PAPER_DATASET = {
    "fundus_disc": "fundus",
    "fundus_cup": "fundus",
    "brats_flair": "brats",
    "brats_t1": "brats",
    "brats_t1ce": "brats",
    "brats_t2": "brats",
    "kits23": "kits23",
}
# our variant -> the paper's row in Tables 4-5 (the MedSAM ablation; LiteMedSAM is compared with it)
# (the ICL model alone, UniverSeg or the training-free features backend, stands beside the paper's UniverSeg row)
ABLATION_ROW = {
    "universeg": "UniverSeg",
    "features": "UniverSeg",
    "label-attention": "UniverSeg",
    "universeg+conf": "+Confidence map in UniverSeg",
    "sam": "+MedSAM",
    "sam+conf": "+Confidence map in MedSAM",
    "iclsam": "+Fusion",
}
TABLE1_ROW = {
    "universeg": "UniverSeg",
    "iclsam": {"sam": "UniverSeg+SAM", "medsam": "UniverSeg+MedSAM", "lite": "UniverSeg+MedSAM"},
}
# the paper's order of rows: data sets and tasks as in its tables, variants as the ablation adds them
DATASET_ORDER = ("fundus", "brats", "kits23")
TASK_ORDER = ("fundus_disc", "fundus_cup", "brats_flair", "brats_t1", "brats_t1ce", "brats_t2", "kits23")
VARIANT_ORDER = ("universeg", "features", "label-attention", "universeg+conf", "sam", "sam+conf", "iclsam", "sam+gt")
ICL_NAME = {
    "universeg": "UniverSeg",
    "features": "features (training-free)",
    "label-attention": "label attention (learned on real-wide)",
}
VARIANT_NAME = {
    "universeg": "ICL alone",
    "features": "ICL alone",
    "label-attention": "ICL alone",
    "universeg+conf": "+ map in UniverSeg (Eq. 4)",
    "sam": "+ SAM, boxes",
    "sam+conf": "+ map in SAM (Eq. 3)",
    "iclsam": "+ fusion: ICL-SAM",
    "sam+gt": "SAM + GT boxes",
}
BACKBONE_NAME = {"lite": "LiteMedSAM", "sam": "SAM", "medsam": "MedSAM"}


@dataclass(frozen=True)
class Provenance:
    """What every table and figure states."""

    data: str  # e.g. "SYNTHETIC benchmark (seed 0)" or "REFUGE, RIM-ONE r3, Drishti-GS1, BraTS2020, KiTS23"
    sam: str  # SAM backbone in words
    icl_weights: str
    profile: str

    def line(self) -> str:
        return f"Data: {self.data}. SAM backbone: {self.sam}. ICL weights: {self.icl_weights}. Profile: {self.profile}."

    @property
    def is_paper_reproduction(self) -> bool:
        return self.profile == "paper" and "SYNTHETIC" not in self.data and "iclsam" not in self.icl_weights


def paper_table(name: str) -> pd.DataFrame:
    return pd.read_csv(PAPER_DIR / f"{name}.csv")


def task_rank(task: str) -> tuple[int, str]:
    """Where one of our tasks sorts: by its paper task (`TASK_ORDER`), then by name."""
    known = {t: i for i, t in enumerate(TASK_ORDER)}
    return known.get(PAPER_TASK.get(task, task), len(known)), str(task)


def in_paper_order(
    frame: pd.DataFrame, icl_first: str | None = None, annotation_order: tuple[str, ...] = ()
) -> pd.DataFrame:
    """Rows in the paper's order: backbone, data set, task (`DATASET_ORDER`, `TASK_ORDER`), ICL model
    (`icl_first` first, then by name), variant (`VARIANT_ORDER`), support annotation (weak context:
    `annotation_order`), m; unknown values after known ones."""

    def rank(column, order):
        known = {v: i for i, v in enumerate(order)}
        return frame[column].map(lambda v: (known.get(v, len(known)), str(v)))

    orders = {
        "sam": (),
        "dataset": DATASET_ORDER,
        "paper_task": TASK_ORDER,
        "task": None,
        "icl": (icl_first,) if icl_first else (),
        "variant": VARIANT_ORDER,
        "annotation": tuple(annotation_order),
        "m": (),
    }
    keys = [c for c in orders if c in frame.columns]
    ranks = [
        frame[c].map(task_rank)
        if orders[c] is None
        else rank(c, orders[c])
        if orders[c] or frame[c].dtype == object
        else frame[c]
        for c in keys
    ]
    per_row = list(zip(*ranks)) if keys else [()] * len(frame)
    order = sorted(range(len(frame)), key=per_row.__getitem__)
    return frame.iloc[order].reset_index(drop=True)
