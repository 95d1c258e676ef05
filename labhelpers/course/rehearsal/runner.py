"""Run each lab's ``full`` profile, offline, against the stand-ins: ``labhelpers rehearse [LAB ...] --out DIR``.

For every lab the runner

1. collects the Hub ids of the lab's ``full`` profile from :func:`labhelpers.config.profile_values` and stops with
   one :class:`RehearsalError` naming any id that has no stand-in;
2. seeds a temporary ``HF_HOME`` with their stand-ins (:func:`labhelpers.course.rehearsal.cache.seed_hub_cache`);
3. executes the notebook unchanged through the course's one runner (:func:`labhelpers.course.runner.execute_lab`,
   a fresh kernel), with ``HF_HUB_OFFLINE=1`` and the parameters ``PROFILE="full"`` plus the shrunk sizes of
   :data:`SHRUNK` that the lab's parameters cell declares;
4. keeps the executed notebook in ``DIR`` and writes ``DIR/summary.json`` (status, wall time, the kernel's peak
   RSS and CPU time as the runner measures them, checks).

Checks may fail (the weights are random); a cell that raises is what the rehearsal exists to find.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

from labhelpers.course.rehearsal.standins import DATASET_STANDINS, MODEL_STANDINS, RehearsalError

# Only sizes and steps are shrunk, and only through parameters a lab's parameters cell declares. Large enough
# that every code path runs (a train/test split, a logged step, a batch of rollouts), small enough for a CPU.
SHRUNK = {"N_TRAIN": 16, "N_TEST": 4, "MAX_STEPS": 2, "BATCH_SIZE": 2, "MAX_LENGTH": 64, "MAX_NEW_TOKENS": 8,
          "GRPO_STEPS": 1}
# Per-lab exceptions to SHRUNK, each with its reason.
SHRUNK_FOR_LAB = {
    # the launched runs of lab 06 train the real-size model on 1 and 2 CPU processes: one step of 2 examples each
    "06_scaling_up": {"SCRIPT_STEPS": 1, "GLOBAL_BATCH_SIZE": 2},
}
HUB_ENVIRONMENT = ("HF_HOME", "HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_DATASETS_CACHE", "TRANSFORMERS_CACHE",
                   "HF_ENDPOINT", "LABS_PROFILE")


def parameter_names(notebook: Path) -> list[str]:
    """The names the notebook's ``parameters`` cell assigns (``NAME = ...`` at the start of a line)."""
    import nbformat

    nb = nbformat.read(str(notebook), as_version=4)
    cells = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    return re.findall(r"^([A-Z][A-Z0-9_]*)\s*=", cells[0].source, flags=re.M) if cells else []


def rehearsal_parameters(notebook: Path, full_size: bool = False) -> dict:
    """``PROFILE="full"`` and the shrunk sizes, limited to the parameters this lab declares (``full_size``: none)."""
    if full_size:
        return {"PROFILE": "full"}
    declared = set(parameter_names(notebook))
    shrunk = {**SHRUNK, **SHRUNK_FOR_LAB.get(notebook.stem, {})}
    return {"PROFILE": "full", **{name: value for name, value in shrunk.items() if name in declared}}


def hub_ids(lab: str) -> dict[str, str]:
    """``{repo_id: "model"|"dataset"}`` that the lab's ``full`` profile loads (none for a lab without defaults)."""
    from labhelpers.config import config_labs, full_profile_hub_ids, profile_values

    if lab not in config_labs():
        return {}
    return full_profile_hub_ids(profile_values(lab, "full"))


def check_standins(lab: str) -> dict[str, str]:
    """:func:`hub_ids` of the lab, after checking that each has a stand-in (else one message naming them)."""
    ids = hub_ids(lab)
    missing = [f"{kind} {repo_id!r}" for repo_id, kind in ids.items()
               if repo_id not in (MODEL_STANDINS if kind == "model" else DATASET_STANDINS)]
    if missing:
        raise RehearsalError(f"Lab {lab}'s full profile needs {', '.join(missing)}, which the rehearsal has no "
                             "stand-in for. Add a row to MODEL_STANDINS or DATASET_STANDINS in "
                             "labhelpers/course/rehearsal/standins.py (real architecture and size, or real splits and columns).")
    return ids


@dataclass
class Rehearsal:
    lab: str
    status: str  # "passed" | "checks failed" | "error"
    seconds: float
    peak_rss_mib: float
    output: str
    parameters: dict
    hub_ids: dict
    checks_passed: int = 0
    checks_total: int = 0
    profile: str | None = None  # as the lab's records say
    error: str | None = None
    failed_checks: list = field(default_factory=list)
    cpu_seconds: float | None = None  # the kernel's user + system CPU time: less sensitive to a busy machine
    gpu: dict | None = None  # with gpu_memory_gib: the GPU, the cap and the kernel's peak allocated memory
    named_checks: dict | None = None  # the half-precision rehearsal: each named check's passed, value, threshold


