"""Student versions: solution bodies become TODOs that raise (the markers stay around them), solution markdown
goes, outputs go; the lint catches broken markers; a student version passes the lint itself, and runs until its
first TODO and stops there with NotImplementedError."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import nbformat
import papermill as pm
import pytest
from conftest import LABS, ROOT, lab_stems

from labhelpers.course.cli import main
from labhelpers.course.student import (
    ANSWER_LINE,
    BEGIN,
    END,
    SOLUTION_MARKER,
    TODO_COMMENT,
    TODO_RAISE,
    StudentVersionError,
    exercise_cells,
    is_solution_markdown,
    lint_lab,
    quiz_cells,
    student_text,
    student_version,
)
from labhelpers.records import read_records

NOTEBOOKS = lab_stems()
STUDENT = ROOT / "student"


def mini_lab() -> dict:
    """A small lab with two exercises (one indented in a function), solution markdown and saved outputs."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["papermill"] = {"duration": 1.0}
    setup = nbformat.v4.new_code_cell("import math\nbase = 21")
    setup.execution_count = 1
    setup.outputs = [nbformat.v4.new_output("stream", name="stdout", text="hello\n")]
    exercise = nbformat.v4.new_code_cell(
        "def double(v):\n    \"\"\"Twice v.\"\"\"\n    " + BEGIN + "\n    out = 2 * v\n    return out\n    " + END
        + "\n\nanswer = double(base)")
    exercise.execution_count = 2
    second = nbformat.v4.new_code_cell(f"{BEGIN}\nroot = math.sqrt(answer * 2)\n{END}\nprint(root)")
    nb.cells = [
        nbformat.v4.new_markdown_cell("# Lab 99: mini"),
        setup,
        nbformat.v4.new_markdown_cell("### Exercise 1\nWrite `double`."),
        exercise,
        nbformat.v4.new_markdown_cell(f"{SOLUTION_MARKER}\nThe answer is 42 because 2 * 21 = 42."),
        nbformat.v4.new_markdown_cell("### Exercise 2\nTake the square root."),
        second,
        nbformat.v4.new_markdown_cell("A tagged worked answer", metadata={"tags": ["solution"]}),
        nbformat.v4.new_code_cell("assert root == 2 * math.sqrt(21)"),
    ]
    return nb


def test_solutions_become_todos_that_raise():
    nb = mini_lab()
    student = student_version(nb, "99_mini")
    sources = ["".join(c["source"]) for c in student["cells"]]
    assert len(student["cells"]) == len(nb["cells"]) - 2, "both solution markdown cells are removed"
    assert not any(SOLUTION_MARKER in s or "tagged worked answer" in s for s in sources)
    ex = sources[3]
    assert "2 * v" not in ex and ex.count(BEGIN) == ex.count(END) == 1
    assert ex.split("\n")[2:6] == [f"    {BEGIN}", f"    {TODO_COMMENT}", f"    {TODO_RAISE}", f"    {END}"], \
        "the markers stay around the TODO, all indented like the BEGIN marker"
    assert ex.startswith('def double(v):\n    """Twice v."""\n') and ex.endswith("answer = double(base)")
    assert sources[5] == f"{BEGIN}\n{TODO_COMMENT}\n{TODO_RAISE}\n{END}\nprint(root)"
    compile(ex, "exercise", "exec")
    code = [c for c in student["cells"] if c["cell_type"] == "code"]
    assert all(c["outputs"] == [] and c["execution_count"] is None for c in code)
    assert student["metadata"]["labhelpers"] == {"lab": "99_mini", "version": "student"}
    assert "papermill" not in student["metadata"]
    assert [c["id"] for c in student["cells"]][3] == nb.cells[3]["id"], "cell ids are kept"
    assert nb.cells[3]["outputs"] == [] and "2 * v" in nb.cells[3]["source"], "the input is not changed"
    assert exercise_cells(nb) == [3, 6]


