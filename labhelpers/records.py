"""Result records: the contract between the notebooks, the tests and the grader.

Two calls, used by every lab::

    record_result("bleu_after", 41.3)                       # a named metric
    record_check("bleu_improves", bleu_after >= bleu_before + 20,
                 value=bleu_after - bleu_before, threshold=20,
                 message="BLEU rises by at least 20 points after instruction tuning")

Each shows one readable line (a failed check in red, without stopping the notebook) and emits a display
output of MIME type :data:`MIME` whose JSON holds ``lab``, ``name``, ``kind`` (``"result"``/``"check"``),
``value``, ``passed``, ``points``, ``required``, ``profile`` and the package versions. :func:`read_records`
reads them back out of an executed notebook; the tests, ``labhelpers run`` and the grader all use it.
"""

from __future__ import annotations

import functools
import html
import json
import math
from pathlib import Path
from typing import Any

MIME = "application/vnd.labhelpers.record+json"
SCHEMA_VERSION = 1

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


def _jsonable(value: Any) -> Any:
    if hasattr(value, "item") and getattr(value, "ndim", 0) == 0:
        value = value.item()
    if isinstance(value, float):
        return None if math.isnan(value) else round(value, 6)
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (bool, int, str)) or value is None:
        return value
    return str(value)


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
    return {"schema": SCHEMA_VERSION, "lab": lab or _context["lab"], "name": name, "kind": kind,
            "profile": _context["profile"], "versions": versions()}


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, dict):
        return ", ".join(f"{k}={_fmt(v)}" for k, v in value.items())
    return str(value)


def record_result(name: str, value: Any, *, description: str = "", lab: str | None = None) -> None:
    """Record a named result (a number, or a small dict such as ``{"before": .., "after": ..}``).

    Returns nothing, so that a call at the end of a cell prints no dict; :func:`recorded` lists the records.
    """
    record = _base(name, "result", lab)
    record.update(value=_jsonable(value), description=description)
    _log.append(record)
    text = f"📊 {name} = {_fmt(record['value'])}" + (f"  ({description})" if description else "")
    _emit(record, text, "#1f4e79")


def record_check(name: str, passed: bool, *, value: Any = None, threshold: Any = None, message: str = "",
                 points: float = 1, required: bool = False, lab: str | None = None) -> None:
    """Record a named check. A failed check is shown in red and recorded; it never raises.

    ``required=True`` marks a check without which the grader gives the notebook no points.
    """
    record = _base(name, "check", lab)
    record.update(passed=bool(passed), value=_jsonable(value), threshold=_jsonable(threshold),
                  message=message, points=points, required=bool(required))
    _log.append(record)
    mark = "✅ PASS" if passed else "❌ FAIL"
    detail = ""
    if value is not None:
        detail = f"  [value {_fmt(record['value'])}" + (f", threshold {_fmt(record['threshold'])}]"
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
        print(f"{r['kind']:<7} {r['name']:<32} {_fmt(r['value'])[:28]:<28} {passed}")
    print(f"\n{sum(r['passed'] for r in checks)}/{len(checks)} checks passed")


def read_records(notebook: dict | str | Path) -> list[dict]:
    """All records found in the outputs of an executed notebook (a path or a loaded nbformat dict)."""
    nb = notebook
    if not isinstance(nb, dict):
        nb = json.loads(Path(notebook).read_text(encoding="utf-8"))
    found = []
    for cell in nb.get("cells", []):
        for output in cell.get("outputs", []) if cell.get("cell_type") == "code" else []:
            data = output.get("data", {}) if isinstance(output, dict) else {}
            if MIME in data:
                payload = data[MIME]
                found.append(json.loads(payload) if isinstance(payload, str) else payload)
    return found
