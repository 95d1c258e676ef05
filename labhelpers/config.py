"""Profiles and lab configs: one frozen object holds everything a lab needs.

A lab's first code cell after the parameters calls::

    cfg = lab_config("01", PROFILE, MODEL_NAME=MODEL_NAME, DATASET=DATASET, MAX_STEPS=MAX_STEPS)

which resolves the profile (``auto`` picks ``full`` on a CUDA GPU, else ``tiny``; ``LABS_PROFILE`` overrides
``auto``), the device and dtype, and the lab's values for that profile (:func:`profile_values`, from the
``PROFILES`` of the lab's class in :mod:`labhelpers.lab_configs`), applies the overrides that are not ``None``,
prints a short table, and returns a :class:`LabConfig`.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import fields
from typing import Any

from . import hub, stages
from .lab_configs import (
    CONFIG_CLASSES,
    PROFILE_NAMES,
    SET_BY_LAB_CONFIG,
    TINY_DATASET,
    LabConfig,
    check_field,
    config_labs,
    profile_values,
)

PROFILES = ("auto", *PROFILE_NAMES)  # what PROFILE takes

# The course overview (lab 00) trains nothing, so it has no config.
OVERVIEW_LAB = "00_overview"


def lab_names() -> list[str]:
    return [OVERVIEW_LAB, *config_labs()]


def resolve_lab(lab: str) -> str:
    """``"01"``, ``"1"``, ``"01_instruction_tuning"`` or ``"01_instruction_tuning.ipynb"`` -> the lab's stem."""
    key = str(lab).removesuffix(".ipynb").rsplit("/", 1)[-1]
    for name in lab_names():
        if key == name or (key.isdigit() and int(key) == int(name.split("_", 1)[0])):
            return name
    raise ValueError(f"Unknown lab {lab!r}; the labs are {', '.join(lab_names())} (or their numbers).")


# --------------------------------------------------------------------------------------------------
# Profile, device and dtype
# --------------------------------------------------------------------------------------------------
def _check_profile(profile: str, source: str) -> str:
    value = str(profile).strip().lower()
    if value not in PROFILES:
        raise ValueError(f"Unknown profile {profile!r} ({source}); choose one of "
                         f"{', '.join(repr(p) for p in PROFILES)}.")
    return value


def _profile_from_environment() -> str | None:
    """``LABS_PROFILE``, when it is set to something other than ``auto`` (checked), else None."""
    env = os.environ.get("LABS_PROFILE", "").strip()
    if env:
        value = _check_profile(env, "environment variable LABS_PROFILE")
        if value != "auto":
            return value
    return None


def resolve_profile(profile: str | None = "auto") -> tuple[str, str]:
    """Return ``(profile, reason)`` where profile is one of :data:`PROFILE_NAMES` (``"tiny"`` or ``"full"``).

    ``auto`` picks ``full`` on a CUDA GPU, else ``tiny``; ``LABS_PROFILE`` overrides ``auto``.
    :func:`lab_config` then falls back from an ``auto`` choice of ``full`` to ``tiny`` when
    ``HF_HUB_OFFLINE`` is set and the cache lacks the lab's models or data.
    """
    profile = _check_profile(profile or "auto", "PROFILE")
    if profile != "auto":
        return profile, f"PROFILE={profile!r} was set in the parameters cell"
    env = _profile_from_environment()
    if env:
        return env, f"the environment variable LABS_PROFILE={os.environ['LABS_PROFILE'].strip()!r} overrides 'auto'"
    import torch

    if not torch.cuda.is_available():
        return "tiny", "'auto' found no CUDA GPU, so it runs the offline tiny profile"
    return "full", f"'auto' found a CUDA GPU ({torch.cuda.get_device_name(0)})"


def native_bf16() -> bool:
    """bf16 in hardware (compute capability >= 8), not the emulation torch also counts by default.

    On a T4 (7.5) ``torch.cuda.is_bf16_supported()`` is True because a bf16 tensor can be allocated there,
    but its matrix products then run without tensor cores, about twice as slow as fp16.
    """
    import torch

    return torch.cuda.is_bf16_supported(including_emulation=False)


