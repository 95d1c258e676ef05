"""LoRA written out (labhelpers.lora) against peft, the memory arithmetic (labhelpers.memory) against counted and
measured figures (with the trainers' own optimizer), QLoRA's adapters back in fp32 after TRL's bf16 cast, and the
chat helpers (labhelpers.chat) against TRL's templates."""

from __future__ import annotations

import pytest
import torch
from peft import LoraConfig, get_peft_model
from transformers import AutoConfig, AutoModelForCausalLM

from labhelpers import chat, memory
from labhelpers.lora import (
    LoRALinear,
    check_target_modules,
    count_lora_parameters,
    linear_module_names,
    trainable_dtypes,
    trainable_fraction,
    trainable_parameters_to_float32,
)

QWEN_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def small_qwen2(seed: int = 0):
    torch.manual_seed(seed)
    config = AutoConfig.for_model("qwen2", hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                                  num_attention_heads=4, num_key_value_heads=2, vocab_size=97, tie_word_embeddings=True)
    return AutoModelForCausalLM.from_config(config).eval()


def peft_linear(d_in=24, d_out=40, r=4, alpha=8, seed=0):
    """A peft LoRA layer around a random linear layer, with a random non-zero B (so every gradient is non-trivial)."""
    torch.manual_seed(seed)
    holder = torch.nn.Sequential()
    holder.add_module("proj", torch.nn.Linear(d_in, d_out))
    layer = get_peft_model(holder, LoraConfig(r=r, lora_alpha=alpha, target_modules=["proj"])).base_model.model.proj
    torch.nn.init.normal_(layer.lora_B["default"].weight, std=0.5)
    return layer


def test_hand_written_lora_equals_peft_in_forward_and_backward():
    layer = peft_linear()
    mine = LoRALinear.from_peft(layer)
    assert mine.scaling == 8 / 4 and mine.lora_A.shape == (4, 24) and mine.lora_B.shape == (40, 4)
    torch.manual_seed(1)
    x = torch.randn(3, 7, 24)
    x_mine, x_peft = x.clone().requires_grad_(), x.clone().requires_grad_()
    out_mine, out_peft = mine(x_mine), layer(x_peft)
    assert torch.allclose(out_mine, out_peft, atol=1e-6)
    assert not torch.allclose(out_peft, layer.get_base_layer()(x), atol=1e-3), "the adapter changes the output"
    weights = torch.randn_like(out_peft)
    (out_mine * weights).sum().backward()
    (out_peft * weights).sum().backward()
    assert torch.allclose(mine.lora_A.grad, layer.lora_A["default"].weight.grad, atol=1e-5)
    assert torch.allclose(mine.lora_B.grad, layer.lora_B["default"].weight.grad, atol=1e-5)
    assert torch.allclose(x_mine.grad, x_peft.grad, atol=1e-5)
    assert mine.base.weight.grad is None and layer.get_base_layer().weight.grad is None, "W stays frozen"


def test_fresh_lora_layer_starts_at_the_base_layer_and_merges_to_one_weight():
    torch.manual_seed(0)
    base = torch.nn.Linear(16, 8)
    fresh = LoRALinear(base, r=2, alpha=4)
    x = torch.randn(5, 16)
    assert torch.equal(fresh(x), base(x)), "B = 0: the adapted layer starts exactly at the base layer"
    assert fresh.lora_A.abs().sum() > 0, "A starts random, else B would get no gradient"
    layer = peft_linear()
    mine = LoRALinear.from_peft(layer)
    delta = layer.get_delta_weight("default")
    assert torch.allclose(mine.merged_weight(), layer.get_base_layer().weight + delta, atol=1e-6)
    x = torch.randn(4, 24)
    merged_out = x @ mine.merged_weight().T + mine.base.bias
    assert torch.allclose(merged_out, mine(x), atol=1e-5)


