"""SFT throughput on the tiny zoo: how batches are padded, measured side by side in one run.

    python benchmarks/bench_sft.py [--repeats 3] [--threads 1]

One epoch of lab 01's tiny training set (the same 400 tokenised examples, cut at the lab's ``max_length``) is
trained with each way of building batches, and the non-pad tokens per second are compared:

* ``max_length``: every row padded to ``max_length`` (the naive way);
* ``longest``: rows padded to the longest row of their batch (TRL's default collator);
* ``group_by_length``: the same, with batches drawn by transformers' ``LengthGroupedSampler`` so that rows of
  similar length meet (``train_sampling_strategy="group_by_length"``);
* ``padding_free``: each batch flattened into one row with restarting ``position_ids`` (``padding_free=True``);
* ``packed_bfd``: rows packed best-fit-decreasing into ``max_length`` (``packing=True``), then padding-free.

Speed is only half the answer: the flattened forms are right only if the model keeps sequences apart inside a
row. ``correctness`` gives, for each form, the largest logit difference from running every sequence alone; a
value near 1e-6 means the form trains the same model, a value near 1 means sequences see each other.
Strategies are interleaved within each repeat; medians are reported.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")

STRATEGIES = ("max_length", "longest", "group_by_length", "padding_free", "packed_bfd")
MODELS = {"tiny-opt": "lab 01's model (OPT)", "tiny-gpt2": "labs 02-05's base model (GPT-2)"}


def tokenised_examples(tokenizer, max_length: int, n: int = 400, seed: int = 42) -> list[list[int]]:
    from labhelpers.data import load_code_alpaca
    from labhelpers.formatting import formatting_prompts_func

    rows = load_code_alpaca("tiny", n=n, seed=seed)
    texts = [formatting_prompts_func(row) + tokenizer.eos_token for row in rows]
    return [ids[:max_length] for ids in tokenizer(texts)["input_ids"]]


def make_batches(strategy: str, examples: list[list[int]], batch_size: int, max_length: int, pad_id: int,
                 seed: int = 0) -> list[dict]:
    """The epoch's batches as model inputs; ``labels`` are -100 at padding and at sequence starts."""
    import torch
    from datasets import Dataset
    from transformers.trainer_pt_utils import LengthGroupedSampler
    from trl.data_utils import pack_dataset
    from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

    generator = torch.Generator().manual_seed(seed)
    if strategy == "group_by_length":
        order = list(LengthGroupedSampler(batch_size, lengths=[len(e) for e in examples], generator=generator))
    else:
        order = torch.randperm(len(examples), generator=generator).tolist()
    shuffled = [examples[i] for i in order]

    if strategy in ("max_length", "longest", "group_by_length"):
        collate = DataCollatorForLanguageModeling(pad_token_id=pad_id)
        batches = []
        for start in range(0, len(shuffled), batch_size):
            batch = collate([{"input_ids": ids} for ids in shuffled[start:start + batch_size]])
            if strategy == "max_length":
                width = max_length - batch["input_ids"].shape[1]
                batch = {k: torch.nn.functional.pad(v, (0, width), value={"input_ids": pad_id, "labels": -100,
                                                                          "attention_mask": 0}[k])
                         for k, v in batch.items()}
            batches.append({k: batch[k] for k in ("input_ids", "attention_mask", "labels")})
        return batches

    collate = DataCollatorForLanguageModeling(pad_token_id=pad_id, padding_free=True)
    if strategy == "padding_free":
        groups = [[{"input_ids": ids} for ids in shuffled[s:s + batch_size]]
                  for s in range(0, len(shuffled), batch_size)]
    else:  # packed_bfd: rows of up to max_length tokens, each holding several whole examples
        packed = pack_dataset(Dataset.from_dict({"input_ids": shuffled}), max_length, strategy="bfd")
        rows = [{"input_ids": r["input_ids"], "seq_lengths": r["seq_lengths"]} for r in packed]
        # as many packed rows per step as hold about batch_size examples, so steps carry similar token counts
        per_step = max(1, round(batch_size * len(rows) / len(examples)))
        groups = [rows[s:s + per_step] for s in range(0, len(rows), per_step)]
    out = []
    for group in groups:
        batch = collate(group)
        out.append({k: batch[k] for k in ("input_ids", "position_ids", "labels")})
    return out


def non_pad_tokens(batches: list[dict]) -> int:
    return sum(int(b["attention_mask"].sum()) if "attention_mask" in b else b["input_ids"].numel() for b in batches)


def train_epoch(model, batches: list[dict], learning_rate: float = 1e-3) -> float:
    import torch

    optimizer = torch.optim.AdamW(model.parameters(), lr=learning_rate)
    model.train()
    started = time.perf_counter()
    for batch in batches:
        loss = model(**batch, use_cache=False).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    return time.perf_counter() - started


