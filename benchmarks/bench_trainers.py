"""Training settings of labs 02–04 measured side by side on the tiny profile, with the labs' own configs.

    python benchmarks/bench_trainers.py [--repeats 3] [--steps 30]

* ``reward_checkpointing`` (lab 02): ``RewardConfig`` turns activation checkpointing on by default; the step time
  with it and without it, and the training losses of both runs (recomputing activations must not change them).
* ``dpo_precompute`` (lab 03): ``precompute_ref_log_probs`` on and off over the lab's whole run (its steps and
  evaluations): time to build the trainer and train, and the largest difference of the logged losses (the
  reference model is frozen, so they must agree).
* ``ppo_split`` (lab 04): one PPO iteration split into generation, reward scoring (the sentiment pipeline), the
  no-grad passes over the rollouts (old log-probs, values, reference) and the optimisation epochs, the last two
  timed from outside the trainer by ``labhelpers.course.timing.PPOPhaseTimer``.

Settings come from :mod:`labhelpers.training` with the tiny profile's values; labs 02 and 04 run ``--steps``
steps without evaluation. Medians over ``repeats``; the labs' one torch thread.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import tempfile
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

from labhelpers.course.timing import PPOPhaseTimer, StepTimer  # noqa: E402
from labhelpers.reward import SENTIMENT_KWARGS, positive_rewards  # noqa: E402


def _losses(trainer) -> list[float]:
    return [row["loss"] for row in trainer.state.log_history if "loss" in row]


def reward_checkpointing(repeats: int, steps: int) -> dict:
    import datasets
    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    from trl import RewardConfig, RewardTrainer

    from labhelpers import lab_config, prepare_lab, reward, set_seed
    from labhelpers.data import load_pairwise
    from labhelpers.training import checkpointing_field, reward_args

    cfg = lab_config("02", "tiny", quiet=True)
    prepare_lab(cfg)
    tokenizer = AutoTokenizer.from_pretrained(cfg.model_name)
    pairs, _ = reward.clean_pairs(load_pairwise(cfg.dataset, n=cfg.n_train, seed=cfg.seed), tokenizer, cfg.max_length)
    train = datasets.Dataset.from_dict({
        "chosen_ids": [reward.encode(tokenizer, p, c) for p, c in zip(pairs["prompt"], pairs["chosen"])],
        "rejected_ids": [reward.encode(tokenizer, p, r) for p, r in zip(pairs["prompt"], pairs["rejected"])]})
    runs = {True: [], False: []}
    losses = {}
    for r in range(repeats):
        for checkpointing in ((True, False) if r % 2 == 0 else (False, True)):
            set_seed(cfg.seed)
            model = AutoModelForSequenceClassification.from_pretrained(cfg.model_name, num_labels=1)
            model.config.pad_token_id = tokenizer.pad_token_id
            timer = StepTimer()
            with tempfile.TemporaryDirectory() as out:
                args = reward_args(cfg, output_dir=out, max_steps=steps, eval_strategy="no", eval_on_start=False,
                                   logging_steps=1, disable_tqdm=True,
                                   **{checkpointing_field(RewardConfig): checkpointing})
                trainer = RewardTrainer(model=model, args=args, train_dataset=train, processing_class=tokenizer,
                                        callbacks=[timer])
                trainer.train()
            runs[checkpointing].append(statistics.median(timer.times[1:]))
            losses[checkpointing] = _losses(trainer)
    on, off = statistics.median(runs[True]), statistics.median(runs[False])
    return {"steps": steps, "step_s_checkpointing": round(on, 4), "step_s_no_checkpointing": round(off, 4),
            "speedup_without": round(on / off, 2),
            "max_loss_difference": max(abs(a - b) for a, b in zip(losses[True], losses[False]))}


def dpo_precompute(repeats: int) -> dict:
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import DPOTrainer

    from labhelpers import lab_config, prepare_lab, set_seed
    from labhelpers.data import load_preferences
    from labhelpers.preferences import to_text_preferences
    from labhelpers.training import dpo_args

    cfg = lab_config("03", "tiny", quiet=True)
    prepare_lab(cfg)
    tokenizer = AutoTokenizer.from_pretrained(cfg.model_name)
    tokenizer.pad_token = tokenizer.pad_token or tokenizer.eos_token
    text = to_text_preferences(load_preferences(cfg.dataset, n=cfg.n_train, seed=cfg.seed), drop_invalid=True)
    kept = text.filter(lambda row: len(tokenizer(row["prompt"])["input_ids"]) <= cfg.max_prompt_tokens)
    split = kept.train_test_split(test_size=cfg.n_test, seed=cfg.seed)
    ref_model = AutoModelForCausalLM.from_pretrained(cfg.model_name).eval().requires_grad_(False)
    totals, step_times, losses = {True: [], False: []}, {True: [], False: []}, {}
    for r in range(repeats):
        for precompute in ((True, False) if r % 2 == 0 else (False, True)):
            set_seed(cfg.seed)
            policy = AutoModelForCausalLM.from_pretrained(cfg.model_name)
            timer = StepTimer()
            with tempfile.TemporaryDirectory() as out:
                # the lab's own length and evaluation schedule: what precomputing saves depends on both
                args = dpo_args(cfg, output_dir=out, logging_steps=1, disable_tqdm=True,
                                precompute_ref_log_probs=precompute)
                started = time.perf_counter()
                trainer = DPOTrainer(model=policy, ref_model=ref_model, args=args, train_dataset=split["train"],
                                     eval_dataset=split["test"], processing_class=tokenizer, callbacks=[timer])
                trainer.train()
                totals[precompute].append(time.perf_counter() - started)
            step_times[precompute].append(statistics.median(timer.times[1:]))
            losses[precompute] = _losses(trainer)
    return {"steps": cfg.max_steps, "pairs": len(split["train"]), "eval_pairs": len(split["test"]),
            "total_s_precompute": round(statistics.median(totals[True]), 2),
            "total_s_per_step_reference": round(statistics.median(totals[False]), 2),
            "step_s_precompute": round(statistics.median(step_times[True]), 4),
            "step_s_per_step_reference": round(statistics.median(step_times[False]), 4),
            "speedup_total": round(statistics.median(totals[False]) / statistics.median(totals[True]), 2),
            "max_loss_difference": max(abs(a - b) for a, b in zip(losses[True], losses[False]))}


def ppo_split(repeats: int, steps: int) -> dict:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, pipeline

    from labhelpers import lab_config, prepare_lab, set_seed
    from labhelpers.data import load_imdb
    from labhelpers.ppo import LengthSampler, PPOTrainer
    from labhelpers.training import ppo_config, ppo_generation_kwargs

    cfg = lab_config("04", "tiny", quiet=True)
    prepare_lab(cfg)
    tokenizer = AutoTokenizer.from_pretrained(cfg.model_name)
    tokenizer.pad_token = tokenizer.eos_token
    reviews = load_imdb(cfg.dataset, n=cfg.n_train, seed=cfg.seed)
    openings = [tokenizer(t, truncation=True, max_length=cfg.max_query_tokens)["input_ids"] for t in reviews["text"]]
    judge = pipeline("sentiment-analysis", model=cfg.reward_model_name, device=cfg.device)
    generation_kwargs = ppo_generation_kwargs(cfg, tokenizer)
    phases = {"generate": [], "score": [], "forward": [], "optimise": []}
    for r in range(repeats):
        set_seed(cfg.seed + r)
        policy = AutoModelForCausalLM.from_pretrained(cfg.model_name)
        ref_model = AutoModelForCausalLM.from_pretrained(cfg.model_name).eval().requires_grad_(False)
        trainer = PPOTrainer(ppo_config(cfg, total_steps=steps, show_progress=False), policy, tokenizer,
                             ref_model=ref_model)
        timer = PPOPhaseTimer(trainer)
        rng, length = random.Random(cfg.seed), LengthSampler(cfg.min_query_tokens, cfg.max_query_tokens, seed=cfg.seed)
        for _ in range(steps):
            queries = [torch.tensor(ids[: length()]) for ids in rng.sample(openings, cfg.batch_size)]
            started = time.perf_counter()
            responses = trainer.generate(queries, **generation_kwargs)
            generated = time.perf_counter()
            texts = [tokenizer.decode(torch.cat([q, a]), skip_special_tokens=True) for q, a in zip(queries, responses)]
            rewards = positive_rewards(judge(texts, **SENTIMENT_KWARGS))
            scored = time.perf_counter()
            trainer.step(queries, responses, rewards)
            phases["generate"].append(generated - started)
            phases["score"].append(scored - generated)
            phases["forward"].append(timer.forward[-1])
            phases["optimise"].append(timer.optimise[-1])
    medians = {name: statistics.median(values[1:]) for name, values in phases.items()}  # step 1 warms up
    total = sum(medians.values())
    return {"steps": steps, "batch_size": cfg.batch_size, "max_new_tokens": cfg.max_new_tokens,
            "ppo_epochs": cfg.ppo_epochs, "step_s": round(total, 4),
            **{f"{name}_s": round(value, 4) for name, value in medians.items()},
            **{f"{name}_share": round(value / total, 3) for name, value in medians.items()}}


def run(repeats: int = 3, steps: int = 30, threads: int | None = 1) -> dict:
    import torch

    if threads:
        torch.set_num_threads(threads)
    return {"threads": torch.get_num_threads(), "repeats": repeats,
            "reward_checkpointing": reward_checkpointing(repeats, steps),
            "dpo_precompute": dpo_precompute(repeats),
            "ppo_split": ppo_split(repeats, max(3, steps // 5))}


def markdown(report: dict) -> str:
    rc, dp, pp = report["reward_checkpointing"], report["dpo_precompute"], report["ppo_split"]
    return "\n".join([
        f"Lab settings on the tiny profile ({report['threads']} thread(s), median of {report['repeats']}):", "",
        "| lab | setting | with | without | ratio | results equal? |", "|---|---|---|---|---|---|",
        f"| 02 | activation checkpointing (s/step) | {rc['step_s_checkpointing']:.4f} | "
        f"{rc['step_s_no_checkpointing']:.4f} | {rc['speedup_without']:.2f}× faster without | "
        f"losses differ by ≤ {rc['max_loss_difference']:.1e} |",
        f"| 03 | `precompute_ref_log_probs` (s to build + train the lab's {dp['steps']} steps, with its evaluations) | {dp['total_s_precompute']:.2f} | "
        f"{dp['total_s_per_step_reference']:.2f} | {dp['speedup_total']:.2f}× faster with | "
        f"losses differ by ≤ {dp['max_loss_difference']:.1e} |",
        "", f"Lab 04, one PPO iteration ({pp['batch_size']} rollouts of {pp['max_new_tokens']} tokens, "
            f"{pp['ppo_epochs']} epochs): {pp['step_s']:.3f} s", "",
        "| phase | seconds | share |", "|---|---|---|",
        *[f"| {name} | {pp[name + '_s']:.4f} | {pp[name + '_share']:.0%} |"
          for name in ("generate", "score", "forward", "optimise")],
    ])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--steps", type=int, default=30)
    args = parser.parse_args()
    report = run(args.repeats, args.steps)
    print(json.dumps(report, indent=2))
    print(markdown(report))


if __name__ == "__main__":
    main()
