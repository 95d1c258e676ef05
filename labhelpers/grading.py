"""Grade executed lab notebooks from their records: ``labhelpers grade PATH ... [--out DIR] [--rerun]``.

The grader only reads. For every notebook it finds it decides **one status** from a fixed vocabulary
(:data:`STATUSES`, most severe first: when several problems are found the first in that order is the
status, and the others are still listed in ``grades.json`` and the report), scores the lab's checks, and
writes three files: ``gradebook.csv`` (one row per notebook), ``grades.json`` (every detail) and
``report.md`` (per notebook, in words a learner understands).

Rules (also in the README):

* **Lab.** The lab a notebook *claims* is, in order: notebook metadata ``labhelpers.lab``; a lab stem inside
  the file name (``alice_01_instruction_tuning.ipynb``); a lab stem as the name of a parent folder
  (``01_instruction_tuning/alice.ipynb``). Without a claim the lab is the one its records name. Records of
  any other lab than the claimed one make the status ``wrong_lab`` (an upload of the wrong notebook).
* **Submission id.** Notebook metadata ``labhelpers.submission_id``; else the file stem with the lab stem
  removed (``alice_01_instruction_tuning`` -> ``alice``, ``bob.ipynb`` -> ``bob``); if nothing is left (the
  file is just ``01_instruction_tuning.ipynb``), the name of the nearest parent folder that is not a lab stem
  (``alice/01_instruction_tuning.ipynb`` -> ``alice``). The same id for the same lab in two files makes both
  rows ``duplicate``.
* **Points.** A lab's checks and their points come from ``--reference`` notebooks (e.g. the solution run of
  ``labhelpers run``) when given, else from the union of the checks that the graded notebooks of that lab
  recorded (so a check a notebook never reached still counts as possible). One check per name; the last
  record of a name counts. Earned = points of the passed checks; a ``required`` check that failed or never
  ran sets the notebook's points to 0. ``invalid_file``, ``not_executed`` and ``wrong_lab`` earn 0; every
  other status keeps the points its records earn, and says why it needs a look.
* **Environment.** Records are expected in profile ``tiny`` (``--profile``) and with the installed
  major.minor versions of torch, transformers, trl and datasets (``--expect-versions``).
"""

from __future__ import annotations

import csv
import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .config import lab_names, resolve_lab
from .records import MIME, read_records, versions

# The fixed vocabulary of statuses, most severe first: the order is the precedence.
STATUSES: dict[str, str] = {
    "invalid_file": "not a notebook: empty, not valid JSON (e.g. truncated) or JSON that is not a Jupyter notebook",
    "duplicate": "another file is a submission of the same id for the same lab",
    "timeout": "the rerun (--rerun) did not finish within the time limit",
    "not_executed": "no cell was run: the notebook has no outputs",
    "cell_error": "a cell raised an error",
    "out_of_order": "cells were not run once from top to bottom (execution counts missing or not increasing)",
    "wrong_lab": "the records belong to another lab than the one the notebook claims",
    "records_missing": "the notebook ran, but records (checks) of the lab are missing",
    "environment_mismatch": "the records were made in another profile or with other package versions",
    "checks_failed": "the notebook ran in full, but some checks failed",
    "complete": "ran in order, without errors, in full, and every check passed",
}
# The packages whose major.minor version must match (labhelpers itself may differ).
VERSIONED = ("torch", "transformers", "trl", "datasets")
ZERO_POINT_STATUSES = {"invalid_file", "not_executed"}
CSV_COLUMNS = ["submission_id", "lab", "status", "points_earned", "points_possible", "checks_passed",
               "checks_total", "key_results", "file", "rerun_differs"]


@dataclass
class Problem:
    code: str  # a key of STATUSES
    message: str  # one or two sentences for the learner


@dataclass
class Inspection:
    """What one notebook file holds, before scoring (scoring needs every notebook of the batch)."""

    path: Path
    submission_id: str
    lab: str  # claimed lab, else the lab of the records, else ""
    claimed: bool
    problems: list[Problem] = field(default_factory=list)
    records: list[dict] = field(default_factory=list)  # only those of `lab`
    other_labs: list[str] = field(default_factory=list)
    valid: bool = True
    executed: bool = True


@dataclass
class GradeOptions:
    profile: str = "tiny"  # "tiny", "full" or "any"
    expect_versions: dict[str, str] | None = field(default_factory=lambda: dict(versions()))  # None = any
    reference: dict[str, dict[str, dict]] = field(default_factory=dict)  # lab -> check name -> spec


