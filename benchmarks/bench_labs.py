"""Benchmark the labs in the tiny profile: wall time of each lab run headless in a fresh kernel.

    python benchmarks/bench_labs.py [LAB ...] [--repeats 3]

Runs each lab through ``labhelpers.execute.execute_lab`` (papermill, what ``labhelpers run`` uses) with a warm
zoo cache, ``repeats`` times, and prints the median wall time (kernel start included) and the check count.
Run it on an otherwise idle machine: times on a loaded machine are not comparable.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("LABS_PROFILE", "tiny")

from labhelpers.execute import execute_lab, lab_notebooks  # noqa: E402
from labhelpers.tiny import build_zoo  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("labs", nargs="*")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    build_zoo()  # measure the labs, not the one-off zoo build
    report = {}
    for notebook in lab_notebooks(args.labs):
        times, status = [], set()
        for _ in range(args.repeats):
            with tempfile.TemporaryDirectory() as out:
                run = execute_lab(notebook, Path(out) / notebook.name, parameters={"PROFILE": "tiny"})
            times.append(run.seconds)
            status.add(f"{run.status} {run.checks_passed}/{run.checks_total}")
        report[notebook.stem] = {"median_s": round(statistics.median(times), 1), "runs_s": times,
                                 "status": sorted(status)}
        print(notebook.stem, json.dumps(report[notebook.stem]), flush=True)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
