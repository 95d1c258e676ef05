"""Profiles and lab configs: one frozen object holds everything a lab needs.

A lab's first code cell after the parameters calls::

    cfg = lab_config("01", PROFILE, MODEL_NAME=MODEL_NAME, DATASET=DATASET, MAX_STEPS=MAX_STEPS)

which resolves the profile (``auto`` picks ``full`` on a CUDA GPU, else ``tiny``; ``LABS_PROFILE`` overrides
``auto``), the device and dtype, and the lab's defaults for that profile from :data:`LAB_DEFAULTS`, applies
the overrides that are not ``None``, prints a short table, and returns a :class:`LabConfig`.
"""

from __future__ import annotations

import os
import socket
import warnings
from dataclasses import dataclass, field, fields, replace
from types import MappingProxyType
from typing import Any

PROFILES = ("auto", "tiny", "full")
TINY_DATASET = "tiny"  # the DATASET value that means "the built-in synthetic set"

# --------------------------------------------------------------------------------------------------
# The one table of defaults. Each lab has a "common" block and one block per profile; keys are the
# LabConfig fields (model_name, dataset, max_steps, ...) or lab-specific options (read as cfg.<name>).
# A model name starting with "zoo:" is a tiny-zoo model, resolved to its local folder.
# --------------------------------------------------------------------------------------------------
LAB_DEFAULTS: dict[str, dict[str, dict[str, Any]]] = {
    "01_instruction_tuning": {
        # min_bleu_gain: the BLEU rise the "bleu_improves" check asks for. Real code answers are long and varied,
        # so a 400-step run of opt-350m gains fewer BLEU points than the tiny model on its short synthetic tasks.
        # cpu_threads: torch threads on a CPU (None = torch's default); one thread is fastest for the tiny model.
        "common": {"seed": 42, "response_template": "### Response:"},
        "full": {"model_name": "facebook/opt-350m", "dataset": "sahil2801/CodeAlpaca-20k", "n_train": 2000,
                 "n_test": 100, "max_steps": 400, "batch_size": 8, "learning_rate": 5e-5, "max_length": 512,
                 "max_new_tokens": 128, "min_bleu_gain": 5, "cpu_threads": None, "minutes": 20, "gpu_memory_gb": 10},
        "tiny": {"model_name": "zoo:tiny-opt", "dataset": TINY_DATASET, "n_train": 400, "n_test": 40,
                 "max_steps": 150, "batch_size": 16, "learning_rate": 3e-3, "max_length": 128,
                 "max_new_tokens": 24, "min_bleu_gain": 20, "cpu_threads": 1, "minutes": 1.5},
    },
    "02_reward_modeling": {
        # logging_steps/eval_steps: how often RewardTrainer logs the training and the held-out loss/accuracy.
        # score_examples: (prompt, better response, worse response) triples for the score() demo of section 8.
        # cpu_threads: torch threads on a CPU (None = torch's default); one thread is fastest for the tiny model.
        "common": {"seed": 42},
        "full": {"model_name": "gpt2", "dataset": "Dahoas/synthetic-instruct-gptj-pairwise", "n_train": 4000,
                 "n_test": 400, "max_steps": 500, "batch_size": 8, "learning_rate": 2e-5, "max_length": 512,
                 "logging_steps": 25, "eval_steps": 100, "cpu_threads": None, "minutes": 12, "gpu_memory_gb": 9,
                 "score_examples": (
                     ("What is the boiling point of water at sea level?",
                      "Water boils at 100 degrees Celsius, or 212 degrees Fahrenheit, at sea level.",
                      "Water covers most of the planet, and people have always lived near rivers and lakes."),
                     ("How can I learn Python?",
                      "Work through the official tutorial, then write small programs of your own every day.",
                      "Pythons are large snakes that live in Africa, Asia and Australia."),
                     ("Give me a tip for sleeping better.",
                      "Go to bed at the same time every night and keep screens out of the bedroom.",
                      "I had a strange dream last night about a train made of glass."),
                 )},
        "tiny": {"model_name": "zoo:tiny-gpt2", "dataset": TINY_DATASET, "n_train": 400, "n_test": 100,
                 "max_steps": 120, "batch_size": 16, "learning_rate": 2e-3, "max_length": 64,
                 "logging_steps": 10, "eval_steps": 20, "cpu_threads": 1, "minutes": 1,
                 "score_examples": (
                     ("Write one line about the plot.", "the plot was charming .", "The answer is c b a ."),
                     ("Say something bad about the cast.", "the cast was dull .", "the cast was superb ."),
                     ("Reverse the letters. q z x", "The answer is x z q .", "the film was great ."),
                 )},
    },
    "03_dpo": {
        # sft_weight: weight of the SFT (NLL of the chosen answer) term in the DPO+SFT run; max_prompt_tokens:
        # longer prompts are dropped (DPOConfig has no max_prompt_length any more); min_pref_accuracy: the
        # threshold of the held-out preference-accuracy check; judge: how generations are scored ("review" for
        # the tiny set's one-line reviews, None to only show them); cpu_threads: torch threads (for a
        # 0.5M-parameter model, syncing 2 threads costs more than it saves).
        "common": {"seed": 42, "beta": 0.1, "sft_weight": 1.0},
        "full": {"model_name": "gpt2", "dataset": "trl-lib/ultrafeedback_binarized", "n_train": 2000,
                 "n_test": 200, "max_steps": 250, "batch_size": 8, "learning_rate": 1e-5, "max_length": 512,
                 "max_new_tokens": 64, "max_prompt_tokens": 256, "min_pref_accuracy": 0.55,
                 "judge": None, "cpu_threads": None, "minutes": 15, "gpu_memory_gb": 14},
        "tiny": {"model_name": "zoo:tiny-gpt2", "dataset": TINY_DATASET, "n_train": 320, "n_test": 60,
                 "max_steps": 40, "batch_size": 8, "learning_rate": 1e-3, "max_length": 64,
                 "max_new_tokens": 16, "max_prompt_tokens": 32, "min_pref_accuracy": 0.7,
                 "judge": "review", "cpu_threads": 1, "minutes": 1.5},
    },
    "04_ppo_rlhf": {
        # reward = P(POSITIVE) from the sentiment classifier, in [0, 1]; min_reward_gain is the check on it
        "common": {"seed": 42, "min_query_tokens": 2, "max_query_tokens": 8, "mini_batch_size": 16,
                   "ppo_epochs": 4, "target_kl": 6.0, "grpo_prompt_tokens": 4, "grpo_batch_size": 32},
        "full": {"model_name": "lvwerra/gpt2-imdb", "reward_model_name": "lvwerra/distilbert-imdb",
                 "dataset": "stanfordnlp/imdb", "n_train": 3000, "n_test": 128, "max_steps": 120,
                 "batch_size": 64, "learning_rate": 1.41e-5, "max_new_tokens": 16, "init_kl_coef": 0.1,
                 "min_review_chars": 200, "min_reward_gain": 0.1, "grpo_steps": 150, "grpo_learning_rate": 2e-5,
                 "cpu_threads": None, "minutes": 15, "gpu_memory_gb": 10},
        "tiny": {"model_name": "zoo:tiny-gpt2-imdb", "reward_model_name": "zoo:tiny-sentiment",
                 "dataset": TINY_DATASET, "n_train": 512, "n_test": 64, "max_steps": 20, "batch_size": 32,
                 "learning_rate": 5e-4, "max_new_tokens": 12, "init_kl_coef": 0.2, "min_review_chars": 0,
                 "min_reward_gain": 0.2, "grpo_steps": 20, "grpo_learning_rate": 1e-3, "cpu_threads": 1,
                 "minutes": 1.5},
    },
    "05_generation_parameters": {
        "common": {"seed": 42, "prompt": "the film was"},
        "full": {"model_name": "gpt2", "max_new_tokens": 40, "minutes": 2, "gpu_memory_gb": 1},
        "tiny": {"model_name": "zoo:tiny-gpt2", "max_new_tokens": 20, "minutes": 0.5},
    },
}