def test_merge_and_unload_gives_the_adapter_models_logits():
    model = small_qwen2()
    peft_model = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules=QWEN_TARGETS))
    for name, parameter in peft_model.named_parameters():
        if "lora_B" in name:
            torch.nn.init.normal_(parameter, std=0.2)
    ids = torch.randint(0, 97, (2, 11), generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        adapter_logits = peft_model(input_ids=ids).logits
        merged = peft_model.merge_and_unload()
        merged_logits = merged(input_ids=ids).logits
    assert not any("lora" in name for name, _ in merged.named_modules())
    assert (merged_logits - adapter_logits).abs().max() < 1e-4


def test_parameter_counts_equal_peft_and_the_published_sizes():
    model = small_qwen2()
    expected = count_lora_parameters(model, QWEN_TARGETS, r=8)
    per_layer = 8 * ((64 + 64) + (64 + 32) * 2 + (64 + 64) + (64 + 128) * 2 + (128 + 64))
    assert expected == 2 * per_layer
    peft_model = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, target_modules=QWEN_TARGETS))
    trainable, total = trainable_fraction(peft_model)
    assert trainable == expected
    # published sizes (model cards): Qwen2.5-1.5B 1.54B, Qwen2.5-7B 7.61B parameters
    sizes = {name: memory.parameter_counts(memory.reference_config(name), QWEN_TARGETS, 16).total
             for name in memory.REFERENCE_CONFIGS}
    assert sizes["Qwen/Qwen2.5-1.5B-Instruct"] == pytest.approx(1.54e9, rel=0.01)
    assert sizes["Qwen/Qwen2.5-7B-Instruct"] == pytest.approx(7.61e9, rel=0.01)
    half = AutoConfig.for_model("qwen2", hidden_size=896, intermediate_size=4864, num_hidden_layers=24,
                                num_attention_heads=14, num_key_value_heads=2, vocab_size=151936,
                                tie_word_embeddings=True)
    counts = memory.parameter_counts(half, QWEN_TARGETS, 16)
    assert counts.total == pytest.approx(0.494e9, rel=0.005)  # Qwen2.5-0.5B: 0.49B
    assert counts.total - counts.quantized == pytest.approx(151936 * 896, rel=0.01), "embeddings and norms stay 16-bit"


def test_memory_arithmetic():
    counts = memory.ParameterCounts("m", total=1000, quantized=800, lora=10)
    assert memory.training_bytes(counts, "full")["total"] == 16_000
    assert memory.training_bytes(counts, "lora", base_bytes=2)["total"] == 2000 + 160
    qlora = memory.training_bytes(counts, "qlora")
    assert qlora["total"] == pytest.approx(800 * (0.5 + (8 / 64 + 32 / (64 * 256)) / 8) + 200 * 2 + 160)
    with pytest.raises(ValueError, match="choose 'full', 'lora' or 'qlora'"):
        memory.training_bytes(counts, "adapter")
    table = memory.memory_table([memory.parameter_counts(memory.reference_config("Qwen/Qwen2.5-7B-Instruct"),
                                                         QWEN_TARGETS, 16, name="7B")])
    assert table.loc["7B", "full FT B/param"] == 16.0
    assert table.loc["7B", "full FT GiB"] > 100 and table.loc["7B", "QLoRA GiB"] < 15, "QLoRA fits a T4, full FT no"


