"""One frozen, typed config class per lab; :data:`labhelpers.config.LAB_DEFAULTS` holds their two profiles.

Every name a lab reads from its config is a field here, with its type and meaning, so a renamed option fails
when the table is checked (at import), not when a notebook reaches the cell that reads it. The classes are
plain dataclasses: they pickle and deep-copy, so spawn-based DataLoader workers can receive them.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, fields


@dataclass(frozen=True)
class LabConfig:
    """What every lab's config holds.

    Parameters:
        lab: the lab's notebook stem, e.g. ``"01_instruction_tuning"``.
        profile: ``"tiny"`` or ``"full"``, as resolved from ``PROFILE``.
        reason: one line saying why this profile was chosen.
        model_name: a Hub id or a local folder (a tiny zoo model's folder in ``tiny``).
        dataset: a Hub id, a local file, or ``"tiny"`` for the built-in synthetic set.
        max_steps, batch_size, learning_rate: the training run's optimizer steps, examples per step, peak rate.
        max_length: tokens per training sequence (longer ones are truncated).
        max_new_tokens: tokens generated per prompt.
        n_train, n_test: training examples and held-out examples (seeded random subsets).
        seed: seeds the split, the initialisation and the data order.
        device, dtype: where and in what precision the lab trains (see ``resolve_device_dtype``).
        output_dir: where trainers write (nothing is saved unless a lab says so).
        cpu_threads: torch threads on a CPU (``None``: torch's default; 1 is fastest for tiny models).
        zoo_models: the tiny zoo models the config's model fields name (``prepare_lab`` builds them).
    """

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
    cpu_threads: int | None = None
    zoo_models: tuple[str, ...] = ()

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

    @property
    def uses_profile_dataset(self) -> bool:
        """Whether ``dataset`` is the profile's own, the data a lab's thresholds were tuned on (not a learner's)."""
        from .config import LAB_DEFAULTS

        table = LAB_DEFAULTS.get(self.lab, {})
        return self.dataset == {**table.get("common", {}), **table.get(self.profile, {})}.get("dataset")

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)

    def table(self) -> str:
        rows = [(k, v) for k, v in self.as_dict().items() if k not in ("reason", "zoo_models") and v is not None]
        width = max(len(k) for k, _ in rows)
        lines = [f"{self.lab} · profile {self.profile!r}: {self.reason}"]
        lines += [f"  {k:<{width}}  {v}{self._note(k)}" for k, v in rows]
        return "\n".join(lines)

    def _note(self, field_name: str) -> str:
        if field_name == "dtype" and self.use_cpu and self.dtype != "float32":
            return (f" (LABS_CPU_AUTOCAST: the trainers run {self.dtype} autocast on the CPU, a rehearsal of a GPU's "
                    "mixed precision; the weights stay float32)")
        return ""

    def replace(self, **changes) -> LabConfig:
        """A copy with some fields changed (the config itself is frozen); names and types are checked."""
        for name, value in changes.items():
            check_field(type(self), name, value)
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True)
class InstructionTuningConfig(LabConfig):
    """Lab 01.

    Parameters:
        response_template: the line after which the answer starts; everything up to it is masked.
        min_bleu_gain: the BLEU rise ``bleu_improves`` asks for (real code answers are long and varied, so a
            400-step run of opt-350m gains fewer points than the tiny model on its short synthetic tasks).
    """

    response_template: str = "### Response:"
    min_bleu_gain: float = 20


@dataclass(frozen=True)
class RewardModelingConfig(LabConfig):
    """Lab 02.

    Parameters:
        logging_steps, eval_steps: how often RewardTrainer logs the training and the held-out loss/accuracy.
    """

    logging_steps: int = 10
    eval_steps: int = 20


@dataclass(frozen=True)
class DPOLabConfig(LabConfig):
    """Lab 03.

    Parameters:
        beta: DPO's β, the weight of the implicit KL to the reference model.
        sft_weight: weight of the SFT term (NLL of the chosen answer) in the DPO+SFT run.
        max_prompt_tokens: longer prompts are dropped (DPOConfig has no max_prompt_length any more).
        min_pref_accuracy: the threshold of the held-out preference-accuracy check.
        judge: how generations are scored: ``"review"`` for the tiny set's one-line reviews, ``None`` to show them.
    """

    beta: float = 0.1
    sft_weight: float = 1.0
    max_prompt_tokens: int = 32
    min_pref_accuracy: float = 0.7
    judge: str | None = None


@dataclass(frozen=True)
class PPOLabConfig(LabConfig):
    """Lab 04.

    Parameters:
        reward_model_name: the sentiment classifier whose P(POSITIVE) is the reward.
        reward_source: what scores the rollouts: "classifier" (that classifier's P(POSITIVE)) or "lab02" (the
            reward model lab 02 saved for this profile, see labhelpers.reward.saved_reward_model_dir).
        min_query_tokens, max_query_tokens: the range query lengths are drawn from (LengthSampler).
        mini_batch_size, ppo_epochs: PPO's optimisation of each batch of rollouts.
        kl_target: the KL (nats per sequence) the adaptive controller steers β towards.
        init_kl_coef: β at the start, the weight of the KL penalty.
        min_review_chars: reviews shorter than this are not used as queries.
        min_reward_gain: the rise of the mean reward the learning check asks for.
        grpo_prompt_tokens, grpo_batch_size, grpo_steps, grpo_learning_rate: the optional GRPO section.
    """

    reward_model_name: str = ""
    reward_source: str = "classifier"
    min_query_tokens: int = 2
    max_query_tokens: int = 8
    mini_batch_size: int = 16
    ppo_epochs: int = 4
    kl_target: float = 6.0
    init_kl_coef: float = 0.2
    min_review_chars: int = 0
    min_reward_gain: float = 0.2
    grpo_prompt_tokens: int = 4
    grpo_batch_size: int = 32
    grpo_steps: int = 20
    grpo_learning_rate: float = 1e-3

    def __post_init__(self):
        if self.reward_source not in ("classifier", "lab02"):
            raise ValueError(f"REWARD_SOURCE must be 'classifier' (the sentiment classifier) or 'lab02' (the reward "
                             f"model lab 02 saved), got {self.reward_source!r}.")


@dataclass(frozen=True)
class GenerationConfigLab(LabConfig):
    """Lab 05.

    Parameters:
        prompt: the text every decoding strategy continues.
    """

    prompt: str = "the film was"


@dataclass(frozen=True)
class ScalingUpConfig(LabConfig):
    """Lab 06.

    Parameters:
        system_prompt: the system turn of every conversation.
        lora_target_modules: the linear layers that get adapters (every attention and MLP projection: the
            QLoRA paper needed all of them to match full fine-tuning).
        global_batch_size: examples per optimizer step summed over processes in the launched runs.
        lora_learning_rate, lora_r, lora_alpha: the adapter's learning rate, rank r and scale α (update α/r·BA).
        min_bleu_gain: the BLEU rise the LoRA run's check asks for.
        full_ft_baseline: also fully fine-tune the same budget, to report LoRA's gap.
        qlora: run the 4-bit QLoRA section (needs CUDA and bitsandbytes).
        memory_probe_hidden: width of a same-architecture model whose training memory is measured against the
            formula (``None``: the lab's model itself).
        script_steps: optimizer steps of each launched run.
    """

    system_prompt: str = ""
    lora_target_modules: tuple[str, ...] = ()
    global_batch_size: int = 16
    lora_learning_rate: float = 1e-2
    lora_r: int = 8
    lora_alpha: int = 16
    min_bleu_gain: float = 20
    full_ft_baseline: bool = True
    qlora: bool = False
    memory_probe_hidden: int | None = None
    script_steps: int = 12


CONFIG_CLASSES: dict[str, type[LabConfig]] = {
    "01_instruction_tuning": InstructionTuningConfig,
    "02_reward_modeling": RewardModelingConfig,
    "03_dpo": DPOLabConfig,
    "04_ppo_rlhf": PPOLabConfig,
    "05_generation_parameters": GenerationConfigLab,
    "06_scaling_up": ScalingUpConfig,
}

SET_BY_LAB_CONFIG = ("lab", "profile", "reason", "dtype", "output_dir", "zoo_models")


def field_names(cls: type[LabConfig]) -> list[str]:
    return [f.name for f in fields(cls)]


def _accepts(kind, value) -> bool:
    """Whether ``value`` fits the annotation ``kind`` (int for float, tuples for lists: what a parameter cell gives)."""
    origin = typing.get_origin(kind)
    if kind is typing.Any:
        return True
    if origin in (typing.Union, types.UnionType):
        return any(_accepts(k, value) for k in typing.get_args(kind))
    if kind is type(None):
        return value is None
    if origin is tuple:
        return isinstance(value, (tuple, list))
    if kind is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, kind)