# The course overview (lab 00) trains nothing, so it has no config and no row in LAB_DEFAULTS.
OVERVIEW_LAB = "00_overview"


def lab_names() -> list[str]:
    return [OVERVIEW_LAB, *LAB_DEFAULTS]


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


def resolve_profile(profile: str | None = "auto") -> tuple[str, str]:
    """Return ``(profile, reason)`` where profile is ``"tiny"`` or ``"full"``."""
    profile = _check_profile(profile or "auto", "PROFILE")
    if profile != "auto":
        return profile, f"PROFILE={profile!r} was set in the parameters cell"
    env = os.environ.get("LABS_PROFILE", "").strip()
    if env:
        value = _check_profile(env, "environment variable LABS_PROFILE")
        if value != "auto":
            return value, f"the environment variable LABS_PROFILE={env!r} overrides 'auto'"
    import torch

    if torch.cuda.is_available():
        return "full", f"'auto' found a CUDA GPU ({torch.cuda.get_device_name(0)})"
    return "tiny", "'auto' found no CUDA GPU, so it runs the offline tiny profile"


def resolve_device_dtype() -> tuple[str, str]:
    """``("cuda", "bfloat16")`` on Ampere or newer, ``("cuda", "float16")`` on a T4, else ``("cpu", "float32")``."""
    import torch

    if torch.cuda.is_available():
        return "cuda", "bfloat16" if torch.cuda.is_bf16_supported() else "float16"
    return "cpu", "float32"


