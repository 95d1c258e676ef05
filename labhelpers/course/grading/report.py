"""What the grader writes: ``gradebook.csv``, ``grades.json``, ``report.md``, the printed summary, and exports.

Exports (``--export``):

* ``gradescope`` writes ``gradescope/<submission>/<lab>/results.json`` in the format of Gradescope's autograder
  specification (top-level ``score``, ``execution_time``, ``output``, ``tests`` with ``name``, ``score``,
  ``max_score``, ``status`` and ``output`` each). The student sees it, so it holds **only course-authored
  text**: the status's verdict (:data:`.statuses.VERDICTS`), check names the course lists (any other is "a
  check the course does not list"), passed/failed and points. No record message, no problem message (they
  quote cell text and error values), no file path; a check's value and threshold (numbers or booleans only)
  appear only when the grade comes from a rerun, where the course's code computed them.
* ``canvas`` writes ``canvas.csv``: one row per submission id, a ``SIS Login ID`` column, one column of points
  per lab (empty: nothing submitted) and a ``status`` column. A grade whose status needs an instructor
  (:data:`.statuses.NEEDS_HUMAN`), or a lab with several graded files for one id, leaves its cell empty and
  the status column says why (``duplicate: 2 files for 01_instruction_tuning, an instructor decides``).

What a student wrote never steers an output: every path built from an id or a lab uses :func:`safe_name`
(letters, digits, ``_``, ``-``, ``.``; no leading dot; at most 60 characters; a short digest of the original
when anything was changed) and is checked to resolve under ``--out``; a CSV cell (``gradebook.csv``,
``canvas.csv``) that would start a formula (``=``, ``+``, ``-``, ``@``, tab, CR) gets a ``'`` in front
(:func:`csv_cell`), except a genuine number in a numeric column.
"""

from __future__ import annotations

import csv
import hashlib
import json
import re
import unicodedata
from collections import Counter
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

from labhelpers.course.grading.rerun import RerunOutcome, SandboxReport
from labhelpers.course.grading.score import VERSIONED, CheckRow, Expectation, Grade, fmt, major_minor, num
from labhelpers.course.grading.statuses import NEEDS_HUMAN, STATUSES, VERDICTS, ZERO_POINT_STATUSES
from labhelpers.course.points import listed_points

CSV_COLUMNS = ["submission_id", "lab", "status", "points_earned", "points_possible", "checks_passed",
               "checks_total", "key_results", "file", "rerun_differs"]
EXPORTS = ("gradescope", "canvas")
CANVAS_ID_COLUMN = "SIS Login ID"
CANVAS_STATUS_COLUMN = "status"
NUMERIC_COLUMNS = frozenset({"points_earned", "points_possible", "checks_passed", "checks_total"})
UNLISTED_CHECK = "a check the course does not list"
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")
_UNSAFE_NAME_CHARACTER = re.compile(r"[^\w.\-]")  # \w: letters and digits of any script, and _
SAFE_NAME_CHARACTERS = 60


def csv_cell(value, numeric: bool = False) -> object:
    """``value`` as a spreadsheet will not run it: text that would start a formula gets a ``'`` in front.

    In a ``numeric`` column a genuine number (``-2``, ``1.5e3``) stays a number.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        value = "" if value is None else str(value)
    if isinstance(value, (int, float)):
        value = str(value)
        if numeric:
            return value
    if numeric and _NUMBER.match(value):
        return value
    return "'" + value if value.startswith(_FORMULA_START) else value


def safe_name(text: str, fallback: str = "unknown") -> str:
    """A file or folder name made from ``text`` (an id or a lab) that cannot leave its folder.

    Letters, digits, ``_``, ``-`` and ``.`` only, no leading dot, at most 60 characters, never empty.
    When anything had to change, a digest of the original follows, so two ids never share a folder.
    """
    text = unicodedata.normalize("NFC", str(text or ""))
    cleaned = _UNSAFE_NAME_CHARACTER.sub("_", text)[:SAFE_NAME_CHARACTERS].lstrip("._").rstrip("_") or fallback
    if cleaned == text or not text:
        return cleaned
    return f"{cleaned}-{hashlib.sha256(text.encode()).hexdigest()[:8]}"


def inside(folder: Path, *names: str) -> Path:
    """``folder / name / ...`` with each name made safe (:func:`safe_name`), checked to resolve under ``folder``."""
    path = folder.joinpath(*(safe_name(n) for n in names))
    if not path.resolve().is_relative_to(folder.resolve()):
        raise ValueError(f"refusing to write {path}: it resolves outside {folder} (a link in the output folder?)")
    return path


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


def output_names(exports: list[str]) -> list[str]:
    """The files the grader writes with these exports, as the command's last line names them."""
    return ["gradebook.csv", "grades.json", "report.md"] + [
        {"gradescope": "gradescope/*/*/results.json", "canvas": "canvas.csv"}[e] for e in exports]


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
            writer.writerow({k: csv_cell(v, k in NUMERIC_COLUMNS) for k, v in g.row().items()})


