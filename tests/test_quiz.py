"""Self-check questions: right, wrong and missing answers become quiz_* checks; bad answers get a clear error;
every question a lab asks exists, and every lab asks at least three. The package holds no answer in plain text:
digests that agree with the labs' own solutions and the instructor's table, a numeric tolerance accepted exactly
on the interval the module documents, explanations encoded, records that never carry a stored answer."""

from __future__ import annotations

import ast
import json
import math
import re
import tomllib
from fractions import Fraction

import pytest
from conftest import LABS, ROOT, lab_stems

from labhelpers import quiz, records
from labhelpers.course import quiz_digests
from labhelpers.course.student import BEGIN, END, student_version

NOTEBOOKS = lab_stems()
CALL = re.compile(r"quiz\.check\(\s*\"(\w+)\",\s*(\w+)")


@pytest.fixture()
def log(monkeypatch):
    monkeypatch.setattr(records, "_log", [])
    return records._log


def test_a_right_choice_passes_and_explains(log, capsys):
    assert quiz.check("02_reward_offset", " (C) ") is None, "a quiz cell ends with the call: nothing to echo"
    [rec] = log
    assert (rec["name"], rec["passed"], rec["value"], rec["threshold"]) == ("quiz_02_reward_offset", True, "c", None)
    assert "points" not in rec, "a quiz is worth what the grader's table says (quiz_*), not what the record says"
    assert "Why:" in capsys.readouterr().out


def test_a_wrong_answer_fails_shows_the_explanation_and_the_record_keeps_no_answer(log, capsys):
    quiz.check("02_tie_loss", 0.5)
    quiz.check("02_reward_offset", "a")
    quiz.check("02_tie_loss", 0.69)  # within the tolerance of log 2
    assert [r["passed"] for r in log] == [False, False, True]
    out = capsys.readouterr().out
    assert out.count("Why:") == 3, "the explanation follows every answer, right or wrong"
    assert "0.693" in out and "0.693" not in log[0]["message"] and "(c)" not in log[1]["message"]
    for rec in log:  # a stored question's record: the given answer, never the right one
        assert rec["threshold"] is None and rec["value"] in (0.5, "a", 0.69)
        assert not any("0.69" in str(v) or "'c'" in str(v) for k, v in rec.items() if k not in ("value", "code"))


def test_is_right_decides_a_recorded_check_as_check_does(log):
    for name, answer in (("02_tie_loss", 0.7), ("02_tie_loss", 0.8), ("03_z_cancels", "b"), ("03_z_cancels", "a"),
                         ("06_lora_parameters", 14336), ("06_lora_parameters", 14337), ("03_models", 2.0)):
        quiz.check(name, answer)
        assert quiz.is_right(name, log[-1]["value"]) is log[-1]["passed"], (name, answer)
    assert quiz.is_right("03_z_cancels", None) is False and quiz.is_right("03_z_cancels", 3) is False
    assert quiz.is_right("02_tie_loss", float("nan")) is False and quiz.is_right("02_tie_loss", "0.69") is False
    assert quiz.is_right("01_predict_prompt_loss", "b", correct="b") is True
    assert quiz.is_right("01_predict_prompt_loss", "b", correct="a") is False
    with pytest.raises(ValueError, match="pass the measured answer as correct="):
        quiz.is_right("01_predict_prompt_loss", "b")


def _table():
    return tomllib.loads((ROOT / quiz_digests.TABLE).read_text(encoding="utf-8"))


def _float_at_or_above(x: Fraction) -> float:
    f = float(x)
    return f if Fraction(f) >= x else math.nextafter(f, math.inf)


@pytest.mark.parametrize("name", [n for n, q in quiz.QUESTIONS.items() if q.tolerance > 0])
def test_a_tolerance_accepts_exactly_the_documented_interval(name):
    """[w·(k − 1), w·(k + 2)) with k = floor(a / w), w the tolerance as written: tried at both edges, one float
    inside and one outside each, and it holds [a − w, a + w]."""
    answer, width = _table()[name]["answer"], Fraction(str(quiz.QUESTIONS[name].tolerance))
    k = math.floor(Fraction(answer) / width)
    low, high = _float_at_or_above(width * (k - 1)), _float_at_or_above(width * (k + 2))
    assert quiz.is_right(name, low) and not quiz.is_right(name, math.nextafter(low, -math.inf))
    assert quiz.is_right(name, math.nextafter(high, -math.inf)) and not quiz.is_right(name, high)
    exact = Fraction(answer)  # every float in [a − w, a + w] is accepted, none at 2w or more away
    within_above = _float_at_or_above(exact + width)
    within_above = within_above if Fraction(within_above) == exact + width else math.nextafter(within_above, 0)
    assert quiz.is_right(name, _float_at_or_above(exact - width)) and quiz.is_right(name, within_above)
    assert not quiz.is_right(name, float(exact - 2 * width)) and not quiz.is_right(name, float(exact + 2 * width))


