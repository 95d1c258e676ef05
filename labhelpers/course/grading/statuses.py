"""The grader's status vocabulary, defined once: the code, the report and the README table read it from here.

Each notebook gets exactly one status. The order of :data:`STATUSES` is the precedence: when several problems
are found, the most severe (first) one is the status, and ``grades.json`` and the report still list the others.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Status:
    code: str
    meaning: str  # for the instructor: what the grader found (grades.json, the README table)
    verdict: str  # for the learner: the report's one-sentence explanation
    earns_points: bool = True  # False: the notebook earns 0 whatever its records say
    needs_human: bool = False  # True: no grade is exported (canvas.csv leaves it empty); an instructor decides


_ALL = (
    Status("invalid_file", "not a notebook: empty, cut off, damaged JSON, or JSON that is not a Jupyter notebook",
           "This file is not a readable Jupyter notebook.", earns_points=False),
    Status("tampered", "a cell rebinds the record functions, the quiz function or a labhelpers module, emits "
           "records by hand, or runs code the grader cannot read (exec, eval)",
           "A cell changes how results are recorded, so the records cannot be trusted.", earns_points=False,
           needs_human=True),
    Status("instructor_solution", "every exercise body is the course's own solution (comments and blank lines aside)",
           "The exercises hold the course's own solutions rather than your work.", earns_points=False,
           needs_human=True),
    Status("duplicate", "another file is a submission of the same id for the same lab (every such row gets it)",
           "More than one file was submitted for this lab under the same name.", needs_human=True),
    Status("superseded", "an older Canvas upload of the same id for the same lab: the newest upload (highest "
           "attachment id) is graded instead, and the report names it", "A newer upload of yours for this lab is "
           "graded instead of this file.", earns_points=False),
    Status("timeout", "the rerun (--rerun) did not finish within --timeout",
           "The rerun of this notebook did not finish in time.", needs_human=True),
    Status("not_executed", "no cell was run: the notebook has no outputs",
           "The notebook was not run before it was saved.", earns_points=False),
    Status("cell_error", "a cell raised an error", "A cell raised an error, so the notebook did not run to the end."),
    Status("out_of_order", "cells were not run once from top to bottom (execution counts missing or not increasing)",
           "The cells were not run once, in order, from top to bottom."),
    Status("wrong_lab", "the records belong to another lab than the one the notebook claims",
           "This file holds the results of a different lab.", needs_human=True),
    Status("check_inconsistent", "a check's record disagrees with the course's declared direction and threshold, or "
           "its recorded pass with its own value (scored from the value)",
           "A check's record does not match how the course decides it: it is scored from its value.",
           needs_human=True),
    Status("code_mismatch", "a record was made by code other than the notebook's cells now hold (edited after it ran)",
           "Some results were made by code that is no longer in the notebook: cells were changed after they ran.",
           needs_human=True),
    Status("reference_used", "an exercise's solution imports or calls the library's reference implementation",
           "An exercise was solved by calling the course library's own answer instead of writing it."),
    Status("records_missing", "the notebook ran, but records (checks) of the lab are missing",
           "The notebook ran, but some of the lab's checks are not in it."),
    Status("environment_mismatch", "records made in another profile or with other package versions than expected",
           "The notebook ran with another profile or other package versions than expected."),
    Status("checks_failed", "ran in full, but some checks failed", "The notebook ran in full, but not every check passed."),
    Status("complete", "ran in order, without errors, in full, and every check passed",
           "Everything ran from top to bottom without errors, and every check passed."),
)

STATUSES: dict[str, str] = {s.code: s.meaning for s in _ALL}
VERDICTS: dict[str, str] = {s.code: s.verdict for s in _ALL}
ZERO_POINT_STATUSES = frozenset(s.code for s in _ALL if not s.earns_points)
NEEDS_HUMAN = frozenset(s.code for s in _ALL if s.needs_human)


def most_severe(codes) -> str:
    """The status of a notebook whose problems have these codes (``complete`` when there are none)."""
    order = list(STATUSES)
    return min(codes, key=order.index, default="complete")


def markdown_table() -> str:
    """The README's status table (tests/test_grading.py checks that the README holds exactly this)."""
    rows = ["| status | meaning | points | exported grade |", "|---|---|---|---|"]
    for s in _ALL:
        rows.append(f"| `{s.code}` | {s.meaning} | {'kept' if s.earns_points else '0'} | "
                    f"{'none: an instructor decides' if s.needs_human else 'the points'} |")
    return "\n".join(rows)
