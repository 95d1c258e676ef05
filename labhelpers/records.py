"""Result and check records: the contract between the notebooks, the tests and the grader.

Two calls, used by every lab::

    record_result("bleu_after", 41.3)                       # a named metric
    record_check("bleu_improves", bleu_after >= bleu_before + 20,
                 value=bleu_after - bleu_before, threshold=20,
                 message="BLEU rises by at least 20 points after instruction tuning")

Each shows one readable line (a failed check in red, without stopping the notebook) and emits a display
output of MIME type :data:`MIME` whose JSON holds ``lab``, ``name``, ``kind`` (``"result"``/``"check"``),
``value``, ``passed``, ``threshold``, ``direction``, ``required``, ``profile``, the package
versions and ``code`` (digests of the code that produced it). :func:`read_records` reads them back out of an
executed notebook; the tests, ``labhelpers run`` and the grader all use it.

* **Values** keep 6 significant figures (``2.4e-7`` stays ``2.4e-07``), tensors and arrays become lists, and a
  non-finite number (NaN, ±inf) becomes JSON ``null``, with the original kept as text in ``value_text``.
* **Direction**: the comparison of ``value`` with ``threshold`` that passes (``">="``, ``">"``, ``"<="``,
  ``"<"``, ``"=="``). Give it as ``direction=``, or it is inferred as the comparison that the recorded
  ``passed``, ``value`` and ``threshold`` satisfy, so that the grader can recompute ``passed`` and notice a
  record edited afterwards. ``None`` when value or threshold is not a single number.
* **Points** are not in a record: what a check is worth is the course's decision, made by its grader from
  one table (schema 3; records of schema 2 carry a ``points`` field, which the grader ignores).
* **Code**: in a kernel, ``{"count": n, "cell": digest of cell n's source, "history": [digest of input 1, ...,
  input n - 1]}``, from IPython's input history (``In``): every input the kernel ran before, by execution
  count. The grader recomputes the digests from the notebook's cells (see :func:`source_digest`).
"""

from __future__ import annotations

import functools
import hashlib
import html
import json
import math
import numbers
from pathlib import Path
from typing import Any

MIME = "application/vnd.labhelpers.record+json"
SCHEMA_VERSION = 3  # 3: no points (the grader decides them)
SIGNIFICANT_FIGURES = 6
DIRECTIONS = (">=", ">", "<=", "<", "==")
HISTORY_DIGEST_CHARS = 12

_context: dict[str, str | None] = {"lab": None, "profile": None}
_log: list[dict] = []


def set_context(lab: str | None = None, profile: str | None = None) -> None:
    """Set the lab and profile stamped on later records (``lab_config`` calls this)."""
    if lab is not None:
        _context["lab"] = lab
    if profile is not None:
        _context["profile"] = profile


