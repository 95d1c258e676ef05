"""The pipeline's hand-overs: a lab saves the model that a later lab starts from, and the later lab finds it.

Lab 01 saves its SFT model, lab 02 its reward model. A later lab names them ``"pipeline:sft"`` and
``"pipeline:reward"`` as a model name, and :func:`labhelpers.lab_config` resolves the name (reading folders only,
building nothing) to one of two starting points:

* **the learner's own**, when the earlier lab saved it in this folder: ``outputs/<lab>/<what>-<profile>``,
  relative to the folder the labs run in (the convention of :func:`labhelpers.reward.saved_reward_model_dir`);
* **the zoo's copy** otherwise (``tiny`` only): a model the zoo trains by the earlier lab's own recipe
  (:mod:`labhelpers.tiny`, ``tiny-sft`` and ``tiny-reward``), which :func:`labhelpers.prepare_lab` builds.

:func:`labhelpers.prepare_lab` prints which one the lab took and why, in one line. A saved folder counts only
when its card (``stage.json``) is there: :func:`save_stage` writes the weights and the tokenizer into a temporary
folder, the card last, and renames the folder into place, so a run that stops half-way leaves nothing a later
lab would take.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

PREFIX = "pipeline:"
CARD = "stage.json"
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")


@dataclass(frozen=True)
class Stage:
    """One hand-over of the pipeline: which lab saves it, under which name, and the zoo model that stands in."""

    name: str  # what follows "pipeline:"
    lab: str  # the lab that saves it (its stem)
    what: str  # the folder's name before the profile: outputs/<lab>/<what>-<profile>
    title: str  # how the one line names it
    zoo: str  # the zoo's copy, trained by the same lab's recipe (tiny only)


STAGES: dict[str, Stage] = {
    "sft": Stage("sft", "01_instruction_tuning", "sft-model", "lab 01's SFT model", "tiny-sft"),
    "reward": Stage("reward", "02_reward_modeling", "reward-model", "lab 02's reward model", "tiny-reward"),
}


def is_pipeline_name(name) -> bool:
    return isinstance(name, str) and name.startswith(PREFIX)


def stage_of(name: str) -> Stage:
    """``"pipeline:sft"`` (or ``"sft"``) -> its :class:`Stage`; one ``ValueError`` naming the stages otherwise."""
    key = name[len(PREFIX):] if is_pipeline_name(name) else name
    if key not in STAGES:
        known = ", ".join(f"'{PREFIX}{s.name}' ({s.title})" for s in STAGES.values())
        raise ValueError(f"Unknown pipeline model {name!r}: the pipeline hands over {known}.")
    return STAGES[key]


def _check_profile(profile: str) -> None:
    if profile not in ("tiny", "full"):
        raise ValueError(f"profile must be 'tiny' or 'full' (a resolved profile, e.g. cfg.profile), got {profile!r}.")


def stage_dir(stage: str | Stage, profile: str, root: str = "") -> str:
    """``outputs/<lab>/<what>-<profile>``, relative to ``root`` (default: the folder the labs run in)."""
    stage = stage if isinstance(stage, Stage) else stage_of(stage)
    _check_profile(profile)
    return os.path.join(root, "outputs", stage.lab, f"{stage.what}-{profile}")


def read_card(folder: str | os.PathLike, stage: str | Stage | None = None) -> dict | None:
    """The card of a saved folder, or None when the folder is not a complete hand-over (of ``stage``, if given).

    Complete means: a readable ``stage.json`` (naming the stage, when given), ``config.json``, the weights and the
    tokenizer's ``tokenizer.json``.
    """
    folder = Path(folder)
    try:
        card = json.loads((folder / CARD).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(card, dict):
        return None
    if stage is not None:
        stage = stage if isinstance(stage, Stage) else stage_of(stage)
        if card.get("stage") != stage.name:
            return None
    files = (folder / "config.json").is_file() and (folder / "tokenizer.json").is_file()
    if not files or not any((folder / w).is_file() for w in WEIGHT_FILES):
        return None
    return card


def save_stage(stage: str | Stage, model, tokenizer, *, profile: str, card: dict | None = None,
               root: str = "") -> str:
    """Save ``model`` and ``tokenizer`` where a later lab finds them; returns the folder.

    Atomic: everything goes into a temporary folder beside the target, the card (``stage.json``: stage, lab,
    profile, time, and ``card``'s entries, such as the steps and the held-out figures) last; then the folder is
    renamed into place. An earlier save of the same stage and profile is replaced (moved aside, then removed).
    """
    stage = stage if isinstance(stage, Stage) else stage_of(stage)
    target = Path(stage_dir(stage, profile, root))
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o777 & ~umask)  # mkdtemp's folder is private; the saved model is an ordinary folder
    old = None
    try:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        now = datetime.now(UTC)
        full_card = {"stage": stage.name, "lab": stage.lab, "profile": profile,
                     "saved_at": now.isoformat(timespec="seconds"), **(card or {})}
        (tmp / CARD).write_text(json.dumps(full_card, indent=2, default=float))
        if target.exists():
            old = target.parent / f".old-{target.name}-{os.getpid()}-{time.time_ns()}"
            os.rename(target, old)
        os.rename(tmp, target)  # atomic on one file system: a reader sees no folder or a complete one
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    return str(target)


@dataclass(frozen=True)
class Start:
    """What a ``pipeline:`` name resolved to: the folder to load, the zoo model to build (if any), and the line."""

    path: str
    zoo: str | None
    line: str
    card: dict | None = None


def _when(card: dict) -> str:
    try:
        saved = datetime.fromisoformat(card["saved_at"])
    except (KeyError, TypeError, ValueError):
        return "at an unknown time"
    return saved.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def resolve(name: str, profile: str, root: str = "", uses: str = "starts from") -> Start:
    """Resolve a ``pipeline:`` model name for ``profile`` without building or writing anything.

    The earlier lab's saved model when its card is there; else, in ``tiny``, the zoo's copy (its folder, which
    :func:`labhelpers.prepare_lab` builds); in ``full`` there is no zoo, so a missing model is one clear error.
    ``uses`` says what the lab does with it in the line (``"starts from"``, ``"scores with"``).
    """
    stage = stage_of(name)
    _check_profile(profile)
    folder = os.path.abspath(stage_dir(stage, profile, root))
    card = read_card(folder, stage)
    if card is not None:
        return Start(folder, None, f"This lab {uses} {stage.title}, saved {_when(card)} in {folder}.", card)
    run_first = f"run lab {stage.lab[:2]} first to use yours"
    if profile != "tiny":
        raise ValueError(f"MODEL_NAME={name!r}: {stage.title} is not in {folder} ({run_first}, in the {profile!r} "
                         "profile and in this folder), and only the tiny profile has a zoo copy to fall back on. "
                         "Or set MODEL_NAME to a Hub id or a local folder.")
    from .tiny import RECIPES, zoo_path

    if stage.zoo not in RECIPES:
        raise ValueError(f"MODEL_NAME={name!r}: {stage.title} is not in {folder} ({run_first}, in this folder), and "
                         "the zoo has no copy of it to fall back on.")
    zoo = str(zoo_path(stage.zoo, build=False))
    return Start(zoo, stage.zoo, f"{stage.title[0].upper()}{stage.title[1:]} is not in {folder} ({run_first}); "
                 f"this lab takes the zoo's copy, trained by lab {stage.lab[:2]}'s recipe.")
