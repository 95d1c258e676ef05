"""Each lab's full-profile training, as the notebooks run it, on a GPU capped at a T4's memory.

    python benchmarks/gpu_full_profile.py [--steps 6] [--dtype float16] [--memory-cap-gib 14.75] [--json out.json]
    python benchmarks/gpu_full_profile.py --smoke      # the same code path on the CPU, tiny shapes (for the tests)

Every lab gets the config object its notebook trains with, built by ``labhelpers.training`` from the full
profile's ``LabConfig``, and the same trainer: ``SFTTrainer`` (lab 01), ``RewardTrainer`` (02), ``DPOTrainer``
(03), ``labhelpers.ppo.PPOTrainer`` with a sentiment-classifier reward and, for its GRPO section, ``GRPOTrainer``
(04), and ``model.generate`` (05). The benchmark overrides only what it must: the number of steps, no
evaluation, a temporary output folder, logging every step (and, with ``--smoke``, the tiny shapes).

The course's Hub models cannot be downloaded here, so each is built from its configuration at its real size
with random weights (memory and speed do not depend on the values), with the zoo's small tokenizer: its ids fit
the real 50257/50272-token embeddings, whose logits take the real memory. The synthetic texts are long enough
that every sequence is cut at the lab's ``max_length``: the worst case for memory.

The caching allocator is capped at ``--memory-cap-gib`` (a T4's usable 14.75 GiB by default), so a larger GPU
says whether a lab fits a T4; an out-of-memory error is reported for its lab (``"oom": true``) and the next lab
runs. Per lab: peak memory, the median step time (the first step is a warm-up and is dropped), non-pad tokens
per second and the model FLOPs utilisation. One JSON line per lab as it finishes, then a markdown table.
"""

from __future__ import annotations

import argparse
import copy
import gc
import json
import random
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch import nn
from transformers import (
    DistilBertConfig,
    DistilBertForSequenceClassification,
    GPT2Config,
    GPT2ForSequenceClassification,
    GPT2LMHeadModel,
    OPTConfig,
    OPTForCausalLM,
    PrinterCallback,
    ProgressCallback,
)

from labhelpers import reward, training
from labhelpers.config import lab_config, resolve_lab
from labhelpers.course.timing import StepTimer, sync
from labhelpers.reward import SENTIMENT_KWARGS, positive_rewards
from labhelpers.tiny import build_tokenizer

LABS = ("01_instruction_tuning", "02_reward_modeling", "03_dpo", "04_ppo_rlhf", "05_generation_parameters")
# grpo_batch_size: GRPO's completions per step, a multiple of its 8 completions per prompt
SMOKE_SHAPES = {"batch_size": 2, "max_length": 32, "max_new_tokens": 4, "grpo_batch_size": 8}
SMOKE_STEPS = 2
SKIP_MESSAGE = "No CUDA GPU was found, so the full-profile GPU benchmark is skipped (--smoke runs it on the CPU)."

# Dense fp16/bf16 tensor-core peaks from NVIDIA's datasheets (their "with sparsity" figures are twice these).
# The first pattern that matches torch.cuda.get_device_name() wins. AWS's A10G is not NVIDIA's A10 and has no
# published tensor peak, and the NVL boards run at other clocks: they get no MFU rather than a wrong one.
# Every lab's MFU is against this peak, also lab 04's PPO, which runs in fp32 and so cannot come near it.
PEAK_FLOPS = [
    (r"\bT4\b", 65e12),  # Tesla T4: 65 TFLOPS mixed precision (FP16/FP32)
    (r"\bA10\b", 125e12),  # A10: FP16 tensor core 125 TFLOPS
    (r"\bL4\b", 121e12),  # L4: FP16 tensor core 242 TFLOPS with sparsity
    (r"\bA100\b", 312e12),  # A100: BF16/FP16 tensor core 312 TFLOPS
    (r"\bH100\b.*\bPCIe\b", 756e12),  # H100 PCIe: 1,513 TFLOPS with sparsity
    (r"\bH100\b(?!.*\bNVL\b)", 989e12),  # H100 SXM: 1,979 TFLOPS with sparsity
    (r"\bH200\b(?!.*\bNVL\b)", 989e12),  # H200 SXM: as the H100 SXM
]

