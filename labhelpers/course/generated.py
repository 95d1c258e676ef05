"""Every generated block of the course, written by one command and checked by the same one.

    python -m labhelpers.course.generated            # rewrite every stale block
    python -m labhelpers.course.generated --check    # write nothing; exit 1 naming each stale block

The blocks, and where their text comes from:

* each lab's **setup cell** (cell 1, the whole cell): :mod:`labhelpers.course.setup_cell`;
* the **hardware** table in each lab's header (cell 0) and in README.md: :mod:`labhelpers.course.hardware`;
* the README's **points** table: :func:`labhelpers.course.points.points_table`;
* the README's **statuses** table: :func:`labhelpers.course.grading.statuses.markdown_table`;
* the README's **benchmarks:tiny** block: ``benchmarks/run.py``'s ``readme_block``, from the stored results
  ``benchmarks/results/tiny.json`` (rendering never measures anything);
* the **student versions** ``student/NN_name.ipynb`` (whole files, one per lab in ``labs/``, none other):
  :func:`labhelpers.course.student.student_text` of each lab, its generated cells up to date;
* the README's **colab** block (an "Open in Colab" link per lab, to its student version):
  :data:`labhelpers.course.setup_cell.REPOSITORY` and ``REVISION``, and each lab's title;
* the **quiz** module ``labhelpers/quiz_questions.py`` (the whole file): the answers' digests and the encoded
  explanations, from the instructor's plain table ``instructor/quiz.toml`` (:mod:`labhelpers.course.quiz_digests`).

A block in markdown sits between the lines ``<!-- NAME:start -->`` and ``<!-- NAME:end -->``; only the lines between
them are ever rewritten. The setup cell has no markers: a code cell the learner runs would show them, and the cell's own
boundaries delimit it. Nothing here is pasted by hand, so a block that differs from its source is stale, never a
deliberate edit.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import os
import sys
from collections.abc import Callable, Collection, Iterator
from pathlib import Path

PARTS = ("setup", "hardware", "points", "statuses", "benchmarks", "student", "colab", "quiz")
STUDENT_FOLDER = "student"
COLAB_BADGE = "https://colab.research.google.com/assets/colab-badge.svg"
SETUP_CELL = "cell 1 (the setup cell)"
HEADER_CELL = 0


def markers(name: str) -> tuple[str, str]:
    return f"<!-- {name}:start -->", f"<!-- {name}:end -->"


def _bounds(lines: list[str], name: str, where: str) -> tuple[int, int]:
    """The indices of ``name``'s start and end lines; a marker counts only as a line of its own, so prose that
    mentions one (as the README's contributing notes do) is never taken for it."""
    start, end = markers(name)
    starts = [i for i, line in enumerate(lines) if line.rstrip() == start]
    ends = [i for i, line in enumerate(lines) if line.rstrip() == end]
    if len(starts) != 1 or len(ends) != 1 or starts[0] > ends[0]:
        raise ValueError(f"{where} needs exactly one {start} … {end} block, each marker on a line of its own")
    return starts[0], ends[0]


def block(text: str, name: str, where: str = "the text") -> str:
    """The text between ``name``'s marker lines (exactly one pair, in order, or ``ValueError`` naming ``where``)."""
    lines = text.split("\n")
    first, last = _bounds(lines, name, where)
    return "\n".join(lines[first + 1:last])


def fill(text: str, name: str, body: str, where: str = "the text") -> str:
    """``text`` with the lines between ``name``'s markers replaced by ``body``; every other line is kept as is."""
    lines = text.split("\n")
    first, last = _bounds(lines, name, where)
    return "\n".join([*lines[:first + 1], body, *lines[last:]])


@contextlib.contextmanager
def _benchmarks_importable(folder: Path) -> Iterator[None]:
    """The benchmark scripts import their neighbours by name and set environment defaults when imported: both are
    undone afterwards, so rendering a block leaves this process's imports and environment as they were."""
    env_before = set(os.environ)
    sys.path.insert(0, str(folder))
    try:
        yield
    finally:
        sys.path.remove(str(folder))
        for name in set(os.environ) - env_before:
            del os.environ[name]


def benchmark_block(root: Path) -> str:
    """The README's benchmark block, rendered by the suite's own code from its stored results file."""
    folder = root / "benchmarks"
    with _benchmarks_importable(folder):
        spec = importlib.util.spec_from_file_location("benchmarks_run", folder / "run.py")
        suite = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(suite)
        return suite.readme_block()


def _hardware_table() -> str:
    from .hardware import readme_table

    return readme_table()


def _points_table() -> str:
    from .points import points_table

    return points_table()


def _statuses_table() -> str:
    from .grading.statuses import markdown_table

    return markdown_table()


def colab_url(stem: str) -> str:
    """Colab's address of a lab's student version in the course repository, at the revision the labs install."""
    from .setup_cell import REPOSITORY, REVISION

    path = REPOSITORY.removeprefix("https://github.com/")
    return f"https://colab.research.google.com/github/{path}/blob/{REVISION}/{STUDENT_FOLDER}/{stem}.ipynb"


def colab_table(root: Path) -> str:
    """The README's table of labs, each with its student version and an "Open in Colab" link to it."""
    import nbformat

    from .runner import lab_notebooks

    lines = ["| lab | open it |", "|---|---|"]
    for path in lab_notebooks(folder=root / "labs"):
        header = nbformat.read(str(path), as_version=4).cells[HEADER_CELL].source.split("\n")[0]
        title = header.lstrip("#").strip() or path.stem
        lines.append(f"| [{title}]({STUDENT_FOLDER}/{path.name}) | [![Open In Colab]({COLAB_BADGE})]"
                     f"({colab_url(path.stem)}) |")
    return "\n".join(lines)


def readme_blocks(root: Path, only: Collection[str] = PARTS) -> dict[str, Callable[[], str]]:
    """Marker name -> the function that renders that README block, for the parts in ``only``.

    Each renderer imports its source when called, so a part left out of ``only`` is never imported.
    """
    renderers = {"hardware": ("hardware", _hardware_table), "points": ("points", _points_table),
                 "statuses": ("statuses", _statuses_table),
                 "benchmarks": ("benchmarks:tiny", lambda: benchmark_block(root)),
                 "colab": ("colab", lambda: colab_table(root))}
    return dict(renderer for part, renderer in renderers.items() if part in only)


def _update_readme(root: Path, check: bool, only: Collection[str]) -> list[str]:
    renderers = readme_blocks(root, only)
    if not renderers:
        return []
    path = root / "README.md"
    new = path.read_text(encoding="utf-8")
    stale = []
    for name, render in renderers.items():
        filled = fill(new, name, render(), "README.md")
        if filled != new:
            stale.append(f"README.md {markers(name)[0]}")
            new = filled
    if stale and not check:
        path.write_text(new, encoding="utf-8")
    return stale


def _update_notebook(path: Path, where: str, check: bool, only: Collection[str]) -> tuple[list[str], dict]:
    """(the stale generated blocks of one lab, the lab with them up to date)."""
    import nbformat

    from . import hardware, setup_cell

    nb = nbformat.read(str(path), as_version=4)
    stale = []
    if "setup" in only:
        cell = nb.cells[setup_cell.SETUP_CELL_INDEX]
        if cell.cell_type != "code":
            raise ValueError(f"{where}: {SETUP_CELL} should be a code cell, found a {cell.cell_type} cell")
        if cell.source != setup_cell.setup_cell_source():
            cell.source = setup_cell.setup_cell_source()
            stale.append(f"{where} {SETUP_CELL}")
    if "hardware" in only and path.stem in hardware.HARDWARE:
        header = nb.cells[HEADER_CELL]
        filled = fill(header.source, "hardware", hardware.header_table(path.stem), f"{where} cell {HEADER_CELL}")
        if filled != header.source:
            header.source = filled
            stale.append(f"{where} cell {HEADER_CELL} {markers('hardware')[0]}")
    if stale and not check:
        nbformat.write(nb, str(path))
    return stale, nb


def _update_file(path: Path, text: str, where: str, check: bool) -> list[str]:
    """Write ``text`` to ``path`` unless it holds it already; the one stale name, or none."""
    if path.is_file() and path.read_text(encoding="utf-8") == text:
        return []
    if not check:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return [where]


def _update_students(root: Path, labs: dict[Path, dict], check: bool) -> list[str]:
    """``student/`` holds exactly the student version of each lab: stale or missing ones are written, others
    (a lab that is gone) removed."""
    from .student import student_text

    folder = root / STUDENT_FOLDER
    stale = []
    for path, nb in labs.items():
        stale += _update_file(folder / path.name, student_text(nb, path.stem), f"{STUDENT_FOLDER}/{path.name}", check)
    expected = {path.name for path in labs}
    for extra in sorted(folder.glob("*.ipynb")) if folder.is_dir() else []:
        if extra.name not in expected:
            stale.append(f"{STUDENT_FOLDER}/{extra.name} (no such lab in labs/)")
            if not check:
                extra.unlink()
    return stale


def update(root: Path, *, check: bool = False, only: Collection[str] = PARTS) -> list[str]:
    """Rewrite every stale block under ``root`` (with ``check``, none) and return one line naming each.

    ``only`` limits the run to some of :data:`PARTS`. A file without a block's markers raises ``ValueError``
    naming the file and the markers, in both modes: there is nowhere to write the block. The student versions are
    made from the labs with their own generated cells up to date, so one stale lab block is reported once.
    """
    from .runner import lab_notebooks

    unknown = set(only) - set(PARTS)
    if unknown:
        raise ValueError(f"unknown parts {sorted(unknown)}; the parts are {', '.join(PARTS)}")
    stale = []
    if "quiz" in only:
        from . import quiz_digests

        stale += _update_file(root / quiz_digests.MODULE, quiz_digests.render_for(root),
                              f"{quiz_digests.MODULE.as_posix()} (from {quiz_digests.TABLE.as_posix()})", check)
    labs = {}
    if {"setup", "hardware", "student"} & set(only):
        for path in lab_notebooks(folder=root / "labs"):
            found, labs[path] = _update_notebook(path, f"labs/{path.name}", check, only)
            stale += found
    if "student" in only:
        stale += _update_students(root, labs, check)
    return stale + _update_readme(root, check, only)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if a block is stale")
    parser.add_argument("--root", default=str(Path(__file__).resolve().parents[2]),
                        help="the checkout holding README.md, labs/ and benchmarks/ (default: this one)")
    parser.add_argument("--only", nargs="+", choices=PARTS, default=list(PARTS))
    args = parser.parse_args(argv)
    try:
        stale = update(Path(args.root), check=args.check, only=args.only)
    except (ValueError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    for name in stale:
        print(f"{'stale' if args.check else 'rewrote'}: {name}")
    if args.check and stale:
        print("run python -m labhelpers.course.generated to rewrite them", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