def write_json(grades: list[Grade], path: Path, expect: Expectation, reference: dict, rerun: bool,
               sandbox: SandboxReport | None) -> None:
    doc = {"generated": datetime.now(UTC).isoformat(timespec="seconds"), "rerun": rerun,
           "expected": {"profile": expect.profile, "versions": expect.versions or "any", "source": expect.source,
                        "profiles_seen": expect.profiles_seen, "reference": reference or None},
           "sandbox": asdict(sandbox) if sandbox else None, "statuses": STATUSES,
           "notebooks": [{**asdict(g), **{"row": g.row()}} for g in grades]}
    path.write_text(json.dumps(doc, indent=1, default=str), encoding="utf-8")


def _check_line(c: CheckRow) -> str:
    if c.demonstration:
        pts = "demonstration, 0 points"
    else:
        pts = f"{num(c.points)} point{'' if c.points == 1 else 's'}" + (", required" if c.required else "")
    detail = ""
    if c.value is not None:
        detail = f" Your value: {fmt(c.value)}" + (f"; needed: {c.direction or ''} {fmt(c.threshold)}"
                                                   .replace(":  ", ": ") if c.threshold is not None else "") + "."
    if c.by_reference:
        detail += " Decided by the library's reference, so no points."
    if c.edited:
        detail += " The record was edited: scored from its value."
    mark = {True: "✅", False: "❌", None: "⬜"}[c.passed]
    what = c.message or ("this check never ran" if c.passed is None else "")
    return f"- {mark} **{c.name}** ({pts}): {what}.{detail}".replace("..", ".")


def _expectation_line(expect: Expectation) -> str:
    env = "any versions" if not expect.versions else ", ".join(
        f"{k} {major_minor(v)}.x" for k, v in expect.versions.items() if k in VERSIONED)
    seen = ", ".join(f"{n} {p}" for p, n in sorted(expect.profiles_seen.items()))
    mixed = f" Profiles in this batch: {seen}" + (" (mixed)." if len(expect.profiles_seen) > 1 else ".") if seen else ""
    return f"Expected profile: {expect.profile}; expected versions: {env} ({expect.source}).{mixed}"


def _paragraph(lines: list[str]) -> list[str]:
    """``lines`` and the blank line after them; nothing when there are none."""
    return [*lines, ""] if lines else []


def _notebook_section(g: Grade, root: Path | None) -> list[str]:
    return [f"## {g.submission_id} — lab {g.lab or 'unknown'}", "",
            f"File: `{display_path(g.file, root)}`  ", f"**Status: {g.status}.** {VERDICTS[g.status]}  ",
            f"Points: **{num(g.points_earned)} / {num(g.points_possible)}**; "
            f"checks passed: {g.checks_passed} of {g.checks_total}.", "",
            *_paragraph([f"Named: {r}." for r in g.renamed]), *_required_lines(g), *_problem_lines(g),
            *_check_lines(g), *_result_lines(g), *_rerun_lines(g.rerun)]


def _required_lines(g: Grade) -> list[str]:
    """Why a notebook that ran gets 0 points: a required check did not pass (a zero-point status says it itself)."""
    if not g.required_failed or g.status in ZERO_POINT_STATUSES:
        return []
    ran = {c.name: c.passed for c in g.checks}
    why = ", ".join(f"{n} ({'failed' if ran.get(n) is False else 'never ran'})" for n in g.required_failed)
    return [f"Required check{'s' if len(g.required_failed) > 1 else ''} not passed: {why}. A required "
            "check must pass for any points to count, so this notebook gets 0 points.", ""]


def _problem_lines(g: Grade) -> list[str]:
    messages = list(dict.fromkeys(p.message for p in g.problems))  # a duplicate's note may repeat another
    return ["What went wrong:", "", *[f"- {m}" for m in messages], ""] if messages else []


