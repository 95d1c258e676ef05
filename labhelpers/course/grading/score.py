"""Scoring: a lab's expected checks and points, the expected environment, and one grade per notebook.

* **Points** of a check come from :mod:`labhelpers.course.points` alone: the table's value, or
  :data:`~labhelpers.course.points.UNLISTED_POINTS` (nothing) for a check it does not list. A ``points``
  field in a record (records made before the table was the only source carry one) is ignored.
  A lab's possible points are its checks in ``--reference`` notebooks when given, else the union of the
  checks that the batch's notebooks of that lab recorded (a check a notebook never reached still counts).
  Earned = points of the passed checks; a check passes when its record says so and the course's declared
  comparison (:func:`.inspection.declared_pass`) does not refuse its value; a check decided by the
  library's reference (``reference_used``) earns nothing; a ``required``
  check that failed or never ran sets the notebook's points to 0, and so do the statuses that earn nothing.
* **Environment**: ``--profile``/``--expect-versions`` when the instructor gives them; else the profile and
  major.minor versions of ``--reference``; else the ones most of the batch's notebooks recorded. An
  expectation taken from the batch reports mixed profiles in the summary instead of failing them.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from labhelpers.course.grading.discover import canvas_name
from labhelpers.course.grading.inspection import (
    Inspection,
    Problem,
    decided_by_reference,
    declared_pass,
    inspect_notebook,
)
from labhelpers.course.grading.rerun import RerunOutcome
from labhelpers.course.grading.statuses import ZERO_POINT_STATUSES, most_severe
from labhelpers.course.points import check_points, declared, is_demonstration
from labhelpers.records import versions

# The packages whose major.minor version must match (labhelpers itself may differ).
VERSIONED = ("torch", "transformers", "trl", "datasets")


@dataclass
class GradeOptions:
    profile: str = "auto"  # "auto" (from --reference or the batch, mixed reported), "tiny", "full" or "any"
    expect_versions: dict[str, str] | str | None = "auto"  # "auto", a dict of major.minor, or None = any
    reference: dict[str, dict[str, dict]] = field(default_factory=dict)  # lab -> check name -> spec
    reference_records: list[dict] = field(default_factory=list)  # the reference notebooks' records


@dataclass
class Expectation:
    """The environment the batch is held to, and in words where it came from (for the summary)."""

    profile: str  # "any" when not enforced
    versions: dict[str, str] | None
    source: str
    profiles_seen: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class CheckRow:
    """One of the lab's checks as one notebook has it: what it is worth and how it went."""

    name: str
    points: float
    required: bool
    passed: bool | None  # None: the notebook never recorded it
    message: str = ""
    value: Any = None
    threshold: Any = None
    direction: str | None = None
    demonstration: bool = False
    by_reference: bool = False  # decided by the library's reference: earns nothing
    edited: bool = False  # the record departs from the course's declaration: scored by the declared comparison
    declared: bool = True  # False: a check the course does not list (it earns nothing)

    @property
    def earns(self) -> bool:
        """Whether its points count (before the notebook-wide rules: required checks, zero-point statuses)."""
        return bool(self.passed) and not self.by_reference


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
    checks: list[CheckRow] = field(default_factory=list)
    results: dict[str, Any] = field(default_factory=dict)
    required_failed: list[str] = field(default_factory=list)
    renamed: list[str] = field(default_factory=list)
    unverifiable: list[str] = field(default_factory=list)
    cell_changes: list[str] = field(default_factory=list)  # cells added to or missing from the student version
    rerun: RerunOutcome | None = None

    @property
    def keeps_points(self) -> bool:
        """False when a required check did not pass or the status earns nothing: every check then scores 0."""
        return not self.required_failed and self.status not in ZERO_POINT_STATUSES

    def row(self) -> dict:
        return {"submission_id": self.submission_id, "lab": self.lab, "status": self.status,
                "points_earned": num(self.points_earned), "points_possible": num(self.points_possible),
                "checks_passed": self.checks_passed, "checks_total": self.checks_total,
                "key_results": self.key_results, "file": self.file,
                "rerun_differs": "" if self.rerun is None else ("yes" if self.rerun.differences else "no")}


