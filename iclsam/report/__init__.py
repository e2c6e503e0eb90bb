"""Reports: our results beside the paper's. `paper` (its tasks, rows, tables, order; `Provenance`),
`tables` (each table as a long CSV), `markdown` (the paper's shape; writing a table), `metrics`
(metrics.json), `compare` (`iclsam check-tables`)."""

from __future__ import annotations

from .paper import PAPER_DIR, PAPER_TASK, PAPER_DATASET, ABLATION_ROW, TABLE1_ROW, DATASET_ORDER, TASK_ORDER, VARIANT_ORDER, ICL_NAME, VARIANT_NAME, BACKBONE_NAME, Provenance, paper_table, task_rank, in_paper_order  # noqa: F401
from .tables import per_draw_means, ours_by_paper_task, side_by_side, paper_long, ablation_table, icl_backend_table, dataset_ablation_table, table1, gt_box_table, weak_context_table, empty_prediction_counts, assd_table, per_backbone, dice_by_m, sam_gt_once  # noqa: F401
from .markdown import weak_context_markdown, paper_shaped_markdown, to_markdown, COLUMN_ORDER, write_table  # noqa: F401
from .metrics import dice_metrics, run_summary  # noqa: F401
from .compare import TOLERANCE, compare_tables, read_table  # noqa: F401
