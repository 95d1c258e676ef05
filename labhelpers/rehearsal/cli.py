"""The ``labhelpers rehearse`` subcommand (registered by :func:`add_parser` in :mod:`labhelpers.cli`)."""

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
    reh.set_defaults(func=run_command)


def run_command(args) -> int:
    from ..execute import lab_notebooks, parse_value
    from .runner import check_standins, rehearse_lab, write_summary
    from .standins import RehearsalError

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
    results = []
    for nb in notebooks:
        print(f"{nb.stem}: rehearsing the full profile ...", flush=True)
        try:
            result = rehearse_lab(nb, out, timeout=args.timeout, parameters=changes, full_size=args.full_size,
                                  gpu_memory_gib=args.gpu_memory_gib)
        except RehearsalError as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
        results.append(result)
        print(f"{nb.stem}: {result.status} in {result.seconds:.0f} s ({result.cpu_seconds or 0:.0f} s of CPU), "
              f"peak RSS {result.peak_rss_mib:.0f} MiB, "
              f"{result.checks_passed}/{result.checks_total} checks" + (f" -- {result.error}" if result.error else "")
              + (f"; GPU {result.gpu}" if result.gpu else ""), flush=True)
    summary = write_summary(results, out)
    width = max(len(r.lab) for r in results)
    print(f"\n{'lab':<{width}}  {'status':<13} {'seconds':>7} {'peak RSS':>9}  checks (random weights: may fail)")
    for r in results:
        print(f"{r.lab:<{width}}  {r.status:<13} {r.seconds:>7.1f} {r.peak_rss_mib:>5.0f} MiB  "
              f"{r.checks_passed}/{r.checks_total}")
    print(f"\nexecuted notebooks and {summary.name} are in {out}/")
    return 1 if any(r.status == "error" for r in results) else 0
