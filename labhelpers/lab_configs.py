"""One frozen, typed config class per lab: its fields, their help, and their values in every profile.

Each class reads top to bottom: its fields, each with its help (``field(metadata={"help": ...})``), then
``PROFILES``: the values every profile shares (``"common"``) and one block per profile, which overrides them.
:func:`profile_values` is the one place that merges them. Every block is checked when this module is imported,
so a renamed option fails there, naming the lab and the field, not when a notebook reaches the cell that reads
it. A field without a default must be set in every profile, which the same check asserts.

The classes are named ``<LabTopic>Config`` after the lab's stem (``03_dpo`` is spelled out, since
``trl.DPOConfig`` is the trainer's own class). They are plain dataclasses: they pickle and deep-copy, so
spawn-based DataLoader workers can receive them.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar

PROFILE_NAMES = ("tiny", "full")  # every profile a class's PROFILES holds, besides "common"
TINY_DATASET = "tiny"  # the DATASET value that means "the built-in synthetic set"
# A model name starting with "zoo:" is a tiny-zoo model, resolved to its local folder by lab_config; one starting
# with "pipeline:" is an earlier lab's saved model, or the zoo's copy of it (labhelpers.stages).


@dataclass(frozen=True)
class LabConfig:
    """What every lab's config holds; :func:`labhelpers.config.lab_config` resolves it."""

    lab: str = field(metadata={"help": 'The lab\'s notebook stem, e.g. "01_instruction_tuning".'})
    profile: str = field(metadata={"help": 'The profile resolved from PROFILE: "tiny" or "full".'})
    reason: str = field(metadata={"help": "One line saying why this profile was chosen."})
    model_name: str = field(metadata={"help": "A Hub id or a local folder (a tiny zoo model's folder in tiny)."})
    dataset: str | None = field(
        default=None, metadata={"help": 'A Hub id, a local file, or "tiny" for the built-in synthetic set.'})
    max_steps: int | None = field(default=None, metadata={"help": "Optimizer steps of the training run."})
    batch_size: int | None = field(default=None, metadata={"help": "Examples per optimizer step."})
    learning_rate: float | None = field(default=None, metadata={"help": "Peak learning rate."})
    max_length: int | None = field(
        default=None, metadata={"help": "Tokens per training sequence (longer ones are truncated)."})
    max_new_tokens: int | None = field(default=None, metadata={"help": "Tokens generated per prompt."})
    n_train: int | None = field(default=None, metadata={"help": "Training examples (a seeded random subset)."})
    n_test: int | None = field(default=None, metadata={"help": "Held-out examples (a seeded random subset)."})
    seed: int = field(default=42, metadata={"help": "Seeds the split, the initialisation and the data order."})
    device: str = field(default="cpu", metadata={"help": "Where the lab trains (see resolve_device_dtype)."})
    dtype: str = field(default="float32", metadata={"help": "The precision the lab trains in."})
    output_dir: str = field(
        default="outputs", metadata={"help": "Where trainers write (nothing is saved unless a lab says so)."})
    cpu_threads: int | None = field(
        default=None, metadata={"help": "Torch threads on a CPU (None: torch's default; 1 is fastest for tiny "
                                        "models, where syncing threads costs more than it saves)."})
    zoo_models: tuple[str, ...] = field(
        default=(), metadata={"help": "The tiny zoo models the model fields name (prepare_lab builds them)."})
    start: str | None = field(
        default=None, metadata={"help": "One line saying what the lab starts from and why (prepare_lab prints it)."})

    PROFILES: ClassVar[dict[str, dict[str, Any]]] = {}
    # Per profile, why the lab starts from its default model when that is not the pipeline's model ("pipeline:sft"
    # says it itself): the line prepare_lab prints. A lab without an entry says nothing.
    STARTS_FROM: ClassVar[dict[str, str]] = {}

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
        known = self.lab in CONFIG_CLASSES and self.profile in PROFILE_NAMES
        return self.dataset == (profile_values(self.lab, self.profile) if known else {}).get("dataset")

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)

    def table(self) -> str:
        rows = [(k, v) for k, v in self.as_dict().items()
                if k not in ("reason", "zoo_models", "start") and v is not None]
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