def check_field(cls: type[LabConfig], name: str, value) -> None:
    """Raise one ``ValueError`` naming the field when ``name`` is unknown or ``value`` has the wrong type."""
    hints = typing.get_type_hints(cls)
    if name not in hints:
        known = ", ".join(n.upper() for n in field_names(cls) if n not in SET_BY_LAB_CONFIG)
        raise ValueError(f"Unknown setting {name.upper()!r} for {cls.__name__}; known settings: {known}.")
    if not _accepts(hints[name], value):
        raise ValueError(f"{name.upper()} must be {_describe(hints[name])}, not {value!r} "
                         f"({type(value).__name__}).")


def _describe(kind) -> str:
    if typing.get_origin(kind) in (typing.Union, types.UnionType):
        return " or ".join(_describe(k) for k in typing.get_args(kind))
    if kind is type(None):
        return "None"
    if typing.get_origin(kind) is tuple:
        return "a tuple or list"
    name = str(getattr(kind, "__name__", kind))
    return f"{'an' if name[:1] in 'aeiou' else 'a'} {name}"


def check_table(table: dict[str, dict[str, dict]]) -> None:
    """Every key of every lab's profile blocks is a field of that lab's class, with the field's type."""
    for lab, blocks in table.items():
        cls = CONFIG_CLASSES[lab]
        for block in blocks.values():
            for name, value in block.items():
                check_field(cls, name, value)