WORDS = ("the film was great and the cast was wonderful but the plot was dull . a story of love and loss ; "
         "def add ( a , b ) : return a + b").split()


# --------------------------------------------------------------------------------------------------
# 1. The lab settings and the config objects the trainers get
# --------------------------------------------------------------------------------------------------
def lab_settings(lab: str, dtype: str = "float16", smoke: bool = False):
    """The full profile's ``LabConfig`` on the GPU in ``dtype``; with ``smoke``, on the CPU in fp32, tiny shapes.

    ``lab`` is a lab's name, or a lab's name and one of its runs (``"04_ppo_rlhf/grpo"``).
    """
    cfg = lab_config(lab.split("/")[0], "full", quiet=True, check_environment=False)
    if smoke:
        shapes = {k: v for k, v in SMOKE_SHAPES.items() if hasattr(cfg, k)}  # grpo_batch_size is lab 04's alone
        return cfg.replace(device="cpu", dtype="float32", **shapes)
    return cfg.replace(device="cuda", dtype=dtype)  # fp16=True or bf16=True in the trainers' configs


def training_args_for(lab: str, cfg, steps: int, out_dir: str):
    """What the lab's trainer is given: ``labhelpers.training``'s config, with only the benchmark's overrides.

    Lab 04 gets a ``labhelpers.ppo.PPOConfig`` (``"04_ppo_rlhf/grpo"``, its GRPO section: a ``GRPOConfig``);
    lab 05 trains nothing and gets its ``generate`` keywords.
    """
    run = {"output_dir": out_dir, "max_steps": steps, "logging_steps": 1}
    if lab == "01_instruction_tuning":
        return training.sft_args(cfg, **run)
    if lab == "02_reward_modeling":
        return training.reward_args(cfg, **run, eval_strategy="no", eval_on_start=False)
    if lab == "03_dpo":  # the lab's first run; its DPO+SFT run adds an SFT term on the same forward pass
        return training.dpo_args(cfg, "dpo", ("sigmoid",), **run, eval_strategy="no")
    if lab == "04_ppo_rlhf":
        return training.ppo_config(cfg, total_steps=steps, show_progress=False)
    if lab == "04_ppo_rlhf/grpo":
        return training.grpo_args(cfg, **run)
    if lab == "05_generation_parameters":  # a fixed length, so that every step does the same work
        return {"max_new_tokens": cfg.max_new_tokens, "min_new_tokens": cfg.max_new_tokens, "do_sample": True,
                "temperature": 1.0, "top_k": 0}
    raise ValueError(f"Unknown lab {lab!r}")


# --------------------------------------------------------------------------------------------------
# 2. The course's models at their real sizes, with random weights
# --------------------------------------------------------------------------------------------------
# --smoke keeps the model classes and the real vocabularies, and shrinks everything else
SMOKE_OPT = {"hidden_size": 64, "num_hidden_layers": 2, "ffn_dim": 256, "num_attention_heads": 2,
             "word_embed_proj_dim": 32}
SMOKE_GPT2 = {"n_embd": 64, "n_layer": 2, "n_head": 2}
SMOKE_DISTILBERT = {"dim": 64, "n_layers": 2, "n_heads": 2, "hidden_dim": 256}


def tokenizer_for(style: str, model_max_length: int):
    """The zoo's 698-token tokenizer; ``model_max_length`` as the real model's, so long texts do not warn."""
    tokenizer = build_tokenizer(style)
    tokenizer.model_max_length = model_max_length
    return tokenizer


