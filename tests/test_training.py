"""labhelpers.training: the one source of every lab's trainer settings, for both profiles."""

from __future__ import annotations

import dataclasses

import pytest

from labhelpers import training
from labhelpers.config import lab_config, profile_values


def config(lab: str, profile: str):
    return lab_config(lab, profile, quiet=True, check_environment=False)


def defaults(lab: str, profile: str) -> dict:
    return profile_values(lab, profile)


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
    real = getattr(trl, name)
    has_new_name = "activation_checkpointing" in {f.name for f in dataclasses.fields(real)}  # transformers >= 5.23
    assert training.checkpointing_field(real) == ("activation_checkpointing" if has_new_name else "gradient_checkpointing")


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
    assert training.checkpointing_field(TrainingArguments) in passed  # the new name from 5.23 on, else the old one
    assert (passed & own) - {"activation_checkpointing"} - TRANSFORMERS_5_15_FIELDS == set()


# TrainingArguments' fields in transformers 5.15.0 that the builders may set (from the wheel's training_args.py)
TRANSFORMERS_5_15_FIELDS = {
    "output_dir", "max_steps", "per_device_train_batch_size", "per_device_eval_batch_size", "learning_rate",
    "lr_scheduler_type", "warmup_steps", "logging_steps", "logging_nan_inf_filter", "eval_strategy", "eval_steps",
    "eval_on_start", "save_strategy", "report_to", "seed", "use_cpu", "bf16", "fp16", "train_sampling_strategy",
    "gradient_checkpointing", "disable_tqdm", "data_seed", "remove_unused_columns",
}


# ---- defect 3 (accelerate's wrapper stays on model.forward) and defect 6 (no finite-loss check) -------------------
def _tiny_lm(seed=0):
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(seed)
    config = GPT2Config(n_layer=2, n_embd=64, n_head=4, vocab_size=96, n_positions=32, resid_pdrop=0.0,
                        embd_pdrop=0.0, attn_pdrop=0.0)
    return GPT2LMHeadModel(config)


def _trainer(model, tmp_path, learning_rate=0.0, max_steps=2, **args):
    import torch
    from datasets import Dataset
    from transformers import Trainer, TrainingArguments

    ids = torch.randint(0, 96, (16, 12), generator=torch.Generator().manual_seed(1))
    data = Dataset.from_dict({"input_ids": ids.tolist(), "labels": ids.tolist()})
    settings = dict(max_steps=max_steps, per_device_train_batch_size=4, learning_rate=learning_rate, bf16=True,
                    use_cpu=True, report_to="none", save_strategy="no", logging_steps=1, disable_tqdm=True,
                    logging_nan_inf_filter=False)
    return Trainer(model=model, args=TrainingArguments(str(tmp_path), **{**settings, **args}), train_dataset=data)


def _max_logit_gap(model, reference) -> float:
    import torch

    ids = torch.arange(24).reshape(2, 12)
    model.eval(), reference.eval()
    with torch.no_grad():
        return (model(input_ids=ids).logits - reference(input_ids=ids).logits).abs().max().item()


def test_trainer_train_leaves_bf16_autocast_on_the_model_and_train_removes_it(tmp_path):
    """At lr = 0 the weights do not move, yet after ``trainer.train()`` under bf16 the model's logits differ from a
    float32 copy's: accelerate's autocast wrapper is still on ``model.forward`` (defect 3)."""
    import copy

    model = _tiny_lm()
    fresh = copy.deepcopy(model)
    _trainer(model, tmp_path).train()
    assert training.has_mixed_precision_wrapper(model)
    wrapped_gap = _max_logit_gap(model, fresh)
    assert 1e-4 < wrapped_gap < 0.1, wrapped_gap  # bf16 rounding of the matrix products: measured about 5e-3

    assert training.unwrap_mixed_precision(model) == 1
    assert not training.has_mixed_precision_wrapper(model) and "forward" not in model.__dict__
    assert _max_logit_gap(model, fresh) <= 1e-6

    model = _tiny_lm()
    output = training.train(_trainer(model, tmp_path))
    assert output.global_step == 2 and not training.has_mixed_precision_wrapper(model)
    assert _max_logit_gap(model, fresh) <= 1e-6


def test_train_unwraps_a_peft_model_and_a_model_trained_twice(tmp_path):
    import copy

    from peft import LoraConfig, get_peft_model

    base = _tiny_lm()
    fresh = copy.deepcopy(base)
    model = get_peft_model(base, LoraConfig(r=2, target_modules=["c_attn"], lora_dropout=0.0))
    trainer = _trainer(model, tmp_path)
    trainer.train()  # a raw train() first: the next prepare wraps the wrapped forward again
    training.train(trainer)
    assert not training.has_mixed_precision_wrapper(model)
    assert _max_logit_gap(model, fresh) <= 1e-6  # LoRA's B starts at 0 and lr = 0 keeps it there


