"""Shared fixtures: an isolated zoo cache, and each lab executed once per test session (tiny profile)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LABS = ROOT / "labs"

os.environ.setdefault("LABS_PROFILE", "tiny")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

_runs: dict = {}


@pytest.fixture(scope="session")
def lab_out_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("executed_labs")


@pytest.fixture(scope="session")
def executed_lab(lab_out_dir):
    """``executed_lab("01")`` runs that lab once per session with papermill (tiny) and returns its LabRun."""
    from labhelpers.config import resolve_lab
    from labhelpers.execute import execute_lab

    def run(lab: str, **parameters):
        stem = resolve_lab(lab)
        key = (stem, tuple(sorted(parameters.items())))
        if key not in _runs:
            suffix = "" if not parameters else "-" + "-".join(f"{k}" for k in sorted(parameters))
            out = lab_out_dir / f"{stem}{suffix}.ipynb"
            _runs[key] = execute_lab(LABS / f"{stem}.ipynb", out, parameters={"PROFILE": "tiny", **parameters},
                                     timeout=600)
        return _runs[key]

    return run


def results_of(run) -> dict:
    """``{name: value}`` of a LabRun's result records."""
    return {r["name"]: r["value"] for r in run.records if r["kind"] == "result"}
