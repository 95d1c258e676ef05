"""Grade executed lab notebooks from their records: ``labhelpers grade PATH ... [--out DIR] [--rerun]``.

The grader only reads its inputs. For every notebook it finds it decides **one status** from a fixed
vocabulary (:mod:`.statuses`), scores the lab's checks (:mod:`.score`), and writes ``gradebook.csv`` (one row
per notebook), ``grades.json`` (every detail) and ``report.md`` (per notebook, in words a learner
understands), plus the exports asked for (:mod:`.report`). One concern per module:

* :mod:`.discover`  finding files, their lab and submission id, reading them (cut off vs damaged);
* :mod:`.inspect`   one notebook: records, run order, errors, records vs their numbers and code, reference use;
* :mod:`.score`     expected checks and environment across the batch, points, one grade per notebook;
* :mod:`.rerun`     ``--rerun`` in a sandbox, and the differences from the submitted records;
* :mod:`.report`    the output files and the printed summary.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

from labhelpers.course.grading.discover import find_notebooks
from labhelpers.course.grading.inspection import Inspection, Problem, inspect_notebook
from labhelpers.course.grading.report import (
    parse_exports,
    summary_table,
    write_canvas,
    write_gradebook,
    write_gradescope,
    write_json,
    write_report,
)
from labhelpers.course.grading.rerun import Sandbox, compare_records
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
from labhelpers.course.grading.statuses import STATUSES, VERDICTS

__all__ = ["STATUSES", "VERDICTS", "Grade", "GradeOptions", "Sandbox", "find_notebooks", "grade",
           "grade_paths", "write_all", "inspect_notebook", "load_reference", "parse_expect_versions", "parse_exports", "summary_table"]


def _rerun_all(submitted: list[Inspection], profile: str, timeout: float, out_dir: Path | None, progress,
               sandbox: Sandbox) -> tuple[list[Inspection], dict[int, dict]]:
    graded, reruns = [], {}
    keep = (out_dir / "reruns") if out_dir else None
    if keep:
        keep.mkdir(parents=True, exist_ok=True)
    for n, insp in enumerate(submitted):
        if not insp.valid:
            graded.append(insp)
            continue
        if progress:
            progress(f"rerunning {insp.path} ({n + 1}/{len(submitted)})")
        executed, info = sandbox.run(insp.path, profile=profile, timeout=timeout)
        if executed.exists():
            again = inspect_notebook(executed, sid=insp.submission_id, lab=insp.lab or None, shown_path=insp.path)
            again.renamed = insp.renamed
        else:
            again = Inspection(path=insp.path, submission_id=insp.submission_id, lab=insp.lab, claimed=insp.claimed,
                               executed=False, renamed=insp.renamed)
            if not info["timed_out"]:
                again.valid = False
                again.problems.append(Problem("invalid_file", f"The rerun could not start: {info['error']} "
                                                              f"{info['stderr_tail']}".strip()))
        again.path = insp.path
        if info["timed_out"]:
            again.problems.insert(0, Problem("timeout", (
                f"Rerunning the notebook took longer than {timeout:g} s and was stopped. Make sure it "
                "finishes in the tiny profile within the lab's stated time.")))
        kept = None
        if keep and executed.exists():
            kept = keep / f"{n:04d}_{insp.path.name}"
            kept.write_bytes(executed.read_bytes())
        reruns[len(graded)] = {**info, "executed": str(kept or ""),
                               "submitted_problems": [asdict(p) for p in insp.problems],
                               "differences": compare_records(insp.records, again.records)}
        graded.append(again)
    return graded, reruns


def grade_paths(paths, *, options: GradeOptions | None = None, rerun: bool = False, timeout: float = 600,
                out_dir: Path | None = None, progress=None, sandbox: Sandbox | None = None
                ) -> tuple[list[Grade], Expectation, dict | None]:
    """Grade every notebook under ``paths``; inputs are only read. With ``rerun``, grade re-executed copies.

    Returns the grades, the environment they were held to, and (with ``rerun``) the sandbox's protections.
    """
    options = options or GradeOptions()
    submitted = [inspect_notebook(f) for f in find_notebooks(paths, exclude=out_dir)]
    graded, reruns, box = submitted, {}, None
    if rerun:
        profile = options.profile if options.profile in ("tiny", "full") else "tiny"
        own = sandbox is None
        sandbox = sandbox or Sandbox()
        if own:
            sandbox.__enter__()
        try:
            graded, reruns = _rerun_all(submitted, profile, timeout, out_dir, progress, sandbox)
            box = {"protections": sandbox.protections, "missing": sandbox.missing}
        finally:
            if own:
                sandbox.__exit__(None, None, None)
    expected = expected_checks(graded + submitted, options.reference)
    expect = resolve_expectation(submitted, options)
    grades = []
    for n, insp in enumerate(graded):
        g = score(insp, expected.get(insp.lab, {}), options, expect)
        if n in reruns:
            g.rerun = reruns[n]
            g.rerun["submitted_status"] = score(submitted[n], expected.get(insp.lab, {}), options, expect).status
        grades.append(g)
    mark_duplicates(grades)
    return grades, expect, box


def write_all(grades: list[Grade], expect: Expectation, box: dict | None, out: Path, *, paths, options: GradeOptions,
              rerun: bool, exports: list[str] = ()) -> None:
    """Write ``gradebook.csv``, ``grades.json``, ``report.md`` and the ``exports`` into ``out``."""
    roots = [Path(p) for p in paths]
    root = roots[0] if len(roots) == 1 and roots[0].is_dir() else None
    write_gradebook(grades, out / "gradebook.csv")
    write_json(grades, out / "grades.json", expect, options.reference, rerun, box)
    write_report(grades, out / "report.md", expect, root, box)
    if "gradescope" in exports:
        write_gradescope(grades, out / "gradescope")
    if "canvas" in exports:
        write_canvas(grades, out / "canvas.csv")


def grade(paths, out_dir: str | Path = "grades", *, options: GradeOptions | None = None, rerun: bool = False,
          timeout: float = 600, progress=None, exports: list[str] = (), sandbox: Sandbox | None = None
          ) -> list[Grade]:
    """Grade, then write the output files into ``out_dir`` (see :func:`write_all`)."""
    options = options or GradeOptions()
    exports = parse_exports(list(exports))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    grades, expect, box = grade_paths(paths, options=options, rerun=rerun, timeout=timeout, out_dir=out,
                                      progress=progress, sandbox=sandbox)
    write_all(grades, expect, box, out, paths=paths, options=options, rerun=rerun, exports=exports)
    return grades