def test_train_keeps_an_accelerate_hook(tmp_path):
    """A model with an accelerate hook (``device_map`` loading, as for QLoRA) keeps working after the unwrap;
    accelerate 1.14's ``extract_model_from_parallel(keep_fp32_wrapper=False)`` broke it (the model bound twice)."""
    import copy

    from accelerate.hooks import ModelHook, add_hook_to_module

    model = _tiny_lm()
    fresh = copy.deepcopy(model)
    add_hook_to_module(model, ModelHook())
    hooked = model.forward
    training.train(_trainer(model, tmp_path))
    assert model.forward is hooked and _max_logit_gap(model, fresh) <= 1e-6


def test_a_nan_loss_stops_training_with_the_step_and_what_to_do(tmp_path):
    import torch

    model = _tiny_lm()
    with torch.no_grad():
        model.transformer.wte.weight[3, 0] = float("nan")  # every position's logits include token 3's: loss NaN
    trainer = _trainer(model, tmp_path, learning_rate=1e-3)
    with pytest.raises(training.NonFiniteLossError, match=r"\(bf16 mixed precision\): the training loss of step 1 is "
                                                          r"nan\. Lower LEARNING_RATE \(now 0.001\)"):
        training.train(trainer)
    assert not training.has_mixed_precision_wrapper(model)  # unwrapped all the same


def test_the_trainers_default_filter_hides_a_nan_loss_and_the_weights_check_catches_it(tmp_path):
    """With ``logging_nan_inf_filter=True`` (the Trainer's default) a NaN step is logged as a finite number; the
    NaN then reaches the weights, which :func:`training.train` also checks."""
    import math

    import torch

    model = _tiny_lm()
    with torch.no_grad():
        model.transformer.wte.weight[3, 0] = float("nan")
    trainer = _trainer(model, tmp_path, learning_rate=1e-3, logging_nan_inf_filter=True)
    with pytest.raises(training.NonFiniteLossError, match=r"trained weight .* NaN or infinite values after 2 steps"):
        training.train(trainer)
    assert all(math.isfinite(h["loss"]) for h in trainer.state.log_history if "loss" in h)


def test_non_finite_fp16_loss_says_what_to_do():
    from types import SimpleNamespace

    trainer = SimpleNamespace(
        args=SimpleNamespace(fp16=True, bf16=False, learning_rate=1e-5),
        state=SimpleNamespace(log_history=[{"loss": 2.1, "step": 10}, {"loss": float("inf"), "step": 20}],
                              global_step=20))
    with pytest.raises(training.NonFiniteLossError) as caught:
        training.check_finite_training(trainer)
    message = str(caught.value)
    assert "logged at step 20 (the mean of steps 11-20) is inf" in message and "fp16" in message and "65504" in message
    assert "bf16" in message and 'DEVICE = "cpu"' in message and "LEARNING_RATE (now 1e-05)" in message
    trainer.state.log_history[-1]["loss"] = 1.9
    training.check_finite_training(trainer)  # finite: no error


# ---- defect 7: greedy means the arg-max, whatever the model's generation_config.json says -----------------------
def test_greedy_generation_config_ignores_the_models_sampling_defaults_and_penalty():
    import torch
    from transformers import GenerationConfig

    model = _tiny_lm(seed=2).eval()  # a model whose output the penalty changes (seed 0's it does not)
    eos = 95
    model.generation_config = GenerationConfig(do_sample=True, repetition_penalty=1.3, temperature=0.7, top_k=20,
                                               top_p=0.8, eos_token_id=eos)
    prompt = torch.tensor([[5, 9, 11, 5]])
    ids = prompt
    with torch.no_grad():  # greedy by hand: the arg-max of the raw logits, token after token
        for _ in range(20):
            next_id = model(input_ids=ids).logits[:, -1].argmax(-1, keepdim=True)
            ids = torch.cat([ids, next_id], dim=1)
            if next_id.item() == eos:
                break
    by_hand = ids[0, prompt.shape[1]:].tolist()
    mask = torch.ones_like(prompt)
    config = training.greedy_generation_config(20, pad_token_id=0, eos_token_id=eos)
    greedy = model.generate(prompt, attention_mask=mask, generation_config=config)[0, prompt.shape[1]:].tolist()
    assert greedy == by_hand
    # what a lab got before: do_sample=False alone keeps the model's repetition_penalty
    kept_penalty = model.generate(prompt, attention_mask=mask, do_sample=False, max_new_tokens=20,
                                  pad_token_id=0)[0, prompt.shape[1]:].tolist()
    assert kept_penalty != by_hand
    assert model.generation_config.repetition_penalty == 1.3  # the model's own config is left alone


