"""Reading one notebook: its records, how it was run, and whether its records still fit its code.

Nothing here needs the other notebooks of the batch (that is :mod:`.score`). The consistency checks catch
accidents and casual edits; a determined student can forge any record, so only ``--rerun`` verifies.
"""

from __future__ import annotations

import ast
import functools
import json
import math
from collections import Counter
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path

from labhelpers.course.grading.discover import Submission, identify, load
from labhelpers.course.grading.exercises import EXERCISES
from labhelpers.course.grading.tamper import tampering
from labhelpers.course.grading.transplant import compare as compare_with_course
from labhelpers.course.grading.transplant import course
from labhelpers.course.points import FLAG, QUIZ, declared
from labhelpers.course.student import BEGIN, END
from labhelpers.records import DIRECTIONS, HISTORY_DIGEST_CHARS, MIME, compare, records_by_cell, source_digest


@dataclass
class Problem:
    code: str  # a key of STATUSES
    message: str  # one or two sentences for the learner


@dataclass
class Inspection:
    """What one notebook file holds, before scoring (scoring needs every notebook of the batch)."""

    submission: Submission
    lab: str  # claimed lab, else the lab of the records, else ""
    problems: list[Problem] = field(default_factory=list)
    records: list[dict] = field(default_factory=list)  # only those of `lab`
    other_labs: list[str] = field(default_factory=list)
    valid: bool = True
    executed: bool = True
    untrusted_checks: set[str] = field(default_factory=set)  # recorded pass disagrees with the value
    reference_checks: list[str] = field(default_factory=list)  # check patterns decided by the reference
    unverifiable: list[str] = field(default_factory=list)  # records without direction or code digests
    cell_changes: list[str] = field(default_factory=list)  # cells added to or missing from the student version

    @property
    def path(self) -> Path:
        return self.submission.path

    @property
    def submission_id(self) -> str:
        return self.submission.submission_id

    @property
    def claimed(self) -> bool:
        return self.submission.lab is not None

    @property
    def renamed(self) -> list[str]:
        return list(self.submission.renamed)


def _source(cell: dict) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else str(src)


def _first_line(cell: dict) -> str:
    for line in _source(cell).splitlines():
        if line.strip():
            return line.strip()[:80]
    return ""


def _labhelpers_metadata(nb: dict | None) -> dict:
    meta = nb.get("metadata") if nb else {}
    meta = meta.get("labhelpers", {}) if isinstance(meta, dict) else {}
    return meta if isinstance(meta, dict) else {}


def inspect_notebook(path: Path, submission: Submission | None = None) -> Inspection:
    """Read one file and collect its problems (no scoring).

    ``submission``: whose file it is when ``path`` is a copy (a rerun's); by default the file names itself.
    """
    path = Path(path)
    nb, why = load(path)
    submission = submission or identify(path, _labhelpers_metadata(nb))
    insp = Inspection(submission=submission, lab=submission.lab or "")
    if nb is None:
        insp.valid = insp.executed = False
        insp.problems.append(Problem("invalid_file", why))
        return insp
    try:
        _inspect_cells(insp, [c for c in nb["cells"] if isinstance(c, dict)])
    except (TypeError, AttributeError, ValueError, KeyError) as err:  # a hand-damaged structure
        insp.valid = insp.executed = False
        insp.problems = [Problem("invalid_file", (
            f"The notebook's structure is damaged ({type(err).__name__}: {err}); it was edited by hand or "
            "by a broken tool. Download the notebook again from Jupyter or Colab and submit that file."))]
    return insp