@dataclass
class Grade:
    file: str
    submission_id: str
    lab: str
    status: str
    points_earned: float
    points_possible: float
    checks_passed: int
    checks_total: int
    key_results: str
    problems: list[Problem] = field(default_factory=list)
    checks: list[dict] = field(default_factory=list)
    results: dict[str, Any] = field(default_factory=dict)
    required_failed: list[str] = field(default_factory=list)
    rerun: dict | None = None

    def row(self) -> dict:
        return {"submission_id": self.submission_id, "lab": self.lab, "status": self.status,
                "points_earned": _num(self.points_earned), "points_possible": _num(self.points_possible),
                "checks_passed": self.checks_passed, "checks_total": self.checks_total,
                "key_results": self.key_results, "file": self.file,
                "rerun_differs": "" if self.rerun is None else ("yes" if self.rerun["differences"] else "no")}


# --------------------------------------------------------------------------------------------------
# Finding and reading notebooks
# --------------------------------------------------------------------------------------------------
def find_notebooks(paths: list[str | Path], exclude: Path | None = None) -> list[Path]:
    """Notebook files named by ``paths`` (files as given; folders searched recursively for ``*.ipynb``).

    Checkpoint folders, hidden folders and anything under ``exclude`` (the grader's own output) are skipped.
    A path that does not exist raises ``FileNotFoundError``.
    """
    exclude = exclude.resolve() if exclude else None
    found: dict[Path, None] = {}
    for raw in paths:
        path = Path(raw)
        if not path.exists():
            raise FileNotFoundError(f"{path} does not exist; give executed .ipynb files or folders of them.")
        if path.is_file():
            found[path] = None
            continue
        for nb in sorted(path.rglob("*.ipynb")):
            parts = nb.relative_to(path).parts
            if any(p.startswith(".") or p == "__pycache__" for p in parts[:-1]):
                continue
            if exclude and (exclude == nb.resolve() or exclude in nb.resolve().parents):
                continue
            if nb.is_file():
                found[nb] = None
    return list(found)


def _lab_in(name: str) -> str | None:
    """The lab stem that occurs in ``name`` (the longest one if several do)."""
    hits = [lab for lab in lab_names() if lab in name]
    return max(hits, key=len) if hits else None


def _claimed_lab(path: Path, meta: dict) -> str | None:
    value = meta.get("lab")
    if isinstance(value, str) and value.strip():
        try:
            return resolve_lab(value.strip())
        except ValueError:
            return value.strip()
    in_name = _lab_in(path.stem)
    if in_name:
        return in_name
    for parent in path.parent.resolve().parts[::-1]:
        if parent in lab_names():
            return parent
    return None


def _submission_id(path: Path, meta: dict) -> str:
    value = meta.get("submission_id")
    if value is not None and str(value).strip():
        return str(value).strip()
    stem = path.stem
    lab = _lab_in(stem)
    if lab:
        stem = stem.replace(lab, "")
    stem = stem.strip(" _-.")
    if stem:
        return stem
    for parent in path.parent.resolve().parts[::-1]:
        if parent not in lab_names() and parent not in ("", "/"):
            return parent
    return path.stem


def _source(cell: dict) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else str(src)


def _first_line(cell: dict) -> str:
    for line in _source(cell).splitlines():
        if line.strip():
            return line.strip()[:80]
    return ""


def _load(path: Path) -> tuple[dict | None, str | None]:
    """The parsed notebook, or None and a sentence saying why it is not one."""
    try:
        raw = path.read_bytes()
    except OSError as err:
        return None, f"The file could not be read ({err.strerror})."
    if not raw.strip():
        return None, "The file is empty (0 bytes of content): the upload or the save did not work."
    try:
        nb = json.loads(raw.decode("utf-8-sig"))
    except UnicodeDecodeError:
        return None, "The file is not text (not UTF-8), so it is not a Jupyter notebook."
    except json.JSONDecodeError as err:
        if err.pos >= len(raw.rstrip()) - 1:
            what = "it stops in the middle of the notebook: the file is cut off (an interrupted upload or save)"
        else:
            what = f"{err.msg} at line {err.lineno}, column {err.colno}: it was damaged or edited by hand"
        return None, (f"The file is not valid JSON ({what}). Download the notebook again from Jupyter or Colab "
                      "(File > Download .ipynb) and submit that file.")
    if not isinstance(nb, dict) or not isinstance(nb.get("cells"), list):
        if isinstance(nb, dict) and "worksheets" in nb:
            return None, "This is an old (nbformat 3) notebook; open and save it in a current Jupyter first."
        return None, "The file is valid JSON but not a Jupyter notebook (it has no list of cells)."
    return nb, None


