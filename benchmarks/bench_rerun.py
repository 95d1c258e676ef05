"""What ``labhelpers grade --rerun`` adds to a lab's own execution time (the issue's budget: at most 20 %).

    python benchmarks/bench_rerun.py                       # lab 01, 3 repeats
    python benchmarks/bench_rerun.py --lab 05 --repeat 5

Each repeat times, one after the other on the same machine:

* **the lab alone**: the runner executes the course's notebook of the lab (tiny profile), as ``labhelpers run``
  does; the figure is the run's own seconds (kernel start included);
* **the rerun**: ``grade([submission], rerun=True)`` on one submission, a learner's copy of the lab (its student
  version with the course's solution bodies written back in): the whole call, wall clock, so the transplant, the
  sandbox's setup (namespaces, hidden folders, cgroup, the copy of labhelpers and of the zoo cache), the run
  and the grading of the executed copy all count.

Prints each pair, the medians and their ratio, and writes them to ``benchmarks/results/rerun.json``. Needs what
the sandbox needs (Linux, root, unshare); exits 2 where it is refused. Exits 1 when the ratio is over budget.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results" / "rerun.json"
BUDGET = 0.20


def _submission(lab: str, folder: Path) -> Path:
    """A learner's copy: the student version, with the course's solution bodies written back between the markers."""
    from labhelpers.course.grading.transplant import course, transplant
    from labhelpers.course.student import student_version

    known = course(lab)
    learner = transplant(known, known.notebook).notebook  # the course's cells, each body as the solution has it
    learner["metadata"] = student_version(known.notebook, lab)["metadata"]
    path = folder / f"learner_{lab}.ipynb"
    path.write_text(json.dumps(learner), encoding="utf-8")
    return path


def measure(lab: str, repeat: int) -> dict:
    from labhelpers.config import resolve_lab
    from labhelpers.course.grading import grade
    from labhelpers.course.runner import labs_dir, run_notebook

    lab = resolve_lab(lab)
    alone, rerun = [], []
    with tempfile.TemporaryDirectory(prefix="bench-rerun-") as tmp:
        tmp = Path(tmp)
        subs = tmp / "class"
        subs.mkdir()
        submission = _submission(lab, subs)
        for r in range(repeat):
            done = run_notebook(labs_dir() / f"{lab}.ipynb", tmp / f"alone{r}" / f"{lab}.ipynb",
                                parameters={"PROFILE": "tiny"}, cwd=tmp)
            if done.error:
                raise RuntimeError(f"the lab failed on its own: {done.error}")
            alone.append(done.seconds)
            started = time.perf_counter()
            [g] = grade([submission], tmp / f"grades{r}", rerun=True, timeout=900)
            rerun.append(time.perf_counter() - started)
            print(f"repeat {r + 1}: lab alone {alone[-1]:.1f} s, rerun {rerun[-1]:.1f} s (status {g.status}, "
                  f"{g.checks_passed}/{g.checks_total} checks)", flush=True)
    a, b = statistics.median(alone), statistics.median(rerun)
    return {"lab": lab, "repeats": repeat, "alone_s": [round(x, 1) for x in alone],
            "rerun_s": [round(x, 1) for x in rerun], "median_alone_s": round(a, 1), "median_rerun_s": round(b, 1),
            "added": round(b / a - 1, 3), "budget": BUDGET, "date": date.today().isoformat(),
            "status": g.status, "checks": f"{g.checks_passed}/{g.checks_total}"}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lab", default="01")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    try:
        result = measure(args.lab, args.repeat)
    except ValueError as err:  # the sandbox refused (SandboxUnavailable) or no course notebook
        print(f"error: {err}", file=sys.stderr)
        return 2
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    print(f"median: lab alone {result['median_alone_s']} s, rerun {result['median_rerun_s']} s: the rerun adds "
          f"{100 * result['added']:.0f} % (budget {100 * BUDGET:.0f} %); written to {RESULTS}")
    return 0 if result["added"] <= BUDGET else 1


if __name__ == "__main__":
    sys.exit(main())
