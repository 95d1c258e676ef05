"""Shared fixtures: one zoo cache for the run, a clean record context per test, and each lab executed once.

* **The zoo.** Every test, and every notebook kernel or child process a test starts, reads the tiny models
  from one cache: ``$LABHELPERS_CACHE`` when it is set (``.ci/run`` sets it), else ``.cache/labhelpers`` in
  the repository. Never the user's own cache. The zoo is built there at most once, on first use, under the
  zoo's file lock. A test that builds zoo models points ``LABHELPERS_CACHE`` at a folder of its own; the
  autouse fixture puts the shared one back afterwards.
* **Records.** Each test starts with no lab/profile context and an empty record log, and whatever it sets
  is undone after it.
* **Labs.** ``executed_lab("01")`` runs a lab at most once per test run (tiny profile, fresh kernel) and
  every test that needs it reads the same :class:`labhelpers.execute.LabRun`.
"""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LABS = ROOT / "labs"
ZOO_CACHE = os.environ.get("LABHELPERS_CACHE") or str(ROOT / ".cache" / "labhelpers")
LAB_TIMEOUT_S = 900  # the whole run of one lab, kernel start included; the slowest takes about 1.5 min alone

# Set before any test runs, so that kernels and child processes inherit them.
os.environ["LABHELPERS_CACHE"] = ZOO_CACHE
os.environ.setdefault("LABS_PROFILE", "tiny")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

_runs: dict = {}


@pytest.fixture(autouse=True)
def hermetic(monkeypatch):
    """The shared zoo cache and a clean record context for every test, restored after it."""
    from labhelpers import records

    monkeypatch.setenv("LABHELPERS_CACHE", ZOO_CACHE)
    monkeypatch.setattr(records, "_context", {"lab": None, "profile": None})
    monkeypatch.setattr(records, "_log", [])


def load_benchmark(name: str):
    """A script of ``benchmarks/`` loaded as a module from its file (the scripts are not a package)."""
    spec = importlib.util.spec_from_file_location(f"benchmarks_{name}", ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def lab_out_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("executed_labs")


@pytest.fixture(scope="session")
def executed_lab(lab_out_dir):
    """``executed_lab("01", **parameters)`` runs that lab once per test run and returns its LabRun.

    The tiny profile, a fresh kernel, papermill through :func:`labhelpers.execute.execute_lab`; the same
    parameters give the same run back without executing again.
    """
    from labhelpers.config import resolve_lab
    from labhelpers.execute import execute_lab

    def run(lab: str, **parameters):
        stem = resolve_lab(lab)
        key = (stem, tuple(sorted(parameters.items())))
        if key not in _runs:
            suffix = "" if not parameters else "-" + "-".join(f"{k}" for k in sorted(parameters))
            out = lab_out_dir / f"{stem}{suffix}.ipynb"
            _runs[key] = execute_lab(LABS / f"{stem}.ipynb", out, parameters={"PROFILE": "tiny", **parameters},
                                     timeout=LAB_TIMEOUT_S, hard_timeout=LAB_TIMEOUT_S)
        return _runs[key]

    return run


def pytest_terminal_summary(terminalreporter):
    """One line per lab execution of this run, so the log shows that each lab (and parameter set) ran once."""
    if _runs:
        terminalreporter.section("lab executions (each once per run)")
        for (stem, parameters), run in _runs.items():
            extra = ", ".join(f"{k}={v!r}" for k, v in parameters) or "defaults"
            terminalreporter.write_line(f"{stem} ({extra}): {run.status}, {run.seconds:.0f} s")


def failure_of(run) -> str:
    """Where an executed lab failed: the cell (index, id, first line) and its error, for assertion messages."""
    if run.error is None:
        return "no error"
    try:
        cells = json.loads(Path(run.output).read_text())["cells"]
    except (OSError, ValueError):
        return f"{run.error} (no executed notebook at {run.output})"
    for index, cell in enumerate(cells):
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                first = "".join(cell["source"]).strip().splitlines()[:1]
                return (f"cell {index} (id {cell.get('id')}, {first[0][:80] if first else 'empty'!r}) raised "
                        f"{output['ename']}: {output['evalue']} (see {run.output})")
    return f"{run.error} (see {run.output})"


def lab_defaults(lab: str, profile: str = "tiny") -> dict:
    """The lab's settings for a profile, as the notebook reads them: the common block, then the profile's."""
    from labhelpers.config import LAB_DEFAULTS, resolve_lab

    table = LAB_DEFAULTS[resolve_lab(lab)]
    return {**table.get("common", {}), **table[profile]}


@pytest.fixture(scope="module")
def tokenizer():
    """The zoo's GPT-2-style tokenizer with a distinct ``<pad>`` token (the fix lab 02 teaches)."""
    from labhelpers.tiny import build_tokenizer

    tok = build_tokenizer("gpt2")
    tok.add_special_tokens({"pad_token": "<pad>"})
    return tok


@pytest.fixture(scope="module")
def model(tokenizer):
    """A small, randomly initialised GPT-2 reward model (one output) that reads the last non-pad token."""
    import torch
    from transformers import GPT2Config, GPT2ForSequenceClassification

    torch.manual_seed(0)
    config = GPT2Config(vocab_size=len(tokenizer), n_embd=32, n_layer=2, n_head=2, n_positions=512, num_labels=1,
                        resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, pad_token_id=tokenizer.pad_token_id,
                        eos_token_id=tokenizer.eos_token_id, bos_token_id=tokenizer.eos_token_id)
    m = GPT2ForSequenceClassification(config)
    with torch.no_grad():  # a larger head than the default init, so rewards of a pair differ by O(1)
        m.score.weight.normal_(0, 1.0)
    return m.eval()


def checks_of(run) -> dict:
    """``{name: record}`` of a LabRun's check records."""
    return {r["name"]: r for r in run.records if r["kind"] == "check"}


def results_of(run) -> dict:
    """``{name: value}`` of a LabRun's result records."""
    return {r["name"]: r["value"] for r in run.records if r["kind"] == "result"}
