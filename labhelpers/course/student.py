"""Student versions of the labs: ``labhelpers student [LAB ...] [--out DIR]``; the course's own are ``student/``.

The lab notebooks hold their solutions. A student version is made from a lab by these rules:

* In a code cell, the body of every block from ``### BEGIN SOLUTION`` to ``### END SOLUTION`` (each marker alone
  on its line) is replaced by a ``# TODO`` comment and ``raise NotImplementedError(...)``, indented like the
  ``BEGIN`` marker, so the cell fails loudly until the learner writes the code. **The markers stay**, around the
  TODO: the learner writes between them, and the grader takes exactly the learner's bodies out of a submission
  (and transplants them into the course's own notebook when it reruns one).
* A solution block that only sets quiz answers (every line ``ANSWER_<NAME> = ...``, see :mod:`labhelpers.quiz`)
  keeps its markers too, and its body becomes ``ANSWER_<NAME> = None  # TODO ...``; nothing raises: the quiz
  check after it records an unanswered (failed) question and the notebook runs on.
* A markdown cell marked as solution is removed: it contains the line ``<!-- SOLUTION -->``, or its metadata
  tags include ``"solution"`` (worked answers, discussion of the exercise's result).
* Every other cell is kept as it is, with its ``id`` (the grader matches a submission's cells to the lab's by id
  first). All outputs and execution counts are stripped, and the notebook metadata gets
  ``{"labhelpers": {"lab": <stem>, "version": "student"}}`` so that the grader knows the lab of a submission
  whatever its file is called.

A student version is itself a valid lab for these rules (it passes :func:`lint_lab`, :func:`exercise_cells` and
:func:`quiz_cells` find the same cells in it), and making the student version of a student version changes
nothing. :func:`lint_lab` lists what would make this go wrong (unbalanced or nested markers, markers in markdown,
an empty solution, a solution marker on a code cell, a lab without an exercise); :func:`student_version` refuses
a notebook that has any of these.

The student versions the README and the Colab links point to are committed in ``student/``, written by
``python -m labhelpers.course.generated`` (with :func:`student_text`) and kept in sync by a test.
"""

from __future__ import annotations

import ast
import copy
import json
import re
from pathlib import Path

BEGIN = "### BEGIN SOLUTION"
END = "### END SOLUTION"
SOLUTION_MARKER = "<!-- SOLUTION -->"
SOLUTION_TAG = "solution"
TODO_COMMENT = "# TODO: write your solution here (the exercise above says what it must do), then delete the raise."
TODO_RAISE = 'raise NotImplementedError("Exercise not done yet: write your solution in this cell.")'
TODO_ANSWER = "# TODO: your answer (the question above says which kind)"
ANSWER_LINE = re.compile(r"^(\s*)(ANSWER_[A-Z0-9_]+)\s*=")


class StudentVersionError(ValueError):
    """A lab notebook whose solution markers cannot be turned into a student version."""


def _lines(cell: dict) -> list[str]:
    src = cell.get("source", "")
    return ("".join(src) if isinstance(src, list) else str(src)).split("\n")


def _tags(cell: dict) -> list[str]:
    tags = cell.get("metadata", {}).get("tags", [])
    return tags if isinstance(tags, list) else []


def is_solution_markdown(cell: dict) -> bool:
    return cell.get("cell_type") == "markdown" and (
        SOLUTION_TAG in _tags(cell) or any(line.strip() == SOLUTION_MARKER for line in _lines(cell)))


def _parseable(source: str) -> str | None:
    """A syntax error message for Python source (IPython magics and shell lines are blanked first)."""
    code = "\n".join("" if line.lstrip().startswith(("%", "!")) else line for line in source.split("\n"))
    try:
        ast.parse(code)
    except SyntaxError as err:
        return f"{err.msg} (line {err.lineno})"
    return None


def _replace_solutions(lines: list[str], where: str) -> tuple[list[str], int, list[str]]:
    """(lines with each solution block's body replaced by a TODO, number of blocks, problems found).

    The marker lines themselves are kept: only what stands between them changes.
    """
    out: list[str] = []
    problems: list[str] = []
    blocks = 0
    open_at = None  # (line number, index in out of the first body line) of an unclosed BEGIN
    answers: list | None = None  # (indent, name) of each quiz answer of the open block; None once other code shows
    body = 0
    for n, line in enumerate(lines, 1):
        text = line.strip()
        if BEGIN in text or END in text:
            marker = BEGIN if BEGIN in text else END
            if text != marker:  # reported, then treated as the marker so that the balance is checked too
                problems.append(f"{where}, line {n}: the marker {marker!r} must stand alone on its line.")
                text = marker
        if text == BEGIN:
            if open_at is not None:
                problems.append(f"{where}, line {n}: {BEGIN} inside the solution opened on line {open_at[0]} "
                                f"(nested or missing {END}).")
                continue
            indent = line[: len(line) - len(line.lstrip())]
            out.append(line)
            open_at, body, answers = (n, len(out)), 0, []
            out += [indent + TODO_COMMENT, indent + TODO_RAISE]
        elif text == END:
            if open_at is None:
                problems.append(f"{where}, line {n}: {END} without a {BEGIN} before it.")
                continue
            if body == 0:
                problems.append(f"{where}, line {open_at[0]}: the solution between the markers is empty.")
            elif answers is not None:  # only quiz answers: blank each one instead of raising
                out[open_at[1]:] = [f"{indent}{name} = None  {TODO_ANSWER}" for indent, name in answers]
            out.append(line)
            blocks += 1
            open_at = None
        elif open_at is not None:
            body += bool(text)
            found = ANSWER_LINE.match(line)
            if text and not text.startswith("#") and (found is None or answers is None):
                answers = None
            elif found:
                answers.append(found.groups())
        else:
            out.append(line)
    if open_at is not None:
        problems.append(f"{where}, line {open_at[0]}: {BEGIN} is never closed by {END}.")
    return out, blocks, problems


