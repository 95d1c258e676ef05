"""labhelpers.training: the one source of every lab's trainer settings, for both profiles."""

from __future__ import annotations

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
    assert args.activation_checkpointing is False and args.report_to == []
    assert training.sft_args(config("01", profile), completion_only_loss=False).completion_only_loss is False


@pytest.mark.parametrize("profile", ["tiny", "full"])
def test_reward_and_dpo_args_carry_the_lab_table(profile):
    want = defaults("02_reward_modeling", profile)
    args = training.reward_args(config("02", profile))
    assert (args.per_device_train_batch_size, args.max_length, args.eval_steps) == (
        want["batch_size"], want["max_length"], want["eval_steps"])
    assert args.activation_checkpointing is False  # RewardConfig's default is True

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
