"""Lab 04 (RLHF with PPO), tiny profile: the learning effects the lab teaches, read from its records."""

from __future__ import annotations

import pytest
from conftest import failure_of, lab_defaults, results_of


@pytest.fixture(scope="module")
def lab04(executed_lab):
    run = executed_lab("04")
    assert run.error is None, failure_of(run)
    return run


@pytest.mark.notebook
def test_ppo_raises_the_held_out_reward(lab04):
    results = results_of(lab04)
    assert results["reward_after"] >= results["reward_before"] + lab_defaults("04")["min_reward_gain"], results


@pytest.mark.notebook
def test_tiny_scores_with_lab02s_reward_model_and_the_judge_agrees_with_the_kl_run(lab04):
    """Tiny's reward is lab 02's reward model (not bounded to [0, 1] like P(POSITIVE)); the classifier, trained on
    neither run, finds the beta > 0 run's reviews more positive than the beta = 0 run's: the lab names that gap."""
    results = results_of(lab04)
    assert lab_defaults("04")["reward_source"] == "lab02"
    assert results["reward_after"] > 1.0, results  # lab 02's reward of a positive line, past any P(POSITIVE)
    check = {r["name"]: r for r in lab04.records if r["kind"] == "check"}["reward_hacking_named"]
    assert check["passed"] and check["value"] < check["threshold"], check


@pytest.mark.notebook
def test_ppo_raises_the_objective_it_maximises(lab04):
    """score − β·KL per response, mean of the last quarter of the steps over the first, rises by a margin."""
    objective = results_of(lab04)["objective_first_last"]
    assert objective["last"] > objective["first"] + lab_defaults("04")["min_objective_gain"], objective
    check = {r["name"]: r for r in lab04.records if r["kind"] == "check"}["objective_rises"]
    assert check["passed"], check
    assert check["value"] == pytest.approx(objective["last"] - objective["first"], rel=1e-3, abs=1e-3)


@pytest.mark.notebook
def test_the_kl_penalty_keeps_the_policy_close_and_fluent(lab04):
    results = results_of(lab04)
    assert 0.0 < results["kl_final"] < 3 * lab_defaults("04")["kl_target"], "the lab's kl_stays_bounded bound"
    assert results["kl_nokl"] > 2 * results["kl_held_out"]
    fluency = results["ref_logprob"]
    assert fluency["beta_0"] < fluency["beta"] <= fluency["start"] + 0.5


@pytest.mark.notebook
def test_every_check_of_lab04_passes(lab04):
    checks = {r["name"]: r["passed"] for r in lab04.records if r["kind"] == "check"}
    assert {"reinforce_matches_exact_gradient", "reward_sign_sets_update_direction", "gae_matches_library",
            "clipped_loss_matches_library", "reward_improves", "objective_rises", "no_kl_drifts_further"} <= set(checks)
    assert all(checks.values()), checks


@pytest.mark.notebook
def test_grpo_group_advantages_exercise_matches_trl(lab04):
    checks = {r["name"]: r for r in lab04.records if r["kind"] == "check"}
    assert checks["group_advantages_match_trl"]["passed"] and checks["group_advantages_match_trl"]["value"] < 1e-6


def test_reward_source_is_a_typed_option_with_a_clear_error():
    import labhelpers
    assert labhelpers.lab_config("04", "tiny", quiet=True).reward_source == "lab02"
    assert labhelpers.lab_config("04", "tiny", quiet=True, REWARD_SOURCE="classifier").reward_source == "classifier"
    with pytest.raises(ValueError, match="REWARD_SOURCE must be 'classifier'.*or 'lab02'"):
        labhelpers.lab_config("04", "tiny", quiet=True, REWARD_SOURCE="encoder")