def inspect_notebook(path: Path, *, submission_id: str | None = None, lab: str | None = None,
                     shown_path: Path | None = None) -> Inspection:
    """Read one file and collect its problems (no scoring). ``submission_id``/``lab`` override the rules."""
    path = Path(path)
    nb, why = _load(path)
    meta = nb.get("metadata") if nb else {}
    meta = meta.get("labhelpers", {}) if isinstance(meta, dict) else {}
    meta = meta if isinstance(meta, dict) else {}
    named = shown_path or path
    claimed = lab or _claimed_lab(named, meta)
    insp = Inspection(path=path, submission_id=submission_id or _submission_id(named, meta),
                      lab=claimed or "", claimed=bool(claimed))
    if nb is None:
        insp.valid = insp.executed = False
        insp.problems.append(Problem("invalid_file", why))
        return insp

    try:
        return _inspect_cells(insp, [c for c in nb["cells"] if isinstance(c, dict)])
    except (TypeError, AttributeError, ValueError, KeyError) as err:  # a hand-damaged structure
        insp.valid = insp.executed = False
        insp.problems = [Problem("invalid_file", (
            f"The notebook's structure is damaged ({type(err).__name__}: {err}); it was edited by hand or "
            "by a broken tool. Download the notebook again from Jupyter or Colab and submit that file."))]
        return insp


def _inspect_cells(insp: Inspection, cells: list[dict]) -> Inspection:
    """The checks of :func:`inspect_notebook` on a parsed notebook's cells."""
    try:
        records = [r for r in read_records({"cells": cells}) if isinstance(r, dict)]
    except (json.JSONDecodeError, TypeError, AttributeError):
        insp.valid = insp.executed = False
        insp.problems.append(Problem("invalid_file", f"An output of type {MIME} is damaged (not valid JSON); "
                                                     "the notebook was edited by hand or cut off."))
        return insp

    # Which lab: the claim, else the most frequent lab among the records.
    labs = Counter(str(r.get("lab")) for r in records)
    if not insp.lab and labs:
        insp.lab = labs.most_common(1)[0][0]
    insp.records = [r for r in records if str(r.get("lab")) == insp.lab]
    insp.other_labs = sorted(lab for lab in labs if lab != insp.lab)

    code = [(i, c) for i, c in enumerate(cells, 1) if c.get("cell_type") == "code" and _source(c).strip()]
    ran = [(i, c) for i, c in code if c.get("execution_count") is not None or c.get("outputs")]
    if not ran:
        insp.executed = False
        insp.problems.append(Problem("not_executed", (
            "The notebook has no outputs: it was saved without being run, or its outputs were cleared. "
            "Run it (Kernel > Restart Kernel and Run All Cells, or Runtime > Run all on Colab), wait until "
            "the last cell has finished, save, and submit that file.")))
        return insp

    first_error = None
    for i, c in code:
        errors = [o for o in c.get("outputs", []) if isinstance(o, dict) and o.get("output_type") == "error"]
        if errors:
            err = errors[0]
            first_error = i
            evalue = str(err.get("evalue", "")).strip().splitlines()
            insp.problems.append(Problem("cell_error", (
                f"Cell {i} (`{_first_line(c)}`) raised {err.get('ename', 'an error')}"
                + (f": {evalue[0][:200]}" if evalue else "") + ". Cells after an error do not run, so their "
                "checks are missing. Fix that cell, then run the whole notebook again from the top.")))
            break

    # Execution order: up to the first error (later cells are expected to be unrun after one).
    considered = [(i, c) for i, c in code if first_error is None or i <= first_error]
    never = [i for i, c in considered if c.get("execution_count") is None]
    backwards = []
    last = None
    for i, c in considered:
        n = c.get("execution_count")
        if n is None:
            continue
        if last is not None and n <= last[1]:
            backwards.append((i, n, last))
        last = (i, n)
    if never or backwards:
        parts = []
        if never:
            shown = ", ".join(map(str, never[:8])) + (" ..." if len(never) > 8 else "")
            parts.append(f"code cell{'s' if len(never) > 1 else ''} {shown} never ran")
        if backwards:
            i, n, (j, m) = backwards[0]
            parts.append(f"cell {i} has execution count [{n}] although cell {j} above it has [{m}]"
                         + (f" ({len(backwards)} such places)" if len(backwards) > 1 else ""))
        insp.problems.append(Problem("out_of_order", (
            "The cells were not run once from top to bottom: " + "; ".join(parts) + ". Results that depend "
            "on the order may not be what the code says. Use Kernel > Restart Kernel and Run All Cells, "
            "then save.")))

    if insp.other_labs:
        claim = f"is marked as lab {insp.lab}" if insp.claimed else f"mostly holds records of lab {insp.lab}"
        insp.problems.append(Problem("wrong_lab", (
            f"This notebook {claim}, but it holds records of lab {', '.join(insp.other_labs)}. "
            "Was the wrong notebook uploaded, or the file misnamed?")))
    return insp