def num(x: float) -> int | float:
    return int(x) if float(x).is_integer() else round(x, 3)


def fmt(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}={fmt(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(fmt(v) for v in value[:6]) + (", ..." if len(value) > 6 else "") + "]"
    return str(value)


def last_by_name(records: list[dict], kind: str) -> dict[str, dict]:
    out: dict[str, dict] = {}
    for r in records:
        if r.get("kind") == kind and isinstance(r.get("name"), str):
            out[r["name"]] = r
    return out


def check_specs(lab: str, records: list[dict]) -> dict[str, dict]:
    """``{name: {"points": p, "required": bool}}`` of the check records (the last record of a name).

    The points are the table's (:func:`labhelpers.course.points.check_points`), never the record's.
    """
    return {name: {"points": check_points(lab, name), "required": bool(r.get("required"))}
            for name, r in last_by_name(records, "check").items()}


def expected_checks(inspections: list[Inspection], reference: dict[str, dict[str, dict]] | None = None
                    ) -> dict[str, dict[str, dict]]:
    """Per lab, its checks and their points: the reference's, else the union of what the notebooks recorded."""
    union: dict[str, dict[str, dict]] = {}
    for insp in inspections:
        if not insp.lab:
            continue
        specs = union.setdefault(insp.lab, {})
        for name, spec in check_specs(insp.lab, insp.records).items():
            old = specs.get(name)
            specs[name] = spec if old is None else {"points": max(old["points"], spec["points"]),
                                                   "required": old["required"] or spec["required"]}
    for lab, specs in (reference or {}).items():
        union[lab] = dict(specs)
    return union


def load_reference(paths) -> tuple[dict[str, dict[str, dict]], list[dict]]:
    """Expected checks per lab, and all records, from executed solution notebooks (files or folders)."""
    from labhelpers.course.grading.discover import find_notebooks

    out: dict[str, dict[str, dict]] = {}
    every: list[dict] = []
    for nb in find_notebooks(paths):
        insp = inspect_notebook(nb)
        if not insp.valid or not insp.lab or not insp.records:
            raise ValueError(f"Reference notebook {nb} holds no records; give executed solution notebooks "
                             "(e.g. the output folder of `labhelpers run`).")
        out.setdefault(insp.lab, {}).update(check_specs(insp.lab, insp.records))
        every += insp.records
    return out, every


def parse_expect_versions(text: str) -> dict[str, str] | str | None:
    """``"auto"``; ``"installed"`` -> the installed versions; ``"any"`` -> None; ``"torch=2.13,trl=1.16"``."""
    text = text.strip()
    if text in ("any", "auto"):
        return None if text == "any" else "auto"
    if text == "installed":
        return dict(versions())
    out = {}
    for part in text.split(","):
        name, sep, ver = part.partition("=")
        if not sep or name.strip() not in VERSIONED or not re.match(r"^\d+\.\d+", ver.strip()):
            raise ValueError(f"--expect-versions takes 'auto', 'installed', 'any' or a list like "
                             f"'torch=2.13,trl=1.16' (packages: {', '.join(VERSIONED)}); got {text!r}.")
        out[name.strip()] = ver.strip()
    return out


def major_minor(version: Any) -> str | None:
    m = re.match(r"^\s*(\d+)\.(\d+)", str(version))
    return f"{m.group(1)}.{m.group(2)}" if m else None


def _common_environment(record_sets: list[list[dict]]) -> tuple[Counter, dict[str, str]]:
    """(profiles counted once per notebook, the most common major.minor of each versioned package)."""
    profiles: Counter = Counter()
    per_package: dict[str, Counter] = {pkg: Counter() for pkg in VERSIONED}
    for recs in record_sets:
        if not recs:
            continue
        profiles.update({str(r.get("profile")) for r in recs})
        for pkg in VERSIONED:
            seen = {major_minor((r.get("versions") or {}).get(pkg)) for r in recs if isinstance(r.get("versions"), dict)}
            per_package[pkg].update(v for v in seen if v)
    return profiles, {pkg: c.most_common(1)[0][0] for pkg, c in per_package.items() if c}


def resolve_expectation(inspections: list[Inspection], options: GradeOptions) -> Expectation:
    """What the batch is held to (see the module); says where each part came from."""
    batch = [i.records for i in inspections if i.valid]
    seen, common = _common_environment(batch)
    parts = []
    profile = options.profile
    if profile == "auto":
        if options.reference_records:
            profile = _common_environment([options.reference_records])[0].most_common(1)[0][0]
            parts.append(f"profile {profile!r} from --reference")
        else:
            profile = "any"
            parts.append("profile not enforced (none given; the batch's profiles are listed)")
    else:
        parts.append(f"profile {profile!r} from --profile")
    wanted = options.expect_versions
    if wanted == "auto":
        if options.reference_records:
            wanted = _common_environment([options.reference_records])[1]
            parts.append("versions from --reference")
        else:
            wanted = common or None
            parts.append("versions most of the batch recorded" if common else "versions not enforced")
    elif wanted is None:
        parts.append("any versions")
    else:
        parts.append("versions from --expect-versions")
    return Expectation(profile=profile, versions=wanted, source="; ".join(parts), profiles_seen=dict(seen))


def environment_problems(records: list[dict], expect: Expectation) -> list[str]:
    """Sentences describing how the records' profile and versions differ from the expected ones."""
    out = []
    if expect.profile != "any":
        profiles = sorted({str(r.get("profile")) for r in records} - {expect.profile})
        if profiles:
            out.append(f"it ran in profile {', '.join(map(repr, profiles))}, but this grading expects "
                       f"{expect.profile!r} (set PROFILE = \"{expect.profile}\" in the parameters cell)")
    if expect.versions:
        seen: dict[str, set[str]] = {}
        for r in records:
            recorded = r.get("versions") if isinstance(r.get("versions"), dict) else {}
            for pkg in VERSIONED:
                if pkg in expect.versions:
                    seen.setdefault(pkg, set()).add(str(recorded.get(pkg, "not recorded")))
        for pkg, found in seen.items():
            want = major_minor(expect.versions[pkg])
            bad = sorted(v for v in found if major_minor(v) != want)
            if bad:
                out.append(f"it used {pkg} {', '.join(bad)}, but the course expects {pkg} {want}.x")
    return out


def _check_rows(insp: Inspection, expected: dict[str, dict], options: GradeOptions) -> list[CheckRow]:
    """The lab's expected checks, then (without a reference for the lab) the other checks the notebook recorded."""
    mine = last_by_name(insp.records, "check")
    extra = [] if options.reference.get(insp.lab) else [n for n in mine if n not in expected]
    specs = {**check_specs(insp.lab, [mine[n] for n in extra]), **expected}
    return [_check_row(insp, name, specs[name], mine.get(name)) for name in [*expected, *extra]]


def _check_row(insp: Inspection, name: str, spec: dict, record: dict | None) -> CheckRow:
    edited = name in insp.untrusted_checks
    if record is None:
        passed = None
    else:  # a recorded failure stands; a recorded pass stands unless the course's comparison refuses it
        passed = bool(record.get("passed")) and declared_pass(insp.lab, record)[0] is not False
    rec = record or {}
    listed = declared(insp.lab, name) is not None
    return CheckRow(name=name, points=spec["points"], required=spec["required"], passed=passed,
                    message=rec.get("message", ""), value=rec.get("value"), threshold=rec.get("threshold"),
                    direction=rec.get("direction"), demonstration=listed and is_demonstration(spec["points"]),
                    by_reference=decided_by_reference(insp, name), edited=edited, declared=listed)


# Problems whose own message already says why a notebook's checks are missing.
_EXPLAINS_MISSING_CHECKS = frozenset({"wrong_lab", "cell_error", "timeout"})


def _missing_records(insp: Inspection, checks: list[CheckRow]) -> Problem | None:
    if {p.code for p in insp.problems} & _EXPLAINS_MISSING_CHECKS:
        return None
    if not insp.records:
        return Problem("records_missing", (
            "The notebook ran but holds no checks or results of the lab. The cells that call "
            "record_check/record_result were deleted, or their outputs cleared; restore them from the "
            "original lab and run it again."))
    missing = [c.name for c in checks if c.passed is None]
    if not missing:
        return None
    return Problem("records_missing", (
        f"The check{'s' if len(missing) > 1 else ''} {', '.join(missing)} never ran in this notebook "
        "(they are in the lab, so a cell that records them was deleted or its output cleared)."))


def _scoring_problems(insp: Inspection, checks: list[CheckRow], expect: Expectation) -> list[Problem]:
    """What only the batch can tell about a notebook that ran: missing checks, environment, failed checks."""
    if not (insp.valid and insp.executed):
        return []
    found = [_missing_records(insp, checks)]
    env = environment_problems(insp.records, expect)
    if env:
        found.append(Problem("environment_mismatch", "The results are not comparable: " + "; ".join(env)
                             + ". Use the course's setup cell (it installs the pinned versions)."))
    failed = [c for c in checks if c.passed is False]
    if failed:
        found.append(Problem("checks_failed", f"{len(failed)} of {len(checks)} checks failed."))
    return [p for p in found if p is not None]


def score(insp: Inspection, expected: dict[str, dict], options: GradeOptions, expect: Expectation) -> Grade:
    """Turn an inspection into a grade, given the lab's expected checks ``{name: {points, required}}``."""
    checks = _check_rows(insp, expected, options)
    problems = list(insp.problems) + _scoring_problems(insp, checks, expect)
    results = {name: r.get("value_text", r.get("value")) for name, r in last_by_name(insp.records, "result").items()}
    grade = Grade(file=str(insp.path), submission_id=insp.submission_id, lab=insp.lab,
                  status=most_severe(p.code for p in problems), points_earned=0.0,
                  points_possible=sum(c.points for c in checks),
                  checks_passed=sum(1 for c in checks if c.passed), checks_total=len(checks),
                  key_results="; ".join(f"{k}={fmt(v)}" for k, v in results.items()), problems=problems,
                  checks=checks, results=results, required_failed=[c.name for c in checks if c.required and not c.passed],
                  renamed=list(insp.renamed), unverifiable=list(insp.unverifiable),
                  cell_changes=list(insp.cell_changes))
    if grade.keeps_points:
        grade.points_earned = sum(c.points for c in checks if c.earns)
    return grade


def _settle(g: Grade) -> None:
    """``g``'s status again from all its problems (the precedence of statuses), and no points if it earns none."""
    g.status = most_severe(p.code for p in g.problems)
    if not g.keeps_points:
        g.points_earned = 0.0


def _supersede_older_uploads(group: list[Grade], sid: str, lab: str) -> list[Grade]:
    """Of one id's Canvas downloads for one lab, grade the newest upload only (highest attachment id): the older
    ones become ``superseded``, naming it, and the newest says what it replaced. The files still graded."""
    uploads = sorted(((c.attachment, g) for g in group if (c := canvas_name(Path(g.file).name))),
                     key=lambda pair: pair[0])
    if len(uploads) < 2:
        return group
    newest = uploads[-1][1]
    older = [g for _, g in uploads[:-1]]
    for g in older:
        g.problems.insert(0, Problem("superseded", (
            f"{Path(g.file).name} is an older Canvas upload of {sid!r} for lab {lab}: the newer upload "
            f"{Path(newest.file).name} is graded instead.")))
        _settle(g)
    newest.renamed.append(f"`{Path(newest.file).name}` is the newest of {len(uploads)} Canvas uploads of `{sid}` "
                          f"for lab {lab}, so it is the one graded (older, superseded: "
                          f"{', '.join(Path(g.file).name for g in older)})")
    return [g for g in group if all(g is not o for o in older)]


def mark_duplicates(grades: list[Grade]) -> None:
    """Settle several files of the same id for the same lab: of Canvas downloads only the newest upload is graded
    (the older ones are ``superseded``); two or more files left get the status ``duplicate``, every one of them."""
    groups: dict[tuple[str, str], list[Grade]] = {}
    for g in grades:
        if g.status != "invalid_file" and g.lab:
            groups.setdefault((g.submission_id, g.lab), []).append(g)
    for (sid, lab), group in groups.items():
        group = _supersede_older_uploads(group, sid, lab) if len(group) > 1 else group
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
            _settle(g)
