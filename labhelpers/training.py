"""The trainer settings of every lab, in one place: the notebooks and the GPU benchmark build them here.

Each function turns a :class:`~labhelpers.config.LabConfig` into the config object its trainer takes, so the
full profile that ``benchmarks/gpu_full_profile.py`` measures is the one the notebooks train, not a copy.
``**changes`` overrides any field (a benchmark shortens ``max_steps``, a lab names its ``output_dir``)::

    args = sft_args(cfg)                          # lab 01
    show_settings(args)                           # the settings that differ from the trainer's defaults
    trainer = SFTTrainer(model=model, args=args, ...)
    training.train(trainer)                       # train, unwrap, check that the losses are finite

Settings chosen because a benchmark measured them (``python benchmarks/run.py``) say so where they are set.
:func:`train` runs a TRL trainer and leaves the model as it was loaded (no mixed-precision wrapper), and
:func:`greedy_generation_config` is the one greedy decoding of every lab that says "greedy".
"""

from __future__ import annotations

import dataclasses
import math
import os
from types import FunctionType, MethodType
from typing import Any

from .config import LabConfig


def _precision(cfg: LabConfig) -> dict[str, bool]:
    # TRL configs default to bf16=True, which a CPU and a T4 cannot run: say what the device can do
    return {"use_cpu": cfg.use_cpu, "bf16": cfg.bf16, "fp16": cfg.fp16}


def checkpointing_field(config_class) -> str:
    """The name of the activation-checkpointing switch in this ``TrainingArguments`` class.

    transformers 5.23 renamed ``gradient_checkpointing`` to ``activation_checkpointing`` (the old name stays as a
    deprecated alias); Colab's transformers 5.15 knows only the old name and rejects the new one with a TypeError.
    """
    names = {f.name for f in dataclasses.fields(config_class)}
    return "activation_checkpointing" if "activation_checkpointing" in names else "gradient_checkpointing"


def _trainer_settings(config_class) -> dict[str, Any]:
    """What every TRL config of the labs sets, whatever the trainer.

    * Activation checkpointing off: TRL turns it on by default to save memory; the labs' models fit without it and
      train faster (``benchmarks/bench_trainers.py``). Passed under the name the installed transformers knows.
    * ``logging_nan_inf_filter=False``: by default the Trainer logs a NaN or inf step loss as the mean of the
      previous ones, which hides a diverged run; :func:`train` reads the logged losses to catch it.
    """
    return {checkpointing_field(config_class): False, "logging_nan_inf_filter": False}


def _build_trainer_config(config_class, settings: dict[str, Any], changes: dict[str, Any]):
    """A TRL config (a ``TrainingArguments``): :func:`_trainer_settings`, the lab's settings, then the changes."""
    return _build(config_class, {**_trainer_settings(config_class), **settings}, changes)


def _build(config_class, settings: dict[str, Any], changes: dict[str, Any]):
    known = {f.name for f in dataclasses.fields(config_class)}
    unknown = sorted(set(changes) - known)
    if unknown:
        raise TypeError(f"{config_class.__name__} has no field(s) {', '.join(unknown)}.")
    return config_class(**{**settings, **changes})


def sft_args(cfg: LabConfig, *, completion_only_loss: bool = True, output_dir: str | None = None, **changes):
    """Lab 01: ``SFTConfig`` for instruction tuning on prompt/completion rows.

    Batches are drawn with ``train_sampling_strategy="group_by_length"``: rows of similar length share a batch,
    so less of each batch is padding (``benchmarks/bench_sft.py`` measures it). The flattened ``padding_free``
    form is not used: OPT's attention does not keep the flattened sequences apart without FlashAttention, which a
    T4 and a CPU lack, so each answer would attend to the previous row's tokens (the benchmark's logit error).
    """
    from trl import SFTConfig

    settings = _sft_settings(cfg, output_dir, completion_only_loss=completion_only_loss,
                             train_sampling_strategy="group_by_length")
    return _build_trainer_config(SFTConfig, settings, changes)


