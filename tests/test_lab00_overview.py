"""Lab 00: the pipeline figure is drawn and names every lab, the list of labs comes from the package (a wheel has no
notebooks beside it), the links lead to real notebooks, the quizzes and the two exercises pass with the solutions,
and in the student version the quizzes fail without stopping the notebook and the first exercise stops it."""

from __future__ import annotations

import json
import re

import papermill as pm
import pytest
from conftest import LABS, checks_of, lab_stems

from labhelpers import pipeline
from labhelpers.config import config_labs, lab_names
from labhelpers.course.runner import lab_notebooks
from labhelpers.course.student import student_version
from labhelpers.records import read_records

STEM = "00_overview"
LINK = re.compile(r"\]\((\d\d_[a-z_]+\.ipynb)(#[^)]*)?\)")


@pytest.fixture(scope="module")
def run(executed_lab):
    return executed_lab("00")


def test_every_lab_has_a_box_and_the_boxes_do_not_overlap():
    assert sorted(pipeline.stage_labs()) == sorted(config_labs()), "one box for every lab with a config"
    boxes = [(s.x, s.y) for s in pipeline.STAGES]
    assert len(set(boxes)) == len(boxes)
    keys = {s.key for s in pipeline.STAGES}
    assert all(a in keys and b in keys for a, b, _ in pipeline.ARROWS)


def test_the_package_lists_every_notebook_and_lab_00_asks_only_the_package(tmp_path):
    """Lab 00 takes the labs from labhelpers.config.lab_names(): a glob of a folder beside the package finds
    nothing in a wheel install (Colab), so the check would pass on an empty list. The package's list must name
    every notebook of the checkout, and the folder listing stays with the course's tools."""
    assert [p.stem for p in lab_notebooks(folder=LABS)] == sorted(lab_names())
    nb = json.loads((LABS / f"{STEM}.ipynb").read_text())
    code = "".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code")
    assert "lab_names()" in code
    assert not any(word in code for word in ("labs_dir", "labhelpers.course.runner", ".glob(")), "lab 00 reads a folder"
    with pytest.raises(FileNotFoundError, match="set LABS_DIR"):
        lab_notebooks(folder=tmp_path / "site-packages" / "labs")


@pytest.mark.notebook
def test_the_overview_draws_the_figure_and_records_its_checks(run):
    assert run.error is None, run.error
    checks = checks_of(run)
    assert checks["pipeline_names_every_lab"]["passed"]
    assert checks["pipeline_names_every_lab"]["value"] == len(config_labs()) >= 5
    assert checks["next_token_logprobs_match_model_loss"]["passed"] and checks["greedy_loop_matches_generate"]["passed"]
    quizzes = [name for name in checks if name.startswith("quiz_")]
    assert len(quizzes) >= 3 and all(checks[name]["passed"] for name in quizzes)
    nb = json.loads(open(run.output).read())
    images = [o for c in nb["cells"] if c["cell_type"] == "code" for o in c.get("outputs", [])
              if "image/png" in o.get("data", {})]
    assert len(images) == 1, "one figure: the pipeline"


@pytest.mark.parametrize("stem", lab_stems())
def test_each_lab_links_to_existing_labs_and_places_itself_in_the_pipeline(stem):
    nb = json.loads((LABS / f"{stem}.ipynb").read_text())
    text = "".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown")
    targets = {m.group(1) for m in LINK.finditer(text)} - {f"{stem}.ipynb"}
    assert targets, f"{stem} links to no other lab"
    assert all((LABS / t).exists() for t in targets), targets
    if stem != STEM:
        first, last = "".join(nb["cells"][0]["source"]), "".join(nb["cells"][-2]["source"])
        assert "00_overview.ipynb" in first, f"{stem}'s first cell does not say where it sits in the pipeline"
        assert "next" in last.lower() and LINK.search(last), f"{stem}'s closing cell names no next lab"


@pytest.mark.notebook
def test_the_student_version_records_every_quiz_unanswered_and_stops_at_the_first_exercise(tmp_path):
    """The quizzes come before section 4's exercises: each records an unanswered (failed) question without stopping
    the notebook, and the first exercise's TODO stops it, with the figure's check recorded before."""
    solution = json.loads((LABS / f"{STEM}.ipynb").read_text())
    src, out = tmp_path / "student.ipynb", tmp_path / "out.ipynb"
    src.write_text(json.dumps(student_version(solution, STEM)))
    with pytest.raises(pm.PapermillExecutionError, match="NotImplementedError"):
        pm.execute_notebook(str(src), str(out), parameters={"PROFILE": "tiny"}, kernel_name="python3",
                            progress_bar=False, cwd=str(tmp_path), execution_timeout=300)
    checks = {r["name"]: r for r in read_records(out) if r["kind"] == "check"}
    quizzes = [r for name, r in checks.items() if name.startswith("quiz_")]
    assert len(quizzes) >= 3 and not any(r["passed"] for r in quizzes)
    assert all("not answered yet" in r["message"] for r in quizzes)
    assert checks["pipeline_names_every_lab"]["passed"], "the lab runs up to the first exercise"
    assert "next_token_logprobs_match_model_loss" not in checks, "the first exercise stops the notebook"