def test_peak_memory_on_a_cpu_counts_live_tensors_once_and_nothing_in_place():
    mib = 2**20
    kept = torch.zeros(mib // 4)  # made before the block: not counted, even when the block updates it in place
    with memory.PeakMemory("cpu") as peak:
        a = torch.ones(mib)  # 4 MiB
        b = a.view(2, -1)[0]  # a view allocates nothing
        a.mul_(2)
        kept.add_(1)
        del a, b  # freed: the next allocation starts from 0 again
        c = torch.empty(mib // 2)  # 2 MiB
        d = c + 1  # 2 MiB more, while c lives: 4 MiB
        del c, d
    assert peak.peak_bytes == 4 * mib
    with memory.PeakMemory("cpu") as both:
        a, c = torch.ones(mib), torch.ones(mib // 2)
        del a, c
    assert both.peak_bytes == 6 * mib


def test_formula_is_within_25_percent_of_the_peak_measured_with_the_trainers_optimizer():
    config = AutoConfig.for_model("qwen2", hidden_size=768, intermediate_size=3072, num_hidden_layers=2,
                                  num_attention_heads=8, num_key_value_heads=4, vocab_size=1024, tie_word_embeddings=True)
    counts = memory.parameter_counts(config, QWEN_TARGETS, 8)
    load = lambda: AutoModelForCausalLM.from_config(config)  # noqa: E731
    for method in ("full", "lora"):
        measured = memory.measure_training_peak(load, method, target_modules=QWEN_TARGETS, r=8, steps=2)
        assert measured == memory.measure_training_peak(load, method, target_modules=QWEN_TARGETS, r=8, steps=2)
        formula = memory.training_bytes(counts, method, base_bytes=4)["total"]
        assert 1.0 <= measured / formula <= 1.2, (method, measured / formula)  # the formula leaves out activations
        if method == "full":
            fused = measured
    # torch.optim.AdamW() on a GPU takes its foreach path; forced here on the CPU, it holds the same temporary:
    # about 20 bytes per parameter at the peak, where the trainers' fused AdamW stays near the formula's 16
    foreach = memory.measure_training_peak(load, "full", steps=2,
                                           make_optimizer=lambda ps: torch.optim.AdamW(ps, lr=1e-4, foreach=True))
    assert foreach / counts.total >= 19.5 > 18 >= fused / counts.total, (foreach / counts.total, fused / counts.total)


def test_the_trainers_optimizer_is_fused_adamw_without_the_foreach_temporary(tmp_path):
    """memory.trainer_optimizer is what a Trainer creates (TrainingArguments' default optim, adamw_torch_fused), and
    its step holds no temporary, while AdamW's foreach path (torch's default on a GPU) holds 4 bytes per number."""
    from transformers import Trainer, TrainingArguments

    model = small_qwen2()
    trainer = Trainer(model=model, args=TrainingArguments(output_dir=str(tmp_path), report_to="none", use_cpu=True))
    theirs = trainer.create_optimizer()
    ours = memory.trainer_optimizer(model.parameters(), learning_rate=trainer.args.learning_rate)
    assert type(ours) is type(theirs) is torch.optim.AdamW
    assert ours.defaults == theirs.defaults and ours.defaults["fused"] is True
    assert ours.param_groups[0]["weight_decay"] == trainer.args.weight_decay

    numbers = 16 * 1024 * 1024
    extra = {}
    for name, make in (("trainer", memory.trainer_optimizer),
                       ("foreach", lambda ps: torch.optim.AdamW(ps, lr=1e-4, foreach=True))):
        params = [torch.nn.Parameter(torch.randn(1024, 1024)) for _ in range(16)]
        for p in params:
            p.grad = torch.randn_like(p)
        optimizer = make(params)
        optimizer.step()  # the states exist from here on
        with memory.PeakMemory("cpu") as peak:
            optimizer.step()
        extra[name] = peak.peak_bytes / numbers
        del params, optimizer
    assert extra["trainer"] < 0.5 and 3.5 < extra["foreach"] < 4.5, extra


def test_trainable_parameters_to_float32_casts_the_trained_ones_and_leaves_the_frozen_ones():
    model = get_peft_model(small_qwen2(), LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"]))
    model.model.model.embed_tokens.to(torch.bfloat16)  # a frozen half-precision part, as a 4-bit model's embeddings
    for parameter in model.parameters():
        if parameter.requires_grad:
            parameter.data = parameter.data.to(torch.bfloat16)  # what TRL does to a 4-bit model's adapters
    frozen = {n: (p.dtype, p.detach().clone()) for n, p in model.named_parameters() if not p.requires_grad}
    trained = {n: p.detach().float().clone() for n, p in model.named_parameters() if p.requires_grad}
    assert trainable_dtypes(model) == {"bfloat16": 2 * 4 * ((64 + 64) + (64 + 32))}  # 2 layers: q 64→64, v 64→32

    assert trainable_parameters_to_float32(model) == {"float32": sum(t.numel() for t in trained.values())}
    for name, parameter in model.named_parameters():
        if parameter.requires_grad:
            assert parameter.dtype == torch.float32 and torch.equal(parameter.detach(), trained[name]), name
        else:
            dtype, value = frozen[name]
            assert parameter.dtype == dtype and torch.equal(parameter.detach(), value), name
    assert frozen["base_model.model.model.embed_tokens.weight"][0] == torch.bfloat16


def test_trl_casts_a_4bit_models_adapters_to_bf16_and_the_helper_trains_them_in_fp32(tmp_path):
    """TRL 1.16's SFTTrainer casts the trainable parameters of a model loaded in 4 bits to bf16 (the cause of the
    fp16 GradScaler's failure on a T4). bitsandbytes needs a GPU, so the model only carries the flag it sets."""
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    from labhelpers.tiny import build_tokenizer

    tok = build_tokenizer("qwen2")
    config = AutoConfig.for_model("qwen2", hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                                  num_attention_heads=4, num_key_value_heads=2, vocab_size=len(tok),
                                  tie_word_embeddings=True)
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config)
    model.is_loaded_in_4bit = True  # what transformers sets on a bitsandbytes 4-bit model: TRL's QLoRA branch
    args = SFTConfig(output_dir=str(tmp_path), max_steps=2, per_device_train_batch_size=4, report_to="none",
                     use_cpu=True, bf16=False, save_strategy="no", learning_rate=1e-2)
    trainer = SFTTrainer(model=model, args=args, processing_class=tok,
                         train_dataset=Dataset.from_list([{"prompt": "a b", "completion": " c d"}] * 8),
                         peft_config=LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"]))
    assert set(trainable_dtypes(trainer.model)) == {"bfloat16"}, "TRL no longer casts: revisit the helper's need"
    assert set(trainable_parameters_to_float32(trainer.model)) == {"float32"}
    model.is_loaded_in_4bit = False  # the run itself as a plain model: no bitsandbytes here
    before = {n: p.detach().clone() for n, p in trainer.model.named_parameters() if p.requires_grad}
    trainer.train()
    optimized = [p for group in trainer.optimizer.param_groups for p in group["params"]]
    assert optimized and all(p.dtype == torch.float32 for p in optimized), "the optimizer holds the fp32 tensors"
    assert any(not torch.equal(before[n], p) for n, p in trainer.model.named_parameters() if p.requires_grad)


def test_unknown_target_module_lists_the_linear_module_names():
    model = small_qwen2()
    assert linear_module_names(model) == sorted(QWEN_TARGETS + ["lm_head"])
    assert len(check_target_modules(model, ["q_proj", "v_proj"])) == 4
    with pytest.raises(ValueError) as err:
        check_target_modules(model, ["q_proj", "c_attn"])
    message = str(err.value)
    assert "'c_attn'" in message and "'q_proj'" not in message.split("are not")[0]
    assert all(name in message for name in QWEN_TARGETS), message


def test_training_chat_template_uses_markers_trl_copies_or_stops_with_the_fix():
    from trl.chat_template_utils import qwen2_5_chat_template, qwen2_5_training_chat_template

    from labhelpers.tiny import build_tokenizer

    tok = build_tokenizer("qwen2")
    assert chat.training_chat_template(tok) == tok.chat_template, "the zoo's template has markers itself"
    tok.chat_template = qwen2_5_chat_template
    assert chat.training_chat_template(tok) == qwen2_5_training_chat_template
    tok.chat_template = "{% for m in messages %}{{ m['role'] + ': ' + m['content'] + '\n' }}{% endfor %}"
    with pytest.raises(chat.ChatTemplateError, match=r"\{% generation %\}.*\{% endgeneration %\}"):
        chat.training_chat_template(tok)


def test_zoo_template_masks_exactly_the_assistant_turns():
    from labhelpers.tiny import build_tokenizer

    tok = build_tokenizer("qwen2")
    records = [{"instruction": "Reverse the letters.", "input": "q z x", "output": "x z q"},
               {"instruction": "Write the alphabet from a to e.", "input": "", "output": "a b c d e"}]
    conversation = chat.to_conversations(records, "Be brief.", two_exchange_share=1.0)
    assert len(conversation) == 1 and [m["role"] for m in conversation[0]["messages"]] == [
        "system", "user", "assistant", "user", "assistant"]
    assert conversation[0]["messages"][1]["content"] == "Reverse the letters.\nq z x"
    out = tok.apply_chat_template(conversation[0]["messages"], return_dict=True, return_assistant_tokens_mask=True)
    trained = [i for i, m in zip(out["input_ids"], out["assistant_masks"]) if m]
    assert tok.decode(trained) == "x z q<|endoftext|>a b c d e<|endoftext|>"
    assert len(chat.to_conversations(records * 5, "s", two_exchange_share=0.0)) == 10
