"""The lesson, not the plumbing: short code cells in every lab, and "Under the hood" cells collapsed.

Issue 16: no code cell has more than 25 non-blank lines, and a lab has at most three over 15.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import lab_paths

LABS = lab_paths()
LONGEST = 25
LONG = 15
MOST_LONG_CELLS = 3


def cells_of(path: Path) -> list[dict]:
    return json.loads(path.read_text(encoding="utf-8"))["cells"]


def non_blank_lines(cell: dict) -> int:
    return sum(1 for line in "".join(cell["source"]).splitlines() if line.strip())


def lengths_of_code_cells(path: Path) -> dict[str, int]:
    return {cell.get("id", f"#{i}"): non_blank_lines(cell) for i, cell in enumerate(cells_of(path))
            if cell["cell_type"] == "code"}


def test_every_lab_is_found():
    assert len(LABS) >= 7, [p.name for p in LABS]


@pytest.mark.parametrize("lab", LABS, ids=lambda p: p.stem)
def test_no_code_cell_is_longer_than_25_lines(lab):
    too_long = {cid: n for cid, n in lengths_of_code_cells(lab).items() if n > LONGEST}
    assert not too_long, f"{lab.name}: code cells over {LONGEST} non-blank lines (id: lines): {too_long}"


@pytest.mark.parametrize("lab", LABS, ids=lambda p: p.stem)
def test_at_most_three_code_cells_are_longer_than_15_lines(lab):
    long_cells = {cid: n for cid, n in lengths_of_code_cells(lab).items() if n > LONG}
    assert len(long_cells) <= MOST_LONG_CELLS, (
        f"{lab.name}: {len(long_cells)} code cells over {LONG} non-blank lines (id: lines): {long_cells}; "
        f"at most {MOST_LONG_CELLS} may be")


@pytest.mark.parametrize("lab", LABS, ids=lambda p: p.stem)
def test_under_the_hood_cells_are_collapsed(lab):
    for cell in cells_of(lab):
        heading = "".join(cell["source"]).lstrip("#> *\n").lower()
        if cell["cell_type"] == "markdown" and heading.startswith("under the hood"):
            assert cell["metadata"].get("jupyter", {}).get("source_hidden") is True, (
                f"{lab.name}, cell {cell.get('id')}: an 'Under the hood' cell must be collapsed "
                "(metadata jupyter.source_hidden = true)")


def test_the_counts_read_what_a_reader_sees():
    cell = {"cell_type": "code", "source": ["a = 1\n", "\n", "   \n", "b = 2\n", "# a comment counts\n"]}
    assert non_blank_lines(cell) == 3


@pytest.mark.parametrize("lab", LABS, ids=lambda p: p.stem)
def test_benchmark_figures_sit_under_the_hood(lab):
    visible = [cell.get("id") for cell in cells_of(lab) if cell["cell_type"] == "markdown"
               and not cell["metadata"].get("jupyter", {}).get("source_hidden")
               and "benchmarks/" in "".join(cell["source"])]
    assert not visible, (f"{lab.name}: markdown cells {visible} quote a benchmark in the lesson; move it into a "
                         "collapsed 'Under the hood' cell or the README")


@pytest.mark.parametrize("stem", ["01_instruction_tuning", "02_reward_modeling", "03_dpo"])
def test_labs_with_engineering_notes_have_an_under_the_hood_cell(stem):
    (lab,) = [p for p in LABS if p.stem == stem]
    hidden = [cell for cell in cells_of(lab) if cell["cell_type"] == "markdown"
              and "".join(cell["source"]).lstrip("# ").lower().startswith("under the hood")]
    assert hidden, f"{lab.name} has no 'Under the hood' cell for its API history and benchmark notes"


@pytest.mark.parametrize("lab", LABS, ids=lambda p: p.stem)
def test_exactly_one_cell_is_tagged_parameters(lab):
    """papermill injects its parameters after the first tagged cell: a second one would reset them to None."""
    tagged = [c for c in cells_of(lab) if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1, f"{lab.name}: {len(tagged)} cells tagged 'parameters'"
