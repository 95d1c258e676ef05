"""Lab 02 (reward modeling): the learning effect in the tiny profile, and a run on a local file with broken pairs."""

from __future__ import annotations

import json

import pytest
from conftest import checks_of, failure_of, results_of

from labhelpers.synthetic import pairwise
from labhelpers.tiny import RECIPES, build_tokenizer


@pytest.mark.notebook
def test_tiny_run_learns_to_prefer_the_chosen_answer(executed_lab):
    run = executed_lab("02")
    assert run.error is None, failure_of(run)
    results, checks = results_of(run), checks_of(run)
    before, after = results["win_rate_before"], results["win_rate_after"]
    assert 0.0 <= before <= 1.0 and 0.0 <= after <= 1.0
    # the lab's own thresholds, as its checks recorded them
    assert after >= before + checks["win_rate_improves"]["threshold"], (before, after)
    assert after >= checks["win_rate_after_high"]["threshold"], after
    assert results["eval_loss"]["end"] < results["eval_loss"]["start"]
    assert results["reward_margin_mean"]["after"] > results["reward_margin_mean"]["before"]
    for name in ("bt_loss_matches_library", "bt_loss_matches_trainer", "pad_eos_pitfall_shown",
                 "reward_read_at_final_eos", "clean_pairs_handles_bad_pairs", "preprocess_matches_scoring",
                 "score_matches_batched", "win_rate_improves", "win_rate_after_high", "saved_reward_model_reloads"):
        assert checks[name]["passed"], f"{name}: {checks[name]['message']} (value {checks[name]['value']})"
    assert checks["bt_loss_matches_trainer"]["value"] < 1e-6
    length_bias = results["reward_length_correlation"]
    assert set(length_bias) == {"reward_vs_length", "chosen_vs_length"}
    assert all(-1.0 <= r <= 1.0 for r in length_bias.values()), length_bias


@pytest.mark.notebook
def test_broken_pairs_in_a_local_file_are_dropped_and_counted(executed_lab, tmp_path_factory):
    rows = pairwise(80, seed=11)
    broken = ([{"prompt": "Say hi.", "chosen": "hi", "rejected": "hi"}] * 3
              + [{"prompt": "Say hi.", "chosen": "", "rejected": "bye"}] * 2
              + [{"prompt": "Say hi. " * 100, "chosen": "hi", "rejected": "bye"}] * 2)
    eos = build_tokenizer(RECIPES["tiny-sft"].architecture).eos_token  # lab 02's tiny model is lab 01's OPT: </s>
    with_eos = [{**r, "chosen": r["chosen"] + eos} for r in pairwise(5, seed=12)]
    path = tmp_path_factory.mktemp("pairs") / "pairs.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows + broken + with_eos) + "\n")
    run = executed_lab("02", DATASET=str(path), MAX_STEPS=4)
    assert run.error is None, run.error
    cleaned = results_of(run)["pairs_after_cleaning"]
    assert cleaned["dropped"] == len(broken)
    assert cleaned["texts_with_eos_removed"] == len(with_eos)
    assert cleaned["train"] + cleaned["test"] == len(rows) + len(with_eos)
    assert "win_rate_after" in results_of(run), "the lab ran to the end"


def test_saved_reward_model_dir_is_per_profile_under_lab02_outputs():
    from labhelpers import reward
    assert reward.saved_reward_model_dir("tiny") == "outputs/02_reward_modeling/reward-model-tiny"
    assert reward.saved_reward_model_dir("full", root="/r") == "/r/outputs/02_reward_modeling/reward-model-full"
    with pytest.raises(ValueError, match="profile must be 'tiny' or 'full'"):
        reward.saved_reward_model_dir("auto")


def test_missing_reward_model_names_the_lab_to_run_first(tmp_path):
    from labhelpers import reward
    with pytest.raises(FileNotFoundError, match=r"Run labs/02_reward_modeling\.ipynb first") as info:
        reward.load_saved_reward_model("tiny", root=str(tmp_path))
    assert "REWARD_SOURCE" in str(info.value) and str(tmp_path) in str(info.value)
