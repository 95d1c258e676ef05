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