# Run at the start of each lab's kernel (an IPython startup file) when a GPU memory cap is asked for: caps torch's
# allocator at a smaller GPU's memory, and writes the peak allocated memory when the kernel exits.
GPU_STARTUP = """\
import atexit, json, torch
_CAP_GIB, _REPORT = {cap_gib!r}, {report!r}
_gpu = {{"cuda": torch.cuda.is_available(), "cap_gib": _CAP_GIB}}
if _gpu["cuda"]:
    _total = torch.cuda.get_device_properties(0).total_memory
    torch.cuda.set_per_process_memory_fraction(min(1.0, _CAP_GIB * 2**30 / _total))
    _gpu.update(name=torch.cuda.get_device_name(0), total_gib=round(_total / 2**30, 2))
def _report_gpu():
    if _gpu["cuda"]:
        _gpu["peak_allocated_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 3)
    with open(_REPORT, "w") as f:
        json.dump(_gpu, f)
atexit.register(_report_gpu)
"""


def write_gpu_startup(ipython_dir: Path, cap_gib: float, report: Path) -> Path:
    """The IPython startup file of :data:`GPU_STARTUP` in ``ipython_dir`` (the kernel's ``IPYTHONDIR``)."""
    path = ipython_dir / "profile_default" / "startup" / "00-rehearsal-gpu.py"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(GPU_STARTUP.format(cap_gib=float(cap_gib), report=str(report)))
    return path


def _environment(hf_home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in HUB_ENVIRONMENT}
    env.update(HF_HOME=str(hf_home), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", HF_DATASETS_OFFLINE="1",
               TOKENIZERS_PARALLELISM="false", HF_HUB_DISABLE_TELEMETRY="1")
    return env


def _execute(notebook: Path, out_path: Path, parameters: dict, env: dict, cwd: Path, timeout: float | None):
    """Execute through the course's runner in ``env``; a :class:`~labhelpers.course.runner.LabRun` with the
    kernel's peak RSS and CPU time (the runner's child is the kernel's parent and measures them)."""
    from labhelpers.course.runner import execute_lab

    return execute_lab(notebook, out_path, parameters=parameters, timeout=timeout, cwd=cwd, env=env)


def rehearse_lab(notebook: Path, out_dir: Path, *, timeout: float | None = None, workdir: Path | None = None,
                 parameters: dict | None = None, full_size: bool = False,
                 gpu_memory_gib: float | None = None) -> Rehearsal:
    """Rehearse one lab (see the module doc); ``parameters`` adds to or replaces the shrunk ones.

    ``full_size`` runs the lab's own full-profile sizes (for a GPU); ``gpu_memory_gib`` caps the kernel's GPU
    memory (14.75 for a T4's 15 GB) and records its peak (:data:`GPU_STARTUP`).
    """
    from labhelpers.config import resolve_lab

    try:
        lab = resolve_lab(notebook.stem)
    except ValueError:
        lab = notebook.stem  # a lab without defaults yet still runs; it loads nothing from the Hub
    ids = check_standins(lab)
    params = {**rehearsal_parameters(notebook, full_size), **(parameters or {})}
    with tempfile.TemporaryDirectory(prefix=f"rehearse-{notebook.stem}-", dir=workdir) as tmp:
        tmp = Path(tmp)
        from labhelpers.course.rehearsal.cache import seed_hub_cache

        seed_hub_cache(tmp / "hf" / "hub", ids)
        (tmp / "work").mkdir()
        env = _environment(tmp / "hf")
        if gpu_memory_gib is not None:
            write_gpu_startup(tmp / "ipython", gpu_memory_gib, tmp / "gpu.json")
            env["IPYTHONDIR"] = str(tmp / "ipython")
        run = _execute(notebook, out_dir / notebook.name, params, env, tmp / "work", timeout)
        gpu = json.loads((tmp / "gpu.json").read_text()) if (tmp / "gpu.json").exists() else None
    checks = [r for r in run.records if r.get("kind") == "check"]
    return Rehearsal(lab=notebook.stem, status=run.status, seconds=run.seconds,
                     peak_rss_mib=run.peak_rss_mib or 0.0, output=str(out_dir / notebook.name), parameters=params,
                     hub_ids=ids, checks_passed=run.checks_passed, checks_total=run.checks_total,
                     profile=profile_of(run.records), error=run.error,
                     failed_checks=[c.get("name") for c in checks if not c.get("passed")],
                     cpu_seconds=run.cpu_seconds, gpu=gpu)


def profile_of(records: list[dict]) -> str | None:
    """The profiles the lab's records were made in, comma-separated (one, unless the lab is inconsistent)."""
    return ",".join(sorted({r.get("profile") for r in records if r.get("profile")})) or None


def write_summary(rehearsals: list[Rehearsal], out_dir: Path, kind: str = "rehearsal", profile: str = "full") -> Path:
    import platform

    import torch

    from labhelpers.records import versions

    path = out_dir / "summary.json"
    machine = {"cpus": os.cpu_count(), "platform": platform.platform(), "torch": torch.__version__,
               "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}
    path.write_text(json.dumps({"kind": kind, "profile": profile, "machine": machine, "versions": versions(),
                                "labs": [asdict(r) for r in rehearsals]}, indent=2, default=str))
    return path