def _inspect_cells(insp: Inspection, cells: list[dict]) -> None:
    located = _located_records(insp, cells)
    if located is None:
        return
    mine = _keep_the_labs_records(insp, located)
    code = [(i, c) for i, c in enumerate(cells) if c.get("cell_type") == "code" and _source(c).strip()]
    if not any(c.get("execution_count") is not None or c.get("outputs") for _, c in code):
        insp.executed = False
        insp.problems.append(Problem("not_executed", (
            "The notebook has no outputs: it was saved without being run, or its outputs were cleared. "
            "Run it (Kernel > Restart Kernel and Run All Cells, or Runtime > Run all on Colab), wait until "
            "the last cell has finished, save, and submit that file.")))
        return
    first_error = _cell_error(insp, code)
    _execution_order(insp, [(i, c) for i, c in code if first_error is None or i <= first_error])
    _check_other_labs(insp)
    _check_consistency(insp)
    _check_code_digests(insp, cells, mine)
    _check_reference_use(insp, cells)
    _check_tampering(insp, cells)
    _check_against_course(insp, cells)


def _located_records(insp: Inspection, cells: list[dict]) -> list[tuple[int, dict]] | None:
    """(cell index, record) of every record; None, with the problem noted, when a record output is damaged."""
    try:
        return [(i, r) for i, r in records_by_cell({"cells": cells}) if isinstance(r, dict)]
    except (json.JSONDecodeError, TypeError, AttributeError):
        insp.valid = insp.executed = False
        insp.problems.append(Problem("invalid_file", f"An output of type {MIME} is damaged (not valid JSON); "
                                                     "the notebook was edited by hand or cut off."))
        return None


def _keep_the_labs_records(insp: Inspection, located: list[tuple[int, dict]]) -> list[tuple[int, dict]]:
    """Settle the lab (the claimed one, else the one most records name) and keep only its records."""
    labs = Counter(str(r.get("lab")) for _, r in located)
    if not insp.lab and labs:
        insp.lab = labs.most_common(1)[0][0]
    mine = [(i, r) for i, r in located if str(r.get("lab")) == insp.lab]
    insp.records = [r for _, r in mine]
    insp.other_labs = sorted(lab for lab in labs if lab != insp.lab)
    return mine


def _check_other_labs(insp: Inspection) -> None:
    if not insp.other_labs:
        return
    claim = f"is marked as lab {insp.lab}" if insp.claimed else f"mostly holds records of lab {insp.lab}"
    insp.problems.append(Problem("wrong_lab", (
        f"This notebook {claim}, but it holds records of lab {', '.join(insp.other_labs)}. "
        "Was the wrong notebook uploaded, or the file misnamed?")))


def _cell_error(insp: Inspection, code: list[tuple[int, dict]]) -> int | None:
    """Report the first cell that raised; returns its index."""
    for i, c in code:
        errors = [o for o in c.get("outputs", []) if isinstance(o, dict) and o.get("output_type") == "error"]
        if errors:
            err = errors[0]
            evalue = str(err.get("evalue", "")).strip().splitlines()
            insp.problems.append(Problem("cell_error", (
                f"Cell {i + 1} (`{_first_line(c)}`) raised {err.get('ename', 'an error')}"
                + (f": {evalue[0][:200]}" if evalue else "") + ". Cells after an error do not run, so their "
                "checks are missing. Fix that cell, then run the whole notebook again from the top.")))
            return i
    return None


def _execution_order(insp: Inspection, considered: list[tuple[int, dict]]) -> None:
    """Report cells that never ran or ran in another order (up to the first error: later ones stay unrun)."""
    never = [i + 1 for i, c in considered if c.get("execution_count") is None]
    backwards = []
    last = None
    for i, c in considered:
        n = c.get("execution_count")
        if n is None:
            continue
        if last is not None and n <= last[1]:
            backwards.append((i + 1, n, last))
        last = (i + 1, n)
    if not (never or backwards):
        return
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


def _real(x) -> float | None:
    return float(x) if isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) else None


def _too_close(v: float, edge: float) -> bool:
    """Whether ``v`` lies within the records' rounding (6 significant figures) of ``edge``: too close to tell."""
    return math.isclose(v, edge, rel_tol=1e-5)


