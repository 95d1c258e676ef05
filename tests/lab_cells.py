"""Code cells of a lab, run in this process: tests of one function or step a lab defines, on the tiny models, without
executing the whole notebook. The cells are named by their ids, so a test follows a cell when others move."""

from __future__ import annotations

import nbformat
from conftest import LABS


def cell_source(stem: str, cell_id: str) -> str:
    nb = nbformat.read(LABS / f"{stem}.ipynb", as_version=4)
    found = [c.source for c in nb.cells if c.get("id") == cell_id and c.cell_type == "code"]
    assert found, f"{stem} has no code cell with id {cell_id!r}"
    return found[0]


def run_cells(stem: str, cell_ids: list[str], namespace: dict) -> dict:
    """Execute the lab's code cells ``cell_ids`` in order in ``namespace`` (updated and returned)."""
    for cell_id in cell_ids:
        exec(compile(cell_source(stem, cell_id), f"<{stem} cell {cell_id}>", "exec"), namespace)
    return namespace


def lab_code(stem: str) -> str:
    """Every code cell of a lab, joined, without comments (a comment may name what the code no longer does)."""
    import re

    nb = nbformat.read(LABS / f"{stem}.ipynb", as_version=4)
    return re.sub(r"#[^\n]*", "", "\n".join(c.source for c in nb.cells if c.cell_type == "code"))


def calls(code: str, opening: str) -> list[str]:
    """The text of each call in ``code`` that starts with ``opening`` (``"model.generate("``), to its parenthesis."""
    found, start = [], code.find(opening)
    while start >= 0:
        depth, end = 0, len(code) - 1
        for end in range(start + len(opening) - 1, len(code)):
            depth += {"(": 1, ")": -1}.get(code[end], 0)
            if depth == 0:
                break
        found.append(code[start:end + 1])
        start = code.find(opening, end)
    return found


def model_loads(code: str) -> list[str]:
    """Every ``AutoModel...from_pretrained(...)`` call of the code."""
    import re

    return [call for opening in sorted(set(re.findall(r"AutoModel\w*\.from_pretrained\(", code)))
            for call in calls(code, opening)]
