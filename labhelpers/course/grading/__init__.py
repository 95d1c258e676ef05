"""Grade executed lab notebooks from their records: ``labhelpers grade PATH ... [--out DIR] [--rerun]``.

The grader only reads its inputs. For every notebook it finds it decides **one status** from a fixed
vocabulary (:mod:`.statuses`), scores the lab's checks (:mod:`.score`), and writes ``gradebook.csv`` (one row
per notebook), ``grades.json`` (every detail) and ``report.md`` (per notebook, in words a learner
understands), plus the exports asked for (:mod:`.report`). One concern per module:

* :mod:`.discover`   finding files, their lab and submission id (:class:`.discover.Submission`), reading them;
* :mod:`.inspection` one notebook: records, run order, errors, records vs their numbers and code, reference use;
* :mod:`.score`      expected checks and environment across the batch, points, one grade per notebook;
* :mod:`.rerun`      ``--rerun`` in a sandbox, and the differences from the submitted records;
* :mod:`.report`     the output files and the printed summary;
* :mod:`.flow`       the whole flow, once: the library's :func:`grade` and the command both call it.
"""

from __future__ import annotations

from labhelpers.course.grading.discover import Submission, find_notebooks
from labhelpers.course.grading.flow import (
           Gradebook,
           NoNotebooks,
           command_options,
           grade,
           grade_paths,
           run,
           write_all,
)
from labhelpers.course.grading.inspection import inspect_notebook
from labhelpers.course.grading.report import parse_exports, summary_table
from labhelpers.course.grading.rerun import RerunOutcome, Sandbox, SandboxReport
from labhelpers.course.grading.score import (
           CheckRow,
           Grade,
           GradeOptions,
           load_reference,
           parse_expect_versions,
)
from labhelpers.course.grading.statuses import STATUSES, VERDICTS

__all__ = ["STATUSES", "VERDICTS", "CheckRow", "Grade", "GradeOptions", "Gradebook", "NoNotebooks", "RerunOutcome",
           "Sandbox", "SandboxReport", "Submission", "command_options", "find_notebooks", "grade", "grade_paths",
           "inspect_notebook", "load_reference", "parse_expect_versions", "parse_exports", "run", "summary_table",
           "write_all"]
