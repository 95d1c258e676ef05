"""Shared fixtures: one zoo cache for the run, a clean record context per test, and each lab executed once.

* **The zoo.** Every test, and every notebook kernel or child process a test starts, reads the tiny models
  from one cache: ``$LABHELPERS_CACHE`` when it is set (``.ci/run`` sets it), else ``.cache/labhelpers`` in
  the repository. Never the user's own cache. The zoo is built there at most once, on first use, under the
  zoo's file lock. A test that builds zoo models points ``LABHELPERS_CACHE`` at a folder of its own; the
  autouse fixture puts the shared one back afterwards.
* **Records.** Each test starts with no lab/profile context and an empty record log, and whatever it sets
  is undone after it.
* **Labs.** ``executed_lab("01")`` runs a lab at most once per test run (tiny profile, fresh kernel) and
  every test that needs it reads the same :class:`labhelpers.course.runner.LabRun`. The labs the selected tests will
  ask for start at the beginning of the run, ``$LABS_TEST_WORKERS`` at a time (default 2, the slowest first),
  each in a kernel and a working folder of its own (so no lab finds another's saved model), while the other tests run; the tests that read them run last. A test's lab is
  the ``stem``/``lab`` it is parametrized with, the ``labs=`` of its ``notebook`` marker, or the NN of a
  ``test_labNN_*`` module; any other lab a test asks for runs when it asks.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LABS = ROOT / "labs"
ZOO_CACHE = os.environ.get("LABHELPERS_CACHE") or str(ROOT / ".cache" / "labhelpers")


def lab_paths() -> list[Path]:
    """The checkout's lab notebooks, listed as the course's tools list them (``runner.lab_notebooks``)."""
    from labhelpers.course.runner import lab_notebooks

    return lab_notebooks(folder=LABS)


def lab_stems() -> list[str]:
    return [p.stem for p in lab_paths()]


LAB_TIMEOUT_S = 900  # the whole run of one lab, kernel start included; the slowest takes about 1.5 min alone

# Set before any test runs, so that kernels and child processes inherit them.
os.environ["LABHELPERS_CACHE"] = ZOO_CACHE
os.environ.setdefault("LABS_PROFILE", "tiny")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

LAB_WORKERS = int(os.environ.get("LABS_TEST_WORKERS") or 2)  # labs executing at once, beside the other tests
# This process and the labs' kernels share the cores: each gets its share of threads. torch's OpenMP threads
# spin while they wait, so processes that each take every core slow each other down many times over (measured
# here: lab 04 took 326 s beside the others instead of 30 s alone). An OMP_NUM_THREADS already set is kept.
os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // (LAB_WORKERS + 1))))
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # and a process that sets more threads anyway sleeps, not spins


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


class LabExecutions:
    """Each (lab, parameters) executed at most once per test run, on a small pool of background threads.

    Each execution is a child process (:func:`labhelpers.course.runner.execute_lab`), so the threads only wait. The
    environment is the one of the run's start: a test that points ``LABHELPERS_CACHE`` at a folder of its own
    while a lab starts does not move that lab off the shared zoo.
    """

    def __init__(self, out_dir: Path, workers: int):
        self.out_dir = out_dir
        self.env = dict(os.environ)
        self.pool = ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="lab")
        self.runs: dict[tuple, Future] = {}
        self.lock = threading.Lock()

    def submit(self, lab: str, **parameters) -> Future:
        from labhelpers.config import resolve_lab
        from labhelpers.course.runner import execute_lab

        stem = resolve_lab(lab)
        key = (stem, tuple(sorted(parameters.items())))
        with self.lock:
            if key not in self.runs:
                suffix = "" if not parameters else "-" + "-".join(f"{k}" for k in sorted(parameters))
                out = self.out_dir / f"{stem}{suffix}.ipynb"
                # a working folder per execution: a lab never finds another's saved model (labhelpers.stages), so
                # a pipeline:sft lab always takes the zoo's copy here, whichever lab happened to finish first
                cwd = self.out_dir / f"{stem}{suffix}"
                cwd.mkdir(exist_ok=True)
                self.runs[key] = self.pool.submit(
                    execute_lab, LABS / f"{stem}.ipynb", out, parameters={"PROFILE": "tiny", **parameters},
                    timeout=LAB_TIMEOUT_S, hard_timeout=LAB_TIMEOUT_S, env=self.env, cwd=cwd)
            return self.runs[key]

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)


def labs_of(item) -> list[str]:
    """The labs a collected test reads through ``executed_lab`` (see the module doc), by number or stem."""
    if "executed_lab" not in getattr(item, "fixturenames", ()):
        return []
    params = getattr(getattr(item, "callspec", None), "params", {})
    for name in ("stem", "lab"):
        if isinstance(params.get(name), str):
            return [params[name]]
    marker = item.get_closest_marker("notebook")
    if marker is not None and "labs" in marker.kwargs:
        labs = marker.kwargs["labs"]
        return lab_stems() if labs == "all" else list(labs)
    found = re.match(r"test_lab(\d\d)_", item.module.__name__.rsplit(".", 1)[-1]) if item.module else None
    return [found.group(1)] if found else []


def pytest_collection_modifyitems(items):
    """Tests that read executed labs run last, so that the labs execute while the other tests run."""
    items.sort(key=lambda item: "executed_lab" in getattr(item, "fixturenames", ()))


def _expected_seconds(lab: str) -> float:
    from labhelpers.config import resolve_lab
    from labhelpers.course.hardware import HARDWARE

    figure = HARDWARE.get(resolve_lab(lab))
    return figure.tiny_time.high if figure else 0.0


_executions: LabExecutions | None = None


@pytest.fixture(scope="session", autouse=True)
def lab_executions(request, tmp_path_factory):
    """The run's :class:`LabExecutions`, with the labs the selected tests read already started (slowest first)."""
    global _executions
    _executions = LabExecutions(tmp_path_factory.mktemp("executed_labs"), LAB_WORKERS)
    wanted = {lab for item in request.session.items for lab in labs_of(item)}
    for lab in sorted(wanted, key=_expected_seconds, reverse=True):
        _executions.submit(lab)
    yield _executions
    _executions.close()


@pytest.fixture(scope="session")
def executed_lab(lab_executions):
    """``executed_lab("01", **parameters)`` runs that lab once per test run and returns its LabRun.

    The tiny profile, a fresh kernel, papermill through :func:`labhelpers.course.runner.execute_lab`; the same
    parameters give the same run back without executing again (waiting for it, if it is still running).
    """

    def run(lab: str, **parameters):
        return lab_executions.submit(lab, **parameters).result()

    return run


def pytest_terminal_summary(terminalreporter):
    """One line per lab execution of this run, so the log shows that each lab (and parameter set) ran once."""
    runs = {key: future.result() for key, future in (_executions.runs.items() if _executions else [])
            if future.done() and not future.cancelled() and future.exception() is None}
    if runs:
        terminalreporter.section("lab executions (each once per run)")
        for (stem, parameters), run in runs.items():
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
    from labhelpers.config import profile_values, resolve_lab

    return profile_values(resolve_lab(lab), profile)


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