@dataclass(frozen=True, kw_only=True)
class InstructionTuningConfig(LabConfig):
    """Lab 01: supervised fine-tuning on instructions, with and without masking the prompt."""

    response_template: str = field(
        metadata={"help": "The line after which the answer starts; everything up to it is masked."})
    min_bleu_gain: float = field(metadata={"help": "The BLEU rise the bleu_improves check asks for."})
    min_generalising_rise: float = field(metadata={
        "help": "The rise of the share of right held-out answers on the tiny world's generalising kinds "
                "(judging.GENERALISING_KINDS) that exact_match_rises_on_generalising_tasks asks for."})
    min_code_pass_rise: float = field(metadata={
        "help": "The rise of the share of held-out code answers passing their tests (labhelpers.execution) that "
                "code_passes_tests_rises asks for."})

    PROFILES = {
        "common": {"seed": 42, "response_template": "### Response:"},
        # 250 steps on tiny-opt pre-trained with commented code: held-out function/loop/review answers right
        # 3% -> 68% (150 steps on the old tiny-opt: 0% -> 0%); 80 test rows give each task kind a few rows
        "tiny": {"model_name": "zoo:tiny-opt", "dataset": TINY_DATASET, "n_train": 400, "n_test": 80,
                 "max_steps": 250, "batch_size": 16, "learning_rate": 3e-3, "max_length": 128,
                 "max_new_tokens": 24, "min_bleu_gain": 15, "min_generalising_rise": 0.3,
                 "min_code_pass_rise": 0.3, "cpu_threads": 1},
        # real code answers are long and varied: 400 steps of opt-350m gain fewer BLEU points than the tiny
        # model gains on its short synthetic tasks
        "full": {"model_name": "facebook/opt-350m", "dataset": "sahil2801/CodeAlpaca-20k", "n_train": 2000,
                 "n_test": 100, "max_steps": 400, "batch_size": 8, "learning_rate": 5e-5, "max_length": 512,
                 "max_new_tokens": 128, "min_bleu_gain": 5, "min_generalising_rise": 0.0,
                 "min_code_pass_rise": 0.0, "cpu_threads": None},
    }


@dataclass(frozen=True, kw_only=True)
class RewardModelingConfig(LabConfig):
    """Lab 02: a reward model trained on preference pairs."""

    logging_steps: int = field(metadata={"help": "How often RewardTrainer logs the training loss."})
    eval_steps: int = field(metadata={"help": "How often RewardTrainer logs the held-out loss and accuracy."})

    PROFILES = {
        "common": {"seed": 42},
        # lab 01's SFT model (an OPT, with a <pad> of its own), or the zoo's copy when lab 01 has not run here
        "tiny": {"model_name": "pipeline:sft", "dataset": TINY_DATASET, "n_train": 400, "n_test": 100,
                 "max_steps": 120, "batch_size": 16, "learning_rate": 2e-3, "max_length": 64,
                 "logging_steps": 10, "eval_steps": 20, "cpu_threads": 1},
        "full": {"model_name": "gpt2", "dataset": "Dahoas/synthetic-instruct-gptj-pairwise", "n_train": 4000,
                 "n_test": 400, "max_steps": 500, "batch_size": 8, "learning_rate": 2e-5, "max_length": 512,
                 "logging_steps": 25, "eval_steps": 100, "cpu_threads": None},
    }
    STARTS_FROM = {
        "full": "This lab starts from gpt2, not lab 01's opt-350m SFT model: that model was tuned on CodeAlpaca's "
                "code tasks in the Alpaca format, while these pairs (Dahoas/synthetic-instruct-gptj-pairwise) are "
                "general questions in the Human/Assistant format, and gpt2 (124 M parameters, opt-350m 331 M) keeps "
                "the reward model small on a T4.",
    }