CPU_AUTOCAST_VARIABLE = "LABS_CPU_AUTOCAST"
CPU_AUTOCAST_VALUES = {"bf16": "bfloat16"}  # the variable's value -> the dtype a lab on the CPU then reports


def cpu_autocast_dtype() -> str | None:
    """The dtype ``LABS_CPU_AUTOCAST`` asks for on the CPU (``"bfloat16"`` for ``bf16``), or None when it is unset.

    It rehearses a GPU's mixed precision on a CPU: the lab's config then says ``bf16`` on the CPU, so the trainers
    run bf16 autocast through their own ``bf16=True, use_cpu=True`` flags, while the weights stay float32.
    """
    value = os.environ.get(CPU_AUTOCAST_VARIABLE, "").strip()
    if not value:
        return None
    if value.lower() not in CPU_AUTOCAST_VALUES:
        raise ValueError(f"The environment variable {CPU_AUTOCAST_VARIABLE}={value!r} is not a value it takes: set it "
                         f"to {' or '.join(repr(v) for v in CPU_AUTOCAST_VALUES)} (bf16 autocast in the trainers on "
                         "the CPU) or leave it unset (float32).")
    return CPU_AUTOCAST_VALUES[value.lower()]


GPU_AUTOCAST_VARIABLE = "LABS_GPU_AUTOCAST"
GPU_AUTOCAST_VALUES = {"fp16": "float16", "bf16": "bfloat16"}


def gpu_autocast_dtype() -> str | None:
    """The dtype ``LABS_GPU_AUTOCAST`` asks for on a CUDA GPU, or None when it is unset (the GPU's own choice).

    ``fp16`` runs a bf16-capable GPU as a T4 runs: fp16 autocast under the gradient scaler. The prepared GPU
    command (``benchmarks/gpu_t4.sh``) sets it, with the allocator capped at a T4's memory.
    """
    value = os.environ.get(GPU_AUTOCAST_VARIABLE, "").strip().lower()
    if not value:
        return None
    if value not in GPU_AUTOCAST_VALUES:
        raise ValueError(f"The environment variable {GPU_AUTOCAST_VARIABLE}={value!r} is not a value it takes: set it "
                         f"to {' or '.join(repr(v) for v in GPU_AUTOCAST_VALUES)} or leave it unset (bf16 where the "
                         "GPU has it natively, else fp16).")
    return GPU_AUTOCAST_VALUES[value]


def resolve_device_dtype(profile: str = "full", device: str | None = None) -> tuple[str, str]:
    """The device and dtype a lab trains in.

    ``full``: ``("cuda", "bfloat16")`` on compute capability >= 8, ``("cuda", "float16")`` on older GPUs such as
    a T4, ``("cpu", "float32")`` without a GPU. ``tiny`` stays on ``("cpu", "float32")`` (its exact checks
    assume fp32) unless ``device="cuda"`` asks for the GPU. An explicit ``device`` always wins.

    On the CPU, ``LABS_CPU_AUTOCAST=bf16`` makes the dtype ``"bfloat16"`` (:func:`cpu_autocast_dtype`): the
    half-precision rehearsal (``labhelpers rehearse --half-precision``) runs the labs that way. On a GPU,
    ``LABS_GPU_AUTOCAST=fp16`` (:func:`gpu_autocast_dtype`) asks for a T4's fp16 on any GPU.
    """
    import torch

    autocast = cpu_autocast_dtype()  # checked whatever the device, so a wrong value is never silently ignored
    gpu_autocast = gpu_autocast_dtype()
    if device is None:
        device = "cuda" if profile == "full" and torch.cuda.is_available() else "cpu"
    device = str(device).strip().lower()
    if device not in {"cpu", "cuda"}:
        raise ValueError(f"DEVICE must be 'cpu' or 'cuda' (or None for the profile's choice), not {device!r}.")
    if device == "cpu":
        return "cpu", autocast or "float32"
    if not torch.cuda.is_available():
        raise ValueError("DEVICE='cuda' was asked for, but torch sees no CUDA GPU (torch.cuda.is_available() is "
                         "False). Use DEVICE=None, or install a CUDA build of torch on a machine with a GPU.")
    return "cuda", gpu_autocast or ("bfloat16" if native_bf16() else "float16")


