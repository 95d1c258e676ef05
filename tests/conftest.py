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


def load_benchmark(name: str):
    """A script of ``benchmarks/`` loaded as a module from its file (the scripts are not a package)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"benchmarks_{name}", ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


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