def compare_declared(value, direction: str, threshold, slack: float = 0.0) -> bool | None:
    """``value direction threshold`` with ``slack`` of tolerance; None when it cannot be told from the numbers."""
    if direction == "==" and isinstance(value, (str, bool)) and type(value) is type(threshold):
        return value == threshold
    v, t = _real(value), _real(threshold)
    if v is None or t is None or direction not in DIRECTIONS:
        return None
    if direction == "==":
        gap = abs(v - t)
        if gap == 0 or (slack and gap < slack and not _too_close(gap, slack)):
            return True
        return None if _too_close(v, t) or (slack and _too_close(gap, slack)) else False
    edge = t + slack if direction in ("<", "<=") else t - slack
    if v == edge:
        return None if direction in ("<", ">") else True
    return None if _too_close(v, edge) else compare(v, direction, edge)


def recomputed_pass(record: dict) -> bool | None:
    """A check's outcome recomputed from its value, threshold and its own recorded direction; None when it cannot be."""
    return compare_declared(record.get("value"), record.get("direction"), record.get("threshold"))


def _quiz_pass(record: dict) -> bool | None:
    """A quiz check decided by the quiz module from the recorded answer (None: the record cannot be decided)."""
    from labhelpers import quiz

    name = str(record.get("name", "")).removeprefix("quiz_")
    value = record.get("value")
    if value is None:
        return False
    try:
        return bool(quiz.is_right(name, value))
    except ValueError:  # a question about the run: its measured answer is the record's threshold
        try:
            return bool(quiz.is_right(name, value, correct=record.get("threshold")))
        except ValueError:
            return False


def declared_pass(lab: str, record: dict) -> tuple[bool | None, str | None]:
    """(the outcome the course's declaration gives this record, how the record departs from the declaration).

    The outcome is None when the numbers cannot tell (a pass/fail check, a value too close to its threshold);
    the departure is None when the record's threshold is the declared one.
    """
    check = declared(lab, str(record.get("name")))
    if check is None:  # not declared: the record's own direction, as recorded
        return recomputed_pass(record), None
    if check.direction == FLAG:
        return None, None
    if check.direction == QUIZ:
        return _quiz_pass(record), None
    threshold, departs = record.get("threshold"), None
    fixed = check.fixed_threshold
    if fixed is not None:
        recorded = _real(threshold)
        if recorded is None or not math.isclose(recorded, fixed, rel_tol=1e-5, abs_tol=1e-12):
            departs = f"threshold {threshold!r} where the course uses {fixed:g}"
        threshold = fixed
    return compare_declared(record.get("value"), check.direction, threshold, check.slack), departs


def _check_consistency(insp: Inspection) -> None:
    """Checks whose record claims a pass that the course's declaration refuses, or carries another threshold."""
    wrong = []
    for r in insp.records:
        if r.get("kind") != "check":
            continue
        if "direction" not in r and declared(insp.lab, str(r.get("name"))) is None:
            insp.unverifiable.append(f"{r.get('name')}: no direction (a record made before schema 2)")
            continue
        outcome, departs = declared_pass(insp.lab, r)
        if departs or (outcome is False and r.get("passed")):
            wrong.append(f"{r.get('name')} says {'passed' if r.get('passed') else 'failed'} with value "
                         f"{r.get('value')!r}" + (f" and {departs}" if departs else
                                                  ", which the course's comparison fails"))
            insp.untrusted_checks.add(str(r.get("name")))
    if wrong:
        insp.problems.append(Problem("check_inconsistent", (
            f"{len(wrong)} check record(s) do not match how the course decides them ({'; '.join(wrong[:4])}). "
            "These checks are scored from their values by the course's comparison. Run the notebook as given, "
            "without changing how checks are recorded, and submit it unedited.")))


