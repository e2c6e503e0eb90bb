"""The report's tables in the paper's shape: every cell is the long table's number, nothing lost or
moved, and rows come in the paper's order."""

import re

import numpy as np
import pandas as pd

from iclsam.pipeline.report import (
    ablation_table,
    assd_table,
    in_paper_order,
    paper_long,
    paper_shaped_markdown,
    paper_table,
    per_backbone,
    table1,
)

VARIANTS = {
    "universeg": ["universeg", "universeg+conf", "sam", "sam+conf", "iclsam", "sam+gt"],
    "features": ["features", "sam", "sam+conf", "iclsam", "sam+gt"],
}


def random_scores(seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = [
        dict(
            sam="lite",
            icl=icl,
            task=task,
            m=m,
            draw=d,
            query=str(q),
            variant=v,
            dice=rng.random(),
            assd=rng.random() * 20,
        )
        for icl, variants in VARIANTS.items()
        for task in ("ct_kidney", "brain_t1", "fundus_cup", "fundus_disc")
        for m in (1, 2, 4)
        for d in range(2)
        for q in range(2)
        for v in variants
    ]
    return pd.DataFrame(rows)


def parse(markdown: str) -> tuple[list[str], list[list[str]]]:
    lines = [line for line in markdown.splitlines() if line.startswith("|")]
    split = lambda line: [c.strip() for c in line.strip("|").split("|")]  # noqa: E731
    return split(lines[0]), [split(line) for line in lines[2:]]


def test_table1_cells_are_the_means_over_queries_draws_and_tasks_beside_the_paper():
    scores = random_scores()
    t1 = per_backbone(scores, table1)
    header, rows = parse(
        paper_shaped_markdown(
            t1, [("dataset", "data set"), ("icl", "ICL model"), ("variant", "model"), ("model", "paper's row")]
        )
    )
    assert header[-3:] == ["m = 1", "m = 2", "m = 4"]
    assert len(rows) == 3 * 2 * 2  # data sets x ICL models x (alone, full)
    paper = paper_long(paper_table("dice_table1"), ["dataset", "model"]).set_index(["dataset", "model", "m"])["dice"]
    fundus_tasks = ["fundus_cup", "fundus_disc"]
    for row in rows:
        dataset, icl_label, model_label, paper_row = row[:4]
        icl = "features" if icl_label.startswith("features") else "universeg"
        variant = icl if model_label == "ICL alone" else "iclsam"
        tasks = {"fundus": fundus_tasks, "brats": ["brain_t1"], "kits23": ["ct_kidney"]}[dataset]
        for m, cell in zip((1, 2, 4), row[4:]):
            part = scores[(scores["icl"] == icl) & (scores["variant"] == variant) & (scores["m"] == m)]
            # independent: per task the mean over draws of the per-query mean; then over the data set's tasks
            expected = np.mean([part[part["task"] == t].groupby("draw")["dice"].mean().mean() for t in tasks])
            ours, theirs = re.fullmatch(r"([\d.]+) \(([\d.]+)\)", cell).groups()
            assert float(ours) == round(expected, 3)
            assert float(theirs) == round(paper[(dataset, paper_row, m)], 3)


def test_tables_come_in_the_papers_order_with_the_default_icl_model_first():
    scores = random_scores()
    ablation = in_paper_order(per_backbone(scores, lambda part, sam: ablation_table(part)), icl_first="features")
    tasks = list(dict.fromkeys(ablation["paper_task"]))
    assert tasks == ["fundus_disc", "fundus_cup", "brats_t1", "kits23"]
    first = ablation[ablation["paper_task"] == "fundus_disc"]
    assert list(dict.fromkeys(first["icl"])) == ["features", "universeg"]
    assert list(dict.fromkeys(first.loc[first["icl"] == "universeg", "variant"])) == VARIANTS["universeg"][:-1]
    assert (np.diff(first.loc[(first["icl"] == "features") & (first["variant"] == "sam"), "m"]) > 0).all()


def test_assd_table_leaves_a_cell_blank_where_the_paper_has_none():
    t6 = per_backbone(random_scores(), assd_table)
    _, rows = parse(
        paper_shaped_markdown(t6, [("dataset", "data set"), ("icl", "ICL model"), ("variant", "model")], digits=2)
    )
    gt_rows = [r for r in rows if r[2] == "SAM + GT boxes"]
    assert gt_rows and all(
        re.fullmatch(r"[\d.]+", c) for r in gt_rows for c in r[3:]
    )  # the paper gives GT only at m = 8


def test_every_relative_link_of_the_readme_and_docs_resolves():
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    pages = [root / "README.md", *sorted((root / "docs").glob("*.md"))]
    assert len(pages) > 5
    broken = []
    for page in pages:
        for target in re.findall(r"\]\(([^)\s]+)\)", page.read_text()):
            if re.match(r"[a-z]+:", target) or target.startswith("#"):
                continue  # a web address or an anchor of the page itself
            if not (page.parent / target.split("#")[0]).exists():
                broken.append(f"{page.relative_to(root)} -> {target}")
    assert not broken, broken
    assert len((root / "README.md").read_text().splitlines()) < 250
