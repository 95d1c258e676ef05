"""Benchmark the labs in the tiny profile: wall time and peak memory of each lab run headless in a fresh kernel.

    python benchmarks/bench_labs.py [LAB ...] [--repeats 3]

Each run executes the lab through ``labhelpers.course.runner.execute_lab`` (papermill in a fresh kernel, what
``labhelpers run`` uses) with a warm zoo cache. From the executed notebook's per-cell timings the wall time is split into

* ``kernel_s``: starting the kernel and papermill's own work (wall time minus the time spent in cells);
* ``setup_s``: the cells before section 1 (installing nothing here, imports of torch/transformers/TRL, the config);
* ``lab_s``: the lab's own work, every cell from section 1 on.

``peak_rss_mib`` is the kernel's peak resident memory and ``cpu_s`` its CPU time, as the runner measures them
(its child is the kernel's parent, and reads them once the kernel has exited). Medians over ``repeats``. Run it on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("LABS_PROFILE", "tiny")

FIRST_SECTION = re.compile(r"^##\s+1[.\s]", re.MULTILINE)
LIMITS_S = {"01_instruction_tuning": 90, "02_reward_modeling": 90, "03_dpo": 90, "04_ppo_rlhf": 120,
            "05_generation_parameters": 90, "06_scaling_up": 120}  # lab 06 includes its two launched runs
TOTAL_LIMIT_S = 420


def split_times(executed: Path, wall_s: float) -> dict:
    """Kernel start, setup and lab seconds of one executed notebook (papermill writes each cell's duration)."""
    cells = json.loads(executed.read_text())["cells"]
    setup = lab = 0.0
    in_setup = True
    for cell in cells:
        if cell["cell_type"] == "markdown" and FIRST_SECTION.search("".join(cell["source"])):
            in_setup = False
        duration = cell.get("metadata", {}).get("papermill", {}).get("duration") or 0.0
        if in_setup:
            setup += duration
        else:
            lab += duration
    return {"kernel_s": round(wall_s - setup - lab, 2), "setup_s": round(setup, 2), "lab_s": round(lab, 2)}


def run_once(notebook: Path) -> dict:
    """Execute one lab in a fresh kernel; returns its times, the kernel's peak memory and CPU time, check counts."""
    from labhelpers.course.runner import execute_lab

    with tempfile.TemporaryDirectory() as out:
        executed = Path(out) / notebook.name
        run = execute_lab(notebook, executed, parameters={"PROFILE": "tiny"})
        result = {"wall_s": run.seconds, "status": run.status, "checks": f"{run.checks_passed}/{run.checks_total}",
                  "peak_rss_mib": run.peak_rss_mib, "cpu_s": run.cpu_seconds}
        if run.peak_rss_mib is None:  # stopped, or did not start: nothing to take a median of
            raise RuntimeError(f"{notebook.stem} did not run to its end: {run.error}")
        result.update(split_times(executed, result["wall_s"]))
    return result


def run(labs: list[str] | None = None, repeats: int = 3) -> dict:
    from labhelpers.course.runner import lab_notebooks
    from labhelpers.tiny import build_zoo

    build_zoo()  # measure the labs, not the one-off zoo build
    report = {"repeats": repeats, "cpus": os.cpu_count(), "labs": {}}
    for notebook in lab_notebooks(labs or []):
        runs = [run_once(notebook) for _ in range(repeats)]
        row = {key: round(statistics.median(r[key] for r in runs), 2)
               for key in ("wall_s", "kernel_s", "setup_s", "lab_s", "peak_rss_mib", "cpu_s")}
        row["runs_wall_s"] = [r["wall_s"] for r in runs]
        row["status"] = sorted({f"{r['status']} {r['checks']}" for r in runs})
        row["limit_s"] = LIMITS_S.get(notebook.stem)
        report["labs"][notebook.stem] = row
        print(notebook.stem, json.dumps(row), flush=True)
    report["total_wall_s"] = round(sum(r["wall_s"] for r in report["labs"].values()), 1)
    report["total_limit_s"] = TOTAL_LIMIT_S
    return report


def limit(row: dict) -> str:
    """A lab's time limit for the table; the overview trains nothing and has none."""
    return "none" if row["limit_s"] is None else f"{row['limit_s']} s"


def markdown(report: dict) -> str:
    lines = [f"Tiny profile, each lab headless in a fresh kernel (median of {report['repeats']}, "
             f"{report['cpus']} CPUs):", "",
             "| lab | wall time | kernel start | setup (imports, config) | lab's own work | peak memory | limit | checks |",
             "|---|---|---|---|---|---|---|---|"]
    for lab, r in report["labs"].items():
        lines.append(f"| {lab} | {r['wall_s']:.1f} s | {r['kernel_s']:.1f} s | {r['setup_s']:.1f} s | "
                     f"{r['lab_s']:.1f} s | {r['peak_rss_mib']:.0f} MiB | {limit(r)} | {', '.join(r['status'])} |")
    lines.append(f"| **all labs** | **{report['total_wall_s']:.1f} s** | | | | | {report['total_limit_s']} s | |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("labs", nargs="*")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    report = run(args.labs, args.repeats)
    print(json.dumps(report, indent=2))
    print(markdown(report))


if __name__ == "__main__":
    main()
