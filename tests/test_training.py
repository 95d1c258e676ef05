"""labhelpers.training: the one source of every lab's trainer settings, for both profiles."""

from __future__ import annotations

import dataclasses

import pytest

from labhelpers import training
from labhelpers.config import LAB_DEFAULTS, lab_config


def config(lab: str, profile: str):
    return lab_config(lab, profile, quiet=True, check_environment=False)


def defaults(lab: str, profile: str) -> dict:
    table = LAB_DEFAULTS[lab]
    return {**table.get("common", {}), **table[profile]}


@pytest.mark.parametrize("profile", ["tiny", "full"])
def test_sft_args_carry_the_lab_table_and_group_batches_by_length(profile):
    want = defaults("01_instruction_tuning", profile)
    args = training.sft_args(config("01", profile))
    assert (args.per_device_train_batch_size, args.max_length, args.max_steps, args.learning_rate) == (
        want["batch_size"], want["max_length"], want["max_steps"], want["learning_rate"])
    assert args.train_sampling_strategy == "group_by_length"
    assert args.completion_only_loss is True and args.padding_free is False and args.packing is False
    assert getattr(args, training.checkpointing_field(type(args))) is False and args.report_to == []
    assert args.logging_nan_inf_filter is False  # a NaN step loss is logged as NaN, for training.train to see
    assert training.sft_args(config("01", profile), completion_only_loss=False).completion_only_loss is False


@pytest.mark.parametrize("profile", ["tiny", "full"])
def test_reward_and_dpo_args_carry_the_lab_table(profile):
    want = defaults("02_reward_modeling", profile)
    args = training.reward_args(config("02", profile))
    assert (args.per_device_train_batch_size, args.max_length, args.eval_steps) == (
        want["batch_size"], want["max_length"], want["eval_steps"])
    assert getattr(args, training.checkpointing_field(type(args))) is False  # RewardConfig's default is True

    want = defaults("03_dpo", profile)
    args = training.dpo_args(config("03", profile), "dpo-sft", ["sigmoid", "sft"], [1.0, 0.5])
    assert (args.beta, args.per_device_train_batch_size, args.max_length) == (
        want["beta"], want["batch_size"], want["max_length"])
    assert args.precompute_ref_log_probs is True
    assert args.loss_type == ["sigmoid", "sft"] and args.loss_weights == [1.0, 0.5]
    assert args.output_dir.endswith("dpo-sft")


@pytest.mark.parametrize("profile", ["tiny", "full"])
def test_cpu_configs_never_ask_for_bf16_and_never_report_or_save(profile, monkeypatch):
    monkeypatch.setattr("torch.cuda.is_available", lambda: False)  # the CPU, forced: a GPU machine runs this too
    # as on Colab, where tensorboard is installed: report_to="all" (or a missing "none" in an older transformers)
    # would then resolve to it, instead of to [] as on a machine without any integration
    monkeypatch.setattr("transformers.integrations.get_available_reporting_integrations", lambda: ["tensorboard"])
    cfg = config("01", profile)
    for args in (training.sft_args(cfg), training.chat_sft_args(config("06", profile)),
                 training.reward_args(config("02", profile)),
                 training.dpo_args(config("03", profile)), training.grpo_args(config("04", profile))):
        assert args.use_cpu is True and args.bf16 is False and args.fp16 is False
        assert args.report_to == [] and args.save_strategy == "no"  # no logging service, no checkpoints


def test_ppo_config_and_sampling_follow_the_lab_table():
    cfg = config("04", "full")
    ppo = training.ppo_config(cfg)
    want = defaults("04_ppo_rlhf", "full")
    assert (ppo.learning_rate, ppo.init_kl_coef, ppo.mini_batch_size, ppo.kl_target, ppo.total_steps) == (
        want["learning_rate"], want["init_kl_coef"], want["mini_batch_size"], want["kl_target"], want["max_steps"])

    class Tok:
        eos_token_id = 7

    sampling = training.ppo_generation_kwargs(cfg, Tok())
    assert sampling == {"do_sample": True, "top_k": 0, "top_p": 1.0, "temperature": 1.0,
                        "max_new_tokens": want["max_new_tokens"], "pad_token_id": 7}
    grpo = training.grpo_args(cfg)
    assert (grpo.max_steps, grpo.max_completion_length, grpo.num_generations) == (
        want["grpo_steps"], want["max_new_tokens"], 8)


