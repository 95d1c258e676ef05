"""The grading flow, written once: find the notebooks, inspect each, rerun them in a sandbox when asked, score
the batch, write the output files. :func:`grade` (the library's call) and ``labhelpers grade`` (the command)
both go through :func:`run`.

A rerun grades the executed copy under the submitted file's name; its outcome (:class:`RerunOutcome`) is built
once, when the batch is scored, and travels on the grade to ``grades.json``, the report and the summary.
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass, field, replace
from pathlib import Path

from labhelpers.course.grading.discover import Roster, find_notebooks, load
from labhelpers.course.grading.inspection import Inspection, Problem, inspect_notebook
from labhelpers.course.grading.report import (
    output_names,
    parse_exports,
    summary_table,
    write_canvas,
    write_gradebook,
    write_gradescope,
    write_json,
    write_report,
)
from labhelpers.course.grading.rerun import RerunOutcome, Sandbox, SandboxReport, SandboxRun, compare_records
from labhelpers.course.grading.score import (
    Expectation,
    Grade,
    GradeOptions,
    expected_checks,
    load_reference,
    mark_duplicates,
    parse_expect_versions,
    resolve_expectation,
    score,
)
from labhelpers.course.grading.transplant import Course, Transplant, course, transplant


class NoNotebooks(ValueError):
    """The paths hold no notebook: almost always the wrong folder, so grading stops instead of writing nothing."""


@dataclass
class Gradebook:
    """One graded batch: a grade per notebook, the environment they were held to, and the sandbox's report."""

    grades: list[Grade]
    expect: Expectation
    sandbox: SandboxReport | None = None  # with --rerun only
    written: list[str] = field(default_factory=list)  # the output files, once written (see output_names)

    def summary(self) -> str:
        return summary_table(self.grades, self.expect, self.sandbox)


@dataclass(frozen=True)
class _Rerun:
    """One submission's rerun before the batch is scored: the executed copy's inspection and how the run went."""

    inspection: Inspection
    run: SandboxRun
    kept: Path | None  # where the executed copy was kept for the instructor
    transplanted: Transplant


def command_options(profile: str = "auto", expect_versions: str = "auto", references=None) -> GradeOptions:
    """The options of ``labhelpers grade`` from its arguments (``--reference`` paths are read here)."""
    reference, reference_records = load_reference(references) if references else ({}, [])
    return GradeOptions(profile=profile, expect_versions=parse_expect_versions(expect_versions),
                        reference=reference, reference_records=reference_records)


def _timeout_problem(timeout: float) -> Problem:
    return Problem("timeout", (f"Rerunning the notebook took longer than {timeout:g} s and was stopped. Make sure "
                               "it finishes in the tiny profile within the lab's stated time."))


def _inspect_rerun(submitted: Inspection, run: SandboxRun, timeout: float) -> Inspection:
    """The executed copy read as the submission itself (its name, id and lab); a run that left no copy is noted."""
    submission = replace(submitted.submission, lab=submitted.lab or None)
    if run.output.exists():
        again = inspect_notebook(run.output, submission)
    else:
        again = Inspection(submission=submission, lab=submitted.lab, executed=False)
        if not run.timed_out:
            again.valid = False
            again.problems.append(Problem("invalid_file", f"The rerun could not start: {run.error} "
                                                          f"{run.stderr_tail}".strip()))
    if run.timed_out:
        again.problems.insert(0, _timeout_problem(timeout))
    elif run.error and again.valid and not any(p.code == "cell_error" for p in again.problems):
        # the kernel died (a cap, a crash): papermill wrote the notebook without an error output
        again.problems.append(Problem("cell_error", f"The rerun stopped: {run.error}."))
    return again


class NoCourseNotebook(ValueError):
    """``--rerun`` runs the course's own notebook of each lab, and one of the batch's labs has none here."""


def _course_notebooks(submitted: list[Inspection]) -> dict[str, Course]:
    """The course's notebook of every lab the batch's readable submissions belong to (see :mod:`.transplant`)."""
    labs = sorted({insp.lab for insp in submitted if insp.valid and insp.lab})
    found = {lab: course(lab) for lab in labs}
    missing = [lab for lab, known in found.items() if known is None]
    if missing:
        raise NoCourseNotebook(
            f"--rerun runs the course's own notebook of each lab with only the learners' solution bodies in it, "
            f"and there is none for {', '.join(missing)}: set LABS_DIR to the folder of the solution notebooks "
            "(labs/ of the course's checkout).")
    return found


def _rerun_one(insp: Inspection, n: int, box: Sandbox, known: Course, *, profile: str, timeout: float,
               keep: Path | None) -> _Rerun:
    notebook, _ = load(insp.path)  # the notebook as parsed (a BOM or UTF-16 file reruns as UTF-8)
    transplanted = transplant(known, notebook or {})
    run = box.run(transplanted.notebook, insp.path.name, profile=profile, timeout=timeout)
    kept = None
    if keep and run.output.exists():
        kept = keep / f"{n:04d}_{insp.path.name}"
        kept.write_bytes(run.output.read_bytes())
    return _Rerun(_inspect_rerun(insp, run, timeout), run, kept, transplanted)


