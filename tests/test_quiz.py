"""Self-check questions: right, wrong and missing answers become quiz_* checks; bad answers get a clear error;
every question a lab asks exists, and every lab asks at least three."""

from __future__ import annotations

import json
import math
import re

import pytest
from conftest import LABS, lab_stems

from labhelpers import quiz, records
from labhelpers.course.student import student_version

NOTEBOOKS = lab_stems()
CALL = re.compile(r"quiz\.check\(\s*\"(\w+)\",\s*(\w+)")


@pytest.fixture()
def log(monkeypatch):
    monkeypatch.setattr(records, "_log", [])
    return records._log


def test_a_right_choice_passes_and_explains(log, capsys):
    assert quiz.check("02_reward_offset", " (C) ") is True
    [rec] = log
    assert (rec["name"], rec["passed"], rec["value"], rec["threshold"], rec["direction"]) == \
           ("quiz_02_reward_offset", True, "c", "c", "==")
    assert "points" not in rec, "a quiz is worth what the grader's table says (quiz_*), not what the record says"
    assert "Why:" in capsys.readouterr().out


def test_a_wrong_number_fails_and_names_the_answer(log):
    assert quiz.check("02_tie_loss", 0.5) is False
    assert quiz.check("02_tie_loss", 0.69) is True  # within the tolerance of log 2
    assert [r["passed"] for r in log] == [False, True]
    assert "0.6931" in log[0]["message"] and log[0]["threshold"] == pytest.approx(math.log(2))


def test_no_answer_is_a_failed_check_without_the_explanation(log, capsys):
    assert quiz.check("01_trained_positions", None) is False
    assert log[0]["passed"] is False and log[0]["threshold"] is None
    out = capsys.readouterr().out
    assert "ANSWER_TRAINED_POSITIONS" in out and "Why:" not in out


@pytest.mark.parametrize("name, answer, expected", [
    ("02_reward_offset", "d", "one of the letters a, b, c"),
    ("02_reward_offset", 2, "one of the letters"),
    ("02_tie_loss", "b", "takes a number"),
    ("02_tie_loss", True, "takes a number"),
    ("no_such_question", "a", "No self-check question 'no_such_question'"),
    ("01_predict_prompt_loss", "a", "pass the measured answer as correct="),
])
def test_bad_answers_get_one_clear_error(log, name, answer, expected):
    with pytest.raises(ValueError, match=expected):
        quiz.check(name, answer)
    assert log == []


def test_a_prediction_is_scored_against_the_run(log, capsys):
    assert quiz.check("01_predict_prompt_loss", "b", correct="b", masked=3.21, unmasked=1.5) is True
    assert quiz.check("01_predict_prompt_loss", "b", correct="a", masked=1.0, unmasked=2.0) is False
    assert "3.21" in capsys.readouterr().out


def test_a_prediction_without_its_figures_is_a_clear_error(log):
    for answer in ("b", None):
        with pytest.raises(ValueError, match="pass 'masked'"):
            quiz.check("01_predict_prompt_loss", answer, correct="b")
    assert log == [], "nothing is recorded for a wrong call"


def _lab_calls(stem):
    nb = json.loads((LABS / f"{stem}.ipynb").read_text())
    return nb, [(cell, m.groups()) for cell in nb["cells"] if cell["cell_type"] == "code"
                for m in CALL.finditer("".join(cell["source"]))]


@pytest.mark.parametrize("stem", NOTEBOOKS)
def test_each_lab_asks_three_known_questions_with_blankable_answers(stem):
    nb, calls = _lab_calls(stem)
    assert len(calls) >= 3, f"{stem} asks {len(calls)} self-check questions"
    student = {c["id"]: "".join(c["source"]) for c in student_version(nb, stem)["cells"]}
    for cell, (name, variable) in calls:
        assert name in quiz.QUESTIONS and name.startswith(stem[:2] + "_"), name
        assert variable == "ANSWER_" + name.split("_", 1)[1].upper(), (name, variable)
        # the answer is set in the cell that checks it, or (a prediction) in a cell before the run it predicts
        [blanked] = [src for src in student.values() if f"{variable} = None  # TODO" in src]
        assert "NotImplementedError" not in blanked and cell["id"] in student
        if quiz.QUESTIONS[name].choices:  # the lettered choices stand in the notebook for the learner
            text = "".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown")
            assert all(f"({letter})" in text for letter in quiz.QUESTIONS[name].choices), name


def test_every_question_is_asked_by_a_lab():
    asked = {name for stem in NOTEBOOKS for _, (name, _) in _lab_calls(stem)[1]}
    assert set(quiz.QUESTIONS) == asked