def hub_reachable(timeout: float = 3.0) -> tuple[bool, str]:
    """Whether the Hugging Face Hub can be reached, and why not."""
    if os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}:
        return False, "HF_HUB_OFFLINE is set"
    host = os.environ.get("HF_ENDPOINT", "https://huggingface.co").split("://")[-1].split("/")[0]
    try:
        socket.create_connection((host, 443), timeout=timeout).close()
        return True, f"{host} answered"
    except OSError as err:
        return False, f"{host} is unreachable ({err.__class__.__name__}: {err})"


class HubUnreachableError(RuntimeError):
    """The ``full`` profile needs the Hugging Face Hub, which cannot be reached."""


def require_hub(what: str) -> None:
    ok, why = hub_reachable()
    if not ok:
        raise HubUnreachableError(
            f"The 'full' profile loads {what} from the Hugging Face Hub, but the Hub cannot be reached "
            f"({why}). Connect to the internet, or set PROFILE = \"tiny\" in the parameters cell "
            f"(or LABS_PROFILE=tiny) to run offline with the built-in tiny models and data.")


# --------------------------------------------------------------------------------------------------
# The config object
# --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class LabConfig:
    """Everything one lab run needs. Lab-specific options are read as attributes too (``cfg.beta``)."""

    lab: str
    profile: str
    reason: str
    model_name: str
    dataset: str | None = None
    max_steps: int | None = None
    batch_size: int | None = None
    learning_rate: float | None = None
    max_length: int | None = None
    max_new_tokens: int | None = None
    n_train: int | None = None
    n_test: int | None = None
    seed: int = 42
    device: str = "cpu"
    dtype: str = "float32"
    output_dir: str = "outputs"
    options: MappingProxyType = field(default_factory=lambda: MappingProxyType({}))

    def __getattr__(self, name: str):
        options = object.__getattribute__(self, "options")
        if name in options:
            return options[name]
        raise AttributeError(f"LabConfig of {self.lab} has no field or option {name!r}; "
                             f"options: {sorted(options)}")

    @property
    def torch_dtype(self):
        import torch

        return getattr(torch, self.dtype)

    @property
    def bf16(self) -> bool:
        return self.dtype == "bfloat16"

    @property
    def fp16(self) -> bool:
        return self.dtype == "float16"

    @property
    def use_cpu(self) -> bool:
        return self.device == "cpu"

    @property
    def is_tiny(self) -> bool:
        return self.profile == "tiny"

    def as_dict(self) -> dict:
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "options"}
        out.update(self.options)
        return out

    def table(self) -> str:
        rows = [(k, v) for k, v in self.as_dict().items() if k not in {"reason"} and v is not None]
        width = max(len(k) for k, _ in rows)
        lines = [f"{self.lab} · profile {self.profile!r}: {self.reason}"]
        lines += [f"  {k:<{width}}  {v}" for k, v in rows]
        return "\n".join(lines)

    def replace(self, **changes) -> LabConfig:
        """A copy with some fields or options changed (the config itself is frozen)."""
        known = {f.name for f in fields(self)}
        options = dict(self.options)
        direct = {}
        for key, value in changes.items():
            (direct if key in known else options).__setitem__(key, value)
        return replace(self, options=MappingProxyType(options), **direct)