# Kept for `labhelpers doctor`: a one-line answer to "can this machine reach the Hub?".
def hub_reachable(timeout: float = 3.0) -> tuple[bool, str]:
    """Whether the Hugging Face Hub answers, asked through huggingface_hub's own session (proxies, HF_ENDPOINT)."""
    from huggingface_hub import constants
    from huggingface_hub.utils import get_session

    if hub.offline_mode():
        return False, "HF_HUB_OFFLINE is set (models and datasets load from the Hugging Face cache only)"
    try:
        get_session().head(f"{constants.ENDPOINT}/api/models/gpt2", timeout=timeout)
        return True, f"{constants.ENDPOINT} answered"
    except Exception as err:
        return False, f"{constants.ENDPOINT} is unreachable ({type(err).__name__})"


HubUnavailableError = hub.HubUnavailableError


# --------------------------------------------------------------------------------------------------
# The config object
# --------------------------------------------------------------------------------------------------
def _resolve_zoo(name):
    """``"zoo:tiny-opt"`` -> the folder it is (or will be) built in; :func:`prepare_lab` builds it."""
    if isinstance(name, str) and name.startswith("zoo:"):
        from .tiny import zoo_path

        return str(zoo_path(name[4:], build=False))
    return name


def _is_hub_id(name) -> bool:
    if not isinstance(name, str) or name == TINY_DATASET or name.startswith(("zoo:", stages.PREFIX)):
        return False
    return not os.path.exists(os.path.expanduser(name))


MODEL_KEYS = ("model_name", "reward_model_name", "ref_model_name")


def full_profile_hub_ids(values: dict[str, Any]) -> dict[str, str]:
    """``{repo_id: "model"|"dataset"}`` of the Hub ids among a profile's values (local paths are not ids)."""
    ids = {str(values[k]): "model" for k in MODEL_KEYS if _is_hub_id(values.get(k))}
    if _is_hub_id(values.get("dataset")):
        ids[str(values["dataset"])] = "dataset"
    return ids


def _merged_values(name: str, profile: str, overrides: dict[str, Any]) -> dict[str, Any]:
    """The profile's defaults with the overrides that are not ``None``, each checked against the lab's class."""
    values = profile_values(name, profile)  # first: its error names the labs that have a config
    cls = CONFIG_CLASSES[name]
    for key, value in overrides.items():
        key_l = key.lower()
        if key_l in SET_BY_LAB_CONFIG:
            raise ValueError(f"{key!r} is set by lab_config itself and cannot be overridden; use PROFILE for the "
                             "profile and DEVICE for the device (the dtype follows the device).")
        if value is None:
            if key_l not in {f.name for f in fields(cls)}:
                check_field(cls, key_l, value)  # an unknown name is an error even when its value is None
            continue
        check_field(cls, key_l, value)
        values[key_l] = value
    return values


# what a lab does with each model field, in the line that says which model a "pipeline:" name resolved to
PIPELINE_USES = {"model_name": "starts from", "reward_model_name": "scores with", "ref_model_name": "compares with"}


def _start_line(name: str, profile: str, values: dict[str, Any], overrides: dict[str, Any]) -> str | None:
    """What the lab starts from and why, for a model that is not a ``pipeline:`` name (that one says it itself)."""
    if stages.is_pipeline_name(values.get("model_name")):
        return None
    chosen = {k.lower(): v for k, v in overrides.items() if v is not None}.get("model_name")
    if chosen is not None:
        return f"This lab starts from {chosen}, set by MODEL_NAME in the parameters cell."
    return CONFIG_CLASSES[name].STARTS_FROM.get(profile)


