"""Grading holds against a student who tries: the course declares its checks, reads the cells for tampering,
knows its own notebooks, and a rerun runs the course's cells with only the learner's solution bodies.

Fast tests craft submissions from the lab notebooks (execution counts set, as a kernel would) and from small
hand-made notebooks; the tests marked ``notebook`` start kernels.
"""

from __future__ import annotations

import copy
import json
import math

import nbformat
import pytest
from conftest import LABS, lab_stems

from labhelpers import records
from labhelpers.course import points
from labhelpers.course.grading import grade
from labhelpers.course.grading.inspection import compare_declared, declared_pass
from labhelpers.course.grading.statuses import NEEDS_HUMAN, ZERO_POINT_STATUSES
from labhelpers.course.grading.tamper import tampering
from labhelpers.course.grading.transplant import course, split, transplant
from labhelpers.course.student import BEGIN, END, TODO_RAISE, student_version

LAB = "01_instruction_tuning"


def _lab(stem: str = LAB) -> dict:
    return json.loads((LABS / f"{stem}.ipynb").read_text(encoding="utf-8"))


def _source(cell: dict) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def _ran(nb: dict) -> dict:
    """``nb`` as a kernel leaves it: every code cell run once, in order (no outputs needed here)."""
    nb = copy.deepcopy(nb)
    n = 0
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            n += 1
            cell["execution_count"] = n
    return nb


def _record(name: str, passed: bool, value, threshold, direction: str | None = None, lab: str = LAB) -> dict:
    """A check record as labhelpers writes it (made by the real record_check, the session's log untouched)."""
    saved, context = list(records._log), dict(records._context)
    try:
        records._log.clear()
        records.set_context(lab=lab, profile="tiny")
        records.record_check(name, passed, value=value, threshold=threshold, direction=direction)
        return dict(records._log[-1])
    finally:
        records._log[:] = saved
        records._context.clear()
        records._context.update(context)