# --------------------------------------------------------------------------------------------------
# Scoring
# --------------------------------------------------------------------------------------------------
def _last_by_name(records: list[dict], kind: str) -> dict[str, dict]:
    out: dict[str, dict] = {}
    for r in records:
        if r.get("kind") == kind and isinstance(r.get("name"), str):
            out[r["name"]] = r
    return out


def _points(value: Any) -> float:
    try:
        p = float(value)
    except (TypeError, ValueError):
        return 1.0
    return p if math.isfinite(p) and p >= 0 else 0.0


def check_specs(records: list[dict]) -> dict[str, dict]:
    """``{name: {"points": p, "required": bool}}`` of the check records (the last record of a name)."""
    return {name: {"points": _points(r.get("points", 1)), "required": bool(r.get("required"))}
            for name, r in _last_by_name(records, "check").items()}


def expected_checks(inspections: list[Inspection], reference: dict[str, dict[str, dict]] | None = None
                    ) -> dict[str, dict[str, dict]]:
    """Per lab, its checks and their points: the reference's, else the union of what the notebooks recorded."""
    union: dict[str, dict[str, dict]] = {}
    for insp in inspections:
        if not insp.lab:
            continue
        specs = union.setdefault(insp.lab, {})
        for name, spec in check_specs(insp.records).items():
            old = specs.get(name)
            specs[name] = spec if old is None else {"points": max(old["points"], spec["points"]),
                                                   "required": old["required"] or spec["required"]}
    for lab, specs in (reference or {}).items():
        union[lab] = dict(specs)
    return union


def load_reference(paths: list[str | Path]) -> dict[str, dict[str, dict]]:
    """Expected checks per lab from executed solution notebooks (files or folders)."""
    out: dict[str, dict[str, dict]] = {}
    for nb in find_notebooks(paths):
        insp = inspect_notebook(nb)
        if not insp.valid or not insp.lab or not insp.records:
            raise ValueError(f"Reference notebook {nb} holds no records; give executed solution notebooks "
                             "(e.g. the output folder of `labhelpers run`).")
        out.setdefault(insp.lab, {}).update(check_specs(insp.records))
    return out


def parse_expect_versions(text: str) -> dict[str, str] | None:
    """``"installed"`` -> the installed versions; ``"any"`` -> None; ``"torch=2.13,trl=1.16"`` -> that dict."""
    text = text.strip()
    if text == "any":
        return None
    if text == "installed":
        return dict(versions())
    out = {}
    for part in text.split(","):
        name, sep, ver = part.partition("=")
        if not sep or name.strip() not in VERSIONED or not re.match(r"^\d+\.\d+", ver.strip()):
            raise ValueError(f"--expect-versions takes 'installed', 'any' or a list like 'torch=2.13,trl=1.16' "
                             f"(packages: {', '.join(VERSIONED)}); got {text!r}.")
        out[name.strip()] = ver.strip()
    return out


def _major_minor(version: Any) -> str | None:
    m = re.match(r"^\s*(\d+)\.(\d+)", str(version))
    return f"{m.group(1)}.{m.group(2)}" if m else None


