"""Copies produced results into README.md and docs/*.md between their markers, so the pages show
what was produced, not typed numbers:
- `results`: the pipeline's Table 1 (tables/table1_dice.md, as `dvc repro` wrote it);
- `speed`: the speed benchmark's report (benchmarks/speed.md, as `python benchmarks/speed.py` wrote it);
- `real-dev*`: `iclsam evaluate` on the real-dev sets (benchmarks/real_dev/*.md, as `make real-dev` wrote them);
- `weak-context`: the pipeline's weak-context table (tables/weak_context.md);
- `paper-profile`: the paper profile's predicted work and time here (`python benchmarks/paper_profile.py > benchmarks/paper_profile.md`).

    python scripts/readme_results.py
"""

from pathlib import Path

from iclsam.common.atomic import write_text_atomic
from iclsam.pipeline.reproduced import block_markers, table_body

ROOT = Path(__file__).resolve().parents[1]
BLOCKS = {  # marker name -> (source file, drop its first line: the table's own title)
    "results": ("tables/table1_dice.md", True),
    "speed": ("benchmarks/speed.md", False),
    "real-dev": ("benchmarks/real_dev/summary.md", False),
    "real-dev-fusion": ("benchmarks/real_dev/fusion_auto.md", False),
    "real-dev-boxes": ("benchmarks/real_dev/paper_boxes.md", False),
    "real-dev-weak": ("benchmarks/real_dev/weak_context.md", False),
    "weak-context": ("tables/weak_context.md", True),
    "paper-profile": ("benchmarks/paper_profile.md", False),
}


def replace_block(readme: str, name: str, body: str) -> str:
    start, end = block_markers(name)
    if start not in readme or end not in readme:
        raise ValueError(f"the page lacks the markers {start} ... {end}")
    head, rest = readme.split(start, 1)
    _, tail = rest.split(end, 1)
    return f"{head}{start}\n{body}\n{end}{tail}"


def main() -> None:
    pages = {path: path.read_text() for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]}
    for name, (source, drop_title) in BLOCKS.items():
        text = (ROOT / source).read_text().strip()
        holders = [path for path, page in pages.items() if f"<!-- {name}:start" in page]
        if not holders:
            raise ValueError(f"no page holds the markers of {name!r} (README.md, docs/*.md)")
        for path in holders:
            pages[path] = replace_block(pages[path], name, table_body(text) if drop_title else text)
    for path, page in pages.items():
        if page != path.read_text():
            write_text_atomic(path, page)


if __name__ == "__main__":
    main()