def _notebook(*cells: tuple[str, dict | None]) -> dict:
    """Code cells run in order; a cell given a record shows it as its output."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    for n, (source, record) in enumerate(cells, 1):
        cell = nbformat.v4.new_code_cell(source)
        cell.execution_count = n
        if record:
            cell.outputs = [nbformat.v4.new_output("display_data", data={records.MIME: record, "text/plain": ""})]
        nb.cells.append(cell)
    return nb


def _grade_one(tmp_path, nb: dict, name: str = f"amy_{LAB}.ipynb"):
    path = tmp_path / "subs" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(nb), encoding="utf-8")
    [g] = grade([path], tmp_path / "out")
    return g, (tmp_path / "out" / "report.md").read_text(encoding="utf-8")


# --------------------------------------------------------------------------------------------------
# Checks belong to the course
# --------------------------------------------------------------------------------------------------
def test_every_check_the_labs_record_is_declared_with_a_comparison():
    for stem in lab_stems():
        for cell in _lab(stem)["cells"]:
            for line in _source(cell).split("\n"):
                if 'record_check("' in line:
                    name = line.split('record_check("', 1)[1].split('"', 1)[0]
                    check = points.declared(stem, name)
                    assert check is not None, f"{stem}: {name} is not in labhelpers/course/points.py"
                    assert check.direction in (*records.DIRECTIONS, points.FLAG, points.QUIZ), (stem, name)


@pytest.mark.parametrize(("value", "direction", "threshold", "slack", "expected"), [
    (0.5, "<", 1e-5, 0.0, False), (0.0, "<", 1e-5, 0.0, True), (1e-5, "<", 1e-5, 0.0, None),
    (1e-5, "<=", 1e-5, 0.0, True), (-5e-5, ">=", 0.0, 1e-4, True), (-2e-4, ">=", 0.0, 1e-4, False),
    (1.0, "==", 1.0, 1e-9, True), (0.9, "==", 1.0, 1e-9, False), (1.00001, "==", 1.0, 0.0, None),
    ("b", "==", "b", 0.0, True), (None, "<", 1.0, 0.0, None), (math.nan, "<", 1.0, 0.0, None)])
def test_the_declared_comparison_decides_or_says_it_cannot(value, direction, threshold, slack, expected):
    assert compare_declared(value, direction, threshold, slack) is expected


def test_a_redefined_record_check_cannot_choose_the_direction(tmp_path):
    # What `def record_check(name, passed, **kw)` around the real one can write: a wrong value (0.5, the error
    # of a wrong masked loss) recorded as passed, with the direction that makes it look consistent.
    forged = _record("masked_ce_matches_library", True, value=0.5, threshold=1e-5, direction=">=")
    moved = _record("masked_ce_matches_library", True, value=0.5, threshold=1.0, direction="<")
    for record, says in ((forged, "which the course's comparison fails"), (moved, "where the course uses 1e-05")):
        g, report = _grade_one(tmp_path / says[:5], _notebook(("import labhelpers", None), ("check()", record)))
        row = {c.name: c for c in g.checks}["masked_ce_matches_library"]
        assert (g.status, row.passed, row.edited, g.points_earned) == ("check_inconsistent", False, True, 0)
        assert says in report
        assert g.status in NEEDS_HUMAN
    honest = _record("masked_ce_matches_library", True, value=0.0, threshold=1e-5)
    g, _ = _grade_one(tmp_path / "honest", _notebook(("import labhelpers", None), ("check()", honest)))
    assert (g.status, g.points_earned) == ("complete", 2)


def test_a_check_the_course_does_not_list_earns_nothing(tmp_path):
    mine = _record("my_own_check", True, value=1.0, threshold=0.0)
    g, _ = _grade_one(tmp_path, _notebook(("import labhelpers", None), ("check()", mine)))
    [row] = g.checks
    assert (row.declared, row.points, g.points_earned) == (False, 0, 0)


def test_a_quiz_is_decided_from_the_recorded_answer():
    right = _record("quiz_01_ignore_index", True, value="b", threshold=None)
    wrong_but_passed = {**right, "value": "a"}
    assert declared_pass(LAB, right) == (True, None)
    assert declared_pass(LAB, wrong_but_passed) == (False, None)


# --------------------------------------------------------------------------------------------------
# Tampering, read from the cells
# --------------------------------------------------------------------------------------------------
ATTACKS = {
    "rebinds record_check": "from labhelpers.records import record_check\n"
                            "record_check = lambda name, passed, **kw: None",
    "defines record_check": "def record_check(name, passed, **kw):\n    pass",
    "patches the module": "from labhelpers import records\nrecords.record_check = print",
    "patches through a copy": "from labhelpers import records\nr = records\nr.record_check = print",
    "patches the quiz": "from labhelpers import quiz\nquiz.is_right = lambda *a, **k: True",
    "clears the log": "from labhelpers import records\nrecords._log.clear()",
    "uses setattr": "from labhelpers import records\nsetattr(records, 'record_check', print)",
    "runs a string": "exec(open('patch.py').read())",
    "replaces the module": "import sys\nsys.modules['labhelpers.records'] = object()",
    "writes a record by hand": "display({'application/vnd.labhelpers.record+json': {}}, raw=True)",
    "rebinds inside a function": "from labhelpers.records import record_check\n"
                                 "def f():\n    global record_check\n    record_check = None",
    "edits the package from the shell": "!sed -i 's/passed/True/' /usr/lib/labhelpers/records.py",
    "replaces a library answer": "from labhelpers.ppo import compute_gae\ncompute_gae = lambda *a, **k: None",
    "runs another file": "%run patch.py",
    "loads a module by name": "import importlib\nrecords = importlib.import_module('labhelpers.records')",
    "imports by name": "__import__('labhelpers.records').records.record_check = print",
    "runs a cell through IPython": "get_ipython().run_cell('record_check = print')",
}


@pytest.mark.parametrize("attack", sorted(ATTACKS))
def test_each_way_of_changing_the_records_is_tampering(attack, tmp_path):
    record = _record("masked_ce_matches_library", True, value=0.0, threshold=1e-5)
    nb = _notebook(("import labhelpers", None), (ATTACKS[attack], None), ("check()", record))
    g, report = _grade_one(tmp_path, nb)
    assert g.status == "tampered" and g.points_earned == 0, attack
    assert "tampered" in ZERO_POINT_STATUSES and "tampered" in NEEDS_HUMAN
    assert "cell 2 (`" in report and "changes how results are recorded" in report


@pytest.mark.parametrize("stem", lab_stems())
def test_no_lab_and_no_student_version_reads_as_tampering(stem):
    for nb in (_lab(stem), student_version(_lab(stem), stem)):
        cells = [(i, _source(c)) for i, c in enumerate(nb["cells"]) if c["cell_type"] == "code"]
        assert tampering(cells) == []


# --------------------------------------------------------------------------------------------------
# The course's own notebooks: the instructor's solution, cells added or deleted
# --------------------------------------------------------------------------------------------------
def _with_bodies(nb: dict, change) -> dict:
    """``nb`` with each exercise body passed through ``change(body_lines) -> body_lines``."""
    nb = copy.deepcopy(nb)
    for cell in nb["cells"]:
        if cell["cell_type"] != "code" or BEGIN not in _source(cell):
            continue
        out, inside = [], False
        for line in _source(cell).split("\n"):
            if line.strip() == BEGIN:
                inside, body = True, []
                out.append(line)
            elif line.strip() == END:
                out += change(body) + [line]
                inside = False
            elif inside:
                body.append(line)
            else:
                out.append(line)
        cell["source"] = "\n".join(out)
    return nb


def test_the_instructors_solution_submitted_as_is_is_flagged(tmp_path):
    g, report = _grade_one(tmp_path, _ran(_lab()))
    assert (g.status, g.points_earned) == ("instructor_solution", 0)
    assert "instructor_solution" in NEEDS_HUMAN and "course's own solution" in report


def test_a_learners_own_solution_is_not_the_instructors(tmp_path):
    solution = _lab()
    learner = _with_bodies(solution, lambda body: [
        line.replace("return ", "result = ") + "\n" + line[: len(line) - len(line.lstrip())] + "return result"
        if line.strip().startswith("return ") else line for line in body])
    assert learner != solution
    g, _ = _grade_one(tmp_path, _ran(learner))
    assert g.status != "instructor_solution"


def test_cells_added_to_or_deleted_from_the_student_version_are_listed(tmp_path):
    nb = student_version(_lab(), LAB)
    code = [i for i, c in enumerate(nb["cells"]) if c["cell_type"] == "code"]
    deleted = nb["cells"][code[-2]]
    nb["cells"].insert(code[3], nbformat.v4.new_code_cell("print('my own experiment')"))
    nb["cells"].remove(deleted)
    g, report = _grade_one(tmp_path, _ran(nb))
    assert any("print('my own experiment')" in c and "added" in c for c in g.cell_changes)
    first = next(line.strip() for line in _source(deleted).split("\n") if line.strip())[:60]
    assert any("missing" in c and first in c for c in g.cell_changes)
    assert "my own experiment" in report


# --------------------------------------------------------------------------------------------------
# The transplant: the course's notebook, the learner's bodies
# --------------------------------------------------------------------------------------------------
def _bodies(nb: dict) -> list[tuple[str, ...]]:
    return [b for c in nb["cells"] if c["cell_type"] == "code" for b in split(_source(c)).bodies]


def test_the_transplant_is_the_course_notebook_with_the_learners_bodies():
    known = course(LAB)
    student = student_version(_lab(), LAB)
    learner = _with_bodies(student, lambda body: ["    return 'mine'"] if any(TODO_RAISE in b for b in body)
                           else body)
    learner["cells"].insert(3, nbformat.v4.new_code_cell("from labhelpers.records import record_check\n"
                                                         "record_check('masked_ce_matches_library', True)"))
    for cell in learner["cells"]:  # what a learner's outputs and frame edits cannot bring along
        if cell["cell_type"] == "code" and BEGIN not in _source(cell):
            cell["source"] = _source(cell) + "\n# edited by the learner"
    done = transplant(known, learner)
    course_cells = [c for c in known.notebook["cells"] if c["cell_type"] == "code"]
    ran = [c for c in done.notebook["cells"] if c["cell_type"] == "code"]
    assert len(ran) == len(course_cells), "the learner's added cell is not run"
    assert done.dropped and "record_check" in done.dropped[0]
    for mine, theirs in zip(ran, course_cells):
        if BEGIN not in _source(theirs):
            assert _source(mine) == _source(theirs), "every cell outside the solution blocks is the course's own"
    assert _bodies(done.notebook) == _bodies(learner)
    assert done.taken == len(_bodies(learner)) and done.not_found == []


def test_the_transplant_finds_bodies_without_markers_and_cells_moved_around():
    known = course(LAB)
    solution = _lab()
    learner = copy.deepcopy(solution)
    cell = next(c for c in learner["cells"] if c["cell_type"] == "code" and BEGIN in _source(c)
                and "def " in _source(c))
    cell["source"] = "\n".join(line for line in _source(cell).split("\n") if line.strip() not in (BEGIN, END))
    learner["cells"].reverse()  # matched by cell id, not by place
    done = transplant(known, learner)
    assert _bodies(done.notebook) == _bodies(solution) and done.not_found == []


def test_a_body_that_cannot_be_found_stays_the_todo():
    known = course(LAB)
    learner = student_version(_lab(), LAB)
    for cell in learner["cells"]:
        if cell["cell_type"] == "code" and BEGIN in _source(cell):
            cell["source"] = "# I rewrote the whole cell"
            cell.pop("id", None)
    done = transplant(known, learner)
    assert done.not_found and done.taken == 0
    assert _bodies(done.notebook) == _bodies(student_version(_lab(), LAB))
