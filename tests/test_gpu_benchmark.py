"""benchmarks/gpu_full_profile.py: it trains with the labs' own configs, and it runs end to end on the CPU."""

from __future__ import annotations

import importlib.util
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from labhelpers import training
from labhelpers.config import config_labs, profile_values

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "gpu_full_profile.py"
RUN = {"output_dir": "bench-out", "max_steps": 3, "logging_steps": 1}
# all a benchmark may change in a lab's trainer config: how long it runs, where it writes, how often it logs,
# and no evaluation (it has no held-out set; do_eval follows eval_strategy)
BENCHMARK_FIELDS = {"output_dir", "max_steps", "logging_steps", "eval_strategy", "eval_on_start", "do_eval"}

# lab -> (the labhelpers.training call with the benchmark's overrides, the lab's own call)
LAB_ARGS = {
    "01_instruction_tuning": (lambda cfg: training.sft_args(cfg, **RUN), training.sft_args),
    "02_reward_modeling": (lambda cfg: training.reward_args(cfg, **RUN, eval_strategy="no", eval_on_start=False),
                           training.reward_args),
    "03_dpo": (lambda cfg: training.dpo_args(cfg, "dpo", ("sigmoid",), **RUN, eval_strategy="no"),
               lambda cfg: training.dpo_args(cfg, "dpo", ("sigmoid",))),
}


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("gpu_full_profile", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_script(*args: str, timeout: int) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}  # LABHELPERS_CACHE comes from the environment
    return subprocess.run([sys.executable, str(SCRIPT), *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout)


@pytest.mark.parametrize("lab", list(LAB_ARGS))
def test_the_benchmark_trains_with_the_config_the_notebook_builds(bench, lab):
    cfg = bench.lab_settings(lab, "float16")
    args = bench.training_args_for(lab, cfg, steps=RUN["max_steps"], out_dir=RUN["output_dir"])
    with_overrides, lab_own = LAB_ARGS[lab]
    expected = with_overrides(cfg)
    assert type(args) is type(expected) and args.to_dict() == expected.to_dict()
    own = lab_own(cfg).to_dict()
    assert {name for name, value in args.to_dict().items() if value != own[name]} <= BENCHMARK_FIELDS

    full = profile_values(lab, "full")
    assert (args.per_device_train_batch_size, args.max_length, args.learning_rate) == (
        full["batch_size"], full["max_length"], full["learning_rate"])
    assert args.fp16 and not args.bf16 and not args.use_cpu  # what a T4 runs
    assert args.eval_strategy == "no" and args.max_steps == RUN["max_steps"]
    if lab == "01_instruction_tuning":
        assert args.train_sampling_strategy == "group_by_length" and args.completion_only_loss
    if lab == "03_dpo":
        assert args.precompute_ref_log_probs is True and args.beta == full["beta"]


def test_the_dtype_option_picks_the_trainers_precision_and_smoke_runs_on_the_cpu(bench):
    # (a bf16 TrainingArguments cannot be built without a bf16 GPU, so this checks the LabConfig it comes from)
    cfg = bench.lab_settings("01_instruction_tuning", "bfloat16")
    assert cfg.bf16 and not cfg.fp16 and not cfg.use_cpu
    smoke = bench.lab_settings("01_instruction_tuning", "float16", smoke=True)
    assert smoke.use_cpu and not (smoke.fp16 or smoke.bf16)
    assert (smoke.batch_size, smoke.max_length) == (bench.SMOKE_SHAPES["batch_size"], bench.SMOKE_SHAPES["max_length"])


def test_ppo_grpo_and_generation_settings_are_the_labs(bench):
    cfg = bench.lab_settings("04_ppo_rlhf", "float16")
    ppo = bench.training_args_for("04_ppo_rlhf", cfg, steps=3, out_dir="bench-out")
    assert ppo == training.ppo_config(cfg, total_steps=3, show_progress=False)
    full = profile_values("04_ppo_rlhf", "full")
    assert (ppo.learning_rate, ppo.mini_batch_size, ppo.ppo_epochs) == (
        full["learning_rate"], full["mini_batch_size"], full["ppo_epochs"])
    assert (cfg.batch_size, cfg.max_query_tokens, cfg.max_new_tokens) == (
        full["batch_size"], full["max_query_tokens"], full["max_new_tokens"])

    grpo = bench.training_args_for("04_ppo_rlhf/grpo", cfg, steps=3, out_dir="bench-out")
    assert grpo.to_dict() == training.grpo_args(cfg, **RUN).to_dict()
    assert grpo.per_device_train_batch_size == full["grpo_batch_size"] and grpo.fp16

    cfg = bench.lab_settings("05_generation_parameters", "float16")
    generate = bench.training_args_for("05_generation_parameters", cfg, steps=3, out_dir="bench-out")
    assert generate["max_new_tokens"] == profile_values("05_generation_parameters", "full")["max_new_tokens"]
    assert cfg.torch_dtype == torch.float16


def test_peak_flops_are_looked_up_by_device_name(bench):
    assert bench.peak_flops("Tesla T4") == 65e12
    assert bench.peak_flops("NVIDIA A100-SXM4-40GB") == 312e12
    assert bench.peak_flops("NVIDIA H100 80GB HBM3") == 989e12
    assert bench.peak_flops("NVIDIA H100 PCIe") == 756e12
    assert bench.peak_flops("NVIDIA L4") == 121e12 and bench.peak_flops("NVIDIA A10") == 125e12
    for unknown in ("NVIDIA A10G", "NVIDIA L40S", "NVIDIA H100 NVL", "NVIDIA GeForce RTX 4090"):
        assert bench.peak_flops(unknown) is None, unknown


def test_flops_count_the_output_layer_but_not_embedding_lookups(bench):
    from transformers import GPT2Config, GPT2ForSequenceClassification, GPT2LMHeadModel

    config = GPT2Config(vocab_size=100, n_positions=16, n_embd=8, n_layer=1, n_head=2, num_labels=1)
    lm, classifier = GPT2LMHeadModel(config), GPT2ForSequenceClassification(config)
    wte, wpe = 100 * 8, 16 * 8
    assert bench.matmul_params(lm) == sum(p.numel() for p in lm.parameters()) - wpe  # wte is the tied LM head
    assert bench.matmul_params(classifier) == sum(p.numel() for p in classifier.parameters()) - wte - wpe


def test_an_out_of_memory_error_is_reported_for_its_lab(bench, monkeypatch):
    def too_big(*args):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB.\nmore details")

    monkeypatch.setitem(bench.BENCHMARKS, "03_dpo", too_big)
    row = bench.run_lab("03_dpo", steps=2, dtype="float16", smoke=True, gpu="test")
    assert row["oom"] is True and row["error"] == "CUDA out of memory. Tried to allocate 2.00 GiB."
    assert (row["config"], row["batch_size"], row["max_length"]) == ("DPOConfig", 2, 32)  # what did not fit
    assert row.get("median_step_s") is None and "| yes |" in bench.markdown_table([row])


@pytest.mark.notebook  # child processes for long (the fast lane skips it)
def test_the_smoke_run_measures_every_lab_on_the_cpu(bench, tmp_path):
    out = tmp_path / "report.json"
    done = run_script("--smoke", "--json", str(out), timeout=300)
    assert done.returncode == 0, done.stderr[-4000:]
    report = json.loads(out.read_text())
    rows = {row["lab"]: row for row in report["labs"]}
    # lab 06's QLoRA needs CUDA; its GPU figures come from `labhelpers rehearse 06 --full-size --gpu-memory-gib`
    assert {lab.split("/")[0] for lab in rows} == set(config_labs()) - {"06_scaling_up"}
    for lab, row in rows.items():
        assert row["oom"] is False, lab
        assert math.isfinite(row["median_step_s"]) and row["median_step_s"] > 0, lab
        assert row["tokens_per_s"] > 0 and row["peak_gib"] is None and row["mfu"] is None, lab
        assert row["steps"] == bench.SMOKE_STEPS, lab
    assert [rows[lab]["config"] for lab in ("01_instruction_tuning", "02_reward_modeling", "03_dpo", "04_ppo_rlhf",
                                            "04_ppo_rlhf/grpo")] == [
        "SFTConfig", "RewardConfig", "DPOConfig", "PPOConfig", "GRPOConfig"]

    # every sequence reaches max_length: full batches (chosen and rejected for the reward model and DPO)
    full_batch = bench.SMOKE_SHAPES["batch_size"] * bench.SMOKE_SHAPES["max_length"]
    assert rows["01_instruction_tuning"]["tokens_per_step"] == full_batch
    assert rows["02_reward_modeling"]["tokens_per_step"] == rows["03_dpo"]["tokens_per_step"] == 2 * full_batch

    printed = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    assert [row["lab"] for row in printed] == list(rows)  # one JSON line per lab, then the table
    assert "| lab | config |" in done.stdout.split(json.dumps(printed[-1]))[-1]


@pytest.mark.notebook  # child processes for long (the fast lane skips it)
@pytest.mark.skipif(torch.cuda.is_available(), reason="with a CUDA GPU the script runs the benchmark")
def test_without_a_gpu_the_full_benchmark_is_skipped(bench):
    done = run_script(timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == bench.SKIP_MESSAGE
