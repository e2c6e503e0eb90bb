"""Reports: our results beside the paper's. `paper` (its tasks, rows, tables, order; `Provenance`),
`tables` (each table as a long CSV), `markdown` (the paper's shape; writing a table), `metrics`
(metrics.json), `compare` (`iclsam check-tables`)."""

from __future__ import annotations

from iclsam.pipeline.report.compare import TOLERANCE, compare_tables, read_table  # noqa: F401
from iclsam.pipeline.report.markdown import (  # noqa: F401
    COLUMN_ORDER,
    paper_shaped_markdown,
    to_markdown,
    weak_context_markdown,
    write_table,
)
from iclsam.pipeline.report.metrics_file import dice_metrics, run_summary  # noqa: F401
from iclsam.pipeline.report.paper import (  # noqa: F401
    ABLATION_ROW,
    BACKBONE_NAME,
    DATASET_ORDER,
    ICL_NAME,
    PAPER_DATASET,
    PAPER_DIR,
    PAPER_TASK,
    TABLE1_ROW,
    TASK_ORDER,
    VARIANT_NAME,
    VARIANT_ORDER,
    Provenance,
    in_paper_order,
    paper_table,
    task_rank,
)
from iclsam.pipeline.report.tables import (  # noqa: F401
    ablation_table,
    assd_table,
    dataset_ablation_table,
    dice_by_m,
    empty_prediction_counts,
    gt_box_table,
    icl_backend_table,
    ours_by_paper_task,
    paper_long,
    per_backbone,
    per_draw_means,
    sam_gt_once,
    side_by_side,
    table1,
    weak_context_table,
)
