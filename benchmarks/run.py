"""The benchmark suite: one command measures the tiny profile and the training settings, and writes the results.

    python benchmarks/run.py                      # everything, 3 repeats (about 15 minutes on 2 cores)
    python benchmarks/run.py --only sft grading   # some parts
    python benchmarks/run.py --repeats 1 --no-readme

Parts (each a script of its own in this folder, runnable alone):

1. ``labs``      every lab headless in the tiny profile: wall time split into kernel start, setup and the lab's
                 own work, peak memory, and the total (``bench_labs.py``);
2. ``sft``       SFT non-pad tokens/s with naive padding, dynamic padding, length-grouped batches, padding-free
                 and packed batches, with the logit error of each (``bench_sft.py``);
3. ``trainers``  lab 02 activation checkpointing, lab 03 ``precompute_ref_log_probs`` on/off, and the PPO
                 iteration split into generation, scoring, forward passes and optimisation (``bench_trainers.py``);
4. ``grading``   ``labhelpers grade`` on 300 executed notebooks (``bench_grading.py``).

Writes ``benchmarks/results/tiny.json`` (every number) and ``benchmarks/results/tiny.md`` (tables), checks the
course's targets, and has ``labhelpers.course.generated`` rewrite README.md's ``benchmarks:tiny`` block, which
:func:`readme_block` renders from that JSON file alone. Parts not run keep their previous results in the JSON.
Exits 1 when a target is missed. The GPU half is ``gpu_full_profile.py``, run wherever CUDA is present.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("LABS_PROFILE", "tiny")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

ROOT = Path(__file__).resolve().parent.parent
PARTS = ("labs", "sft", "trainers", "grading")
RESULTS = ROOT / "benchmarks" / "results"
MIN_PADDING_FREE_SPEEDUP = 1.5
GRADING_BUDGET_S = 5.0


def machine() -> dict:
    import torch
    import transformers
    import trl

    return {"date": datetime.date.today().isoformat(), "cpus": os.cpu_count(), "python": platform.python_version(),
            "platform": platform.platform(), "torch": torch.__version__, "transformers": transformers.__version__,
            "trl": trl.__version__}


def targets(results: dict) -> list[tuple[str, bool, str]]:
    """(target, met, measured) for every target the suite checks; parts without results are skipped."""
    out = []
    labs = results.get("labs")
    if labs:
        for lab, row in labs["labs"].items():
            if row["limit_s"] is not None:  # a lab bench_labs gives no limit (lab 00) is timed without a target
                out.append((f"{lab} ≤ {row['limit_s']} s", row["wall_s"] <= row["limit_s"], f"{row['wall_s']:.1f} s"))
        # a target over every lab is unknown, not met, while some lab has no measurement
        unmeasured = labs.get("not_measured", [])
        without = f" without {', '.join(unmeasured)}" if unmeasured else ""
        out.append((f"all labs ≤ {labs['total_limit_s']} s",
                    None if unmeasured else labs["total_wall_s"] <= labs["total_limit_s"],
                    f"{labs['total_wall_s']:.1f} s{without}"))
        passed = all(s.startswith("passed") for row in labs["labs"].values() for s in row["status"])
        out.append(("every lab passes all its checks", None if unmeasured and passed else passed,
                    "; ".join([*(f"{lab}: {', '.join(row['status'])}" for lab, row in labs["labs"].items()),
                               *(f"{lab}: not measured" for lab in unmeasured)])))
    sft = results.get("sft")
    if sft:
        for model, m in sft["models"].items():
            best = max(("padding_free", "packed_bfd"), key=lambda s: m["strategies"][s]["speedup_vs_max_length"])
            ratio = m["strategies"][best]["speedup_vs_max_length"]
            out.append((f"{model}: padding-free or packed ≥ {MIN_PADDING_FREE_SPEEDUP}× naive padding",
                        ratio >= MIN_PADDING_FREE_SPEEDUP, f"{best} {ratio:.2f}×"))
    grading = results.get("grading")
    if grading:
        out.append((f"grading {grading['notebooks']} notebooks ≤ {GRADING_BUDGET_S:g} s",
                    grading["median_s"] <= GRADING_BUDGET_S, f"{grading['median_s']:.2f} s"))
    return out


def markdown(results: dict) -> str:
    # the parts are scripts beside this one, found the way Python finds a script's neighbours (its folder is
    # sys.path[0] when it runs); imported here, not at the top, so the targets can be checked without them
    import bench_labs
    import bench_sft
    import bench_trainers

    m = results["machine"]
    parts = [f"Measured by `python benchmarks/run.py` on {m['date']}: {m['cpus']} CPUs, torch {m['torch']}, "
             f"transformers {m['transformers']}, TRL {m['trl']}. Medians; compare ratios measured in one run, not "
             "absolute times across machines."]
    if "labs" in results:
        parts.append(bench_labs.markdown(results["labs"]))
    if "sft" in results:
        parts.append(bench_sft.markdown(results["sft"]))
    if "trainers" in results:
        parts.append(bench_trainers.markdown(results["trainers"]))
    if "grading" in results:
        g = results["grading"]
        parts.append(f"`labhelpers grade` on {g['notebooks']} executed notebooks ({g['kb_per_notebook']} KB each, "
                     f"command start-up included): median {g['median_s']:.2f} s.")
    rows = ["| target | met | measured |", "|---|---|---|"]
    said = {True: "yes", False: "**no**", None: "not known"}
    rows += [f"| {name} | {said[met]} | {value} |" for name, met, value in targets(results)]
    parts.append("\n".join(rows))
    return "\n\n".join(parts) + "\n"


def readme_block(results_file: Path = RESULTS / "tiny.json") -> str:
    """README.md's ``benchmarks:tiny`` block, from the stored results only (nothing is measured here).

    The figures are the stored run's. The limits are today's (``bench_labs.LIMITS_S``, ``TOTAL_LIMIT_S``): they
    are the course's targets, not measurements, so a changed limit shows at once. A lab in ``labs/`` (which
    ``bench_labs`` measures in full) without a stored measurement is named above the tables, and the targets over
    every lab read "not known" until it is measured.
    """
    import bench_labs

    from labhelpers.course.runner import lab_notebooks

    results = json.loads(results_file.read_text(encoding="utf-8"))
    labs = results.get("labs")
    note = ""
    if labs:
        for lab, row in labs["labs"].items():
            row["limit_s"] = bench_labs.LIMITS_S.get(lab, row["limit_s"])
        labs["total_limit_s"] = bench_labs.TOTAL_LIMIT_S
        labs["not_measured"] = [path.stem for path in lab_notebooks(folder=ROOT / "labs") if path.stem not in labs["labs"]]
        if labs["not_measured"]:
            it = "it" if len(labs["not_measured"]) == 1 else "them"
            shown = results_file.relative_to(ROOT) if results_file.is_relative_to(ROOT) else results_file
            note = (f"**Not measured: {', '.join(labs['not_measured'])}.** The stored results (`{shown.as_posix()}`) "
                    f"hold no figures for {it}, so the totals below leave {it} out and the targets over every lab are "
                    "not known until `python benchmarks/run.py --only labs` measures every lab. The limits are today's "
                    "(`benchmarks/bench_labs.py`), the figures the stored run's.\n\n")
    return (note + markdown(results)).rstrip("\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="+", choices=PARTS, default=list(PARTS))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default=str(RESULTS))
    parser.add_argument("--no-readme", action="store_true", help="leave README.md as it is")
    args = parser.parse_args()

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    json_path = out / "tiny.json"
    results = json.loads(json_path.read_text()) if json_path.exists() else {}
    results["machine"] = machine()
    import bench_grading
    import bench_labs
    import bench_sft
    import bench_trainers

    runners = {"labs": lambda: bench_labs.run(None, args.repeats),
               "sft": lambda: bench_sft.run(args.repeats),
               "trainers": lambda: bench_trainers.run(args.repeats),
               "grading": lambda: bench_grading.run(verbose=False)}
    for part in PARTS:
        if part in args.only:
            print(f"== {part}", flush=True)
            results[part] = runners[part]()
    json_path.write_text(json.dumps(results, indent=2) + "\n")
    table = markdown(results)
    (out / "tiny.md").write_text(table)
    print(table)
    if not args.no_readme and out.resolve() == RESULTS.resolve():  # the README shows the stored results only
        from labhelpers.course import generated

        generated.update(ROOT, only=["benchmarks"])
    missed = [name for name, met, _ in targets(results) if not met]
    print("all targets met" if not missed else f"targets missed: {'; '.join(missed)}")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