def _with_cell(source: str, kind: str = "code", **meta) -> dict:
    nb = mini_lab()
    new = nbformat.v4.new_code_cell(source) if kind == "code" else nbformat.v4.new_markdown_cell(source)
    new.metadata.update(meta)
    nb.cells.append(new)
    return nb


@pytest.mark.parametrize("nb, expected", [
    (_with_cell(f"{BEGIN}\nx = 1"), "is never closed"),
    (_with_cell(f"x = 1\n{END}"), "without a"),
    (_with_cell(f"{BEGIN}\nx = 1\n{BEGIN}\ny = 2\n{END}"), "nested"),
    (_with_cell(f"x = 1  {BEGIN}\ny = 2\n{END}"), "must stand alone"),
    (_with_cell(f"{BEGIN}\n\n{END}"), "is empty"),
    (_with_cell(f"{BEGIN}\nx = 1\n{END}", kind="markdown"), "belong in code cells"),
    (_with_cell("x = 1", tags=["solution"]), "code cell is marked as solution"),
    (_with_cell(f"if True:\n{BEGIN}\n    y = 1\n{END}"), "not valid Python"),
], ids=["unclosed", "end-without-begin", "nested", "not-alone", "empty", "in-markdown", "tagged-code",
        "indent"])
def test_lint_catches_broken_markers(nb, expected):
    problems = lint_lab(nb, "99_mini")
    assert len(problems) == 1 and expected in problems[0], problems
    assert problems[0].startswith("99_mini: cell 10"), "the problem names the cell"
    with pytest.raises(StudentVersionError, match=expected):
        student_version(nb, "99_mini")


def test_lint_requires_an_exercise():
    nb = mini_lab()
    nb.cells = [c for c in nb.cells if BEGIN not in "".join(c["source"])]
    assert lint_lab(nb, "99_mini") == [f"99_mini: no exercise (no code cell with {BEGIN} ... {END}); "
                                       "every lab needs one."]
    assert lint_lab(mini_lab(), "99_mini") == []


