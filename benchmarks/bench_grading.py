"""How long `labhelpers grade` takes on a class of 300 executed notebooks (no --rerun). Budget: 5 s.

    python benchmarks/bench_grading.py                                   # a crafted notebook, 100 copies
    python benchmarks/bench_grading.py --notebook runs/05_generation_parameters.ipynb  # an executed lab
    python benchmarks/bench_grading.py --n 300 --repeat 5 --mode api

Makes ``--n`` copies of the notebook (``student000_<lab>.ipynb``, ...) in a temporary folder, then times the
whole command (``--mode cli``: a fresh ``python -m labhelpers.course.cli grade``, imports included, as an instructor
runs it) or the library call (``--mode api``) ``--repeat`` times, and prints each time and the median.
Exits 1 when the median is over ``--budget`` seconds.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import io
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

LAB = "01_instruction_tuning"


def _learners_cells() -> list:
    """Lab 01's student version with a learner's own code in each exercise (what a class hands in)."""
    import json

    import nbformat

    from labhelpers.course.runner import labs_dir
    from labhelpers.course.student import BEGIN, END, student_version

    solution = json.loads((labs_dir() / f"{LAB}.ipynb").read_text(encoding="utf-8"))
    nb = nbformat.from_dict(student_version(solution, LAB))
    for cell in nb.cells:
        cell.source = "".join(cell.source) if isinstance(cell.source, list) else cell.source
        if cell.cell_type == "code" and BEGIN in cell.source:
            lines, inside = [], False
            for line in cell.source.split("\n"):
                inside = (inside or line.strip() == BEGIN) and line.strip() != END
                if inside and "raise NotImplementedError" in line:
                    line = line.replace('raise NotImplementedError("Exercise not done yet: write your solution in '
                                        'this cell.")', "result = None  # the learner's code")
                lines.append(line)
            cell.source = "\n".join(lines)
    return nb


def crafted_notebook(path: Path) -> Path:
    """An executed-looking lab 01: its student version's cells with a learner's code, logs, the lab's checks
    as records (with code digests, passing), and 3 plots of ~60 KB."""
    import nbformat

    from labhelpers import records
    from labhelpers.course.points import LAB_CHECKS

    saved_log, saved_ctx = list(records._log), dict(records._context)
    records._log.clear()
    records.set_context(lab=LAB, profile="tiny")
    with contextlib.redirect_stdout(io.StringIO()):  # the records' readable lines are not wanted here
        for name, check in LAB_CHECKS[LAB].items():
            threshold = check.fixed_threshold if check.fixed_threshold is not None else 0.5
            value = {"<": threshold - 1, "<=": threshold - 1, ">": threshold + 1, ">=": threshold + 1}
            records.record_check(name, True, value=value.get(check.direction, threshold), threshold=threshold,
                                 message="a condition holds")
        for k in range(8):
            records.record_result(f"result_{k}", {"before": 1.0 * k, "after": 2.5 * k})
    made = list(records._log)
    records._log[:] = saved_log
    records._context.update(saved_ctx)

    png = base64.b64encode(os.urandom(45_000)).decode()  # incompressible, like a real plot
    nb = _learners_cells()
    count = 0
    code = [c for c in nb.cells if c.cell_type == "code"]
    for k, cell in enumerate(code):
        count += 1
        cell.execution_count = count
        cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text="step log line\n" * 40)]
        if k >= len(code) - len(made):
            rec = made[k - (len(code) - len(made))]
            cell.outputs.append(nbformat.v4.new_output("display_data", data={
                records.MIME: rec, "text/plain": rec["name"], "text/html": f"<div>{rec['name']}</div>"}))
        if k in (5, 15, 25):
            cell.outputs.append(nbformat.v4.new_output("display_data", data={"image/png": png,
                                                                             "text/plain": "<Figure>"}))
    _stamp_code_digests(nb, records)
    path.write_text(nbformat.writes(nb), encoding="utf-8")
    return path


def _stamp_code_digests(nb, records) -> None:
    """Give each record the code digests a kernel gives it, so that grading verifies them as for a real lab."""
    sources = [c.source for c in nb.cells if c.cell_type == "code"]
    for cell in nb.cells:
        for out in cell.get("outputs", []) if cell.cell_type == "code" else []:
            if records.MIME in out.get("data", {}):
                n = cell.execution_count
                out["data"][records.MIME]["code"] = {
                    "count": n, "cell": records.source_digest(cell.source),
                    "history": [records.source_digest(src, records.HISTORY_DIGEST_CHARS) for src in sources[: n - 1]]}


def run(n: int = 300, repeat: int = 5, mode: str = "cli", notebook: str | None = None, verbose: bool = True) -> dict:
    """Grade ``n`` copies of a notebook ``repeat`` times; returns the times and what the grader found."""
    say = print if verbose else (lambda *a, **k: None)
    with tempfile.TemporaryDirectory(prefix="bench-grading-") as tmp:
        tmp = Path(tmp)
        source = Path(notebook) if notebook else crafted_notebook(tmp / f"{LAB}.ipynb")
        lab = source.stem
        subs = tmp / "class"
        subs.mkdir()
        for i in range(n):
            shutil.copyfile(source, subs / f"student{i:03d}_{lab}.ipynb")
        size = sum(p.stat().st_size for p in subs.iterdir())
        say(f"{n} copies of {source.name} ({size / n / 1e3:.0f} KB each, {size / 1e6:.1f} MB in all); mode {mode}")

        times = []
        for r in range(repeat):
            out = tmp / f"grades{r}"
            started = time.perf_counter()
            if mode == "cli":
                done = subprocess.run([sys.executable, "-m", "labhelpers.course.cli", "grade", str(subs), "--out", str(out)],
                                      capture_output=True, text=True)
                if done.returncode != 0:
                    raise RuntimeError(f"labhelpers grade failed:\n{done.stdout}\n{done.stderr}")
            else:
                from labhelpers.course.grading import grade

                grade([subs], out)
            times.append(time.perf_counter() - started)
            say(f"run {r + 1}: {times[-1]:.2f} s")
        rows = (out / "gradebook.csv").read_text().strip().splitlines()[1:]
        statuses = sorted({line.split(",")[2] for line in rows})
    return {"notebooks": n, "graded": len(rows), "mode": mode, "kb_per_notebook": round(size / n / 1e3),
            "runs_s": [round(t, 2) for t in times], "median_s": round(statistics.median(times), 2),
            "statuses": statuses}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--notebook", help="an executed notebook to copy (default: a crafted one)")
    parser.add_argument("--n", type=int, default=300, help="number of copies (default 300)")
    parser.add_argument("--repeat", type=int, default=5, help="timed runs (default 5)")
    parser.add_argument("--mode", choices=("cli", "api"), default="cli")
    parser.add_argument("--budget", type=float, default=5.0, help="seconds the median may take (default 5)")
    args = parser.parse_args()
    try:
        report = run(args.n, args.repeat, args.mode, args.notebook)
    except RuntimeError as err:
        print(err, file=sys.stderr)
        return 2
    median = report["median_s"]
    print(f"graded {report['graded']} notebooks (statuses: {', '.join(report['statuses'])})")
    print(f"median {median:.2f} s over {args.repeat} runs (budget {args.budget:g} s): "
          + ("OK" if median <= args.budget else "OVER BUDGET"))
    return 0 if median <= args.budget else 1


if __name__ == "__main__":
    sys.exit(main())