def opt_350m(tokenizer, smoke: bool) -> OPTForCausalLM:
    """facebook/opt-350m: 24 layers of width 1024, 16 heads, embeddings projected down to 512."""
    shape = SMOKE_OPT if smoke else {"hidden_size": 1024, "num_hidden_layers": 24, "ffn_dim": 4096,
                                     "num_attention_heads": 16, "word_embed_proj_dim": 512}
    return OPTForCausalLM(OPTConfig(vocab_size=50272, max_position_embeddings=2048, do_layer_norm_before=False,
                                    **shape, **special_ids(tokenizer)))


def gpt2_config(tokenizer, smoke: bool, **changes) -> GPT2Config:
    """gpt2 (124M) and lvwerra/gpt2-imdb: ``GPT2Config()``'s defaults are their shape."""
    return GPT2Config(**(SMOKE_GPT2 if smoke else {}), **special_ids(tokenizer), **changes)


def distilbert_imdb(smoke: bool) -> DistilBertForSequenceClassification:
    """lvwerra/distilbert-imdb: distilbert-base (6 layers of width 768) with a NEGATIVE/POSITIVE head."""
    config = DistilBertConfig(num_labels=2, id2label={0: "NEGATIVE", 1: "POSITIVE"},
                              label2id={"NEGATIVE": 0, "POSITIVE": 1}, **(SMOKE_DISTILBERT if smoke else {}))
    return DistilBertForSequenceClassification(config)


def special_ids(tokenizer) -> dict:
    # the zoo tokenizer's ids, so that the trainers find the model and the tokenizer agreeing, as with the Hub's
    eos = tokenizer.eos_token_id
    return {"bos_token_id": tokenizer.bos_token_id, "eos_token_id": eos,
            "pad_token_id": tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos}


# --------------------------------------------------------------------------------------------------
# 3. Synthetic data in each trainer's format, every sequence cut at max_length
# --------------------------------------------------------------------------------------------------
def words(n: int, rng: random.Random) -> str:
    """``n`` words: at least ``n`` tokens, since the byte-level tokenizer never merges across a space."""
    return " ".join(rng.choice(WORDS) for _ in range(n))


def sft_rows(n: int, max_length: int, rng: random.Random) -> list[dict]:
    """Prompt/completion text as lab 01 builds it; a quarter-length prompt, so each row has answer tokens left."""
    return [{"prompt": f"### Instruction:\n{words(max_length // 4, rng)}\n\n### Response:",
             "completion": " " + words(max_length, rng)} for _ in range(n)]