def test_changes_override_and_a_misspelt_change_is_an_error():
    cfg = config("01", "tiny")
    assert training.sft_args(cfg, max_steps=3, output_dir="elsewhere").max_steps == 3
    with pytest.raises(TypeError, match="max_stepz"):
        training.sft_args(cfg, max_stepz=3)


def test_show_settings_lists_exactly_what_the_lab_changed(capsys):
    args = training.dpo_args(config("03", "tiny"))
    changed = training.changed_settings(args)
    assert changed["precompute_ref_log_probs"] is True and changed["max_steps"] == 40
    assert "beta" not in changed  # 0.1 is DPOConfig's default too
    assert "output_dir" not in changed and "accelerator_config" not in changed  # derived, not chosen
    training.show_settings(args)
    out = capsys.readouterr().out
    assert out.startswith(f"DPOConfig: {len(changed)} settings differ") and "'steps'" in out  # enums by value


# ---- defect 1: the activation-checkpointing switch under the name the installed transformers knows ----------------
def _before_the_rename(config_class):
    """``config_class`` as transformers before 5.23 defines it: ``gradient_checkpointing``, no
    ``activation_checkpointing`` (Colab's 5.15.0). A plain dataclass of the same fields, without ``__post_init__``."""
    fields = [(f.name, f.type, dataclasses.field(default=None)) for f in dataclasses.fields(config_class)
              if f.init and not f.name.startswith("activation_checkpointing")]
    return dataclasses.make_dataclass(f"{config_class.__name__}Before523", fields)


@pytest.mark.parametrize("name, build, lab", [
    ("SFTConfig", training.sft_args, "01"), ("SFTConfig", training.chat_sft_args, "06"),
    ("RewardConfig", training.reward_args, "02"), ("DPOConfig", training.dpo_args, "03"),
    ("GRPOConfig", training.grpo_args, "04")])
def test_configs_build_with_transformers_before_the_rename(name, build, lab, monkeypatch):
    """With transformers 5.15 every TRL config raised TypeError: unexpected keyword 'activation_checkpointing'."""
    import trl

    old = _before_the_rename(getattr(trl, name))
    monkeypatch.setattr(trl, name, old)
    args = build(config(lab, "tiny"))
    assert type(args) is old and args.gradient_checkpointing is False and args.logging_nan_inf_filter is False
    assert training.checkpointing_field(old) == "gradient_checkpointing"
    monkeypatch.undo()
    assert training.checkpointing_field(getattr(trl, name)) == "activation_checkpointing"  # transformers >= 5.23


def test_every_field_the_builders_pass_exists_in_transformers_5_15(monkeypatch):
    """Colab's transformers 5.15.0 (``TRANSFORMERS_5_15_FIELDS``, read from its training_args.py) knows every
    TrainingArguments field the builders pass; the other fields are TRL 1.16's own."""
    from transformers import TrainingArguments

    passed = set()
    build_one = training._build

    def spy(config_class, settings, changes):
        passed.update(settings, changes)
        return build_one(config_class, settings, changes)

    monkeypatch.setattr(training, "_build", spy)
    for build, lab in ((training.sft_args, "01"), (training.chat_sft_args, "06"), (training.reward_args, "02"),
                       (training.dpo_args, "03"), (training.grpo_args, "04")):
        build(config(lab, "full"))
    own = {f.name for f in dataclasses.fields(TrainingArguments)}
    assert "activation_checkpointing" in passed  # this transformers (>= 5.23) has it; 5.15 gets the old name
    assert (passed & own) - {"activation_checkpointing"} - TRANSFORMERS_5_15_FIELDS == set()


# TrainingArguments' fields in transformers 5.15.0 that the builders may set (from the wheel's training_args.py)
TRANSFORMERS_5_15_FIELDS = {
    "output_dir", "max_steps", "per_device_train_batch_size", "per_device_eval_batch_size", "learning_rate",
    "lr_scheduler_type", "warmup_steps", "logging_steps", "logging_nan_inf_filter", "eval_strategy", "eval_steps",
    "eval_on_start", "save_strategy", "report_to", "seed", "use_cpu", "bf16", "fp16", "train_sampling_strategy",
    "gradient_checkpointing", "disable_tqdm", "data_seed", "remove_unused_columns",
}