@functools.lru_cache(maxsize=1)
def versions() -> dict[str, str]:
    """Versions of the packages whose behaviour the labs' results depend on."""
    from importlib import metadata

    out = {}
    for pkg in ("labhelpers", "torch", "transformers", "trl", "datasets"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = "not installed"
    return out


def round_significant(x: float, figures: int = SIGNIFICANT_FIGURES) -> float:
    """``x`` rounded to ``figures`` significant figures (not decimals: 2.4e-7 stays 2.4e-7)."""
    return float(f"{x:.{figures}g}") if x else 0.0


def _plain(value: Any) -> Any:
    """Tensors, arrays and NumPy scalars as Python numbers or (nested) lists."""
    if hasattr(value, "detach"):  # a torch tensor, on any device
        value = value.detach().cpu()
    if hasattr(value, "tolist") and not isinstance(value, (str, bytes)):
        return value.tolist()
    return value


def _jsonable(value: Any) -> tuple[Any, bool]:
    """(a JSON-safe copy of ``value``, whether a non-finite number was replaced by None on the way)."""
    value = _plain(value)
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value, False
    if isinstance(value, numbers.Integral):
        return int(value), False
    if isinstance(value, numbers.Real):
        value = float(value)
        return (round_significant(value), False) if math.isfinite(value) else (None, True)
    if isinstance(value, dict):
        pairs = {str(k): _jsonable(v) for k, v in value.items()}
        return {k: v for k, (v, _) in pairs.items()}, any(bad for _, bad in pairs.values())
    if isinstance(value, (list, tuple)):
        items = [_jsonable(v) for v in value]
        return [v for v, _ in items], any(bad for _, bad in items)
    return str(value), False


def _number(value: Any) -> float | None:
    """``value`` as a float when it is one real number (not a bool), else None."""
    value = _plain(value)
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return float(value)
    return None


def compare(value: float, direction: str, threshold: float) -> bool:
    """Whether ``value direction threshold`` holds (``direction`` one of :data:`DIRECTIONS`)."""
    return {">=": value >= threshold, ">": value > threshold, "<=": value <= threshold, "<": value < threshold,
            "==": value == threshold}[direction]


def infer_direction(passed: bool, value: Any, threshold: Any) -> str | None:
    """The comparison that a check's outcome implies: which side of ``threshold`` passes.

    A passed check with the value above the threshold passes on ``">="`` (below: ``"<="``, equal: ``"=="``);
    a failed one with the value below passes on ``">="`` (above: ``"<="``, equal: ``">"``). Every choice is
    consistent with the record as made; what it catches is a later edit of ``passed``, ``value`` or
    ``threshold``. Two strings (a quiz's answer and the right one) or two booleans compare with ``"=="`` when
    the outcome is their equality. None when value and threshold are not both one finite number.
    """
    if isinstance(value, (str, bool)) and type(value) is type(threshold):  # a quiz answer, a flag
        return "==" if passed == (value == threshold) else None
    v, t = _number(value), _number(threshold)
    if v is None or t is None or not (math.isfinite(v) and math.isfinite(t)):
        return None
    if v == t:
        return "==" if passed else ">"
    return (">=" if v > t else "<=") if passed else ("<=" if v > t else ">=")


def source_digest(source: str, chars: int | None = None) -> str:
    """SHA-256 of a cell's source, line endings and trailing blanks normalised (the kernel and the grader agree)."""
    text = source.replace("\r\n", "\n").rstrip()
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    return digest[:chars] if chars else digest


def _code_digests() -> dict | None:
    """Digests of the running cell and of every input before it, from IPython's history; None outside a kernel."""
    try:
        from IPython import get_ipython

        shell = get_ipython()
    except ImportError:
        return None
    history = getattr(getattr(shell, "history_manager", None), "input_hist_raw", None)
    if not history or len(history) < 2:
        return None
    count = len(history) - 1  # the running cell is stored before it runs, at its execution count
    return {"count": count, "cell": source_digest(history[count]),
            "history": [source_digest(src, HISTORY_DIGEST_CHARS) for src in history[1:count]]}


def _emit(record: dict, line: str, colour: str) -> None:
    try:
        from IPython import get_ipython
        from IPython.display import display

        in_kernel = get_ipython() is not None
    except ImportError:
        in_kernel = False
    if in_kernel:
        bundle = {
            MIME: record,
            "text/plain": line,
            "text/html": f'<div style="font-family:monospace;color:{colour}">{html.escape(line)}</div>',
        }
        display(bundle, raw=True)
    else:
        print(line)


def _base(name: str, kind: str, lab: str | None) -> dict:
    if not name or not isinstance(name, str):
        raise ValueError(f"A record needs a non-empty string name, got {name!r}.")
    record = {"schema": SCHEMA_VERSION, "lab": lab or _context["lab"], "name": name, "kind": kind,
              "profile": _context["profile"], "versions": versions()}
    code = _code_digests()
    if code:
        record["code"] = code
    return record


def _put(record: dict, field: str, value: Any) -> None:
    """Store ``value`` JSON-safe under ``field``; a non-finite number inside also keeps its text."""
    record[field], replaced = _jsonable(value)
    if replaced:
        record[f"{field}_text"] = _fmt(value)


def _fmt(value: Any) -> str:
    value = _plain(value)
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, dict):
        return ", ".join(f"{k}={_fmt(v)}" for k, v in value.items())
    if isinstance(value, list):
        return "[" + ", ".join(_fmt(v) for v in value[:8]) + (", ..." if len(value) > 8 else "") + "]"
    return str(value)


