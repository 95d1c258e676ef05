"""Issue 25, item 8: the prose that lists the course names every lab of it.

Lab 00's table and order and lab 05's closing each list the course. Written out by hand, such a list goes stale
as soon as a lab is added (lab 00 said "five labs" and left lab 06 out; lab 05 said the course ends there). Each
listing names every lab in labs/, either by linking it in the cell's Markdown or by printing
``labhelpers.pipeline.course_table()``, which takes the labs from the package (``config.lab_names()``), so that a
lab 07 appears in every listing without anyone editing the prose.
"""

from __future__ import annotations

import json
import re

import pytest
from conftest import LABS, lab_stems

from labhelpers import pipeline
from labhelpers.config import OVERVIEW_LAB

# lab -> the heading of the section that lists the course; the listing runs to the next heading of that level
LISTINGS = {
    "00_overview": "## 2. What each lab adds",
    "05_generation_parameters": "## Summary",
}
LINK = re.compile(r"\]\((\d\d_[a-z0-9_]+)\.ipynb")
PRINTS_THE_COURSE = re.compile(r"\b(show_course|course_table)\(")
COUNT_OF_LABS = re.compile(r"\b(two|three|four|five|six|seven|eight|nine|ten|\d+) labs\b", re.IGNORECASE)


def listing_cells(stem: str) -> list[dict]:
    """The cells of ``stem``'s section that lists the course (from its heading to the next one of its level)."""
    cells = json.loads((LABS / f"{stem}.ipynb").read_text(encoding="utf-8"))["cells"]
    heading = LISTINGS[stem]
    level = heading.split(" ", 1)[0] + " "
    starts = [i for i, c in enumerate(cells) if c["cell_type"] == "markdown"
              and "".join(c["source"]).lstrip().startswith(heading)]
    assert starts, f"{stem} has no section {heading!r} any more: point LISTINGS at the cells that list the course"
    span = [cells[starts[0]]]
    for cell in cells[starts[0] + 1:]:
        text = "".join(cell["source"]).lstrip()
        if cell["cell_type"] == "markdown" and text.startswith("#") and len(text.split(" ", 1)[0]) <= len(level) - 1:
            break
        span.append(cell)
    return span


def labs_named(cells: list[dict]) -> set[str]:
    """The labs a reader of these cells sees named: linked in the Markdown, or printed by course_table()."""
    named = set()
    for cell in cells:
        source = "".join(cell["source"])
        if cell["cell_type"] == "markdown":
            named |= set(LINK.findall(source))
        elif PRINTS_THE_COURSE.search(source):
            named |= set(LINK.findall(pipeline.course_table()))
    return named


def course() -> set[str]:
    return set(lab_stems()) - {OVERVIEW_LAB}


@pytest.mark.parametrize("stem", sorted(LISTINGS))
def test_each_listing_of_the_course_names_every_lab(stem):
    missing = course() - labs_named(listing_cells(stem))
    assert not missing, f"{stem}'s section {LISTINGS[stem]!r} lists the course without {sorted(missing)}"


def test_lab_00_prints_its_table_and_order_from_the_package():
    """The table and the order are the package's, not prose: a new lab needs no edit of lab 00."""
    code = "".join("".join(c["source"]) for c in listing_cells(OVERVIEW_LAB) if c["cell_type"] == "code")
    assert PRINTS_THE_COURSE.search(code), "lab 00's table and order are written by hand"
    order = pipeline.course_order()
    assert all(f"**{stem[:2]}**" in order for stem in course()), order


@pytest.mark.parametrize("stem", sorted(LISTINGS))
def test_no_listing_counts_the_labs_or_ends_the_course(stem):
    cells = json.loads((LABS / f"{stem}.ipynb").read_text(encoding="utf-8"))["cells"]
    prose = "".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")
    assert not COUNT_OF_LABS.search(prose), f"{stem} counts the labs in prose: {COUNT_OF_LABS.search(prose)[0]!r}"
    assert "course is complete" not in prose and "course ends" not in prose, f"{stem} ends the course early"


def test_a_new_lab_appears_in_the_table_and_the_order_without_an_edit(monkeypatch):
    from labhelpers import config

    labs = [*config.lab_names(), "07_tool_use"]
    monkeypatch.setattr(config, "lab_names", lambda: labs)
    table = pipeline.course_table(here="05_generation_parameters")
    assert set(LINK.findall(table)) == set(labs) - {OVERVIEW_LAB}
    assert "[07 Tool use](07_tool_use.ipynb)" in table and "**07**" in pipeline.course_order()
    assert table.count("you are here") == 1


def test_lab_05_says_where_the_temperature_bias_comes_from_and_trl_does_what_it_says():
    """Issue 25, item 7: sampling at another temperature biases the update only when the log-probs are computed at
    a different one. TRL's GRPO and RLOO divide the logits by their sampling temperature before the log-probs
    (``add_fused_lm_head(..., temperature=self.temperature)`` now, ``logits / self.temperature`` in older releases)."""
    import inspect

    import trl

    cells = json.loads((LABS / "05_generation_parameters.ipynb").read_text(encoding="utf-8"))["cells"]
    (note,) = ["".join(c["source"]) for c in cells if c.get("id") == "dc9057ff"]
    assert "only when the two differ" in note and "trl/trainer/grpo_trainer.py" in note, note[:300]
    scaled = re.compile(r"temperature=self\.temperature|/\s*\(?self\.(args\.)?temperature|/=\s*\(?(self\.)?args\.temperature")
    for name in ("GRPOTrainer", "RLOOTrainer"):
        trainer = getattr(trl, name, None)
        if trainer is None:
            continue
        source = inspect.getsource(inspect.getmodule(trainer))
        assert "temperature" in source and scaled.search(source), f"{name} no longer scales its logits by temperature"


@pytest.mark.notebook
@pytest.mark.parametrize("stem", sorted(LISTINGS))
def test_labs_00_and_05_echo_nothing_draw_no_empty_figure_and_every_check_shows_a_value(stem, executed_lab):
    """Issue 25, item 8: no echoed return value (an ``Out[n]:``), no empty figure, a summary of values, not names
    or ``None``; and the course table is printed where the listing asks for it."""
    run = executed_lab(stem[:2])
    assert run.error is None, run.error
    cells = json.loads(open(run.output, encoding="utf-8").read())["cells"]
    outputs = [(c.get("id"), o) for c in cells if c["cell_type"] == "code" for o in c.get("outputs", [])]
    echoed = [cid for cid, o in outputs if o["output_type"] == "execute_result"]
    assert not echoed, f"{stem}: cells {echoed} echo a return value"
    plain = ["".join(o.get("data", {}).get("text/plain", o.get("text", ""))) for _, o in outputs]
    assert not [t for t in plain if "with 0 Axes" in t], f"{stem} draws an empty figure"
    valueless = [r["name"] for r in run.records if r["kind"] == "check" and r.get("value") is None]
    assert not valueless, f"{stem}'s summary shows no value for {valueless}"
    tables = [o for _, o in outputs if "[06 Scaling up](06_scaling_up.ipynb)" in "".join(o.get("data", {}).get(
        "text/markdown", ""))]
    assert len(tables) == 1, f"{stem} prints the course table {len(tables)} times"
