"""Copies the pipeline's Table 1 (tables/table1_dice.md, as `dvc repro` wrote it) into README.md
between the `results` markers, so the README shows what the pipeline produced, not typed numbers.

    python scripts/readme_results.py
"""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
START, END = "<!-- results:start (scripts/readme_results.py) -->", "<!-- results:end -->"


def main() -> None:
    table = (ROOT / "tables" / "table1_dice.md").read_text().strip()
    body = table.split("\n", 1)[1].strip()  # drop the table's own title line
    readme = (ROOT / "README.md").read_text()
    head, rest = readme.split(START, 1)
    _, tail = rest.split(END, 1)
    (ROOT / "README.md").write_text(f"{head}{START}\n{body}\n{END}{tail}")


if __name__ == "__main__":
    main()