def _resolve_zoo(name):
    if isinstance(name, str) and name.startswith("zoo:"):
        from .tiny import zoo_path

        return str(zoo_path(name[4:]))
    return name


def _is_hub_id(name) -> bool:
    if not isinstance(name, str) or name == TINY_DATASET or name.startswith("zoo:"):
        return False
    return not os.path.exists(os.path.expanduser(name))


def lab_config(lab: str, profile: str | None = "auto", *, quiet: bool = False, check_environment: bool = True,
               **overrides) -> LabConfig:
    """Resolve one lab's config from :data:`LAB_DEFAULTS` and the parameters cell.

    ``overrides`` use the parameter names of the notebook (``MODEL_NAME=...``) or the field names
    (``model_name=...``); ``None`` keeps the default. Unknown names raise a ``ValueError``.
    ``check_environment=False`` skips the Hub check and the full-on-CPU warning: for tools that only read a
    profile's settings (the GPU benchmark builds the full profile's shapes without downloading anything).
    """
    from . import records

    name = resolve_lab(lab)
    profile, reason = resolve_profile(profile)
    known = {f.name for f in fields(LabConfig)}
    table = LAB_DEFAULTS[name]
    values: dict[str, Any] = {**table.get("common", {}), **table[profile]}
    for key, value in overrides.items():
        key_l = key.lower()
        if key_l not in values and key_l not in known:
            raise ValueError(f"Unknown setting {key!r} for lab {name}; known settings: "
                             f"{', '.join(sorted(k.upper() for k in values))}.")
        if value is not None:
            values[key_l] = value

    device, dtype = resolve_device_dtype()
    if profile == "full" and check_environment:
        hub_things = [str(values[k]) for k in ("model_name", "reward_model_name", "dataset")
                      if _is_hub_id(values.get(k))]
        if hub_things:
            require_hub(", ".join(hub_things))
        if device == "cpu":
            warnings.warn(f"The 'full' profile is meant for a GPU; on this CPU lab {name} will take hours "
                          f"instead of about {values.get('minutes', 20)} minutes. Set PROFILE = \"tiny\" for a quick "
                          "offline run.", stacklevel=2)
    for key in ("model_name", "reward_model_name", "ref_model_name"):
        if key in values:
            values[key] = _resolve_zoo(values[key])

    direct = {k: v for k, v in values.items() if k in known}
    options = {k: v for k, v in values.items() if k not in known}
    cfg = LabConfig(lab=name, profile=profile, reason=reason, device=device, dtype=dtype,
                    output_dir=os.path.join("outputs", name), options=MappingProxyType(options), **direct)
    records.set_context(lab=name, profile=profile)
    if not quiet:
        print(cfg.table())
    return cfg