# ---- LABS_CPU_AUTOCAST: bf16 autocast on the CPU, through the trainers' own flags --------------------------------
def test_cpu_autocast_variable_makes_the_cpu_config_bf16(monkeypatch):
    from labhelpers.config import resolve_device_dtype

    monkeypatch.setattr("torch.cuda.is_available", lambda: False)
    monkeypatch.delenv("LABS_CPU_AUTOCAST", raising=False)
    assert resolve_device_dtype("tiny") == resolve_device_dtype("full") == ("cpu", "float32")
    monkeypatch.setenv("LABS_CPU_AUTOCAST", "bf16")
    assert resolve_device_dtype("tiny") == resolve_device_dtype("full") == ("cpu", "bfloat16")
    cfg = config("02", "tiny")
    assert cfg.bf16 and cfg.use_cpu and not cfg.fp16
    assert "bfloat16 (LABS_CPU_AUTOCAST: the trainers run bfloat16 autocast on the CPU" in cfg.table()
    for args in (training.reward_args(cfg), training.sft_args(config("01", "tiny")),
                 training.grpo_args(config("04", "tiny"))):
        assert (args.bf16, args.use_cpu, args.fp16) == (True, True, False)
    monkeypatch.setenv("LABS_CPU_AUTOCAST", "")
    assert resolve_device_dtype("tiny") == ("cpu", "float32") and "LABS_CPU_AUTOCAST" not in config("02", "tiny").table()


@pytest.mark.parametrize("value", ["fp16", "bfloat16 ", "yes"])
def test_a_wrong_cpu_autocast_value_is_named(value, monkeypatch):
    from labhelpers.config import resolve_device_dtype

    monkeypatch.setenv("LABS_CPU_AUTOCAST", value)
    with pytest.raises(ValueError, match=r"LABS_CPU_AUTOCAST=.*set it to 'bf16'.*or leave it unset"):
        resolve_device_dtype("tiny")


def test_ppo_trainer_stops_at_a_non_finite_loss_before_it_reaches_the_weights():
    import torch

    from labhelpers import ppo

    class Tokenizer:
        pad_token_id, eos_token_id = None, 95

        def decode(self, ids, skip_special_tokens=False):
            return " ".join(map(str, ids))

    policy = _tiny_lm().eval()
    trainer = ppo.PPOTrainer(ppo.PPOConfig(show_progress=False, mini_batch_size=2), policy, Tokenizer())
    with torch.no_grad():
        policy.lm_head.weight[7, 0] = float("inf")  # the policy only; the reference is the copy taken before
    before = {name: p.clone() for name, p in trainer.value_head.named_parameters()}
    queries, responses = [torch.tensor([3, 4]), torch.tensor([5, 6])], [torch.tensor([7, 8]), torch.tensor([9])]
    with pytest.raises(training.NonFiniteLossError, match=r"PPO step 1, epoch 1 of 4, minibatch 1\): the loss is nan"
                                                          r".*changed no weight.*learning rate \(now 1.41e-05\)"):
        trainer.step(queries, responses, [1.0, 0.0])
    assert trainer.step_count == 0 and not trainer.history
    assert all(torch.equal(p, before[name]) for name, p in trainer.value_head.named_parameters())


# ---- the labs use these helpers: every trained model loads in an explicit dtype (defect 13), every TRL run goes
# ---- through training.train, and "greedy" is the greedy GenerationConfig -------------------------------------
LABS_USING_THE_HELPERS = ["01_instruction_tuning", "02_reward_modeling", "04_ppo_rlhf"]  # the others: their owner's


@pytest.mark.parametrize("stem", LABS_USING_THE_HELPERS)
def test_labs_load_models_in_an_explicit_dtype_and_train_through_training_train(stem):
    import re

    from lab_cells import calls, lab_code, model_loads

    code = lab_code(stem)  # without comments (they may name trainer.train())
    loads = model_loads(code)
    loads += [c for c in calls(code, "pipeline(") if re.search(r"model=(cfg\.|\")", c)]  # a name, not a model
    assert loads, stem
    assert [c for c in loads if "dtype=" not in c] == [], f"{stem}: a model loads without an explicit dtype"
    assert not re.search(r"\w*trainer\w*\.train\(\)", code), f"{stem}: a trainer.train() outside training.train"
    assert "do_sample=False" not in code, f"{stem}: greedy decoding without training.greedy_generation_config"
