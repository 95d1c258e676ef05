"""A submission against the course's own notebook: its cells matched, its solution bodies taken out.

The course's notebook of a lab (``labs/<lab>.ipynb``, found by :func:`labhelpers.course.runner.labs_dir`)
holds every solution between ``### BEGIN SOLUTION`` and ``### END SOLUTION``; its student version holds the
same cells with a TODO between the same markers. A learner edits only those bodies. So:

* **Matching**: each of the course's code cells is found in the submission by cell id, else by its code
  outside the solution blocks (its *frame*), else, for a cell with solution blocks, by its position among
  such cells. Submission cells matched by none are *added*; course cells found nowhere are *missing*.
* **Bodies**: a matched cell's bodies are the lines between its markers; where the learner deleted the
  markers, what lies between the student version's frame before and after the TODO.
* :func:`transplant` builds the notebook that ``--rerun`` executes: the course's notebook, every cell its
  own, except the solution bodies, which come from the submission (a body not found stays the TODO). Cells
  the learner added are dropped, and listed.
* :func:`compare` tells the grader, without a rerun, which cells are not in the student version and whether
  every exercise body is the course's own solution (``instructor_solution``).
"""

from __future__ import annotations

import copy
import functools
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from labhelpers.course.student import ANSWER_LINE, BEGIN, END, student_version

_COMMENT = re.compile(r"\s+#.*$")


def _source(cell: dict) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else str(src)


def _first_line(source: str) -> str:
    return next((line.strip()[:60] for line in source.split("\n") if line.strip()), "")


@dataclass(frozen=True)
class Split:
    """One code cell cut at its solution markers: the frame around the blocks, and each block's body."""

    frame: tuple[str, ...]  # the lines outside the blocks, each block's place marked by BEGIN
    bodies: tuple[tuple[str, ...], ...]

    @property
    def key(self) -> str:
        """The frame, compared without trailing blanks and blank lines."""
        return "\n".join(line.rstrip() for line in self.frame if line.strip())


def split(source: str) -> Split:
    frame: list[str] = []
    bodies: list[tuple[str, ...]] = []
    body: list[str] | None = None
    for line in source.split("\n"):
        text = line.strip()
        if text == BEGIN and body is None:
            frame.append(line)
            body = []
        elif text == END and body is not None:
            bodies.append(tuple(body))
            body = None
        elif body is not None:
            body.append(line)
        else:
            frame.append(line)
    if body is not None:  # an unclosed block: what follows BEGIN is its body
        bodies.append(tuple(body))
    return Split(tuple(frame), tuple(bodies))


def normalised_body(body: tuple[str, ...]) -> str:
    """A body without comments, blank lines and trailing blanks: two copies of one solution compare equal."""
    lines = [_COMMENT.sub("", line).rstrip() for line in body]
    return "\n".join(line for line in lines if line.strip() and not line.strip().startswith("#"))


def is_quiz_body(body: tuple[str, ...]) -> bool:
    code = [line for line in body if line.strip() and not line.strip().startswith("#")]
    return bool(code) and all(ANSWER_LINE.match(line) for line in code)


@dataclass(frozen=True)
class CourseCell:
    index: int
    cell_id: str | None
    split: Split  # the solution notebook's cell
    todo: Split  # the student version's cell (its bodies are TODOs)

    @property
    def has_blocks(self) -> bool:
        return bool(self.split.bodies)


@dataclass(frozen=True)
class Course:
    lab: str
    notebook: dict
    cells: tuple[CourseCell, ...]


def course_notebook_path(lab: str) -> Path:
    from labhelpers.course.runner import labs_dir

    return labs_dir() / f"{lab}.ipynb"


@functools.lru_cache(maxsize=32)
def _course(path: str, mtime: float, lab: str) -> Course:
    nb = json.loads(Path(path).read_text(encoding="utf-8"))
    student = student_version(nb, lab)
    solution_cells = [(i, c) for i, c in enumerate(nb["cells"]) if c.get("cell_type") == "code"]
    student_cells = [c for c in student["cells"] if c.get("cell_type") == "code"]
    cells = tuple(CourseCell(i, c.get("id"), split(_source(c)), split(_source(s)))
                  for (i, c), s in zip(solution_cells, student_cells))
    return Course(lab, nb, cells)


def course(lab: str) -> Course | None:
    """The course's notebook of ``lab``, cut into cells; None where there is no labs folder or no such lab."""
    try:
        path = course_notebook_path(lab)
    except (FileNotFoundError, NotADirectoryError, OSError):
        return None
    if not path.is_file():
        return None
    return _course(str(path), path.stat().st_mtime, lab)


@dataclass
class Match:
    """Which submission cell (index into the notebook's cells) holds each course cell, and what is left over."""

    found: dict[int, int] = field(default_factory=dict)  # course cell index -> submission cell index
    added: list[int] = field(default_factory=list)  # submission code cells matching no course cell
    missing: list[CourseCell] = field(default_factory=list)


def _injected(cell: dict) -> bool:
    """papermill's cell of injected parameters: the runner's, not the learner's."""
    tags = (cell.get("metadata") or {}).get("tags") or []
    return isinstance(tags, list) and "injected-parameters" in tags