def lab_config(lab: str, profile: str | None = "auto", *, quiet: bool = False, check_environment: bool = True,
               **overrides) -> LabConfig:
    """Resolve one lab's config from its class's ``PROFILES`` and the parameters cell.

    ``overrides`` use the parameter names of the notebook (``MODEL_NAME=...``) or the field names
    (``model_name=...``); ``None`` keeps the default. Unknown names raise a ``ValueError``. ``DEVICE="cuda"``
    runs the tiny profile on a GPU (it stays on the CPU otherwise).

    In ``full``, every Hub id (models and dataset) must be in the Hugging Face cache or on the Hub, else one
    :class:`HubUnavailableError` names each missing id. ``auto`` on a GPU falls back to ``tiny`` instead only
    when ``HF_HUB_OFFLINE`` is set and the cache lacks an id; a Hub error (an unknown id, or one still busy or
    unreachable after :data:`labhelpers.hub.RETRY_DELAYS`) stops with the message.
    ``check_environment=False`` skips that check and the full-on-CPU warning: for tools that only read a
    profile's settings (the GPU benchmark builds the full profile's shapes without downloading anything).
    """
    name = resolve_lab(lab)
    requested = _check_profile(profile or "auto", "PROFILE")
    profile, reason = resolve_profile(requested)
    values = _merged_values(name, profile, overrides)
    if profile == "full" and check_environment:
        missing = [loc for loc in hub.locate_all(full_profile_hub_ids(values)) if not loc.found]
        # auto may choose tiny only when the learner asked for the cache alone (HF_HUB_OFFLINE) and it lacks an
        # id; a Hub that is busy, unreachable or says "no such id" on a GPU is an error, never a silent tiny
        cache_only = all(loc.offline_only for loc in missing)
        if missing and cache_only and requested == "auto" and _profile_from_environment() is None:
            names = ", ".join(f"{loc.repo_id} ({loc.problem})" for loc in missing)
            profile, reason = "tiny", f"{reason} but cannot get {names}, so it runs the offline tiny profile"
            values = _merged_values(name, profile, overrides)
        elif missing:
            raise HubUnavailableError(hub.unavailable_message(name, missing))
    device, dtype = resolve_device_dtype(profile, values.pop("device", None))
    if profile == "full" and check_environment:
        if device == "cpu":
            warnings.warn(f"The 'full' profile is meant for a GPU; on this CPU lab {name} will take hours. Set "
                          "PROFILE = \"tiny\" for a quick offline run.", stacklevel=2)
    zoo_models = tuple(values[key][4:] for key in MODEL_KEYS if str(values.get(key)).startswith("zoo:"))
    lines = [_start_line(name, profile, values, overrides)]
    for key in MODEL_KEYS:
        if stages.is_pipeline_name(values.get(key)):  # reads folders only; prepare_lab builds a zoo copy
            resolved = stages.resolve(values[key], profile, uses=PIPELINE_USES[key])
            values[key] = resolved.path
            zoo_models += (resolved.zoo,) if resolved.zoo else ()
            lines.append(resolved.line)
    start = " ".join(line for line in lines if line) or None
    for key in MODEL_KEYS:
        if key in values:
            values[key] = _resolve_zoo(values[key])

    cfg = CONFIG_CLASSES[name](lab=name, profile=profile, reason=reason, device=device, dtype=dtype,
                               output_dir=os.path.join("outputs", name), zoo_models=zoo_models, start=start, **values)
    if not quiet:
        print(cfg.table())
    return cfg


def prepare_lab(cfg: LabConfig) -> None:
    """The setup a lab makes once, in one visible line, after resolving its config.

    Says what the lab starts from and why (``cfg.start``: an earlier lab's saved model, the zoo's copy of it, or
    the profile's model), builds the tiny zoo models the config names if they are not cached yet (tens of
    seconds, once), seeds Python, NumPy and torch with ``cfg.seed``, and stamps later records with the lab and
    profile.
    """
    from . import records, set_seed
    from .tiny import zoo_path

    if cfg.start:
        print(cfg.start)
    for name in cfg.zoo_models:
        zoo_path(name)
    set_seed(cfg.seed)
    records.set_context(lab=cfg.lab, profile=cfg.profile)