@dataclass(frozen=True, kw_only=True)
class DirectPreferenceOptimizationConfig(LabConfig):
    """Lab 03: DPO, and DPO with an SFT term, against a frozen reference model."""

    beta: float = field(metadata={"help": "DPO's β, the weight of the implicit KL to the reference model."})
    sft_weight: float = field(
        metadata={"help": "Weight of the SFT term (NLL of the chosen answer) in the DPO+SFT run."})
    max_prompt_tokens: int = field(
        metadata={"help": "Longer prompts are dropped (DPOConfig has no max_prompt_length any more)."})
    min_pref_accuracy: float = field(
        metadata={"help": "The threshold of the held-out preference-accuracy check."})
    judge: str | None = field(
        metadata={"help": 'How generations are scored: "review" for the tiny set\'s one-line reviews, None to '
                          "only show them."})
    prompt_format: str = field(
        metadata={"help": 'How prompts are written: "instruction" (lab 01\'s "### Instruction: ... ### Response:", '
                          'what its SFT model answers) or "dialogue" ("Human: ... Assistant:" turns, for a base model).'})

    PROFILES = {
        "common": {"seed": 42, "beta": 0.1, "sft_weight": 1.0},
        # lab 01's SFT model (or the zoo's copy), asked in the format it was tuned on
        "tiny": {"model_name": "pipeline:sft", "dataset": TINY_DATASET, "n_train": 320, "n_test": 60,
                 "max_steps": 40, "batch_size": 8, "learning_rate": 1e-3, "max_length": 64,
                 "max_new_tokens": 16, "max_prompt_tokens": 32, "min_pref_accuracy": 0.7,
                 "judge": "review", "prompt_format": "instruction", "cpu_threads": 1},
        "full": {"model_name": "gpt2", "dataset": "trl-lib/ultrafeedback_binarized", "n_train": 2000,
                 "n_test": 200, "max_steps": 250, "batch_size": 8, "learning_rate": 1e-5, "max_length": 512,
                 "max_new_tokens": 64, "max_prompt_tokens": 256, "min_pref_accuracy": 0.55,
                 "judge": None, "prompt_format": "dialogue", "cpu_threads": None},
    }
    STARTS_FROM = {
        "full": "This lab starts from gpt2 (policy and reference), not lab 01's opt-350m SFT model: that model was "
                "tuned on CodeAlpaca's code tasks in the Alpaca format, while UltraFeedback's prompts are general "
                "chat, and DPO holds two copies of the model, which gpt2 (124 M parameters, opt-350m 331 M) keeps "
                "small on a T4.",
    }

    def __post_init__(self):
        if self.prompt_format not in ("instruction", "dialogue"):
            raise ValueError(f'PROMPT_FORMAT must be "instruction" or "dialogue", got {self.prompt_format!r}.')


