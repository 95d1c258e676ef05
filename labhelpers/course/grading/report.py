"""What the grader writes: ``gradebook.csv``, ``grades.json``, ``report.md``, the printed summary, and exports.

Exports (``--export``): ``gradescope`` writes ``gradescope/<submission>/<lab>/results.json`` in the format of
Gradescope's autograder specification (top-level ``score``, ``execution_time``, ``output``, ``tests`` with
``name``, ``score``, ``max_score``, ``status`` and ``output`` each); ``canvas`` writes ``canvas.csv``, one row
per submission id, a ``SIS Login ID`` column and one column of points per lab (empty: nothing submitted).
"""

from __future__ import annotations

import csv
import json
from collections import Counter
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

from labhelpers.course.grading.score import VERSIONED, Expectation, Grade, fmt, major_minor, num
from labhelpers.course.grading.statuses import STATUSES, VERDICTS, ZERO_POINT_STATUSES

CSV_COLUMNS = ["submission_id", "lab", "status", "points_earned", "points_possible", "checks_passed",
               "checks_total", "key_results", "file", "rerun_differs"]
EXPORTS = ("gradescope", "canvas")
CANVAS_ID_COLUMN = "SIS Login ID"


def parse_exports(names: list[str] | None) -> list[str]:
    """``["gradescope,canvas"]`` -> the export names; an unknown one raises ValueError listing the valid ones."""
    out = []
    for part in ",".join(names or []).split(","):
        name = part.strip().lower()
        if not name:
            continue
        if name not in EXPORTS:
            raise ValueError(f"Unknown export format {part.strip()!r}; valid formats: {', '.join(EXPORTS)}.")
        out.append(name)
    return list(dict.fromkeys(out))


def display_path(path: str, root: Path | None) -> str:
    if root:
        try:
            return Path(path).resolve().relative_to(root.resolve()).as_posix()
        except ValueError:
            pass
    return Path(path).as_posix()


def write_gradebook(grades: list[Grade], path: Path) -> None:
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=CSV_COLUMNS)
        writer.writeheader()
        for g in grades:
            writer.writerow(g.row())


def write_json(grades: list[Grade], path: Path, expect: Expectation, reference: dict, rerun: bool,
               sandbox: dict | None) -> None:
    doc = {"generated": datetime.now(UTC).isoformat(timespec="seconds"), "rerun": rerun,
           "expected": {"profile": expect.profile, "versions": expect.versions or "any", "source": expect.source,
                        "profiles_seen": expect.profiles_seen, "reference": reference or None},
           "sandbox": sandbox, "statuses": STATUSES,
           "notebooks": [{**asdict(g), **{"row": g.row()}} for g in grades]}
    path.write_text(json.dumps(doc, indent=1, default=str), encoding="utf-8")


def _check_line(c: dict) -> str:
    if c["demonstration"]:
        pts = "demonstration, 0 points"
    else:
        pts = f"{num(c['points'])} point{'' if c['points'] == 1 else 's'}" + (", required" if c["required"] else "")
    detail = ""
    if c["value"] is not None:
        detail = f" Your value: {fmt(c['value'])}" + (f"; needed: {c.get('direction') or ''} {fmt(c['threshold'])}"
                                                       .replace(":  ", ": ") if c["threshold"] is not None else "") + "."
    if c["by_reference"]:
        detail += " Decided by the library's reference, so no points."
    if c["edited"]:
        detail += " The record was edited: scored from its value."
    mark = {True: "✅", False: "❌", None: "⬜"}[c["passed"]]
    what = c["message"] or ("this check never ran" if c["passed"] is None else "")
    return f"- {mark} **{c['name']}** ({pts}): {what}.{detail}".replace("..", ".")


def _expectation_line(expect: Expectation) -> str:
    env = "any versions" if not expect.versions else ", ".join(
        f"{k} {major_minor(v)}.x" for k, v in expect.versions.items() if k in VERSIONED)
    seen = ", ".join(f"{n} {p}" for p, n in sorted(expect.profiles_seen.items()))
    mixed = f" Profiles in this batch: {seen}" + (" (mixed)." if len(expect.profiles_seen) > 1 else ".") if seen else ""
    return f"Expected profile: {expect.profile}; expected versions: {env} ({expect.source}).{mixed}"


def _notebook_section(g: Grade, root: Path | None) -> list[str]:
    lines = [f"## {g.submission_id} — lab {g.lab or 'unknown'}", "",
             f"File: `{display_path(g.file, root)}`  ", f"**Status: {g.status}.** {VERDICTS[g.status]}  ",
             f"Points: **{num(g.points_earned)} / {num(g.points_possible)}**; "
             f"checks passed: {g.checks_passed} of {g.checks_total}.", ""]
    lines += [f"Named: {r}." for r in g.renamed] + ([""] if g.renamed else [])
    if g.required_failed and g.status not in ZERO_POINT_STATUSES:
        ran = {c["name"]: c["passed"] for c in g.checks}
        why = ", ".join(f"{n} ({'failed' if ran.get(n) is False else 'never ran'})" for n in g.required_failed)
        lines += [f"Required check{'s' if len(g.required_failed) > 1 else ''} not passed: {why}. A required "
                  "check must pass for any points to count, so this notebook gets 0 points.", ""]
    seen: set[str] = set()
    problems = [p for p in g.problems if not (p.message in seen or seen.add(p.message))]
    if problems:
        lines += ["What went wrong:", ""] + [f"- {p.message}" for p in problems] + [""]
    scored = [c for c in g.checks if not c["demonstration"]]
    groups = (("Passed:", [c for c in scored if c["passed"]]), ("Failed:", [c for c in scored if c["passed"] is False]),
              ("Not recorded (the cell that checks it did not run):", [c for c in scored if c["passed"] is None]),
              ("Demonstrations (they show the library at work; 0 points):", [c for c in g.checks if c["demonstration"]]))
    for title, checks in groups:
        if checks and not (g.status == "invalid_file" and title.startswith("Not recorded")):
            lines += [title, ""] + [_check_line(c) for c in checks] + [""]
    if g.results:
        lines += ["Results: " + "; ".join(f"{k} = {fmt(v)}" for k, v in g.results.items()), ""]
    if g.unverifiable:
        lines += [f"Not verifiable without a rerun: {len(g.unverifiable)} record(s) carry no direction or code "
                  "digest (made by an older labhelpers or outside a kernel).", ""]
    if g.rerun is not None:
        r = g.rerun
        head = f"Rerun ({r['seconds']} s; the submitted file had status {r['submitted_status']}): "
        if r.get("library_restored"):
            lines += ["The rerun wrote into the read-only labhelpers copy; it was restored for the next submission.", ""]
        if r["differences"]:
            lines += [head + "the rerun's records differ from the submitted ones:", ""]
            lines += [f"- {d}" for d in r["differences"]] + [""]
        else:
            lines += [head + "same records as submitted.", ""]
    return lines