def match(known: Course, cells: list[dict]) -> Match:
    """Match ``known``'s code cells to the submission's ``cells`` (see the module)."""
    code = {i: c for i, c in enumerate(cells) if c.get("cell_type") == "code" and not _injected(c)}
    splits = {i: split(_source(c)) for i, c in code.items()}
    by_id = {c.get("id"): i for i, c in code.items() if c.get("id")}
    by_key: dict[str, list[int]] = {}
    for i, s in splits.items():
        by_key.setdefault(s.key, []).append(i)
    result, taken = Match(), set()
    for cc in known.cells:
        i = by_id.get(cc.cell_id) if cc.cell_id else None
        if i is None or i in taken:
            i = next((j for j in by_key.get(cc.todo.key, []) if j not in taken), None)
        if i is not None:
            result.found[cc.index] = i
            taken.add(i)
    with_blocks = [i for i in splits if splits[i].bodies and i not in taken]
    for cc in (c for c in known.cells if c.has_blocks and c.index not in result.found):
        if with_blocks:  # by position among the cells that hold solution blocks
            result.found[cc.index] = with_blocks.pop(0)
            taken.add(result.found[cc.index])
    result.added = [i for i in code if i not in taken and _source(code[i]).strip()]
    result.missing = [cc for cc in known.cells if cc.index not in result.found and "".join(cc.split.frame).strip()]
    return result


def _frame_bodies(todo: Split, source: str) -> tuple[tuple[str, ...], ...] | None:
    """The bodies of a cell whose markers were deleted: what lies between the student frame's pieces."""
    lines = source.split("\n")
    pieces: list[list[str]] = [[]]
    for line in todo.frame:
        if line.strip() == BEGIN:
            pieces.append([])
        else:
            pieces[-1].append(line)
    bodies, at = [], 0
    for n, piece in enumerate(pieces):
        width = len(piece)
        if lines[at:at + width] != piece:
            return None
        at += width
        if n + 1 == len(pieces):
            break
        following = pieces[n + 1]
        if n + 2 == len(pieces):  # the last piece closes the cell
            end = len(lines) - len(following)
            if end < at or lines[end:] != following:
                return None
        elif not following:  # two blocks with nothing between them: no way to tell where one ends
            return None
        else:
            end = next((k for k in range(at, len(lines)) if lines[k:k + len(following)] == following), None)
            if end is None:
                return None
        bodies.append(tuple(lines[at:end]))
        at = end
    return tuple(bodies)


def bodies_of(cc: CourseCell, cell: dict) -> tuple[tuple[str, ...], ...] | None:
    """The learner's bodies for course cell ``cc`` in their ``cell``; None when they cannot be told apart."""
    source = _source(cell)
    mine = split(source)
    if len(mine.bodies) == len(cc.split.bodies):
        return mine.bodies
    if not mine.bodies:
        return _frame_bodies(cc.todo, source)
    return None


@dataclass
class Comparison:
    """What a submission holds against the course's notebook (no rerun needed)."""

    added: list[str] = field(default_factory=list)  # "cell 12 (`first line`)"
    missing: list[str] = field(default_factory=list)
    copied: bool = False  # every exercise body is the course's own solution


def compare(known: Course, cells: list[dict]) -> Comparison:
    found = match(known, cells)
    out = Comparison(added=[f"cell {i + 1} (`{_first_line(_source(cells[i]))}`)" for i in found.added],
                     missing=[f"`{_first_line(chr(10).join(cc.todo.frame))}`" for cc in found.missing])
    exercises = same = 0
    for cc in known.cells:
        for n, body in enumerate(cc.split.bodies):
            if is_quiz_body(body):
                continue
            exercises += 1
            theirs = bodies_of(cc, cells[found.found[cc.index]]) if cc.index in found.found else None
            if theirs is not None and n < len(theirs) and normalised_body(theirs[n]) == normalised_body(body):
                same += 1
    out.copied = exercises > 0 and same == exercises
    return out


@dataclass
class Transplant:
    """The notebook ``--rerun`` executes, and what went into it."""

    notebook: dict
    taken: int = 0  # solution bodies taken from the submission
    not_found: list[str] = field(default_factory=list)  # course cells whose bodies were not found: left as TODO
    dropped: list[str] = field(default_factory=list)  # the learner's added cells, not run


def _with_bodies(frame: tuple[str, ...], bodies: tuple[tuple[str, ...], ...]) -> str:
    out: list[str] = []
    queue = list(bodies)
    for line in frame:
        out.append(line)
        if line.strip() == BEGIN:
            out += list(queue.pop(0)) if queue else []
            out.append(line[: len(line) - len(line.lstrip())] + END)
    return "\n".join(out)


def transplant(known: Course, submission: dict) -> Transplant:
    """The course's notebook with the submission's solution bodies in it (see the module)."""
    cells = [c for c in submission.get("cells", []) if isinstance(c, dict)]
    found = match(known, cells)
    nb = copy.deepcopy(known.notebook)
    result = Transplant(nb, dropped=[f"cell {i + 1} (`{_first_line(_source(cells[i]))}`)" for i in found.added])
    for cc in known.cells:
        cell = nb["cells"][cc.index]
        cell["outputs"], cell["execution_count"] = [], None
        if not cc.has_blocks:
            continue
        theirs = bodies_of(cc, cells[found.found[cc.index]]) if cc.index in found.found else None
        if theirs is None:
            theirs = cc.todo.bodies
            result.not_found.append(f"`{_first_line(chr(10).join(cc.todo.frame))}`")
        else:
            result.taken += len(theirs)
        cell["source"] = _with_bodies(cc.split.frame, theirs)
    meta = nb.setdefault("metadata", {})
    meta.setdefault("labhelpers", {})["lab"] = known.lab
    return result
