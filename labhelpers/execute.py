"""Execute lab notebooks headless with papermill and summarise their records.

Used by ``labhelpers run``, the tests and the grader's ``--rerun``.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .config import resolve_lab
from .records import read_records


def labs_dir() -> Path:
    """The folder with the lab notebooks: ``$LABS_DIR``, else ``labs/`` beside the package."""
    env = os.environ.get("LABS_DIR")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[1] / "labs"


def lab_notebooks(names: list[str] | None = None, folder: Path | None = None) -> list[Path]:
    """Notebook paths for lab names/numbers (all labs in the folder when ``names`` is empty)."""
    folder = folder or labs_dir()
    available = sorted(folder.glob("[0-9][0-9]_*.ipynb"))
    if not names:
        return available
    out = []
    for name in names:
        stem = resolve_lab(name)
        path = folder / f"{stem}.ipynb"
        if not path.exists():
            raise FileNotFoundError(f"Lab {name!r} resolves to {stem}, but {path} does not exist.")
        out.append(path)
    return out


def parse_value(text: str):
    """Turn a ``-p NAME VALUE`` string into int, float, bool, None or str, as papermill's ``-p`` does."""
    lowered = text.strip().lower()
    if lowered in {"true", "false"}:
        return lowered == "true"
    if lowered in {"none", "null"}:
        return None
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


@dataclass
class LabRun:
    lab: str
    status: str  # "passed" | "checks failed" | "error"
    seconds: float
    output: str
    checks_passed: int = 0
    checks_total: int = 0
    error: str | None = None
    records: list = field(default_factory=list)


def execute_lab(notebook: Path, out_path: Path, parameters: dict | None = None, timeout: float | None = None,
                cwd: Path | None = None, kernel_name: str | None = None) -> LabRun:
    """Run one notebook in a fresh kernel; never raises for a failing notebook (the status says it)."""
    import papermill as pm

    out_path.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    error = None
    try:
        pm.execute_notebook(str(notebook), str(out_path), parameters=parameters or {}, progress_bar=False,
                            log_output=False, cwd=str(cwd or out_path.parent),
                            kernel_name=kernel_name or "python3", execution_timeout=timeout)
    except Exception as exc:  # papermill raises PapermillExecutionError with the cell and traceback
        error = f"{type(exc).__name__}: {str(exc).strip().splitlines()[-1] if str(exc).strip() else ''}"
    seconds = time.perf_counter() - started
    records = read_records(out_path) if out_path.exists() else []
    checks = [r for r in records if r.get("kind") == "check"]
    passed = sum(bool(r.get("passed")) for r in checks)
    status = "error" if error else ("passed" if passed == len(checks) else "checks failed")
    return LabRun(lab=notebook.stem, status=status, seconds=round(seconds, 1), output=str(out_path),
                  checks_passed=passed, checks_total=len(checks), error=error, records=records)


def write_summary(runs: list[LabRun], out_dir: Path) -> Path:
    path = out_dir / "summary.json"
    path.write_text(json.dumps({"labs": [asdict(r) for r in runs]}, indent=2))
    return path