def lint_lab(nb: dict, name: str = "notebook") -> list[str]:
    """Problems that stop ``nb`` from having a correct student version (empty list: fine)."""
    problems = []
    exercises = 0
    for i, cell in enumerate(nb.get("cells", []), 1):
        where = f"{name}: cell {i}"
        text = "\n".join(_lines(cell))
        kind = cell.get("cell_type")
        if kind == "code":
            new, blocks, found = _replace_solutions(_lines(cell), where)
            problems += found
            exercises += blocks
            if SOLUTION_TAG in _tags(cell) or SOLUTION_MARKER in text:
                problems.append(f"{where}: a code cell is marked as solution; code cells are never removed, "
                                f"put the solution between {BEGIN} and {END} instead.")
            if blocks and not found:
                for label, source in (("the solution", text), ("the student version", "\n".join(new))):
                    err = _parseable(source)
                    if err:
                        problems.append(f"{where}: {label} of this cell is not valid Python: {err}.")
        elif BEGIN in text or END in text:
            problems.append(f"{where}: solution markers belong in code cells, not in a {kind} cell; mark a "
                            f"markdown answer with a line {SOLUTION_MARKER} or the cell tag {SOLUTION_TAG!r}.")
    if exercises == 0:
        problems.append(f"{name}: no exercise (no code cell with {BEGIN} ... {END}); every lab needs one.")
    return problems


def student_version(nb: dict, lab: str | None = None) -> dict:
    """A new notebook: solution bodies replaced by TODOs (markers kept), solution markdown removed, outputs
    stripped, every kept cell with its id."""
    problems = lint_lab(nb, lab or "notebook")
    if problems:
        raise StudentVersionError("Cannot make a student version:\n  " + "\n  ".join(problems))
    out = copy.deepcopy(nb)
    cells = []
    for cell in out.get("cells", []):
        if is_solution_markdown(cell):
            continue
        meta = cell.get("metadata", {})
        for key in ("execution", "papermill", "collapsed", "scrolled", "ExecuteTime"):
            meta.pop(key, None)
        if cell.get("cell_type") == "code":
            new, blocks, _ = _replace_solutions(_lines(cell), "")
            if blocks:
                text = "\n".join(new)
                cell["source"] = text.splitlines(keepends=True) if isinstance(cell.get("source"), list) else text
            cell["outputs"] = []
            cell["execution_count"] = None
        else:
            cell.pop("outputs", None)
            cell.pop("execution_count", None)
        cells.append(cell)
    out["cells"] = cells
    meta = out.setdefault("metadata", {})
    for key in ("papermill", "widgets", "execution"):
        meta.pop(key, None)
    lab_meta = dict(meta.get("labhelpers", {})) if isinstance(meta.get("labhelpers"), dict) else {}
    lab_meta.pop("submission_id", None)
    if lab:
        lab_meta["lab"] = lab
    lab_meta["version"] = "student"
    meta["labhelpers"] = lab_meta
    return out


def exercise_cells(nb: dict) -> list[int]:
    """Indices (0-based) of the code cells whose student version raises (quiz-answer cells do not)."""
    return [i for i, c in enumerate(nb.get("cells", []))
            if c.get("cell_type") == "code" and TODO_RAISE in "\n".join(_replace_solutions(_lines(c), "")[0])]


def quiz_cells(nb: dict) -> list[int]:
    """Indices (0-based) of the code cells whose solution blocks only set quiz answers."""
    return [i for i, c in enumerate(nb.get("cells", []))
            if c.get("cell_type") == "code" and any(line.strip() == BEGIN for line in _lines(c))
            and i not in exercise_cells(nb)]


def student_text(nb: dict, lab: str | None = None) -> str:
    """The student version of ``nb`` as the text of an ``.ipynb`` file, written as ``nbformat.write`` writes."""
    import nbformat

    text = nbformat.writes(nbformat.from_dict(student_version(nb, lab)))
    return text if text.endswith("\n") else text + "\n"


def write_student_versions(notebooks: list[Path], out_dir: Path) -> list[Path]:
    """Write the student version of each lab notebook into ``out_dir`` under the lab's file name.

    Every lab is linted first, so that a broken one writes nothing and the error lists all problems.
    """
    loaded = [(p, json.loads(Path(p).read_text(encoding="utf-8"))) for p in notebooks]
    problems = [msg for p, nb in loaded for msg in lint_lab(nb, Path(p).name)]
    if problems:
        raise StudentVersionError("Cannot make the student versions:\n  " + "\n  ".join(problems))
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for path, nb in loaded:
        target = out_dir / Path(path).name
        if target.resolve() == Path(path).resolve():
            raise StudentVersionError(f"--out must not be the labs folder itself ({out_dir}): it would "
                                      "overwrite the solutions.")
        target.write_text(student_text(nb, Path(path).stem), encoding="utf-8")
        written.append(target)
    return written