def _check_code_digests(insp: Inspection, cells: list[dict], located: list[tuple[int, dict]]) -> None:
    """Each record's digests against the cell that shows it and the cells that ran before it."""
    changed: dict[int, str] = {}
    full = {i: source_digest(_source(c)) for i, c in enumerate(cells) if c.get("cell_type") == "code"}
    short = {i: d[:HISTORY_DIGEST_CHARS] for i, d in full.items()}
    for index, r in located:
        code = r.get("code")
        if not isinstance(code, dict):
            insp.unverifiable.append(f"{r.get('name')}: no code digest (made outside a kernel or before schema 2)")
            continue
        count, history = code.get("count"), code.get("history") or []
        cell = cells[index]
        if code.get("cell") != full.get(index) or cell.get("execution_count") != count:
            changed.setdefault(index, f"cell {index + 1} (`{_first_line(cell)}`), which shows {r.get('name')}")
        for j, before in enumerate(cells[:index]):
            n = before.get("execution_count")
            if before.get("cell_type") != "code" or not isinstance(n, int) or not 0 < n <= len(history):
                continue
            if not isinstance(count, int) or n >= count:
                continue
            if history[n - 1] != short[j]:
                changed.setdefault(j, f"cell {j + 1} (`{_first_line(before)}`)")
    if changed:
        where = "; ".join(changed[k] for k in sorted(changed)[:4]) + (" ..." if len(changed) > 4 else "")
        insp.problems.append(Problem("code_mismatch", (
            f"The code in {where} is not the code that ran: it was changed after the notebook was executed, so "
            "the outputs below it come from other code. Run the notebook again from the top and submit it.")))


def _check_tampering(insp: Inspection, cells: list[dict]) -> None:
    found = tampering([(i, _source(c)) for i, c in enumerate(cells) if c.get("cell_type") == "code"])
    if not found:
        return
    where = "; ".join(f"cell {f.cell + 1} (`{_first_line(cells[f.cell])}`) {f.what}" for f in found[:4])
    more = f" (and {len(found) - 4} more)" if len(found) > 4 else ""
    insp.problems.append(Problem("tampered", (
        f"Code in this notebook changes how results are recorded: {where}{more}. Records made after such a "
        "change cannot be trusted, so the notebook earns no points until an instructor has looked at it. The labs "
        "never need this: remove that code, restart the kernel, run every cell and submit again.")))


def _check_against_course(insp: Inspection, cells: list[dict]) -> None:
    """Cells that are not in the student version, and exercises that hold the course's own solutions."""
    known = course(insp.lab) if insp.lab else None
    if known is None:
        if insp.lab:
            insp.cell_changes.append(f"not compared with the course's notebook of {insp.lab} (none found: set "
                                     "LABS_DIR to the folder of the solution notebooks)")
        return
    found = compare_with_course(known, cells)
    if found.added:
        insp.cell_changes.append(f"added (not in the student version): {', '.join(found.added[:8])}"
                                 + (" ..." if len(found.added) > 8 else ""))
    if found.missing:
        insp.cell_changes.append(f"missing (in the student version, not here): {', '.join(found.missing[:8])}"
                                 + (" ..." if len(found.missing) > 8 else ""))
    if found.copied:
        insp.problems.append(Problem("instructor_solution", (
            "Every exercise here holds the course's own solution, line for line: this looks like the "
            "instructor's notebook rather than your work. An instructor will look at it. Submit the student "
            "version with your own solutions.")))


# --------------------------------------------------------------------------------------------------
# Exercise solutions that use the library's reference
# --------------------------------------------------------------------------------------------------
def _solution_ranges(source: str) -> list[tuple[int, int]]:
    lines = source.split("\n")
    ranges, start = [], None
    for n, line in enumerate(lines, 1):
        if line.strip() == BEGIN:
            start = n
        elif line.strip() == END and start is not None:
            ranges.append((start, n))
            start = None
    return ranges


@functools.lru_cache(maxsize=4096)
def _parse(source: str) -> ast.Module | None:
    """The cell's syntax tree (IPython magics and shell lines blanked); cached: a class shares most cells."""
    code = "\n".join("" if line.lstrip().startswith(("%", "!")) else line for line in source.split("\n"))
    try:
        return ast.parse(code)
    except SyntaxError:
        return None


