"""The half-precision rehearsal: labs whose checks compare a trained model with a reference, in bf16 autocast.

``labhelpers rehearse --half-precision [LAB ...] --out DIR`` executes each lab of :data:`HALF_PRECISION_LABS`
in the ``tiny`` profile on this CPU with ``LABS_CPU_AUTOCAST=bf16``: the lab's config then says ``bf16`` and
``use_cpu``, and its TRL trainers run bf16 autocast through their own flags, the way a GPU runs them in mixed
precision. It fails when a cell raises or when one of the lab's *named* checks fails or is missing.

Why: a GPU trains in fp16 or bf16 autocast, and CI has no GPU. Checks that compare a trained model with a reference
(a reload from disk, the trainer's own metric, a merged adapter) hold in float32 but can fail under mixed precision:
after ``trainer.train()`` accelerate's autocast wrapper stays on ``model.forward`` (issue 22, defect 3) unless
:func:`labhelpers.training.train` takes it off. This rehearsal shows that on a CPU. Measured with the unwrap turned off (the code before the fix): lab 02's
``saved_reward_model_reloads`` 8.0e-3 against its 1e-4 and ``win_rate_is_eval_accuracy`` 8.9e-3 against 1e-6, lab 06's
``merged_matches_adapter`` 5.0e-3 against 1e-3; with it on, 7.2e-7, 0 and 5.3e-7. Lab 03's checks pass either way
(both sides of each comparison ran under the same wrapper), and keep it honest if a tolerance is tightened.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class HalfPrecisionLab:
    """One lab of the rehearsal: the checks that must pass in bf16, and parameters that shorten the run.

    ``parameters`` only shorten what the named checks do not depend on (a CPU runs bf16 autocast several times
    slower than float32: lab 02's 120 steps took 157 s instead of about 10 s here).
    """

    checks: tuple[str, ...]
    parameters: dict = field(default_factory=dict)
    why: str = ""


# The one table: every lab with a check that compares a trained model with a reference (grep the labs for
# record_check after a trainer's train()). Each check's lab states the tolerance it uses and why.
HALF_PRECISION_LABS: dict[str, HalfPrecisionLab] = {
    "02_reward_modeling": HalfPrecisionLab(
        checks=("saved_reward_model_reloads", "win_rate_is_eval_accuracy"),
        parameters={"MAX_STEPS": 20},
        why="the trained reward model against its reload from disk, and against RewardTrainer's eval_accuracy"),
    "03_dpo": HalfPrecisionLab(
        checks=("our_loss_matches_dpo_trainer", "reloaded_model_is_the_trained_one"),
        parameters={"MAX_STEPS": 8, "N_TRAIN": 64, "N_TEST": 16},
        why="the trained policy's loss against DPOTrainer's, and its weights against the reload from disk"),
    "06_scaling_up": HalfPrecisionLab(
        checks=("merged_matches_adapter",),
        parameters={"MAX_STEPS": 10, "SCRIPT_STEPS": 2, "N_TRAIN": 80, "N_TEST": 16},
        why="the trained adapter against the model with the adapter merged into its weights"),
}

ENVIRONMENT = {"LABS_PROFILE": "tiny", "LABS_CPU_AUTOCAST": "bf16", "HF_HUB_OFFLINE": "1"}


def half_precision_labs(labs: list[str] | None = None) -> list[str]:
    """The stems to rehearse: the table's labs, or the ``labs`` asked for (numbers or stems, any lab)."""
    from labhelpers.config import resolve_lab

    return [resolve_lab(lab) for lab in labs] if labs else list(HALF_PRECISION_LABS)


def rehearse_half_precision(notebook: Path, out_dir: Path, *, timeout: float | None = None,
                            parameters: dict | None = None):
    """Execute one lab in ``tiny`` with ``LABS_CPU_AUTOCAST=bf16``; returns a :class:`~.runner.Rehearsal`.

    Its ``status`` is ``"error"`` when a cell raised, ``"checks failed"`` when a named check failed or is missing,
    else ``"passed"`` (the lab's other checks may fail in bf16: their thresholds are tuned for float32).
    """
    from labhelpers.course.rehearsal.runner import Rehearsal, _execute, profile_of

    row = HALF_PRECISION_LABS.get(notebook.stem, HalfPrecisionLab(checks=()))
    params = {"PROFILE": "tiny", **row.parameters, **(parameters or {})}
    env = {**os.environ, **ENVIRONMENT}
    with tempfile.TemporaryDirectory(prefix=f"half-{notebook.stem}-") as tmp:
        run = _execute(notebook, out_dir / notebook.name, params, env, Path(tmp), timeout)
    checks = {r.get("name"): r for r in run.records if r.get("kind") == "check"}
    named = {name: _summary(checks.get(name)) for name in row.checks}
    failed_named = [name for name, c in named.items() if not c["passed"]]
    status = "error" if run.status == "error" else ("checks failed" if failed_named else "passed")
    return Rehearsal(lab=notebook.stem, status=status, seconds=run.seconds, peak_rss_mib=run.peak_rss_mib or 0.0,
                     output=str(out_dir / notebook.name), parameters=params, hub_ids={},
                     checks_passed=sum(bool(c.get("passed")) for c in checks.values()), checks_total=len(checks),
                     profile=profile_of(run.records), error=run.error,
                     failed_checks=[name for name, c in checks.items() if not c.get("passed")],
                     cpu_seconds=run.cpu_seconds, named_checks=named)


def _summary(record: dict | None) -> dict:
    if record is None:  # the lab no longer records it (renamed, or a cell before it raised): a failure
        return {"passed": False, "value": None, "threshold": None, "missing": True}
    return {"passed": bool(record.get("passed")), "value": record.get("value"), "threshold": record.get("threshold")}