def write_report(grades: list[Grade], path: Path, expect: Expectation, root: Path | None = None,
                 sandbox: dict | None = None) -> None:
    lines = ["# Grading report", "", f"{len(grades)} notebook(s) graded. {_expectation_line(expect)}", ""]
    if sandbox:
        lines += ["Rerun sandbox: " + "; ".join(sandbox["protections"]) + "."]
        lines += [f"**Missing protection:** {m}." for m in sandbox["missing"]] + [""]
    lines += ["These checks catch accidents and casual edits of a notebook; a determined student can forge any "
              "record, so only `--rerun` verifies what a notebook does.", ""]
    lines += ["| submission | lab | status | points | checks |", "|---|---|---|---|---|"]
    for g in grades:
        lines.append(f"| {g.submission_id} | {g.lab or '?'} | {g.status} | {num(g.points_earned)}/"
                     f"{num(g.points_possible)} | {g.checks_passed}/{g.checks_total} |")
    lines += ["", "Statuses: " + "; ".join(f"`{k}`: {v}" for k, v in STATUSES.items()) + ".", ""]
    for g in grades:
        lines += _notebook_section(g, root)
    path.write_text("\n".join(lines).rstrip() + "\n", encoding="utf-8")


def summary_table(grades: list[Grade], expect: Expectation | None = None, sandbox: dict | None = None) -> str:
    rows = [(g.submission_id, g.lab or "?", g.status, f"{num(g.points_earned)}/{num(g.points_possible)}",
             f"{g.checks_passed}/{g.checks_total}") for g in grades]
    head = ("submission", "lab", "status", "points", "checks")
    if any(g.rerun is not None for g in grades):
        head += ("rerun",)
        rows = [r + ("-" if g.rerun is None else "DIFFERS" if g.rerun["differences"] else "same",)
                for r, g in zip(rows, grades)]
    widths = [max(len(str(x)) for x in col) for col in zip(head, *rows)]
    line = "  ".join(f"{{:<{w}}}" for w in widths)
    lines = [line.format(*head)] + [line.format(*r) for r in rows]
    counts = Counter(g.status for g in grades)
    lines += ["", ", ".join(f"{n} {s}" for s, n in sorted(counts.items(), key=lambda kv: list(STATUSES).index(kv[0])))]
    if expect:
        lines.append(_expectation_line(expect))
    renamed = [r for g in grades for r in g.renamed]
    if renamed:
        lines += [f"renamed: {r}" for r in renamed]
    if sandbox:
        lines += [f"sandbox: missing protection: {m}" for m in sandbox["missing"]] or ["sandbox: every protection in place"]
    return "\n".join(lines)


def write_gradescope(grades: list[Grade], folder: Path) -> list[Path]:
    """One Gradescope ``results.json`` per graded notebook; a check is one test."""
    written = []
    for g in grades:
        tests = []
        for c in g.checks:
            earned = c["points"] if c["passed"] and not c["by_reference"] and g.status not in ZERO_POINT_STATUSES \
                and not g.required_failed else 0.0
            state = "passed" if c["passed"] else "failed"
            tests.append({"name": c["name"], "score": float(earned), "max_score": float(c["points"]),
                          "status": state, "output": _check_line(c)[2:].replace("**", ""),
                          **({"tags": ["demonstration"]} if c["demonstration"] else {})})
        doc = {"score": float(g.points_earned), "execution_time": int((g.rerun or {}).get("seconds", 0)),
               "output": f"Status: {g.status}. {VERDICTS[g.status]} "
                         + " ".join(p.message for p in g.problems[:3]),
               "tests": tests}
        path = folder / (g.submission_id or "unknown") / (g.lab or "unknown") / "results.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(doc, indent=1), encoding="utf-8")
        written.append(path)
    return written


def write_canvas(grades: list[Grade], path: Path) -> None:
    """A Canvas-style gradebook: one row per submission id, one column of points per lab."""
    labs = sorted({g.lab for g in grades if g.lab})
    table: dict[str, dict[str, str]] = {}
    for g in grades:
        if g.lab:
            table.setdefault(g.submission_id, {})[g.lab] = str(num(g.points_earned))
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow([CANVAS_ID_COLUMN, *labs])
        for sid in sorted(table):
            writer.writerow([sid, *(table[sid].get(lab, "") for lab in labs)])