def environment_problems(records: list[dict], options: GradeOptions) -> list[str]:
    """Sentences describing how the records' profile and versions differ from the expected ones."""
    out = []
    if options.profile != "any":
        profiles = sorted({str(r.get("profile")) for r in records} - {options.profile})
        if profiles:
            out.append(f"it ran in profile {', '.join(map(repr, profiles))}, but this grading expects "
                       f"{options.profile!r} (set PROFILE = \"{options.profile}\" in the parameters cell)")
    if options.expect_versions:
        seen: dict[str, set[str]] = {}
        for r in records:
            recorded = r.get("versions") if isinstance(r.get("versions"), dict) else {}
            for pkg in VERSIONED:
                if pkg in options.expect_versions:
                    seen.setdefault(pkg, set()).add(str(recorded.get(pkg, "not recorded")))
        for pkg, found in seen.items():
            want = _major_minor(options.expect_versions[pkg])
            bad = sorted(v for v in found if _major_minor(v) != want)
            if bad:
                out.append(f"it used {pkg} {', '.join(bad)}, but the course expects {pkg} {want}.x")
    return out


def _fmt(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}={_fmt(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_fmt(v) for v in value[:6]) + (", ..." if len(value) > 6 else "") + "]"
    return str(value)


def _num(x: float) -> int | float:
    return int(x) if float(x).is_integer() else round(x, 3)


def score(insp: Inspection, expected: dict[str, dict], options: GradeOptions) -> Grade:
    """Turn an inspection into a grade, given the lab's expected checks ``{name: {points, required}}``."""
    problems = list(insp.problems)
    mine = _last_by_name(insp.records, "check")
    results = {name: r.get("value") for name, r in _last_by_name(insp.records, "result").items()}
    names = list(expected) + [n for n in mine if n not in expected and not options.reference.get(insp.lab)]
    checks = []
    for name in names:
        spec = expected.get(name) or check_specs([mine[name]])[name]
        rec = mine.get(name)
        checks.append({"name": name, "points": spec["points"], "required": spec["required"],
                       "passed": None if rec is None else bool(rec.get("passed")),
                       "message": (rec or {}).get("message", ""), "value": (rec or {}).get("value"),
                       "threshold": (rec or {}).get("threshold")})
    possible = sum(c["points"] for c in checks)
    earned = sum(c["points"] for c in checks if c["passed"])
    required_failed = [c["name"] for c in checks if c["required"] and not c["passed"]]

    codes = {p.code for p in problems}
    if insp.valid and insp.executed:
        missing = [c["name"] for c in checks if c["passed"] is None]
        if not insp.records and not codes & {"wrong_lab", "cell_error", "timeout"}:
            problems.append(Problem("records_missing", (
                "The notebook ran but holds no checks or results of the lab. The cells that call "
                "record_check/record_result were deleted, or their outputs cleared; restore them from the "
                "original lab and run it again.")))
        elif missing and not codes & {"wrong_lab", "cell_error", "timeout"}:
            problems.append(Problem("records_missing", (
                f"The check{'s' if len(missing) > 1 else ''} {', '.join(missing)} never ran in this notebook "
                "(they are in the lab, so a cell that records them was deleted or its output cleared).")))
        env = environment_problems(insp.records, options)
        if env:
            problems.append(Problem("environment_mismatch", "The results are not comparable: " + "; ".join(env)
                                    + ". Use the course's setup cell (it installs the pinned versions)."))
        failed = [c for c in checks if c["passed"] is False]
        if failed:
            problems.append(Problem("checks_failed", f"{len(failed)} of {len(checks)} checks failed."))

    order = list(STATUSES)
    status = min((p.code for p in problems), key=order.index, default="complete")
    if required_failed or status in ZERO_POINT_STATUSES:
        earned = 0.0
    key = "; ".join(f"{k}={_fmt(v)}" for k, v in results.items())
    return Grade(file=str(insp.path), submission_id=insp.submission_id, lab=insp.lab, status=status,
                 points_earned=earned, points_possible=possible,
                 checks_passed=sum(1 for c in checks if c["passed"]), checks_total=len(checks),
                 key_results=key, problems=problems, checks=checks, results=results,
                 required_failed=required_failed)


def mark_duplicates(grades: list[Grade]) -> None:
    """Give every submission of the same id for the same lab (two files or more) the status duplicate."""
    groups: dict[tuple[str, str], list[Grade]] = {}
    for g in grades:
        if g.status != "invalid_file" and g.lab:
            groups.setdefault((g.submission_id, g.lab), []).append(g)
    for (sid, lab), group in groups.items():
        if len(group) < 2:
            continue
        full = [str(Path(g.file).resolve()) for g in group]
        common = os.path.commonpath(full)
        files = [Path(os.path.relpath(f, common)).as_posix() for f in full]
        for g, mine in zip(group, files):
            others = [f for f in files if f != mine]
            g.problems.insert(0, Problem("duplicate", (
                f"There are {len(group)} submissions of {sid!r} for lab {lab}: this file and "
                f"{', '.join(others)}. Keep exactly one file per lab (the instructor grades it by hand now).")))
            g.status = "duplicate"


# --------------------------------------------------------------------------------------------------
# Rerun (--rerun): execute a copy of each submission and grade that
# --------------------------------------------------------------------------------------------------
def rerun_notebook(path: Path, workdir: Path, *, profile: str = "tiny", timeout: float = 600
                   ) -> tuple[Path, bool, str]:
    """Execute a copy of ``path`` with papermill in ``workdir`` (its own working folder) in a fresh process.

    Returns (executed notebook path, timed out?, papermill's last stderr lines). The whole run, kernel start
    included, is stopped after ``timeout`` seconds; the partly executed notebook is still written.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    src = workdir / ("submitted_" + path.name)
    shutil.copyfile(path, src)  # papermill reads the copy: the submission is never opened for writing
    out = workdir / path.name
    env = {**os.environ, "LABS_PROFILE": profile, "TOKENIZERS_PARALLELISM": "false",
           "PYTHONDONTWRITEBYTECODE": "1"}
    cmd = [sys.executable, "-m", "papermill", str(src), str(out), "-p", "PROFILE", profile, "-k", "python3",
           "--cwd", str(workdir), "--no-progress-bar", "--no-log-output", "--execution-timeout",
           str(int(max(1, timeout)))]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env,
                            start_new_session=True)  # its own process group: a timeout stops the kernel too
    timed_out = False
    try:
        _, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            _, err = proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            _, err = proc.communicate()
    tail = "\n".join(err.decode("utf-8", "replace").strip().splitlines()[-3:])
    return out, timed_out, tail


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool) or a is None or b is None:
        return a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return math.isclose(a, b, rel_tol=1e-4, abs_tol=1e-6)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return a == b


def compare_records(submitted: list[dict], rerun: list[dict]) -> list[str]:
    """Sentences naming each check or result whose rerun differs from the submitted record."""
    out = []
    for kind in ("check", "result"):
        old, new = _last_by_name(submitted, kind), _last_by_name(rerun, kind)
        for name in list(old) + [n for n in new if n not in old]:
            if name not in new:
                out.append(f"{kind} {name} is in the submission but was not recorded on rerun")
            elif name not in old:
                out.append(f"{kind} {name} was recorded on rerun but is not in the submission")
            elif kind == "check" and bool(old[name].get("passed")) != bool(new[name].get("passed")):
                was, now = ("passed", "failed") if old[name].get("passed") else ("failed", "passed")
                out.append(f"check {name} {was} in the submission but {now} on rerun")
            elif not _same(old[name].get("value"), new[name].get("value")):
                out.append(f"{kind} {name}: submitted {_fmt(old[name].get('value'))}, "
                           f"rerun {_fmt(new[name].get('value'))}")
    return out


# --------------------------------------------------------------------------------------------------
# The whole batch
# --------------------------------------------------------------------------------------------------
def grade_paths(paths: list[str | Path], *, options: GradeOptions | None = None, rerun: bool = False,
                timeout: float = 600, out_dir: Path | None = None, progress=None) -> list[Grade]:
    """Grade every notebook under ``paths``; inputs are only read. With ``rerun``, grade re-executed copies."""
    options = options or GradeOptions()
    files = find_notebooks(paths, exclude=out_dir)
    submitted = [inspect_notebook(f) for f in files]
    graded = submitted
    reruns: dict[int, dict] = {}
    if rerun:
        profile = options.profile if options.profile in ("tiny", "full") else "tiny"
        graded = []
        with tempfile.TemporaryDirectory(prefix="labhelpers-rerun-") as tmp:
            keep = (out_dir / "reruns") if out_dir else None
            if keep:
                keep.mkdir(parents=True, exist_ok=True)
            for n, insp in enumerate(submitted):
                if not insp.valid:
                    graded.append(insp)
                    continue
                if progress:
                    progress(f"rerunning {insp.path} ({n + 1}/{len(submitted)})")
                started = time.perf_counter()
                executed, timed_out, tail = rerun_notebook(insp.path, Path(tmp) / f"{n:04d}", profile=profile,
                                                           timeout=timeout)
                seconds = round(time.perf_counter() - started, 1)
                if executed.exists():
                    again = inspect_notebook(executed, submission_id=insp.submission_id, lab=insp.lab or None,
                                             shown_path=insp.path)
                else:
                    again = Inspection(path=insp.path, submission_id=insp.submission_id, lab=insp.lab,
                                       claimed=insp.claimed, executed=False)
                    if not timed_out:
                        again.valid = False
                        again.problems.append(Problem("invalid_file", "The rerun could not start: " + tail))
                again.path = insp.path
                if timed_out:
                    again.problems.insert(0, Problem("timeout", (
                        f"Rerunning the notebook took longer than {timeout:g} s and was stopped. Make sure it "
                        "finishes in the tiny profile within the lab's stated time.")))
                kept = None
                if keep and executed.exists():
                    kept = keep / f"{n:04d}_{insp.path.name}"
                    shutil.copyfile(executed, kept)
                reruns[len(graded)] = {"seconds": seconds, "timed_out": timed_out, "executed": str(kept or ""),
                                       "submitted_problems": [asdict(p) for p in insp.problems],
                                       "differences": compare_records(insp.records, again.records)}
                graded.append(again)
    expected = expected_checks(graded + submitted, options.reference)
    grades = []
    for n, insp in enumerate(graded):
        g = score(insp, expected.get(insp.lab, {}), options)
        if n in reruns:
            g.rerun = reruns[n]
            g.rerun["submitted_status"] = score(submitted[n], expected.get(insp.lab, {}), options).status
        grades.append(g)
    mark_duplicates(grades)
    return grades


# --------------------------------------------------------------------------------------------------
# Output files
# --------------------------------------------------------------------------------------------------
def _display_path(path: str, root: Path | None) -> str:
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


def write_json(grades: list[Grade], path: Path, options: GradeOptions, rerun: bool) -> None:
    doc = {"generated": datetime.now(timezone.utc).isoformat(timespec="seconds"), "rerun": rerun,
           "expected": {"profile": options.profile, "versions": options.expect_versions or "any",
                        "reference": options.reference or None},
           "statuses": STATUSES, "notebooks": [{**asdict(g), **{"row": g.row()}} for g in grades]}
    path.write_text(json.dumps(doc, indent=1, default=str), encoding="utf-8")


STATUS_WORDS = {
    "complete": "Everything ran from top to bottom without errors, and every check passed.",
    "checks_failed": "The notebook ran in full, but not every check passed.",
    "cell_error": "A cell raised an error, so the notebook did not run to the end.",
    "timeout": "The rerun of this notebook did not finish in time.",
    "not_executed": "The notebook was not run before it was saved.",
    "out_of_order": "The cells were not run once, in order, from top to bottom.",
    "records_missing": "The notebook ran, but some of the lab's checks are not in it.",
    "wrong_lab": "This file holds the results of a different lab.",
    "environment_mismatch": "The notebook ran with another profile or other package versions than expected.",
    "duplicate": "More than one file was submitted for this lab under the same name.",
    "invalid_file": "This file is not a readable Jupyter notebook.",
}


def _check_line(c: dict) -> str:
    pts = f"{_num(c['points'])} point{'' if c['points'] == 1 else 's'}" + (", required" if c["required"] else "")
    detail = ""
    if c["value"] is not None:
        detail = f" Your value: {_fmt(c['value'])}" + (f"; needed: {_fmt(c['threshold'])}"
                                                        if c["threshold"] is not None else "") + "."
    mark = {True: "✅", False: "❌", None: "⬜"}[c["passed"]]
    what = c["message"] or ("this check never ran" if c["passed"] is None else "")
    return f"- {mark} **{c['name']}** ({pts}): {what}.{detail}".replace("..", ".")


def write_report(grades: list[Grade], path: Path, options: GradeOptions, root: Path | None = None) -> None:
    lines = ["# Grading report", ""]
    env = "any versions" if not options.expect_versions else ", ".join(
        f"{k} {_major_minor(v)}.x" for k, v in options.expect_versions.items() if k in VERSIONED)
    lines += [f"{len(grades)} notebook(s) graded. Expected profile: {options.profile}; expected versions: {env}.",
              "", "| submission | lab | status | points | checks |", "|---|---|---|---|---|"]
    for g in grades:
        lines.append(f"| {g.submission_id} | {g.lab or '?'} | {g.status} | {_num(g.points_earned)}/"
                     f"{_num(g.points_possible)} | {g.checks_passed}/{g.checks_total} |")
    lines += ["", "Statuses: " + "; ".join(f"`{k}`: {v}" for k, v in STATUSES.items()) + ".", ""]
    for g in grades:
        lines += [f"## {g.submission_id} — lab {g.lab or 'unknown'}", "",
                  f"File: `{_display_path(g.file, root)}`  ", f"**Status: {g.status}.** {STATUS_WORDS[g.status]}  ",
                  f"Points: **{_num(g.points_earned)} / {_num(g.points_possible)}**; "
                  f"checks passed: {g.checks_passed} of {g.checks_total}.", ""]
        if g.required_failed and g.status not in ZERO_POINT_STATUSES:
            ran = {c["name"]: c["passed"] for c in g.checks}
            why = ", ".join(f"{n} ({'failed' if ran.get(n) is False else 'never ran'})" for n in g.required_failed)
            lines += [f"Required check{'s' if len(g.required_failed) > 1 else ''} not passed: {why}. A required "
                      "check must pass for any points to count, so this notebook gets 0 points.", ""]
        seen = set()
        problems = [p for p in g.problems if not (p.message in seen or seen.add(p.message))]
        if problems:
            lines += ["What went wrong:", ""] + [f"- {p.message}" for p in problems] + [""]
        passed = [c for c in g.checks if c["passed"]]
        failed = [c for c in g.checks if c["passed"] is False]
        missing = [c for c in g.checks if c["passed"] is None]
        if passed:
            lines += ["Passed:", ""] + [_check_line(c) for c in passed] + [""]
        if failed:
            lines += ["Failed:", ""] + [_check_line(c) for c in failed] + [""]
        if missing and g.status != "invalid_file":
            lines += ["Not recorded (the cell that checks it did not run):", ""] + [_check_line(c) for c in missing]
            lines += [""]
        if g.results:
            lines += ["Results: " + "; ".join(f"{k} = {_fmt(v)}" for k, v in g.results.items()), ""]
        if g.rerun is not None:
            r = g.rerun
            head = (f"Rerun ({r['seconds']} s; the submitted file had status {r['submitted_status']}): ")
            if r["differences"]:
                lines += [head + "the rerun's records differ from the submitted ones:", ""]
                lines += [f"- {d}" for d in r["differences"]] + [""]
            else:
                lines += [head + "same records as submitted.", ""]
    path.write_text("\n".join(lines).rstrip() + "\n", encoding="utf-8")


def summary_table(grades: list[Grade]) -> str:
    rows = [(g.submission_id, g.lab or "?", g.status, f"{_num(g.points_earned)}/{_num(g.points_possible)}",
             f"{g.checks_passed}/{g.checks_total}") for g in grades]
    head = ("submission", "lab", "status", "points", "checks")
    if any(g.rerun is not None for g in grades):
        head += ("rerun",)
        rows = [r + ("-" if g.rerun is None else "DIFFERS" if g.rerun["differences"] else "same",)
                for r, g in zip(rows, grades)]
    widths = [max(len(str(x)) for x in col) for col in zip(head, *rows)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    lines = [fmt.format(*head)] + [fmt.format(*r) for r in rows]
    counts = Counter(g.status for g in grades)
    lines += ["", ", ".join(f"{n} {s}" for s, n in sorted(counts.items(), key=lambda kv: list(STATUSES).index(kv[0])))]
    return "\n".join(lines)


def grade(paths: list[str | Path], out_dir: str | Path = "grades", *, options: GradeOptions | None = None,
          rerun: bool = False, timeout: float = 600, progress=None) -> list[Grade]:
    """Grade, then write ``gradebook.csv``, ``grades.json`` and ``report.md`` into ``out_dir``."""
    options = options or GradeOptions()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    grades = grade_paths(paths, options=options, rerun=rerun, timeout=timeout, out_dir=out, progress=progress)
    roots = [Path(p) for p in paths]
    root = roots[0] if len(roots) == 1 and roots[0].is_dir() else None
    write_gradebook(grades, out / "gradebook.csv")
    write_json(grades, out / "grades.json", options, rerun)
    write_report(grades, out / "report.md", options, root)
    return grades
