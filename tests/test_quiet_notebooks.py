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


# Bars of work that is neither a training run nor an evaluation: datasets' map/filter (and the trainers' steps
# built on them) and transformers' loading and saving. ``labhelpers.quiet.quiet_preprocessing_bars`` hides them.
PREPROCESSING_BARS = ("Map", "Filter", "Adding EOS", "Tokenizing", "Building labels", "Truncating", "Dropping",
                      "Flattening", "Loading weights", "Writing model shards")


def preprocessing_bars(nb: dict) -> list[str]:
    """The description of each progress bar in the outputs that belongs to preprocessing, loading or saving."""
    found = []
    for cell in nb["cells"]:
        for output in cell.get("outputs", []) if cell["cell_type"] == "code" else []:
            data = output.get("data", {})
            text = "".join(data.get("text/plain", "")) if "application/vnd.jupyter.widget-view+json" in data \
                else "".join(output.get("text", "")) if output.get("name") == "stderr" else ""
            for line in text.replace("\r", "\n").splitlines():
                if "%|" in line and line.strip().startswith(PREPROCESSING_BARS):
                    found.append(line.split(":")[0].strip())
    return found


def test_a_preprocessing_bar_is_found_and_a_training_bar_is_not():
    bar = {"output_type": "display_data", "data": {"application/vnd.jupyter.widget-view+json": {},
                                                   "text/plain": "Tokenizing train dataset:   0%|          | 0/400"}}
    train = {"output_type": "stream", "name": "stderr", "text": "100%|██████████| 40/40 [00:03<00:00]"}
    cell = {"cell_type": "code", "source": [], "outputs": [bar, train]}
    assert preprocessing_bars({"cells": [cell]}) == ["Tokenizing train dataset"]


@pytest.mark.notebook(labs="all")
@pytest.mark.parametrize("stem", lab_stems())
def test_no_executed_lab_draws_a_preprocessing_bar(executed_lab, stem):
    run = executed_lab(stem)
    assert run.error is None, run.error
    assert preprocessing_bars(json.loads(Path(run.output).read_text(encoding="utf-8"))) == []
