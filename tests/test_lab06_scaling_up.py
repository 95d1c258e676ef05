"""Lab 06 (scaling up), executed in the tiny profile: the assistant-only mask, LoRA against peft and against full
fine-tuning, merging, the memory formula against the measured peak, and the two-process run."""

from __future__ import annotations

import pytest
from conftest import checks_of, results_of

CHECKS = ("generation_prompt_is_a_prefix", "loss_covers_only_assistant_turns", "lora_layer_matches_peft",
          "lora_count_matches_formula", "lora_learns", "merged_matches_adapter", "memory_formula_within_25pct",
          "both_ranks_ran", "same_global_batch", "ddp_matches_one_process")


@pytest.mark.notebook
def test_tiny_run_passes_every_check_and_learns(executed_lab):
    run = executed_lab("06")
    assert run.error is None, run.error
    results, checks = results_of(run), checks_of(run)
    for name in CHECKS:
        assert checks[name]["passed"], f"{name}: {checks[name]['message']} (value {checks[name]['value']})"
    assert {n for n in checks if not n.startswith("quiz_")} == set(CHECKS), "every check of the lab is asserted here"

    before, lora, full = results["before"], results["lora"], results["full_fine_tuning"]
    assert lora["bleu"] >= before["bleu"] + 20 and full["bleu"] >= before["bleu"] + 20
    assert lora["assistant_loss"] < 0.6 * before["assistant_loss"]
    assert full["assistant_loss"] < 0.6 * before["assistant_loss"]
    gap = results["lora_gap_to_full"]
    assert gap["bleu"] == pytest.approx(full["bleu"] - lora["bleu"], abs=1e-3), "the gap is reported as it is"
    assert 0.01 < results["trainable_fraction"] < 0.2

    assert checks["lora_layer_matches_peft"]["value"] < 1e-4
    assert checks["merged_matches_adapter"]["value"] < 1e-3
    assert checks["ddp_matches_one_process"]["value"] < 1e-3 and checks["same_global_batch"]["value"] == 16
    measured = results["memory_measured"]
    assert 0.9 <= measured["probe full"] <= 1.25 and 0.9 <= measured["probe lora"] <= 1.25
    table = results["memory_table_gib"]
    assert table["Qwen/Qwen2.5-7B-Instruct"]["full FT GiB"] > 100 > table["Qwen/Qwen2.5-7B-Instruct"]["QLoRA GiB"] * 10
    assert "qlora" not in results, "no GPU here: QLoRA is skipped with a one-line note"