def _rerun_all(submitted: list[Inspection], options: GradeOptions, timeout: float, out_dir: Path | None,
               progress, sandbox: Sandbox | None, paths=(), unsafe: bool = False
               ) -> tuple[list[_Rerun | None], SandboxReport]:
    """Rerun every readable submission in one sandbox (the one given, which the caller closes, or a new one that
    hides the graded ``paths`` and ``out_dir``; it refuses where a protection is missing, unless ``unsafe``)."""
    profile = options.profile if options.profile in ("tiny", "full") else "tiny"
    keep = (out_dir / "reruns") if out_dir else None
    if keep:
        keep.mkdir(parents=True, exist_ok=True)
    reruns: list[_Rerun | None] = []
    courses = _course_notebooks(submitted)
    hide = [*paths, *([out_dir] if out_dir else [])]
    with (nullcontext(sandbox) if sandbox else Sandbox(hide=hide, unsafe=unsafe)) as box:
        for n, insp in enumerate(submitted):
            if not insp.valid or not insp.lab:  # no lab: there is no course notebook to run it in
                reruns.append(None)
                continue
            if progress:
                progress(f"rerunning {insp.path} ({n + 1}/{len(submitted)})")
            reruns.append(_rerun_one(insp, n, box, courses[insp.lab], profile=profile, timeout=timeout, keep=keep))
        return reruns, box.report()


def _grade(submitted: Inspection, rerun: _Rerun | None, expected: dict[str, dict], options: GradeOptions,
           expect: Expectation) -> Grade:
    if rerun is None:
        return score(submitted, expected, options, expect)
    outcome = RerunOutcome.of(rerun.run, kept=rerun.kept, submitted_problems=submitted.problems,
                              transplanted=rerun.transplanted,
                              differences=compare_records(submitted.records, rerun.inspection.records),
                              submitted_status=score(submitted, expected, options, expect).status)
    return replace(score(rerun.inspection, expected, options, expect), rerun=outcome,
                   cell_changes=list(submitted.cell_changes))


def grade_paths(paths, *, options: GradeOptions | None = None, rerun: bool = False, timeout: float = 600,
                out_dir: Path | None = None, progress=None, sandbox: Sandbox | None = None,
                roster: dict | Path | None = None, unsafe_rerun: bool = False) -> Gradebook:
    """Grade every notebook under ``paths`` (inputs are only read); with ``rerun``, grade re-executed copies.

    ``roster``: a ``--roster`` CSV path or a ``{file or folder: id}`` dict; its ids win over the names
    (:class:`.discover.Roster`; a roster that cannot be used raises :class:`.discover.RosterError`).
    Raises :class:`NoNotebooks` when ``paths`` hold none (``out_dir``, the grader's own output, is skipped), and
    :class:`.rerun.SandboxUnavailable` when the rerun's sandbox lacks a protection and not ``unsafe_rerun``.
    """
    options = options or GradeOptions()
    roster = Roster.of(roster)
    files = find_notebooks(paths, exclude=out_dir)
    if not files:
        raise NoNotebooks(f"no .ipynb files found under {', '.join(map(str, paths))}.")
    submitted = [inspect_notebook(f) for f in files]
    for insp in submitted if roster else ():
        insp.submission = roster.identify(insp.submission, paths)
    reruns: list[_Rerun | None] = [None] * len(submitted)
    report = None
    if rerun:
        reruns, report = _rerun_all(submitted, options, timeout, out_dir, progress, sandbox, [Path(p) for p in paths],
                                    unsafe_rerun)
    graded = [r.inspection if r else insp for insp, r in zip(submitted, reruns)]
    expected = expected_checks(graded + submitted, options.reference)
    expect = resolve_expectation(submitted, options)
    grades = [_grade(insp, r, expected.get(again.lab, {}), options, expect)
              for insp, r, again in zip(submitted, reruns, graded)]
    mark_duplicates(grades)
    return Gradebook(grades, expect, report)


def write_all(book: Gradebook, out: Path, *, paths, options: GradeOptions, rerun: bool, exports: list[str] = ()
              ) -> list[str]:
    """Write ``gradebook.csv``, ``grades.json``, ``report.md`` and the ``exports`` into ``out``; their names."""
    roots = [Path(p) for p in paths]
    root = roots[0] if len(roots) == 1 and roots[0].is_dir() else None
    write_gradebook(book.grades, out / "gradebook.csv")
    write_json(book.grades, out / "grades.json", book.expect, options.reference, rerun, book.sandbox)
    write_report(book.grades, out / "report.md", book.expect, root, book.sandbox)
    if "gradescope" in exports:
        write_gradescope(book.grades, out / "gradescope")
    if "canvas" in exports:
        write_canvas(book.grades, out / "canvas.csv")
    return output_names(list(exports))


def run(paths, out_dir: str | Path = "grades", *, options: GradeOptions | None = None, rerun: bool = False,
        timeout: float = 600, progress=None, exports=(), sandbox: Sandbox | None = None,
        roster: dict | Path | None = None, unsafe_rerun: bool = False) -> Gradebook:
    """Grade, then write the output files into ``out_dir`` (see :func:`write_all`)."""
    options = options or GradeOptions()
    exports = parse_exports(list(exports))
    out = Path(out_dir)
    book = grade_paths(paths, options=options, rerun=rerun, timeout=timeout, out_dir=out, progress=progress,
                       sandbox=sandbox, roster=roster, unsafe_rerun=unsafe_rerun)
    out.mkdir(parents=True, exist_ok=True)  # after grading: a path without notebooks leaves no empty folder
    return replace(book, written=write_all(book, out, paths=paths, options=options, rerun=rerun, exports=exports))


def grade(paths, out_dir: str | Path = "grades", *, options: GradeOptions | None = None, rerun: bool = False,
          timeout: float = 600, progress=None, exports=(), sandbox: Sandbox | None = None,
          roster: dict | Path | None = None, unsafe_rerun: bool = False) -> list[Grade]:
    """:func:`run`, returning the grades only."""
    return run(paths, out_dir, options=options, rerun=rerun, timeout=timeout, progress=progress, exports=exports,
               sandbox=sandbox, roster=roster, unsafe_rerun=unsafe_rerun).grades