def reward_rows(n: int, max_length: int, tokenizer, rng: random.Random) -> list[dict]:
    """Lab 02's pre-tokenized pairs, exactly ``max_length`` tokens each and ending in eos.

    ``RewardTrainer`` drops longer pairs instead of cutting them, so the longest it trains on is this one.
    """
    def encode(answer: str) -> list[int]:
        ids = tokenizer(reward.format_text(words(max_length // 4, rng), answer))["input_ids"]
        return ids[: max_length - 1] + [tokenizer.eos_token_id]

    return [{"chosen_ids": encode(words(max_length, rng)), "rejected_ids": encode(words(max_length, rng))}
            for _ in range(n)]


def dpo_rows(n: int, max_length: int, rng: random.Random) -> list[dict]:
    """Lab 03's prompt/chosen/rejected text; the prompt stays under the lab's 256-token prompt limit."""
    return [{"prompt": words(max_length // 4, rng), "chosen": " " + words(max_length, rng),
             "rejected": " " + words(max_length, rng)} for _ in range(n)]


def ppo_queries(batch_size: int, query_tokens: int, tokenizer, rng: random.Random) -> list[torch.Tensor]:
    """Lab 04's queries: 1-D tensors of ``query_tokens`` ids (the longest the lab's sampler allows)."""
    return [torch.tensor(tokenizer(words(query_tokens, rng))["input_ids"][:query_tokens])
            for _ in range(batch_size)]


# --------------------------------------------------------------------------------------------------
# 4. Measuring: step times, tokens, FLOPs
# --------------------------------------------------------------------------------------------------
class TokenCounter:
    """Wraps a trainer's data collator and counts the non-pad tokens of every batch it builds."""

    def __init__(self, collate):
        self.collate, self.tokens = collate, []

    def __call__(self, examples):
        batch = self.collate(examples)
        self.tokens.append(int(batch["attention_mask"].sum()))
        return batch


def matmul_params(model: nn.Module, trainable_only: bool = False) -> int:
    """The parameters that every token multiplies by: all but the embedding tables that are only looked up.

    A tied output layer multiplies each hidden state by the token embedding table, so that table counts.
    """
    looked_up = {id(m.weight) for m in model.modules() if isinstance(m, nn.Embedding)}
    output = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    if output is not None:
        looked_up.discard(id(output.weight))
    return sum(p.numel() for p in model.parameters()
               if id(p) not in looked_up and (p.requires_grad or not trainable_only))


# FLOPs are the usual 6N approximation (2N per token forward, 4N backward) without the attention FLOPs: they
# grow with the sequence length and would add a few per cent at 512 tokens; leaving them out understates MFU.
def train_flops(model: nn.Module, tokens: float) -> float:
    return 6 * matmul_params(model, trainable_only=True) * tokens


def forward_flops(model: nn.Module, tokens: float) -> float:
    return 2 * matmul_params(model) * tokens


def peak_flops(gpu: str) -> float | None:
    return next((flops for pattern, flops in PEAK_FLOPS if re.search(pattern, gpu, re.IGNORECASE)), None)


def step_stats(times: list[float], tokens_per_step: float, flops_per_step: float) -> dict:
    """The measurements of one lab; the first step (kernel selection, allocator warm-up) is dropped."""
    step_s = statistics.median(times[1:])
    return {"median_step_s": step_s, "tokens_per_step": tokens_per_step, "tokens_per_s": tokens_per_step / step_s,
            "flops_per_step": flops_per_step}


def train_timed(trainer) -> tuple[list[float], float]:
    """``trainer.train()`` with each step timed; returns the step times and the last logged loss."""
    timer = StepTimer()
    trainer.add_callback(timer)
    for printer in (ProgressCallback, PrinterCallback):  # the JSON lines stay alone on stdout
        trainer.remove_callback(printer)
    trainer.train()
    return timer.times, [entry["loss"] for entry in trainer.state.log_history if "loss" in entry][-1]


def train_and_measure(trainer, flops_per_token: float) -> dict:
    """Train, timing each step and counting the non-pad tokens of the batches."""
    counter = TokenCounter(trainer.data_collator)
    trainer.data_collator = counter  # after __init__, so that DPO's reference pass over the data is not counted
    times, loss = train_timed(trainer)
    tokens = statistics.mean(counter.tokens)
    return {**step_stats(times, tokens, flops_per_token * tokens), "loss": loss}


def millions(model: nn.Module) -> float:
    return round(sum(p.numel() for p in model.parameters()) / 1e6, 1)


def precision(cfg, args) -> str:
    if isinstance(args, dict):  # lab 05 loads gpt2 in the lab's dtype and only generates
        return f"{cfg.dtype} weights"
    if not hasattr(args, "fp16"):  # PPOTrainer has no mixed precision, and lab 04 loads gpt2-imdb in fp32
        return "fp32"
    return "bf16 autocast" if args.bf16 else "fp16 autocast" if args.fp16 else "fp32"


def sentiment_pipeline(smoke: bool, device: str):
    """Lab 04's reward model: lvwerra/distilbert-imdb in a sentiment-analysis pipeline, in fp32 as the lab's."""
    from transformers import pipeline

    return pipeline("sentiment-analysis", model=distilbert_imdb(smoke), tokenizer=tokenizer_for("classifier", 512),
                    device=device)


def readable(ids, tokenizer) -> str:
    # the random policy samples from gpt2's 50257 ids, most of which the zoo tokenizer lacks and would decode
    # to nothing: fold them into its vocabulary, so that the classifier reads texts of a realistic length
    return tokenizer.decode([int(i) % len(tokenizer) for i in ids])


# --------------------------------------------------------------------------------------------------
# 5. One benchmark per lab: build the models and data, train with the lab's config, measure
# --------------------------------------------------------------------------------------------------
def bench_sft(cfg, args, steps: int, out_dir: str, smoke: bool) -> dict:
    """Lab 01: ``SFTTrainer`` fine-tunes opt-350m on prompt/completion text, loss on the completions only."""
    from datasets import Dataset
    from trl import SFTTrainer

    tokenizer = tokenizer_for("opt", 2048)
    model = opt_350m(tokenizer, smoke)  # fp32 weights, as the lab loads them; the trainer autocasts
    data = Dataset.from_list(sft_rows(steps * args.per_device_train_batch_size, args.max_length,
                                      random.Random(cfg.seed)))
    trainer = SFTTrainer(model=model, args=args, train_dataset=data, processing_class=tokenizer)
    measured = train_and_measure(trainer, train_flops(model, 1))
    return {"trainer": "SFTTrainer", "params_m": millions(model), **measured}


def bench_reward(cfg, args, steps: int, out_dir: str, smoke: bool) -> dict:
    """Lab 02: ``RewardTrainer`` trains gpt2 with a one-output head on pre-tokenized chosen/rejected pairs."""
    from datasets import Dataset
    from trl import RewardTrainer

    tokenizer = tokenizer_for("gpt2", 1024)
    tokenizer.add_special_tokens({"pad_token": "<pad>"})  # lab 02's fix: a pad token that is not eos
    model = GPT2ForSequenceClassification(gpt2_config(tokenizer, smoke, num_labels=1))
    data = Dataset.from_list(reward_rows(steps * args.per_device_train_batch_size, args.max_length, tokenizer,
                                         random.Random(cfg.seed)))
    trainer = RewardTrainer(model=model, args=args, train_dataset=data, processing_class=tokenizer)
    measured = train_and_measure(trainer, train_flops(model, 1))
    return {"trainer": "RewardTrainer", "params_m": millions(model), **measured}


def bench_dpo(cfg, args, steps: int, out_dir: str, smoke: bool) -> dict:
    """Lab 03: ``DPOTrainer`` trains gpt2 against a frozen gpt2 reference on prompt/chosen/rejected text."""
    from datasets import Dataset
    from trl import DPOTrainer

    tokenizer = tokenizer_for("gpt2", 1024)
    tokenizer.pad_token = tokenizer.eos_token  # as lab 03 does
    policy = GPT2LMHeadModel(gpt2_config(tokenizer, smoke))
    ref_model = copy.deepcopy(policy).eval().requires_grad_(False)
    data = Dataset.from_list(dpo_rows(steps * args.per_device_train_batch_size, args.max_length,
                                      random.Random(cfg.seed)))
    # with precompute_ref_log_probs the reference scores the data once, in __init__, outside the steps
    trainer = DPOTrainer(model=policy, ref_model=ref_model, args=args, train_dataset=data,
                         processing_class=tokenizer)
    ref_per_token = 0 if args.precompute_ref_log_probs else forward_flops(ref_model, 1)
    measured = train_and_measure(trainer, train_flops(policy, 1) + ref_per_token)
    return {"trainer": "DPOTrainer", "params_m": millions(policy), **measured,
            "settings": {"beta": args.beta, "precompute_ref_log_probs": args.precompute_ref_log_probs}}


def bench_ppo(cfg, args, steps: int, out_dir: str, smoke: bool) -> dict:
    """Lab 04: ``labhelpers.ppo.PPOTrainer``: sample responses, score them with the sentiment classifier, PPO step.

    ``PPOTrainer`` has no mixed precision and the lab loads gpt2-imdb in fp32, so this lab runs in fp32 whatever
    ``--dtype`` says. Tokens per step are the rollouts' query + response tokens (each is trained on
    ``ppo_epochs`` times); the FLOPs count generation, the classifier, the old-policy and reference passes and
    ``ppo_epochs`` training passes.
    """
    from labhelpers.ppo import PPOTrainer

    tokenizer = tokenizer_for("gpt2", 1024)
    tokenizer.pad_token = tokenizer.eos_token  # as lab 04 does
    policy = GPT2LMHeadModel(gpt2_config(tokenizer, smoke)).to(cfg.device)  # fp32, as the lab loads it
    ref_model = copy.deepcopy(policy).eval().requires_grad_(False)
    sentiment = sentiment_pipeline(smoke, cfg.device)
    trainer = PPOTrainer(args, policy, tokenizer, ref_model=ref_model)
    generation_kwargs = training.ppo_generation_kwargs(cfg, tokenizer)
    rng = random.Random(cfg.seed)

    def ppo_step(queries):
        responses = trainer.generate(queries, **generation_kwargs)
        texts = [tokenizer.decode(q) + readable(r, tokenizer) for q, r in zip(queries, responses)]
        rewards = positive_rewards(sentiment(texts, **SENTIMENT_KWARGS))
        return responses, texts, trainer.step(queries, responses, rewards)

    times, tokens, flops = [], [], []
    for _ in range(steps):
        queries = ppo_queries(cfg.batch_size, cfg.max_query_tokens, tokenizer, rng)
        sync()
        started = time.perf_counter()
        responses, texts, stats = ppo_step(queries)
        sync()
        times.append(time.perf_counter() - started)
        rollout = sum(len(q) + len(r) for q, r in zip(queries, responses))
        classified = sum(len(ids) for ids in sentiment.tokenizer(texts)["input_ids"])
        tokens.append(rollout)
        flops.append(forward_flops(policy, rollout)  # generation: the query once, then one token at a time
                     + forward_flops(sentiment.model, classified)
                     + 2 * forward_flops(policy, rollout)  # old log-probs and values, the reference (same size)
                     + args.ppo_epochs * train_flops(policy, rollout))
    return {"trainer": "labhelpers.ppo.PPOTrainer", "max_length": cfg.max_query_tokens + cfg.max_new_tokens,
            "params_m": millions(policy), **step_stats(times, statistics.mean(tokens), statistics.mean(flops)),
            "loss": stats["policy_loss"],
            "settings": {"max_query_tokens": cfg.max_query_tokens, "max_new_tokens": cfg.max_new_tokens,
                         "mini_batch_size": args.mini_batch_size, "ppo_epochs": args.ppo_epochs}}


def bench_grpo(cfg, args, steps: int, out_dir: str, smoke: bool) -> dict:
    """Lab 04, section 8: TRL's ``GRPOTrainer``, 8 sampled completions per prompt scored by the classifier.

    A step generates ``grpo_batch_size`` completions, scores them, runs the reference and trains once on them
    (``num_iterations=1``: no separate old-policy pass). Tokens per step are the prompt + completion tokens.
    """
    from datasets import Dataset
    from trl import GRPOTrainer

    tokenizer = tokenizer_for("gpt2", 1024)
    tokenizer.pad_token = tokenizer.eos_token  # as lab 04 does
    policy = GPT2LMHeadModel(gpt2_config(tokenizer, smoke))
    # GRPOTrainer takes no reference model: it loads one from the policy's name_or_path, so the random policy is
    # saved first, where a Hub checkpoint would be
    policy.save_pretrained(Path(out_dir) / "policy")
    policy.config._name_or_path = str(Path(out_dir) / "policy")
    sentiment = sentiment_pipeline(smoke, cfg.device)
    classified = []

    def sentiment_reward(prompts, completions, completion_ids, **kwargs):
        texts = [p + readable(ids, tokenizer) for p, ids in zip(prompts, completion_ids)]
        classified.append(sum(len(ids) for ids in sentiment.tokenizer(texts)["input_ids"]))
        return positive_rewards(sentiment(texts, **SENTIMENT_KWARGS))

    rng = random.Random(cfg.seed)
    prompts = [tokenizer.decode(tokenizer(words(cfg.grpo_prompt_tokens, rng))["input_ids"][:cfg.grpo_prompt_tokens])
               for _ in range(steps * args.per_device_train_batch_size)]
    trainer = GRPOTrainer(model=policy, reward_funcs=sentiment_reward, args=args,
                          train_dataset=Dataset.from_dict({"prompt": prompts}), processing_class=tokenizer)
    times, loss = train_timed(trainer)
    tokens = trainer.state.num_input_tokens_seen / steps
    flops = (train_flops(policy, tokens) + 2 * forward_flops(policy, tokens)  # generation, reference
             + forward_flops(sentiment.model, statistics.mean(classified)))
    return {"trainer": "GRPOTrainer", "max_length": cfg.grpo_prompt_tokens + args.max_completion_length,
            "params_m": millions(policy), **step_stats(times, tokens, flops), "loss": loss,
            "settings": {"num_generations": args.num_generations, "beta": args.beta}}


def bench_generation(cfg, args, steps: int, out_dir: str, smoke: bool) -> dict:
    """Lab 05: gpt2 in the lab's dtype samples ``max_new_tokens`` tokens after the lab's prompt (batch 1).

    Tokens per step are the new tokens; a step is one ``generate`` call.
    """
    tokenizer = tokenizer_for("gpt2", 1024)
    model = GPT2LMHeadModel(gpt2_config(tokenizer, smoke)).to(cfg.device, cfg.torch_dtype).eval()
    inputs = tokenizer(cfg.prompt, return_tensors="pt").to(cfg.device)
    times = []
    for _ in range(steps):
        sync()
        started = time.perf_counter()
        with torch.no_grad():
            out = model.generate(**inputs, pad_token_id=tokenizer.eos_token_id, **args)
        sync()
        times.append(time.perf_counter() - started)
    new_tokens = out.shape[1] - inputs["input_ids"].shape[1]
    return {"trainer": "model.generate", "batch_size": 1, "max_length": out.shape[1], "params_m": millions(model),
            **step_stats(times, new_tokens, forward_flops(model, out.shape[1])), "loss": None}


# one row each; a name with a slash is one of its lab's runs
BENCHMARKS = {"01_instruction_tuning": bench_sft, "02_reward_modeling": bench_reward, "03_dpo": bench_dpo,
              "04_ppo_rlhf": bench_ppo, "04_ppo_rlhf/grpo": bench_grpo, "05_generation_parameters": bench_generation}


# --------------------------------------------------------------------------------------------------
# 6. Running the labs one after another, and the report
# --------------------------------------------------------------------------------------------------
def run_lab(lab: str, steps: int, dtype: str, smoke: bool, gpu: str) -> dict:
    """One lab's row of the report; an out-of-memory error becomes ``"oom": true``."""
    cfg = lab_settings(lab, dtype, smoke)
    on_gpu = cfg.device == "cuda"
    row = {"lab": lab, "model_name": cfg.model_name, "gpu": gpu, "steps": steps, "oom": False}
    if on_gpu:
        torch.cuda.reset_peak_memory_stats()
        row["gib_at_start"] = round(torch.cuda.memory_allocated() / 2**30, 3)  # leftovers of the lab before
    torch.manual_seed(cfg.seed)
    random.seed(cfg.seed)
    with tempfile.TemporaryDirectory() as out_dir:
        args = training_args_for(lab, cfg, steps, out_dir)
        # what a row says even when its lab runs out of memory; PPO, GRPO and generate refine the shape
        row.update(config="generate kwargs" if isinstance(args, dict) else type(args).__name__,
                   precision=precision(cfg, args),
                   batch_size=getattr(args, "per_device_train_batch_size", cfg.batch_size),
                   max_length=getattr(args, "max_length", cfg.max_length))
        try:
            measured = BENCHMARKS[lab](cfg, args, steps, out_dir, smoke)
        except torch.cuda.OutOfMemoryError as err:
            row.update(oom=True, error=str(err).splitlines()[0])
            measured = None
    if measured is not None:
        row.update(measured)
        peak = peak_flops(gpu) if on_gpu else None
        row["tflops"] = row["flops_per_step"] / row["median_step_s"] / 1e12
        row["mfu"] = row["flops_per_step"] / row["median_step_s"] / peak if peak else None
    row["peak_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 2) if on_gpu else None
    gc.collect()  # trainers hold reference cycles: free this lab's memory before the next one starts
    if on_gpu:
        torch.cuda.empty_cache()
    return {k: round(v, 4) if isinstance(v, float) else v for k, v in row.items()}


def markdown_table(rows: list[dict]) -> str:
    def cell(value, fmt):
        return "–" if value is None else format(value, fmt)

    lines = ["| lab | config | batch × length | precision | peak GiB | step s | tokens/s | MFU % | OOM |",
             "|---|---|---|---|---:|---:|---:|---:|---|"]
    for r in rows:
        mfu = None if r.get("mfu") is None else 100 * r["mfu"]
        cells = [r["lab"], r["config"], f"{r['batch_size']} × {r['max_length']}", r["precision"],
                 cell(r["peak_gib"], ".2f"), cell(r.get("median_step_s"), ".3f"), cell(r.get("tokens_per_s"), ",.0f"),
                 cell(mfu, ".1f"), "yes" if r["oom"] else "no"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=6, help="steps per lab, the first a warm-up (at least 2; --smoke runs 2)")
    parser.add_argument("--dtype", default="float16", choices=["float16", "bfloat16"],
                        help="the trainers' mixed precision (a T4 has float16 only)")
    parser.add_argument("--memory-cap-gib", type=float, default=14.75, help="GPU memory allowed (a T4's usable)")
    parser.add_argument("--labs", nargs="*", default=list(LABS), help="labs to run (numbers or names)")
    parser.add_argument("--json", type=Path, help="also write the whole report to this file")
    parser.add_argument("--smoke", action="store_true", help="tiny shapes on the CPU, to check the script runs")
    args = parser.parse_args(argv)
    if not args.smoke and not torch.cuda.is_available():
        print(SKIP_MESSAGE)
        return 0
    steps = SMOKE_STEPS if args.smoke else args.steps
    if steps < 2:
        parser.error("--steps must be at least 2: the first step is a warm-up")
    labs = {resolve_lab(name) for name in args.labs}
    runs = [run for run in BENCHMARKS if run.split("/")[0] in labs]

    import datasets

    datasets.disable_progress_bars()  # a bar per dataset.map() of every trainer would bury the report
    if args.smoke:
        gpu, cap = "none (smoke test on the CPU)", None
    else:
        gpu, cap = torch.cuda.get_device_name(0), args.memory_cap_gib
        total = torch.cuda.get_device_properties(0).total_memory
        torch.cuda.set_per_process_memory_fraction(min(1.0, cap * 2**30 / total))

    rows = []
    for run in runs:
        rows.append(run_lab(run, steps, args.dtype, args.smoke, gpu))
        print(json.dumps(rows[-1]), flush=True)
    print()
    print(markdown_table(rows))
    if args.json:
        import transformers
        import trl

        report = {"gpu": gpu, "torch": torch.__version__, "transformers": transformers.__version__,
                  "trl": trl.__version__, "dtype": "float32" if args.smoke else args.dtype, "memory_cap_gib": cap,
                  "smoke": args.smoke, "steps": steps, "labs": rows}
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