def test_tie_loss_interval_is_the_one_the_docstring_states():
    assert "``[0.68, 0.71)``" in quiz.__doc__
    assert quiz.is_right("02_tie_loss", 0.68) and not quiz.is_right("02_tie_loss", math.nextafter(0.68, 0))
    below = math.nextafter(_float_at_or_above(Fraction(71, 100)), 0)
    assert quiz.is_right("02_tie_loss", below) and not quiz.is_right("02_tie_loss", math.nextafter(below, 1))


def test_the_package_holds_no_plain_answer_or_explanation():
    """No answer field, no explanation text anywhere in labhelpers/ (what Colab installs); the plain table is
    outside the package, and the generated module is what the table gives."""
    table = _table()
    assert set(table) == set(quiz.QUESTIONS)
    package = {p: p.read_text(encoding="utf-8") for p in (ROOT / "labhelpers").rglob("*.py")}
    for name, fields in table.items():
        text = fields["explanation"]
        assert quiz.explanation(name) == text
        snippets = [text[i:i + 40] for i in range(0, len(text) - 40, 40)]
        leaks = [str(p) for p, source in package.items() for s in snippets if s in source]
        assert not leaks, (name, leaks)
    assert not any(hasattr(q, "answer") for q in quiz.QUESTIONS.values())
    assert "answer=" not in package[ROOT / quiz_digests.MODULE]
    assert not (ROOT / quiz_digests.TABLE).resolve().is_relative_to((ROOT / "labhelpers").resolve())
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert pyproject["tool"]["setuptools"]["packages"]["find"]["include"] == ["labhelpers*"]
    assert quiz_digests.render_for(ROOT) == (ROOT / quiz_digests.MODULE).read_text(encoding="utf-8")


def test_render_keeps_salts_and_a_new_question_gets_its_own(tmp_path):
    table = {"99_x": {"choices": "abc", "answer": "b", "explanation": "because"},
             "99_y": {"tolerance": 0.5, "answer": 1.2, "explanation": "close"}}
    first = quiz_digests.render(table)
    module = tmp_path / "q.py"
    module.write_text(first)
    salts = quiz_digests.salts_of(module)
    assert set(salts) == {"99_x", "99_y"} and salts["99_x"] != salts["99_y"]
    assert quiz_digests.render(table, salts) == first
    namespace: dict = {}
    exec(first, namespace)
    x = quiz.Question(**namespace["QUESTIONS"]["99_x"])
    assert x.digests == (quiz.digest(salts["99_x"], "choice:b"),) and "because" not in first
    assert len(namespace["QUESTIONS"]["99_y"]["digests"]) == 3, "the answer's cell and both neighbours"


def _solution_answers(nb: dict) -> dict[str, object]:
    """ANSWER_* = literal lines inside the solution blocks of a lab notebook."""
    answers = {}
    for cell in nb["cells"]:
        inside = False
        for line in "".join(cell["source"]).split("\n"):
            if line.strip() in (BEGIN, END):
                inside = line.strip() == BEGIN
            elif inside and re.match(r"\s*ANSWER_\w+\s*=", line):
                node = ast.parse(line.strip()).body[0]
                answers[node.targets[0].id] = ast.literal_eval(node.value)
    return answers


@pytest.mark.parametrize("stem", NOTEBOOKS)
def test_each_stored_answer_is_the_labs_own_solution(stem):
    """The digests accept the answer the solution notebook writes, and the instructor's table says the same."""
    nb, calls = _lab_calls(stem)
    answers, table = _solution_answers(nb), _table()
    for _, (name, variable) in calls:
        if "answer" not in table[name]:
            continue  # about the run: the lab passes correct=
        assert quiz.is_right(name, answers[variable]), (name, answers[variable])
        assert quiz.is_right(name, table[name]["answer"]), name


@pytest.mark.parametrize("name, answer, expected", [
    ("02_reward_offset", "d", "one of the letters a, b, c"),
    ("02_reward_offset", 2, "one of the letters"),
    ("02_tie_loss", "b", "takes a finite number"),
    ("02_tie_loss", True, "takes a finite number"),
    ("02_tie_loss", float("inf"), "takes a finite number"),
    ("no_such_question", "a", "No self-check question 'no_such_question'"),
    ("01_predict_prompt_loss", "a", "pass the measured answer as correct="),
])
def test_bad_answers_get_one_clear_error(log, name, answer, expected):
    with pytest.raises(ValueError, match=expected):
        quiz.check(name, answer)
    assert log == []


def test_a_prediction_is_scored_against_the_run(log, capsys):
    quiz.check("01_predict_prompt_loss", "b", correct="b", masked=3.21, unmasked=1.5)
    quiz.check("01_predict_prompt_loss", "b", correct="a", masked=1.0, unmasked=2.0)
    assert [r["passed"] for r in log] == [True, False]
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