def record_result(name: str, value: Any, *, description: str = "", lab: str | None = None) -> None:
    """Record a named result (a number, or a small dict such as ``{"before": .., "after": ..}``).

    Returns nothing, so that a call at the end of a cell prints no dict; :func:`recorded` lists the records.
    """
    record = _base(name, "result", lab)
    _put(record, "value", value)
    record["description"] = description
    _log.append(record)
    shown = _fmt(value)
    text = f"📊 {name} = {shown}" + (f"  ({description})" if description else "")
    _emit(record, text, "#1f4e79")


def record_check(name: str, passed: bool, *, value: Any = None, threshold: Any = None, message: str = "",
                 required: bool = False, direction: str | None = None, lab: str | None = None,
                 points: float | None = None) -> None:
    """Record a named check. A failed check is shown in red and recorded; it never raises.

    ``points`` is ignored, and not recorded: the grader's table decides them. It is still accepted because
    learners' notebooks made from the labs before that (and the grader's reruns of them) pass it.
    ``direction``: the comparison of ``value`` with ``threshold`` that passes; inferred when not given (see the module).
    ``required=True`` marks a check without which the grader gives the notebook no points.
    """
    if direction is not None and direction not in DIRECTIONS:
        raise ValueError(f"record_check({name!r}): direction must be one of {', '.join(DIRECTIONS)}; "
                         f"got {direction!r}.")
    record = _base(name, "check", lab)
    record["passed"] = bool(passed)
    _put(record, "value", value)
    _put(record, "threshold", threshold)
    # inferred from the stored (rounded) numbers: the ones the grader recomputes the outcome from
    record.update(direction=direction or infer_direction(bool(passed), record["value"], record["threshold"]),
                  message=message, required=bool(required))
    _log.append(record)
    mark = "✅ PASS" if passed else "❌ FAIL"
    detail = ""
    if value is not None:
        detail = f"  [value {_fmt(value)}" + (f", threshold {_fmt(threshold)}]"
                                                       if threshold is not None else "]")
    _emit(record, f"{mark} {name}: {message}{detail}", "#1b7f3b" if passed else "#c00000")


def recorded(lab: str | None = None) -> list[dict]:
    """The records made in this kernel so far (optionally of one lab)."""
    return [r for r in _log if lab is None or r["lab"] == lab]


def show_summary(lab: str | None = None) -> None:
    """Print every record of this kernel as a table: the last cell of each lab calls it."""
    rows = recorded(lab or _context["lab"])
    checks = [r for r in rows if r["kind"] == "check"]
    print(f"{'kind':<7} {'name':<32} {'value':<28} passed")
    for r in rows:
        passed = "" if r["kind"] == "result" else ("yes" if r["passed"] else "NO")
        print(f"{r['kind']:<7} {r['name']:<32} {r.get('value_text', _fmt(r['value']))[:28]:<28} {passed}")
    print(f"\n{sum(r['passed'] for r in checks)}/{len(checks)} checks passed")


def read_records(notebook: dict | str | Path) -> list[dict]:
    """All records found in the outputs of an executed notebook (a path or a loaded nbformat dict)."""
    nb = notebook
    if not isinstance(nb, dict):
        nb = json.loads(Path(notebook).read_text(encoding="utf-8"))
    return [record for _, record in records_by_cell(nb)]


def records_by_cell(nb: dict) -> list[tuple[int, dict]]:
    """``(index of the cell in nb["cells"], record)`` for every record in an executed notebook's outputs."""
    found = []
    for index, cell in enumerate(nb.get("cells", [])):
        for output in cell.get("outputs", []) if cell.get("cell_type") == "code" else []:
            data = output.get("data", {}) if isinstance(output, dict) else {}
            if isinstance(data, dict) and MIME in data:
                payload = data[MIME]
                found.append((index, json.loads(payload) if isinstance(payload, str) else payload))
    return found
