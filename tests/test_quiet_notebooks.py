"""What a learner reads under the cells of an executed tiny lab: values the lab prints, not return values that a
cell's last expression echoes (``Out: True`` under every quiz, a dict of HTML under a mask display)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import lab_stems


def echoed(nb: dict) -> list[str]:
    """Each code cell whose last expression's value Jupyter printed (an ``execute_result`` output)."""
    out = []
    for n, cell in enumerate(nb["cells"], 1):
        for output in cell.get("outputs", []) if cell["cell_type"] == "code" else []:
            if output.get("output_type") == "execute_result":
                text = "".join(output.get("data", {}).get("text/plain", ""))[:60]
                last = "".join(cell["source"]).strip().split("\n")[-1][:60]
                out.append(f"cell {n} (`{last}`) echoes {text!r}")
    return out


def test_an_echo_is_found():
    cell = {"cell_type": "code", "source": ["quiz.check('x', 'b')"],
            "outputs": [{"output_type": "execute_result", "data": {"text/plain": "True"}}]}
    assert echoed({"cells": [cell]}) == ["cell 1 (`quiz.check('x', 'b')`) echoes 'True'"]


@pytest.mark.notebook(labs="all")
@pytest.mark.parametrize("stem", lab_stems())
def test_no_cell_of_an_executed_lab_echoes_a_return_value(executed_lab, stem):
    run = executed_lab(stem)
    assert run.error is None, run.error
    assert echoed(json.loads(Path(run.output).read_text(encoding="utf-8"))) == []