@dataclass(frozen=True, kw_only=True)
class PPORLHFConfig(LabConfig):
    """Lab 04: RLHF with PPO towards positive reviews, and an optional GRPO section."""

    reward_model_name: str = field(metadata={"help": "The sentiment classifier whose P(POSITIVE) is the reward."})
    reward_source: str = field(
        metadata={"help": 'What scores the rollouts: "classifier" (that classifier\'s P(POSITIVE)) or "lab02" (the '
                          "reward model lab 02 saved for this profile, see reward.saved_reward_model_dir)."})
    query_source: str = field(
        metadata={"help": 'What the queries are: "openings" (review openings cut by LengthSampler) or "requests" '
                          "(lab 01's review request, whole, in lab 01's prompt format)."})
    test_nouns: int = field(
        metadata={"help": 'With "requests": how many film nouns only the held-out requests name (never trained on).'})
    min_query_tokens: int = field(metadata={"help": "Shortest query length LengthSampler draws."})
    max_query_tokens: int = field(metadata={"help": "Longest query length LengthSampler draws."})
    mini_batch_size: int = field(metadata={"help": "Rollouts per PPO optimisation step."})
    ppo_epochs: int = field(metadata={"help": "Passes PPO makes over each batch of rollouts."})
    kl_target: float = field(
        metadata={"help": "The KL (nats per sequence) the adaptive controller steers β towards."})
    init_kl_coef: float = field(metadata={"help": "β at the start, the weight of the KL penalty."})
    min_review_chars: int = field(metadata={"help": "Reviews shorter than this are not used as queries."})
    min_reward_gain: float = field(
        metadata={"help": "The rise of the mean held-out reward, in the reward's units, that the learning check "
                          "asks for."})
    min_objective_gain: float = field(
        metadata={"help": "The rise of score − β·KL per response, the mean of the last quarter of the PPO steps "
                          "over the mean of the first, that the objective check asks for."})
    grpo_prompt_tokens: int = field(metadata={"help": "Prompt tokens of the GRPO section."})
    grpo_batch_size: int = field(metadata={"help": "Completions per GRPO step."})
    grpo_steps: int = field(metadata={"help": "Optimizer steps of the GRPO section."})
    grpo_learning_rate: float = field(metadata={"help": "Learning rate of the GRPO section."})

    PROFILES = {
        "common": {"seed": 42, "reward_source": "classifier", "min_query_tokens": 2, "max_query_tokens": 8,
                   "ppo_epochs": 4, "kl_target": 6.0, "grpo_prompt_tokens": 4, "grpo_batch_size": 32,
                   "query_source": "openings", "test_nouns": 0},
        # tiny is the pipeline: lab 01's SFT model answers lab 01's review request, lab 02's reward model scores
        # it (the classifier judges beside it); one minibatch of all 32 rollouts, 4 updates a step. The SFT model
        # starts near +3.8 of lab 02's ceiling of about +5.5 on the training requests, so score − β·KL can rise
        # by about a unit at most: seeds 42/0/1 rose 0.46/0.76/0.64 with β 0.2 over 30 steps (0.30-1.23 with β 0.5,
        # less over 20 steps, where the first quarter already holds most of the learning); 128 held-out samples
        # keep the before/after reward's noise (a reward is about +5.4 or -5.8) well under its +1.9-3.0 rise
        "tiny": {"model_name": "pipeline:sft", "reward_model_name": "zoo:tiny-sentiment", "reward_source": "lab02",
                 "query_source": "requests", "test_nouns": 3,
                 "dataset": TINY_DATASET, "n_train": 512, "n_test": 128, "max_steps": 30, "batch_size": 32,
                 "mini_batch_size": 32, "learning_rate": 3e-4, "max_new_tokens": 12, "init_kl_coef": 0.2,
                 "min_review_chars": 0, "min_reward_gain": 1.5, "min_objective_gain": 0.2, "grpo_steps": 20,
                 "grpo_learning_rate": 3e-4, "cpu_threads": 1},
        "full": {"model_name": "lvwerra/gpt2-imdb", "reward_model_name": "lvwerra/distilbert-imdb",
                 "dataset": "stanfordnlp/imdb", "n_train": 3000, "n_test": 128, "max_steps": 120,
                 "batch_size": 64, "mini_batch_size": 16, "learning_rate": 1.41e-5, "max_new_tokens": 16,
                 "init_kl_coef": 0.1, "min_review_chars": 200, "min_reward_gain": 0.1, "min_objective_gain": 0.0,
                 "grpo_steps": 150, "grpo_learning_rate": 2e-5, "cpu_threads": None},
    }
    STARTS_FROM = {
        "full": "This lab starts from lvwerra/gpt2-imdb, not lab 01's opt-350m SFT model: the goal is positive "
                "movie reviews, scored by lvwerra/distilbert-imdb, and gpt2-imdb is GPT-2 fine-tuned on IMDB "
                "reviews, so it writes reviews from the first step, where lab 01's model writes code answers. It "
                "scores with that classifier, not lab 02's reward model: Dahoas's pairs prefer helpful answers, "
                "not positive reviews.",
    }

    def __post_init__(self):
        if self.query_source not in ("openings", "requests"):
            raise ValueError(f"query_source must be 'openings' or 'requests', got {self.query_source!r}.")
        if self.reward_source not in ("classifier", "lab02"):
            raise ValueError(f"REWARD_SOURCE must be 'classifier' (the sentiment classifier) or 'lab02' (the reward "
                             f"model lab 02 saved), got {self.reward_source!r}.")


@dataclass(frozen=True, kw_only=True)
class GenerationParametersConfig(LabConfig):
    """Lab 05: decoding strategies on one prompt (it trains nothing)."""

    prompt: str = field(metadata={"help": "The text every decoding strategy continues."})

    PROFILES = {
        "common": {"seed": 42, "prompt": "the film was"},
        "tiny": {"model_name": "zoo:tiny-gpt2", "max_new_tokens": 20},
        "full": {"model_name": "gpt2", "max_new_tokens": 40},
    }