def max_logit_error(model, strategy: str, examples: list[list[int]], max_length: int, pad_id: int) -> float:
    """Largest |logit| difference between a batch built by ``strategy`` and each sequence run alone."""
    import torch

    sample = examples[:8]
    batch = make_batches(strategy, sample, len(sample), max_length, pad_id)[0]
    model.eval()
    with torch.no_grad():
        logits = model(**{k: v for k, v in batch.items() if k != "labels"}, use_cache=False).logits
        error = 0.0
        if "attention_mask" in batch:
            for i, mask in enumerate(batch["attention_mask"]):
                n = int(mask.sum())
                alone = model(input_ids=batch["input_ids"][i:i + 1, :n], use_cache=False).logits[0]
                error = max(error, (logits[i, :n] - alone).abs().max().item())
        else:
            positions = batch["position_ids"][0]
            starts = (positions == 0).nonzero().flatten().tolist() + [len(positions)]
            for a, b in zip(starts[:-1], starts[1:]):
                alone = model(input_ids=batch["input_ids"][:, a:b], use_cache=False).logits[0]
                error = max(error, (logits[0, a:b] - alone).abs().max().item())
    return error


def run(repeats: int = 3, threads: int | None = 1, batch_size: int = 16, max_length: int = 128) -> dict:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from labhelpers.tiny import zoo_path

    if threads:
        torch.set_num_threads(threads)
    report = {"threads": torch.get_num_threads(), "batch_size": batch_size, "max_length": max_length,
              "repeats": repeats, "models": {}}
    for name, role in MODELS.items():
        path = zoo_path(name)
        tokenizer = AutoTokenizer.from_pretrained(path)
        pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        examples = tokenised_examples(tokenizer, max_length)
        model = AutoModelForCausalLM.from_pretrained(path)
        initial = {k: v.clone() for k, v in model.state_dict().items()}
        batches = {s: make_batches(s, examples, batch_size, max_length, pad_id) for s in STRATEGIES}
        tokens = {s: non_pad_tokens(b) for s, b in batches.items()}
        seconds = {s: [] for s in STRATEGIES}
        train_epoch(model, batches["longest"][:3])  # warm-up: first calls allocate and pick kernels
        for r in range(repeats):
            for s in STRATEGIES[r % len(STRATEGIES):] + STRATEGIES[:r % len(STRATEGIES)]:
                model.load_state_dict(initial)
                seconds[s].append(train_epoch(model, batches[s]))
        model.load_state_dict(initial)
        rows = {}
        for s in STRATEGIES:
            median = statistics.median(seconds[s])
            rows[s] = {"tokens": tokens[s], "steps": len(batches[s]),
                       "tokens_in_batches": sum(b["input_ids"].numel() for b in batches[s]),
                       "median_s": round(median, 3), "tokens_per_s": round(tokens[s] / median),
                       "max_logit_error": max_logit_error(model, s, examples, max_length, pad_id)}
        naive = rows["max_length"]["tokens_per_s"]
        for s in STRATEGIES:
            rows[s]["speedup_vs_max_length"] = round(rows[s]["tokens_per_s"] / naive, 2)
            rows[s]["speedup_vs_longest"] = round(rows[s]["tokens_per_s"] / rows["longest"]["tokens_per_s"], 2)
            rows[s]["correct"] = rows[s]["max_logit_error"] < 1e-3
        lengths = [len(e) for e in examples]
        report["models"][name] = {"role": role, "examples": len(examples),
                                  "mean_length": round(statistics.mean(lengths), 1), "max_length_seen": max(lengths),
                                  "strategies": rows}
    return report


def markdown(report: dict) -> str:
    lines = [f"SFT epoch of lab 01's tiny set ({report['threads']} thread(s), batch {report['batch_size']}, "
             f"max_length {report['max_length']}, median of {report['repeats']}):", "",
             "| model | batches | non-pad tokens/s | × max_length padding | × longest | max logit error | same model? |",
             "|---|---|---|---|---|---|---|"]
    for name, m in report["models"].items():
        for s, r in m["strategies"].items():
            lines.append(f"| {name} | {s} | {r['tokens_per_s']:,} | {r['speedup_vs_max_length']:.2f} | "
                         f"{r['speedup_vs_longest']:.2f} | {r['max_logit_error']:.1e} | "
                         f"{'yes' if r['correct'] else 'no'} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (the labs use 1 on a CPU)")
    args = parser.parse_args()
    report = run(args.repeats, args.threads)
    print(json.dumps(report, indent=2))
    print(markdown(report))


if __name__ == "__main__":
    main()
