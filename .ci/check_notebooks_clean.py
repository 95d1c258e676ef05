"""Fail when a notebook under the given folders carries outputs, execution counts or widget state."""

from __future__ import annotations

import json
import sys
from pathlib import Path


def problems(path: Path) -> list[str]:
    nb = json.loads(path.read_text(encoding="utf-8"))
    found = []
    for index, cell in enumerate(nb.get("cells", []), start=1):
        if cell.get("cell_type") != "code":
            continue
        if cell.get("outputs"):
            found.append(f"cell {index} has outputs")
        if cell.get("execution_count") is not None:
            found.append(f"cell {index} has execution_count {cell['execution_count']}")
    if "widgets" in nb.get("metadata", {}):
        found.append("notebook metadata holds widget state")
    return found


def main(folders: list[str]) -> int:
    bad = 0
    notebooks = sorted(p for folder in folders for p in Path(folder).rglob("*.ipynb")
                       if ".ipynb_checkpoints" not in p.parts)
    for path in notebooks:
        for problem in problems(path):
            print(f"{path}: {problem}")
            bad += 1
    if bad:
        print(f"{bad} problem(s): clear outputs before committing "
              "(JupyterLab: Edit > Clear Outputs of All Cells, then save).")
        return 1
    print(f"{len(notebooks)} notebook(s) clean")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:] or ["labs"]))