@dataclass(frozen=True, kw_only=True)
class ScalingUpConfig(LabConfig):
    """Lab 06: LoRA, QLoRA, the memory formula, and launched multi-process runs."""

    system_prompt: str = field(metadata={"help": "The system turn of every conversation."})
    lora_target_modules: tuple[str, ...] = field(
        metadata={"help": "The linear layers that get adapters: every attention and MLP projection (the QLoRA "
                          "paper needed all of them to match full fine-tuning)."})
    global_batch_size: int = field(
        metadata={"help": "Examples per optimizer step, summed over processes, in the launched runs."})
    lora_learning_rate: float = field(metadata={"help": "The adapter's learning rate."})
    lora_r: int = field(metadata={"help": "The adapter's rank r."})
    lora_alpha: int = field(metadata={"help": "The adapter's scale α (the update is α/r·BA)."})
    min_bleu_gain: float = field(metadata={"help": "The BLEU rise the LoRA run's check asks for."})
    full_ft_baseline: bool = field(
        metadata={"help": "Also fully fine-tune the same budget, to report LoRA's gap."})
    qlora: bool = field(metadata={"help": "Run the 4-bit QLoRA section (needs CUDA and bitsandbytes)."})
    memory_probe_hidden: int | None = field(
        metadata={"help": "Width of a same-architecture model whose training memory is measured against the "
                          "formula (None: the lab's model itself)."})
    script_steps: int = field(metadata={"help": "Optimizer steps of each launched run."})

    PROFILES = {
        "common": {"seed": 42, "system_prompt": "You are a helpful assistant. Answer with the result only.",
                   "lora_target_modules": ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj",
                                           "down_proj"),
                   "global_batch_size": 16},
        # a short system prompt: a tiny model's step costs by the token, and every conversation carries it
        "tiny": {"model_name": "zoo:tiny-qwen2", "dataset": TINY_DATASET, "n_train": 400, "n_test": 40,
                 "system_prompt": "Answer briefly.",
                 "max_steps": 100, "batch_size": 16, "learning_rate": 3e-3, "lora_learning_rate": 1e-2, "lora_r": 8,
                 "lora_alpha": 16, "max_length": 128, "max_new_tokens": 24, "min_bleu_gain": 10,
                 "full_ft_baseline": True, "qlora": False, "memory_probe_hidden": 1024, "script_steps": 12,
                 "cpu_threads": 1},
        # no full fine-tuning baseline: 16 bytes per parameter plus activations crowd a T4
        "full": {"model_name": "Qwen/Qwen2.5-0.5B-Instruct", "dataset": "sahil2801/CodeAlpaca-20k", "n_train": 2000,
                 "n_test": 100, "max_steps": 300, "batch_size": 8, "learning_rate": 1e-5, "lora_learning_rate": 2e-4,
                 "lora_r": 16, "lora_alpha": 32, "max_length": 512, "max_new_tokens": 128, "min_bleu_gain": 2,
                 "full_ft_baseline": False, "qlora": True, "memory_probe_hidden": None, "script_steps": 20,
                 "cpu_threads": None},
    }


# The labs with a config, in course order (the overview, lab 00, trains nothing and has none).
CONFIG_CLASSES: dict[str, type[LabConfig]] = {
    "01_instruction_tuning": InstructionTuningConfig,
    "02_reward_modeling": RewardModelingConfig,
    "03_dpo": DirectPreferenceOptimizationConfig,
    "04_ppo_rlhf": PPORLHFConfig,
    "05_generation_parameters": GenerationParametersConfig,
    "06_scaling_up": ScalingUpConfig,
}

SET_BY_LAB_CONFIG = ("lab", "profile", "reason", "dtype", "output_dir", "zoo_models", "start")


def config_labs() -> list[str]:
    """The stems of the labs with a config, in course order."""
    return list(CONFIG_CLASSES)


def profile_values(lab: str, profile: str) -> dict[str, Any]:
    """A lab's values in one profile: its ``common`` block overridden by the profile's (a new dict each call).

    ``lab`` is the stem (``"03_dpo"``; :func:`labhelpers.config.resolve_lab` turns ``"03"`` into it).
    """
    if lab not in CONFIG_CLASSES:
        raise ValueError(f"Lab {lab!r} has no config; the labs with one are {', '.join(CONFIG_CLASSES)}.")
    if profile not in PROFILE_NAMES:
        raise ValueError(f"Unknown profile {profile!r} for lab {lab}; the profiles are {', '.join(PROFILE_NAMES)}.")
    blocks = CONFIG_CLASSES[lab].PROFILES
    return {**blocks["common"], **blocks[profile]}


# The checks of names, types and profile blocks (labhelpers.setting_checks) need the classes above.
from .setting_checks import check_field, check_profiles  # noqa: E402

check_profiles()  # at import, so a renamed or mistyped option fails before any notebook runs