@functools.lru_cache(maxsize=4096)
def _cell_bindings(source: str) -> tuple[dict[str, str], dict[str, str], frozenset[str]]:
    """(name -> dotted object it imports, name -> dotted module it stands for, names it defines) of one cell."""
    objects: dict[str, str] = {}
    modules: dict[str, str] = {}
    defined = set()
    for node in ast.walk(_parse(source) or ast.Module(body=[], type_ignores=[])):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname:
                    modules[alias.asname] = alias.name
                else:
                    top = alias.name.split(".")[0]
                    modules[top] = top
        elif isinstance(node, ast.ImportFrom) and node.module:
            for alias in node.names:
                dotted = f"{node.module}.{alias.name}"
                objects[alias.asname or alias.name] = dotted
                modules.setdefault(alias.asname or alias.name, dotted)
        elif isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            defined.add(node.name)
    return objects, modules, frozenset(defined)


def _dotted(node: ast.AST, modules: dict[str, str]) -> str | None:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name) and node.id in modules:
        return ".".join([modules[node.id], *reversed(parts)])
    return None


def _uses(node: ast.AST, refs: tuple[str, ...], objects: dict[str, str], modules: dict[str, str],
          own: set[str]) -> str | None:
    """The reference ``node`` names, imports or calls, if any."""
    ref_modules = {r.rsplit(".", 1)[0] for r in refs}
    if isinstance(node, ast.ImportFrom) and node.module:
        for alias in node.names:
            if f"{node.module}.{alias.name}" in refs or (node.module in ref_modules and alias.name == "*"):
                return f"{node.module}.{alias.name}"
    if isinstance(node, ast.Import):
        for alias in node.names:
            if alias.name in ref_modules:
                return alias.name
    if isinstance(node, ast.Name) and objects.get(node.id) in refs and node.id not in own:
        return objects[node.id]
    if isinstance(node, ast.Attribute):
        dotted = _dotted(node, modules)
        if dotted in refs:
            return dotted
    return None


def _solutions_using_references(source: str, table: dict, objects: dict[str, str], modules: dict[str, str],
                                 own: set[str]) -> list[tuple[str, list[str]]]:
    """(exercise function, references its solution block uses) for each such block in one cell."""
    ranges = _solution_ranges(source) if BEGIN in source else []
    tree = _parse(source) if ranges else None
    found = []
    for func in (n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)) if tree else ():
        exercise = table.get(func.name)
        for start, end in ranges if exercise else ():
            if func.lineno <= start <= (func.end_lineno or start):
                used = {_uses(n, exercise.references, objects, modules, own) for n in ast.walk(func)
                        if start < getattr(n, "lineno", 0) < end} - {None}
                if used:
                    found.append((func.name, sorted(used)))
    return found


def _check_reference_use(insp: Inspection, cells: list[dict]) -> None:
    table = EXERCISES.get(insp.lab)
    if not table:
        return
    sources = [_source(c) for c in cells if c.get("cell_type") == "code"]
    objects: dict[str, str] = {}
    modules: dict[str, str] = {}
    own: set[str] = set()
    for source in sources:
        cell_objects, cell_modules, defined = _cell_bindings(source)
        objects.update(cell_objects)
        modules.update(cell_modules)
        own |= defined
    # the exercise's own name bound to the reference: `from labhelpers.losses import bradley_terry_loss as bt_loss`
    found = [(name, [objects[name]]) for name, ex in table.items() if objects.get(name) in ex.references]
    for name, _ in found:
        insp.reference_checks.extend(table[name].checks)
    for source in sources:
        for name, used in _solutions_using_references(source, table, objects, modules, own):
            found.append((name, used))
            insp.reference_checks.extend(table[name].checks)
    if found:
        what = "; ".join(f"`{name}` uses {', '.join(u)}" for name, u in found)
        insp.problems.append(Problem("reference_used", (
            f"The solution of an exercise calls the library's own answer ({what}). The exercise asks you to write "
            "it yourself, so its checks earn no points; replace the call with your own code.")))


def decided_by_reference(insp: Inspection, check: str) -> bool:
    return any(fnmatchcase(check, pattern) for pattern in insp.reference_checks)