def test_cli_writes_every_lab_or_nothing(tmp_path, monkeypatch, capsys):
    labs = tmp_path / "labs"
    labs.mkdir()
    for stem in ("98_first", "99_second"):
        (labs / f"{stem}.ipynb").write_text(nbformat.writes(mini_lab()))
    before = {p.name: p.read_bytes() for p in labs.iterdir()}
    monkeypatch.setenv("LABS_DIR", str(labs))
    out = tmp_path / "student"
    assert main(["student", "--out", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["98_first.ipynb", "99_second.ipynb"]
    nb = nbformat.read(out / "99_second.ipynb", as_version=4)
    nbformat.validate(nb)
    assert nb.metadata["labhelpers"]["lab"] == "99_second" and TODO_RAISE in nb.cells[3].source
    assert {p.name: p.read_bytes() for p in labs.iterdir()} == before
    assert main(["student", "--out", str(labs)]) == 1, "refuses to overwrite the solutions"
    assert "must not be the labs folder" in capsys.readouterr().err

    (labs / "97_broken.ipynb").write_text(nbformat.writes(_with_cell(f"{BEGIN}\nx = 1")))
    assert main(["student", "--out", str(tmp_path / "again")]) == 1
    assert "97_broken.ipynb: cell 10" in capsys.readouterr().err
    assert not (tmp_path / "again").exists(), "a broken lab writes no student version at all"


def run_until_first_todo(solution: dict, student: dict, tmp_path: Path, parameters: dict | None = None):
    """Execute the student version; assert it stops with NotImplementedError in the first exercise cell."""
    src, out = tmp_path / "student.ipynb", tmp_path / "student_out.ipynb"
    src.write_text(json.dumps(student))
    with pytest.raises(pm.PapermillExecutionError) as info:
        pm.execute_notebook(str(src), str(out), parameters=parameters or {}, kernel_name="python3",
                            progress_bar=False, cwd=str(tmp_path), execution_timeout=600)
    assert info.value.ename == "NotImplementedError", f"stopped by {info.value.ename}: {info.value.evalue}"
    executed = json.loads(out.read_text())
    code = [c for c in executed["cells"] if c["cell_type"] == "code"]
    failed = [i for i, c in enumerate(code) if any(o["output_type"] == "error" for o in c["outputs"])]
    # The raise sits in the exercise cell; when the solution is a function body, it fires in the cell that
    # calls the function, so the traceback's innermost frame ("Cell In[n], line m") must be the TODO line.
    first_exercise = solution["cells"][exercise_cells(solution)[0]]["id"]
    [exercise] = [c for c in code if c["id"] == first_exercise]
    assert exercise["execution_count"] is not None and code.index(exercise) <= failed[0]
    error = next(o for o in code[failed[0]]["outputs"] if o["output_type"] == "error")
    frames = re.findall(r"Cell In\[(\d+)\], line (\d+)", re.sub(r"\x1b\[[0-9;]*m", "", "\n".join(error["traceback"])))
    todo_line = "".join(exercise["source"]).split("\n").index(next(
        line for line in "".join(exercise["source"]).split("\n") if line.strip() == TODO_RAISE)) + 1
    assert frames and frames[-1] == (str(exercise["execution_count"]), str(todo_line)), frames
    assert all(c["execution_count"] is not None for c in code[: failed[0]]), "a cell before the TODO did not run"
    assert all(c["execution_count"] is None for c in code[failed[0] + 1:]), "cells after the TODO ran"


def test_mini_lab_student_version_stops_at_its_first_todo(tmp_path):
    nb = json.loads(nbformat.writes(mini_lab()))
    run_until_first_todo(nb, student_version(nb, "99_mini"), tmp_path)


def test_quiz_answers_become_none_and_the_notebook_runs_on(tmp_path):
    """A block of only ANSWER_* lines is blanked to None (no raise); the quiz then records a failed check."""
    nb = mini_lab()
    nb.cells.insert(1, nbformat.v4.new_code_cell(
        f"from labhelpers import quiz\n{BEGIN}\n# a comment may explain the answer\nANSWER_TIE_LOSS = 0.693\n{END}\n"
        "quiz.check(\"02_tie_loss\", ANSWER_TIE_LOSS)"))
    student = student_version(nb, "99_mini")
    source = "".join(student["cells"][1]["source"])
    assert source.split("\n")[1:4] == [BEGIN, "ANSWER_TIE_LOSS = None  # TODO: your answer (the question above says "
                                        "which kind)", END] and "0.693" not in source
    assert TODO_RAISE not in source and exercise_cells(nb) == [4, 7] and quiz_cells(nb) == [1]
    mixed = "".join(student_version(_with_cell(f"{BEGIN}\nANSWER_X = 1\ny = 2\n{END}"))["cells"][-1]["source"])
    assert TODO_RAISE in mixed and "ANSWER_X" not in mixed, "other code in the block: an ordinary exercise"
    assert lint_lab(student, "99_mini") == [] and student_version(student, "99_mini") == student
    src, out = tmp_path / "quiz.ipynb", tmp_path / "quiz_out.ipynb"
    student["cells"] = student["cells"][:2]
    src.write_text(json.dumps(student))
    pm.execute_notebook(str(src), str(out), kernel_name="python3", progress_bar=False, cwd=str(tmp_path))
    [record] = read_records(out)
    assert (record["name"], record["passed"]) == ("quiz_02_tie_loss", False)


@pytest.mark.parametrize("stem", NOTEBOOKS)
def test_lab_passes_the_lint(stem):
    assert lint_lab(json.loads((LABS / f"{stem}.ipynb").read_text()), stem) == []


@pytest.mark.parametrize("stem", NOTEBOOKS)
def test_a_student_version_is_a_lab_with_the_same_exercises_and_cell_ids(stem):
    """It passes the lint, its exercise and quiz cells are the solution's (same ids), the markers surround each
    TODO, and making it again changes nothing: the grader reads a submission's bodies between the markers."""
    solution = json.loads((LABS / f"{stem}.ipynb").read_text())
    student = student_version(solution, stem)
    assert lint_lab(student, stem) == []
    assert student_version(student, stem) == student
    kept = {c["id"] for c in solution["cells"] if not is_solution_markdown(c)}
    assert [c["id"] for c in student["cells"]] == [c["id"] for c in solution["cells"] if c["id"] in kept]
    ids = [c["id"] for c in solution["cells"]], [c["id"] for c in student["cells"]]
    assert [ids[0][i] for i in exercise_cells(solution)] == [ids[1][i] for i in exercise_cells(student)]
    assert [ids[0][i] for i in quiz_cells(solution)] == [ids[1][i] for i in quiz_cells(student)]
    for cell in student["cells"]:
        lines = [line.strip() for line in "".join(cell["source"]).split("\n")]
        for n, line in enumerate(lines):
            if line == BEGIN:
                body = lines[n + 1:lines.index(END, n)]
                assert body == [TODO_COMMENT, TODO_RAISE] or all(
                    ANSWER_LINE.match(b) and b.endswith("= None  # TODO: your answer (the question above says "
                                                        "which kind)") for b in body), (cell["id"], body)


def _code_cells(nb: dict) -> dict[str, dict]:
    return {c["id"]: c for c in nb["cells"] if c["cell_type"] == "code"}


def _reaches_its_raise(student_cell: str, later_code: list[str]) -> bool:
    """The cell's first TODO raise runs when the cell (and the cells after it) run: it is at the top level, or
    inside a function that the cell or a later cell calls."""
    tree = ast.parse(student_cell)
    todo_raise = ast.unparse(ast.parse(TODO_RAISE))  # unparse writes single quotes; TODO_RAISE has double ones
    for statement in tree.body:
        raises = [n for n in ast.walk(statement) if isinstance(n, ast.Raise) and ast.unparse(n) == todo_raise]
        if not raises:
            continue
        if not isinstance(statement, ast.FunctionDef):
            return True
        rest = [ast.unparse(s) for s in tree.body[tree.body.index(statement) + 1:]] + later_code
        return any(f"{statement.name}(" in code for code in rest)
    return False


@pytest.mark.notebook
@pytest.mark.parametrize("stem", NOTEBOOKS)
def test_lab_student_version_stops_at_its_first_todo(stem, executed_lab):
    """The student version runs the solution's own code up to its first exercise, which raises at its TODO.

    No extra execution: the lab's one run (shared with the other lab tests) shows that the code before the first
    exercise runs; the student version has the same code there, except quiz answers left as None (the quiz
    check records a failed answer and the notebook runs on, see test_quiz); and the exercise cell keeps the code
    around its solution, with the TODO raise where the solution was, reached when the cell runs. What actually
    stops a kernel at the TODO, traceback line included, is executed for real on the mini lab above.
    """
    solution = json.loads((LABS / f"{stem}.ipynb").read_text())
    student = student_version(solution, stem)
    assert student["metadata"]["labhelpers"]["lab"] == stem
    first = exercise_cells(solution)[0]
    exercise_id = solution["cells"][first]["id"]

    run = executed_lab(stem)
    executed = _code_cells(json.loads(Path(run.output).read_text()))
    prefix = [c for c in solution["cells"][:first + 1] if c["cell_type"] == "code"]
    for cell in prefix:  # the shared run went through every cell up to and including the first exercise
        ran = executed[cell["id"]]
        assert ran["execution_count"] is not None, f"cell {cell['id']} did not run"
        assert not any(o["output_type"] == "error" for o in ran["outputs"]), f"cell {cell['id']} raised"

    student_cells = _code_cells(student)
    quizzes = {solution["cells"][i]["id"] for i in quiz_cells(solution)}
    for cell in prefix[:-1]:
        same = "".join(student_cells[cell["id"]]["source"]) == "".join(cell["source"])
        assert same or cell["id"] in quizzes, f"cell {cell['id']} differs in the student version"
    later = [c["id"] for c in solution["cells"][first + 1:] if c["cell_type"] == "code"]
    answers = {m.group(2) for i in quizzes for line in "".join(student_cells[i]["source"]).splitlines()
               if (m := ANSWER_LINE.match(line))}
    for cell in prefix[:-1]:  # a quiz answer is only ever handed to its quiz check, so None cannot derail the run
        for node in ast.walk(ast.parse("".join(cell["source"]))):
            if isinstance(node, ast.Name) and node.id in answers and isinstance(node.ctx, ast.Load):
                assert re.search(rf"quiz\.\w+\([^\n]*\b{node.id}\b", "".join(cell["source"])), node.id

    exercise = "".join(student_cells[exercise_id]["source"])
    compile(exercise, exercise_id, "exec")
    assert TODO_RAISE in [line.strip() for line in exercise.splitlines()]
    kept = [line for line in exercise.splitlines() if line.strip() not in (TODO_RAISE, TODO_COMMENT, BEGIN, END)]
    assert kept == _without_block("".join(solution["cells"][first]["source"])), \
        "the student cell keeps every line around the solution"
    assert _reaches_its_raise(exercise, ["".join(student_cells[i]["source"]) for i in later])


def _without_block(source: str) -> list[str]:
    """The lines of a solution cell outside its ``### BEGIN SOLUTION`` ... ``### END SOLUTION`` blocks."""
    out, inside = [], False
    for line in source.splitlines():
        if line.strip() == BEGIN:
            inside = True
        elif line.strip() == END:
            inside = False
        elif not inside:
            out.append(line)
    return out


def test_the_student_folder_has_one_student_version_per_lab():
    assert sorted(p.stem for p in STUDENT.glob("*.ipynb")) == sorted(NOTEBOOKS)


@pytest.mark.parametrize("stem", NOTEBOOKS)
def test_the_committed_student_version_is_the_one_the_lab_gives(stem):
    """student/ is what the README and the Colab links open: regenerate it with python -m labhelpers.course.generated."""
    solution = json.loads((LABS / f"{stem}.ipynb").read_text(encoding="utf-8"))
    assert (STUDENT / f"{stem}.ipynb").read_text(encoding="utf-8") == student_text(solution, stem), \
        f"student/{stem}.ipynb is stale: run python -m labhelpers.course.generated"


def _solution_body_lines(nb: dict) -> set[str]:
    lines, inside = set(), False
    for cell in nb["cells"]:
        for line in "".join(cell["source"]).split("\n"):
            if line.strip() in (BEGIN, END):
                inside = line.strip() == BEGIN
            elif inside and line.strip() and not line.strip().startswith("#"):
                lines.add(line.strip())
    return lines


@pytest.mark.parametrize("stem", NOTEBOOKS)
def test_a_committed_student_version_holds_no_answer(stem):
    """No line of a solution body (unless the lab also writes it outside its solutions), no ANSWER_... set to
    anything but None, no solution markdown, no outputs."""
    solution = json.loads((LABS / f"{stem}.ipynb").read_text(encoding="utf-8"))
    student = json.loads((STUDENT / f"{stem}.ipynb").read_text(encoding="utf-8"))
    outside = {line.strip() for cell in student_version(solution, stem)["cells"]
               for line in "".join(cell["source"]).split("\n")}
    secret = _solution_body_lines(solution) - outside
    assert secret, "the lab has solution bodies to hide"
    for cell in student["cells"]:
        source = "".join(cell["source"])
        assert not is_solution_markdown(cell) and not cell.get("outputs")
        assert not {line.strip() for line in source.split("\n")} & secret, cell["id"]
        if cell["cell_type"] != "code":
            continue
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.Assign) and any(getattr(t, "id", "").startswith("ANSWER_") for t in node.targets):
                assert isinstance(node.value, ast.Constant) and node.value.value is None, (cell["id"], ast.unparse(node))
    assert student["metadata"]["labhelpers"] == {"lab": stem, "version": "student"}
