"""The ``labhelpers rehearse`` subcommand (registered by :func:`add_parser` in :mod:`labhelpers.course.cli`)."""

from __future__ import annotations

import sys
from pathlib import Path


def add_parser(sub) -> None:
    reh = sub.add_parser("rehearse", help="run labs' full profile offline on this CPU against real-size stand-ins")
    reh.add_argument("labs", nargs="*", help="lab numbers (05) or stems; default every lab in labs/")
    reh.add_argument("--out", default="rehearsal", help="folder for executed notebooks and summary.json")
    reh.add_argument("-p", "--parameter", nargs=2, action="append", metavar=("NAME", "VALUE"),
                     help="change one shrunk parameter, e.g. -p MAX_STEPS 5 (repeatable)")
    reh.add_argument("--timeout", type=float, default=None, help="per-cell timeout in seconds")
    reh.add_argument("--full-size", action="store_true",
                     help="the labs' own full-profile sizes and steps, nothing shrunk (for a GPU)")
    reh.add_argument("--gpu-memory-gib", type=float, default=None, metavar="GIB",
                     help="cap each kernel's GPU memory (14.75 for a T4) and record its peak in summary.json")
    reh.add_argument("--half-precision", action="store_true",
                     help="instead: the tiny profile in bf16 autocast on this CPU (LABS_CPU_AUTOCAST=bf16) of every "
                          "lab whose checks compare a trained model with a reference; fails when one of those "
                          "checks fails or a cell raises (default labs: the table in labhelpers.course.rehearsal.half_precision)")
    reh.set_defaults(func=run_command)


def run_half_precision(args) -> int:
    """``labhelpers rehearse --half-precision [LAB ...]``: exit 0 only when every named check passed."""
    from labhelpers.course.rehearsal.half_precision import (
        HALF_PRECISION_LABS,
        half_precision_labs,
        rehearse_half_precision,
    )
    from labhelpers.course.rehearsal.runner import write_summary
    from labhelpers.course.runner import lab_notebooks, parse_value, run_labs

    try:
        notebooks = lab_notebooks(half_precision_labs(args.labs))
    except (ValueError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    changes = {name: parse_value(value) for name, value in args.parameter or []}

    def report(result) -> str:
        lines = [f"{result.lab}: {result.status} in {result.seconds:.0f} s"
                 + (f" -- {result.error}" if result.error else "")]
        for name, check in (result.named_checks or {}).items():
            state = "missing" if check.get("missing") else ("ok" if check["passed"] else "FAILED")
            lines.append(f"  {name:<36} {state:<8} value {check['value']}  threshold {check['threshold']}")
        if result.lab not in HALF_PRECISION_LABS:
            lines.append("  (no named checks for this lab: only a cell that raises fails it)")
        return "\n".join(lines)

    results = run_labs(notebooks, lambda nb: rehearse_half_precision(nb, out, timeout=args.timeout, parameters=changes),
                       report, starting=lambda nb: f"{nb.stem}: the tiny profile in bf16 autocast on the CPU "
                                                   "(LABS_CPU_AUTOCAST=bf16) ...")
    summary = write_summary(results, out, kind="half-precision rehearsal", profile="tiny")
    failed = [r.lab for r in results if r.status != "passed"]
    print(f"\nhalf-precision rehearsal: {len(results) - len(failed)}/{len(results)} labs passed"
          + (f"; failed: {', '.join(failed)}" if failed else "") + f"\nexecuted notebooks and {summary.name} are in {out}/")
    return 1 if failed else 0


def run_command(args) -> int:
    if args.half_precision:
        return run_half_precision(args)
    from labhelpers.course.rehearsal.runner import check_standins, rehearse_lab, write_summary
    from labhelpers.course.rehearsal.standins import RehearsalError
    from labhelpers.course.runner import lab_notebooks, parse_value, run_labs

    try:
        notebooks = lab_notebooks(args.labs)
        if not notebooks:
            raise FileNotFoundError("no lab notebooks found (set LABS_DIR to the labs/ folder).")
        for nb in notebooks:  # every missing stand-in is named before anything runs
            check_standins(nb.stem)
    except (ValueError, FileNotFoundError, RehearsalError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    changes = {name: parse_value(value) for name, value in args.parameter or []}

    def rehearse(nb: Path):
        return rehearse_lab(nb, out, timeout=args.timeout, parameters=changes, full_size=args.full_size,
                            gpu_memory_gib=args.gpu_memory_gib)

    def report(result) -> str:
        return (f"{result.lab}: {result.status} in {result.seconds:.0f} s ({result.cpu_seconds or 0:.0f} s of CPU), "
                f"peak RSS {result.peak_rss_mib:.0f} MiB, {result.checks_passed}/{result.checks_total} checks"
                + (f" -- {result.error}" if result.error else "") + (f"; GPU {result.gpu}" if result.gpu else ""))

    try:
        results = run_labs(notebooks, rehearse, report, starting=lambda nb: f"{nb.stem}: rehearsing the full profile ...")
    except RehearsalError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    summary = write_summary(results, out)
    width = max(len(r.lab) for r in results)
    print(f"\n{'lab':<{width}}  {'status':<13} {'seconds':>7} {'peak RSS':>9}  checks (random weights: may fail)")
    for r in results:
        print(f"{r.lab:<{width}}  {r.status:<13} {r.seconds:>7.1f} {r.peak_rss_mib:>5.0f} MiB  "
              f"{r.checks_passed}/{r.checks_total}")
    print(f"\nexecuted notebooks and {summary.name} are in {out}/")
    return 1 if any(r.status == "error" for r in results) else 0