def _sft_settings(cfg: LabConfig, output_dir: str | None, **loss_and_batching) -> dict[str, Any]:
    """What labs 01 and 06 share: the run's length, schedule, precision, logging, and no saving or reporting."""
    return dict(
        output_dir=output_dir or cfg.output_dir,
        max_steps=cfg.max_steps,
        per_device_train_batch_size=cfg.batch_size,
        learning_rate=cfg.learning_rate,
        lr_scheduler_type="linear",
        max_length=cfg.max_length,
        logging_steps=max(1, cfg.max_steps // 25),
        save_strategy="no",
        report_to="none",
        seed=cfg.seed,
        **_precision(cfg),
        **loss_and_batching,
    )


def chat_sft_args(cfg: LabConfig, *, output_dir: str | None = None, **changes):
    """Lab 06: ``SFTConfig`` for conversations with ``assistant_only_loss=True``.

    TRL trains only the tokens that the chat template's ``{% generation %}`` markers enclose (the assistant's
    turns). Full fine-tuning and the LoRA and QLoRA runs share these settings; LoRA passes its own ``learning_rate``.
    """
    from trl import SFTConfig

    settings = _sft_settings(cfg, output_dir, assistant_only_loss=True)
    return _build_trainer_config(SFTConfig, settings, changes)


def reward_args(cfg: LabConfig, **changes):
    """Lab 02: ``RewardConfig``; evaluates on the held-out pairs every ``eval_steps`` and once at the start.

    ``RewardConfig`` turns activation checkpointing on by default. gpt2 fits a T4 without it, and steps are faster
    without it with identical losses (``benchmarks/bench_trainers.py``), so it is off (:func:`_trainer_settings`).
    """
    from trl import RewardConfig

    settings = dict(
        output_dir=cfg.output_dir,
        max_steps=cfg.max_steps,
        per_device_train_batch_size=cfg.batch_size,
        per_device_eval_batch_size=cfg.batch_size,
        learning_rate=cfg.learning_rate,
        lr_scheduler_type="linear",
        warmup_steps=0.1,  # a float below 1 is a fraction of max_steps
        max_length=cfg.max_length,
        logging_steps=cfg.logging_steps,
        eval_strategy="steps",
        eval_steps=cfg.eval_steps,
        eval_on_start=True,
        save_strategy="no",
        report_to="none",
        seed=cfg.seed,
        **_precision(cfg),
    )
    return _build_trainer_config(RewardConfig, settings, changes)


def dpo_args(cfg: LabConfig, run_name: str = "dpo", loss_type=("sigmoid",), loss_weights=None, **changes):
    """Lab 03: ``DPOConfig``; both of the lab's runs share it and differ only in the loss.

    ``precompute_ref_log_probs=True``: the frozen reference model scores every pair once before training instead
    of on every step, which gives the same numbers (the reference never changes) for less work
    (``benchmarks/bench_trainers.py`` measures it).
    """
    from trl import DPOConfig

    settings = dict(
        output_dir=os.path.join(cfg.output_dir, run_name),
        beta=cfg.beta,
        loss_type=list(loss_type),
        loss_weights=None if loss_weights is None else list(loss_weights),
        max_length=cfg.max_length,  # prompt + answer tokens, cut from the end
        precompute_ref_log_probs=True,
        max_steps=cfg.max_steps,
        per_device_train_batch_size=cfg.batch_size,
        per_device_eval_batch_size=cfg.batch_size,
        learning_rate=cfg.learning_rate,
        lr_scheduler_type="linear",
        logging_steps=max(1, cfg.max_steps // 20),
        eval_strategy="steps",
        eval_steps=max(1, cfg.max_steps // 4),
        save_strategy="no",
        seed=cfg.seed,
        report_to="none",
        **_precision(cfg),
    )
    return _build_trainer_config(DPOConfig, settings, changes)


def ppo_config(cfg: LabConfig, **changes):
    """Lab 04: :class:`labhelpers.ppo.PPOConfig` with an adaptive KL penalty aiming at ``cfg.kl_target``."""
    from .ppo import PPOConfig

    settings = dict(learning_rate=cfg.learning_rate, mini_batch_size=cfg.mini_batch_size, ppo_epochs=cfg.ppo_epochs,
                    init_kl_coef=cfg.init_kl_coef, adaptive_kl=True, kl_target=cfg.kl_target,
                    total_steps=cfg.max_steps, seed=cfg.seed)
    return _build(PPOConfig, settings, changes)


def ppo_generation_kwargs(cfg: LabConfig, tokenizer) -> dict[str, Any]:
    """Lab 04: how rollouts are sampled: the full distribution (no top-k, no top-p, temperature 1), because PPO's
    probability ratios assume the responses were drawn from the policy itself."""
    return {"do_sample": True, "top_k": 0, "top_p": 1.0, "temperature": 1.0, "max_new_tokens": cfg.max_new_tokens,
            "pad_token_id": tokenizer.eos_token_id}


def grpo_args(cfg: LabConfig, **changes):
    """Lab 04, section 8: ``GRPOConfig``, 8 completions per prompt, the same sampling as the PPO rollouts."""
    from trl import GRPOConfig

    settings = dict(output_dir=os.path.join(cfg.output_dir, "grpo"), num_generations=8,
                    per_device_train_batch_size=cfg.grpo_batch_size, max_completion_length=cfg.max_new_tokens,
                    temperature=1.0, top_k=0, top_p=1.0, learning_rate=cfg.grpo_learning_rate, beta=0.04,
                    max_steps=cfg.grpo_steps, logging_steps=max(1, cfg.grpo_steps // 4), save_strategy="no",
                    disable_dropout=True, seed=cfg.seed, report_to="none",
                    **_precision(cfg))
    return _build_trainer_config(GRPOConfig, settings, changes)


def changed_settings(args) -> dict[str, Any]:
    """The fields of a config that differ from a default one (what a lab chose).

    The default is built the same way (``__post_init__`` fills in derived fields such as the accelerator config)
    with the same output folder and device flags, so only the lab's own choices remain.
    """
    same_device = {k: getattr(args, k) for k in ("output_dir", "use_cpu", "bf16", "fp16") if hasattr(args, k)}
    reference = type(args)(**same_device)
    out = {}
    for f in dataclasses.fields(args):
        if f.init and _differs(getattr(args, f.name), getattr(reference, f.name)):
            out[f.name] = getattr(args, f.name)
    return out


def _differs(value, default) -> bool:
    try:
        return bool(value != default)
    except Exception:  # values without a plain equality (tensors, say) count as changed
        return True


def show_settings(args) -> None:
    """Print the settings a lab chose, one per line, under the config's class name."""
    changed = changed_settings(args)
    width = max(map(len, changed), default=0)
    print(f"{type(args).__name__}: {len(changed)} settings differ from the defaults")
    for name, value in changed.items():
        print(f"  {name:<{width}}  {getattr(value, 'value', value)!r}")  # enums print as their value


# --------------------------------------------------------------------------------------------------
# Running a trainer: train, take accelerate's mixed-precision wrapper off the model, check the losses
# --------------------------------------------------------------------------------------------------
class NonFiniteLossError(FloatingPointError):
    """A training run logged a loss (or left a weight) that is NaN or infinite."""


def train(trainer):
    """``trainer.train()`` for every TRL trainer of the labs; returns its ``TrainOutput``.

    After training it

    1. takes accelerate's mixed-precision wrapper off the trained model (:func:`unwrap_mixed_precision`). With
       ``fp16`` or ``bf16`` the Trainer's accelerator replaces ``model.forward`` by an autocast version whose
       outputs are cast back to float32, and nothing removes it: afterwards every call of the model, in the lab
       too, still runs its matrix products in 16 bits, and differs from the same weights reloaded in float32;
    2. checks that every logged training loss and every trainable weight is finite (:func:`check_finite_training`),
       and otherwise raises :class:`NonFiniteLossError` naming the step and what to do.
    """
    try:
        output = trainer.train()
    finally:  # also after an interrupted run: the model in the notebook is the same object
        for model in _trained_models(trainer):
            unwrap_mixed_precision(model)
    check_finite_training(trainer)
    return output


def _trained_models(trainer) -> list:
    import torch

    found = []
    for name in ("model", "model_wrapped", "ref_model"):
        model = getattr(trainer, name, None)
        if isinstance(model, torch.nn.Module) and all(model is not m for m in found):
            found.append(model)
    return found


def unwrap_mixed_precision(model) -> int:
    """Take accelerate's autocast wrapper off ``model.forward`` and off its submodules; returns how many.

    accelerate (``Accelerator.prepare_model``) keeps the forward it replaced in ``module._original_forward``;
    putting it back is what ``accelerate.utils.extract_model_from_parallel(model, keep_fp32_wrapper=False)`` does.
    That function is not used here: in accelerate 1.14 (Colab's) it binds the restored forward to the model a
    second time, which breaks a model that carries accelerate hooks (loaded with ``device_map``, as for QLoRA):
    ``forward() takes 2 positional arguments but 3 were given``. A forward that was wrapped twice (prepared again
    before it was unwrapped) is peeled to the original as well. A peft model is a module like any other: the
    wrapper sits on the ``PeftModel`` the trainer prepared, and is found among ``model.modules()``.
    """
    count = 0
    for module in model.modules():
        original = module.__dict__.pop("_original_forward", None)
        if original is not None:
            _set_forward(module, original)
            count += 1
        while (inner := _below_fp32_wrapper(module.forward)) is not None:
            _set_forward(module, inner)
            count += 1
    return count


def has_mixed_precision_wrapper(model) -> bool:
    """Whether ``model`` or a submodule still runs through accelerate's autocast + fp32-output wrapper."""
    return any(_below_fp32_wrapper(module.forward) is not None for module in model.modules())


def _below_fp32_wrapper(forward):
    """What accelerate's ``convert_outputs_to_fp32(autocast(f))`` wraps (``f``), or None if ``forward`` is not one.

    The wrappers follow ``functools.wraps``: each has ``__wrapped__``. The chain is ``forward`` -> a
    ``ConvertOutputsToFp32`` -> torch's autocast decorator -> ``f``.
    """
    from accelerate.utils.operations import ConvertOutputsToFp32

    seen = 0
    while forward is not None and seen < 100:
        if isinstance(forward, ConvertOutputsToFp32):
            autocast = forward.model_forward
            return getattr(autocast, "__wrapped__", autocast)
        forward = getattr(forward, "__wrapped__", None)
        seen += 1
    return None


def _set_forward(module, forward) -> None:
    cls_forward = type(module).forward
    if isinstance(forward, MethodType) and forward.__self__ is module:
        forward = forward.__func__
    if forward is cls_forward:
        module.__dict__.pop("forward", None)  # the class's own forward again, as before training
    elif isinstance(forward, FunctionType):
        module.forward = MethodType(forward, module)
    else:  # a functools.partial of an accelerate hook, or another callable already bound to the module
        module.forward = forward


def check_finite_training(trainer) -> None:
    """Raise :class:`NonFiniteLossError` if a logged training loss or a trainable weight is NaN or infinite.

    The loss is read from ``trainer.state.log_history`` (each entry averages the steps since the previous one;
    the labs' configs set ``logging_nan_inf_filter=False`` so that a NaN step is logged as NaN, not hidden).
    """
    args = trainer.args
    previous = 0
    for entry in trainer.state.log_history:
        loss = entry.get("loss")
        if loss is not None and not math.isfinite(loss):
            step = entry.get("step", "?")
            what = (f"the training loss of step {step} is {loss}" if previous + 1 >= step else
                    f"the training loss logged at step {step} (the mean of steps {previous + 1}-{step}) is {loss}")
            raise NonFiniteLossError(_divergence_message(args, what))
        if loss is not None:
            previous = entry.get("step", previous)
    for model in _trained_models(trainer)[:1]:
        for name, param in model.named_parameters():
            if param.requires_grad and param.is_floating_point() and not bool(param.detach().isfinite().all()):
                raise NonFiniteLossError(_divergence_message(
                    args, f"the trained weight {name} holds NaN or infinite values after "
                          f"{trainer.state.global_step} steps"))


def _divergence_message(args, what: str) -> str:
    lr = getattr(args, "learning_rate", None)
    if getattr(args, "fp16", False):
        return (f"Training failed under fp16 mixed precision: {what}. fp16 holds numbers up to 65504; models "
                "trained in bf16 (Qwen2.5 and most recent models) can overflow it. What to do: run on a GPU with "
                "bf16 (compute capability 8 or more, e.g. an L4 or A100; the labs choose bf16 there by themselves), "
                "or train in float32 with DEVICE = \"cpu\" (much slower), or lower LEARNING_RATE "
                f"(now {lr:g}).")
    precision = "bf16 mixed precision" if getattr(args, "bf16", False) else "float32"
    return (f"Training diverged ({precision}): {what}. Lower LEARNING_RATE (now {lr:g}) and run the lab again "
            "from the cell that loads the model; if it persists, look for broken rows in your DATASET.")


# --------------------------------------------------------------------------------------------------
# Greedy decoding
# --------------------------------------------------------------------------------------------------
def greedy_generation_config(max_new_tokens: int, pad_token_id: int | None, eos_token_id=None):
    """A ``GenerationConfig`` that is greedy whatever the model's ``generation_config.json`` says.

    ``generate`` fills every field the config leaves at ``None`` from the model's own generation config, so
    ``generate(do_sample=False)`` keeps, for example, Qwen2.5's ``repetition_penalty=1.1``: the "greedy" answer
    is then not the arg-max of the model's logits. Here every field that changes the logits or the search is set
    to its neutral value: no sampling, one beam, no repetition penalty, no n-gram ban, no minimum length
    (temperature/top-k/top-p at their defaults, which only sampling reads).
    """
    from transformers import GenerationConfig

    return GenerationConfig(
        max_new_tokens=max_new_tokens, pad_token_id=pad_token_id, eos_token_id=eos_token_id,
        do_sample=False, num_beams=1,
        temperature=1.0, top_k=50, top_p=1.0, typical_p=1.0, epsilon_cutoff=0.0, eta_cutoff=0.0,
        repetition_penalty=1.0, encoder_repetition_penalty=1.0, no_repeat_ngram_size=0,
        encoder_no_repeat_ngram_size=0, min_new_tokens=0, length_penalty=1.0,  # min_new_tokens overrides min_length
        guidance_scale=1.0, renormalize_logits=False, remove_invalid_values=False,
    )