def _check_groups(g: Grade) -> list[tuple[str, list[CheckRow]]]:
    scored = [c for c in g.checks if not c.demonstration]
    groups = [("Passed:", [c for c in scored if c.passed]), ("Failed:", [c for c in scored if c.passed is False])]
    if g.status != "invalid_file":  # an unreadable file recorded nothing: listing every check as missing is noise
        groups.append(("Not recorded (the cell that checks it did not run):", [c for c in scored if c.passed is None]))
    groups.append(("Demonstrations (they show the library at work; 0 points):",
                   [c for c in g.checks if c.demonstration]))
    return groups


def _check_lines(g: Grade) -> list[str]:
    lines = []
    for title, checks in _check_groups(g):
        if checks:
            lines += [title, "", *[_check_line(c) for c in checks], ""]
    return lines


def _result_lines(g: Grade) -> list[str]:
    lines = _paragraph(["Results: " + "; ".join(f"{k} = {fmt(v)}" for k, v in g.results.items())] if g.results else [])
    if g.unverifiable:
        lines += [f"Not verifiable without a rerun: {len(g.unverifiable)} record(s) carry no direction or code "
                  "digest (made by an older labhelpers or outside a kernel).", ""]
    if g.cell_changes:
        lines += _paragraph([f"Cells against the student version: {'; '.join(g.cell_changes)}."])
    return lines


def _rerun_lines(r: RerunOutcome | None) -> list[str]:
    if r is None:
        return []
    lines = []
    if r.library_restored:
        lines += ["The rerun wrote into the read-only labhelpers copy; it was restored for the next submission.", ""]
    ran = [f"The rerun ran the course's notebook with {r.bodies_taken} solution bodies taken from this file."]
    if r.bodies_not_found:
        ran.append(f"Not found here, so run as the student version's TODO: {', '.join(r.bodies_not_found)}.")
    if r.cells_dropped:
        ran.append(f"Cells added to the student version were not run: {', '.join(r.cells_dropped[:8])}"
                   + (" ..." if len(r.cells_dropped) > 8 else "") + ".")
    lines += _paragraph([" ".join(ran)])
    head = f"Rerun ({r.seconds} s; the submitted file had status {r.submitted_status}): "
    if not r.differences:
        return lines + [head + "same records as submitted.", ""]
    return lines + [head + "the rerun's records differ from the submitted ones:", "",
                    *[f"- {d}" for d in r.differences], ""]


def write_report(grades: list[Grade], path: Path, expect: Expectation, root: Path | None = None,
                 sandbox: SandboxReport | None = None) -> None:
    lines = ["# Grading report", "", f"{len(grades)} notebook(s) graded. {_expectation_line(expect)}", ""]
    if sandbox:
        lines += ["Rerun sandbox: " + "; ".join(sandbox.protections) + "."]
        lines += [f"**Missing protection:** {m}." for m in sandbox.missing] + [""]
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


def _rerun_mark(r: RerunOutcome | None) -> str:
    return "-" if r is None else "DIFFERS" if r.differences else "same"


def _aligned(head: tuple[str, ...], rows: list[tuple[str, ...]]) -> list[str]:
    widths = [max(len(str(x)) for x in col) for col in zip(head, *rows)]
    line = "  ".join(f"{{:<{w}}}" for w in widths)
    return [line.format(*head)] + [line.format(*r) for r in rows]


def _summary_notes(grades: list[Grade], expect: Expectation | None, sandbox: SandboxReport | None) -> list[str]:
    """The lines under the table: the environment held to, the renamed files, the sandbox's gaps."""
    lines = [_expectation_line(expect)] if expect else []
    lines += [f"renamed: {r}" for g in grades for r in g.renamed]
    if sandbox:
        lines += [f"sandbox: missing protection: {m}" for m in sandbox.missing] or ["sandbox: every protection in place"]
    return lines


def summary_table(grades: list[Grade], expect: Expectation | None = None, sandbox: SandboxReport | None = None) -> str:
    """What ``labhelpers grade`` prints: one row per notebook, the statuses counted, then the notes."""
    head = ("submission", "lab", "status", "points", "checks")
    rows = [(g.submission_id, g.lab or "?", g.status, f"{num(g.points_earned)}/{num(g.points_possible)}",
             f"{g.checks_passed}/{g.checks_total}") for g in grades]
    if any(g.rerun is not None for g in grades):
        head += ("rerun",)
        rows = [r + (_rerun_mark(g.rerun),) for r, g in zip(rows, grades)]
    order = list(STATUSES)
    counts = sorted(Counter(g.status for g in grades).items(), key=lambda kv: order.index(kv[0]))
    return "\n".join([*_aligned(head, rows), "", ", ".join(f"{n} {s}" for s, n in counts),
                      *_summary_notes(grades, expect, sandbox)])


