"""Peak GPU memory and step time of each lab's full-profile training shape, without the Hub.

    python benchmarks/gpu_full_profile.py [--steps 6] [--dtype float16]

The full profile trains the course's Hub models, which this script cannot download; it builds models of the
same architectures and sizes from their configurations (random weights: memory and speed do not depend on
the values) and runs the lab's full-profile batch shape (batch size, sequence length, from LAB_DEFAULTS)
through forward, backward and an AdamW step under autocast, as the trainers do with ``fp16=True`` on a T4.
Sequences are filled to ``max_length``, the worst case. Prints one JSON line per lab: peak memory (GiB) and
the median seconds per step. Needs a CUDA GPU.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch
from transformers import (
    DistilBertConfig,
    DistilBertForSequenceClassification,
    GPT2Config,
    GPT2ForSequenceClassification,
    GPT2LMHeadModel,
    OPTConfig,
    OPTForCausalLM,
)

from labhelpers.config import LAB_DEFAULTS

VOCAB_GPT2, VOCAB_OPT = 50257, 50272
DEVICE, SMOKE = "cuda", False


def opt_350m():
    # facebook/opt-350m: 24 layers, width 1024 projected to 512-wide embeddings, 16 heads
    return OPTForCausalLM(OPTConfig(vocab_size=VOCAB_OPT, hidden_size=1024, num_hidden_layers=24, ffn_dim=4096,
                                    num_attention_heads=16, word_embed_proj_dim=512, max_position_embeddings=2048,
                                    do_layer_norm_before=False))


def gpt2_lm():
    return GPT2LMHeadModel(GPT2Config())  # the defaults are gpt2's 124M shape


def full(lab: str) -> dict:
    table = LAB_DEFAULTS[lab]
    values = {**table.get("common", {}), **table["full"]}
    if SMOKE:
        values.update(batch_size=2, max_length=16, max_new_tokens=4)
    return values


def measure(name: str, trainable, step_fn, steps: int, dtype) -> dict:
    if DEVICE == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    optimizer = torch.optim.AdamW([p for p in trainable.parameters() if p.requires_grad], lr=1e-5)
    times = []
    for _ in range(steps):
        if DEVICE == "cuda":
            torch.cuda.synchronize()
        started = time.perf_counter()
        with torch.autocast(DEVICE, dtype=dtype):
            loss = step_fn()
        loss.float().backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if DEVICE == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - started)
    peak = torch.cuda.max_memory_allocated() / 2**30 if DEVICE == "cuda" else float("nan")
    return {"lab": name, "peak_gib": round(peak, 2),
            "median_step_s": round(statistics.median(times[1:]), 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--dtype", default="float16", choices=["float16", "bfloat16"])
    parser.add_argument("--smoke", action="store_true", help="tiny shapes on the CPU, to check the script runs")
    args = parser.parse_args()
    global DEVICE, SMOKE
    DEVICE, SMOKE = ("cpu", True) if args.smoke else ("cuda", False)
    dtype = torch.bfloat16 if args.smoke else getattr(torch, args.dtype)
    dev = DEVICE
    gpu = torch.cuda.get_device_name(0) if dev == "cuda" else "none (smoke test)"
    print(json.dumps({"gpu": gpu, "torch": torch.__version__, "autocast": str(dtype)}))

    for bench in (bench_sft, bench_reward, bench_dpo, bench_ppo):
        print(json.dumps(bench(args.steps, dtype, dev)), flush=True)
        torch.cuda.empty_cache() if dev == "cuda" else None


def bench_sft(steps, dtype, dev):
    c = full("01_instruction_tuning")
    model = opt_350m().to(dev).train()
    ids = torch.randint(VOCAB_OPT, (c["batch_size"], c["max_length"]), device=dev)
    result = measure("01_instruction_tuning", model, lambda: model(input_ids=ids, labels=ids).loss, steps, dtype)
    return {**result, "batch": list(ids.shape), "max_steps": c["max_steps"]}


def bench_reward(steps, dtype, dev):
    c = full("02_reward_modeling")
    model = GPT2ForSequenceClassification(GPT2Config(num_labels=1, pad_token_id=0)).to(dev).train()
    ids = torch.randint(1, VOCAB_GPT2, (2 * c["batch_size"], c["max_length"]), device=dev)  # chosen + rejected

    def reward_step():
        rewards = model(input_ids=ids).logits.squeeze(-1)
        half = len(rewards) // 2
        return -torch.nn.functional.logsigmoid(rewards[:half] - rewards[half:]).mean()

    return {**measure("02_reward_modeling", model, reward_step, steps, dtype), "batch": list(ids.shape),
            "max_steps": c["max_steps"]}


def bench_dpo(steps, dtype, dev):
    c = full("03_dpo")
    policy, ref = gpt2_lm().to(dev).train(), gpt2_lm().to(dev).eval().requires_grad_(False)
    ids = torch.randint(VOCAB_GPT2, (2 * c["batch_size"], c["max_length"]), device=dev)  # chosen + rejected

    def seq_logps(m):
        logits = m(input_ids=ids).logits[:, :-1]
        return torch.gather(logits.float().log_softmax(-1), 2, ids[:, 1:, None]).squeeze(-1).sum(-1)

    def dpo_step():
        with torch.no_grad():
            ref_logps = seq_logps(ref)
        ratio = seq_logps(policy) - ref_logps
        half = len(ratio) // 2
        return -torch.nn.functional.logsigmoid(c["beta"] * (ratio[:half] - ratio[half:])).mean()

    return {**measure("03_dpo", policy, dpo_step, steps, dtype), "batch": list(ids.shape),
            "max_steps": c["max_steps"]}


def bench_ppo(steps, dtype, dev):
    c = full("04_ppo_rlhf")
    policy, ref = gpt2_lm().to(dev), gpt2_lm().to(dev).eval().requires_grad_(False)
    value_head = torch.nn.Linear(policy.config.n_embd, 1).to(dev)
    judge = DistilBertForSequenceClassification(DistilBertConfig(num_labels=2)).to(dev).eval()
    queries = torch.randint(VOCAB_GPT2, (c["batch_size"], c["max_query_tokens"]), device=dev)
    new = c["max_new_tokens"]

    def ppo_step():
        with torch.no_grad():  # rollout, reward and reference pass, then one policy/value update
            policy.eval()
            rollout = policy.generate(queries, attention_mask=torch.ones_like(queries), do_sample=True,
                                      max_new_tokens=new, min_new_tokens=new, pad_token_id=0)
            judge(input_ids=rollout[:, -new:] % judge.config.vocab_size)
            ref(input_ids=rollout)
        policy.train()
        out = policy(input_ids=rollout, output_hidden_states=True)
        values = value_head(out.hidden_states[-1]).squeeze(-1)
        return out.logits.float().log_softmax(-1).mean() + values.float().pow(2).mean()

    result = measure("04_ppo_rlhf", torch.nn.ModuleList([policy, value_head]), ppo_step, steps, dtype)
    return {**result, "batch": [c["batch_size"], c["max_query_tokens"] + new], "max_steps": c["max_steps"]}


if __name__ == "__main__":
    main()