def _plain(value) -> bool:
    """A number or a boolean: nothing a student could hide text in."""
    return isinstance(value, (bool, int, float))


def _gradescope_output(g: Grade, c: CheckRow) -> str:
    """What the student reads about one check: course-authored words, and values only from a rerun."""
    if c.demonstration:
        pts = "demonstration, 0 points"
    else:
        pts = f"{num(c.points)} point{'' if c.points == 1 else 's'}" + (", required" if c.required else "")
    said = {True: "Passed", False: "Failed", None: "Not recorded: the cell that checks it did not run"}[c.passed]
    lines = [f"{said} ({pts})."]
    if g.rerun is not None and _plain(c.value):
        needed = f"; needed: {c.direction or ''} {fmt(c.threshold)}".replace(":  ", ": ") if _plain(
            c.threshold) else ""
        lines.append(f"Value in the course's rerun: {fmt(c.value)}{needed}.")
    if c.by_reference:
        lines.append("Decided by the library's reference, so no points.")
    if c.edited:
        lines.append("The record did not match how the course decides this check: scored from its value.")
    return " ".join(lines)


def gradescope_result(g: Grade) -> dict:
    """One notebook's Gradescope ``results.json`` (see the module: only course-authored text)."""
    tests = []
    for c in g.checks:
        earned = c.points if c.earns and g.keeps_points else 0.0
        listed = listed_points(g.lab or None, c.name) is not None
        tests.append({"name": c.name if listed else UNLISTED_CHECK, "score": float(earned),
                      "max_score": float(c.points), "status": "passed" if c.passed else "failed",
                      "output": _gradescope_output(g, c), **({"tags": ["demonstration"]} if c.demonstration else {})})
    return {"score": float(g.points_earned), "execution_time": int(g.rerun.seconds if g.rerun else 0),
            "output": f"Status: {g.status}. {VERDICTS[g.status]} Points: {num(g.points_earned)} of "
                      f"{num(g.points_possible)}.", "tests": tests}


def write_gradescope(grades: list[Grade], folder: Path) -> list[Path]:
    """One Gradescope ``results.json`` per graded notebook, at a path made only of safe names under ``folder``."""
    written = []
    for g in grades:
        path = inside(folder, g.submission_id or "unknown", g.lab or "unknown", "results.json")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(gradescope_result(g), indent=1), encoding="utf-8")
        written.append(path)
    return written


def _canvas_cells(grades: list[Grade]) -> tuple[dict[str, dict[str, str]], dict[str, list[str]]]:
    """Per id, the points per lab and the reasons a cell is left empty (see the module)."""
    graded: dict[tuple[str, str], list[Grade]] = {}
    for g in grades:
        if g.lab and g.status != "superseded":
            graded.setdefault((g.submission_id, g.lab), []).append(g)
    table: dict[str, dict[str, str]] = {}
    why: dict[str, list[str]] = {}
    for (sid, lab), group in sorted(graded.items()):
        cells = table.setdefault(sid, {})
        # an unreadable file beside a readable one is no second submission (mark_duplicates agrees)
        group = [g for g in group if g.status != "invalid_file"] or group
        if len(group) > 1:
            cells[lab] = ""
            why.setdefault(sid, []).append(f"duplicate: {len(group)} files for {lab}, an instructor decides")
        elif group[0].status in NEEDS_HUMAN:
            cells[lab] = ""
            why.setdefault(sid, []).append(f"{group[0].status}: {lab}, an instructor decides")
        else:
            cells[lab] = str(num(group[0].points_earned))
    return table, why


def write_canvas(grades: list[Grade], path: Path) -> None:
    """A Canvas-style gradebook: one row per submission id, one column of points per lab, and a status column."""
    labs = sorted({g.lab for g in grades if g.lab})
    table, why = _canvas_cells(grades)
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow([csv_cell(c) for c in (CANVAS_ID_COLUMN, *labs, CANVAS_STATUS_COLUMN)])
        for sid in sorted(table):
            writer.writerow([csv_cell(sid), *(csv_cell(table[sid].get(lab, ""), numeric=True) for lab in labs),
                             csv_cell("; ".join(why.get(sid, [])))])
