"""Lab 03 (DPO) in the tiny profile: DPO learns the held-out preferences, plain DPO lowers the chosen answers'
likelihood (the pitfall the lab measures), and the SFT term keeps them at least as likely as at the start."""

from __future__ import annotations

import pytest
from conftest import results_of


@pytest.mark.notebook
def test_dpo_lab_learns_preferences_and_the_sft_term_prevents_displacement(executed_lab):
    run = executed_lab("03")
    assert run.error is None, f"03_dpo raised: {run.error} (see {run.output})"
    res = results_of(run)
    assert res["pref_accuracy_before"] == 0.0, "the starting policy is its own reference: every margin is 0"
    assert res["pref_accuracy_after"] >= 0.7
    assert res["pref_accuracy_dpo_sft"] >= 0.7
    # the quality figure: mean log-prob per token of the held-out chosen answers
    assert res["chosen_logp_dpo_sft"] >= res["chosen_logp_start"]
    assert res["chosen_logp_dpo"] < res["chosen_logp_start"] - 0.5, "plain DPO shows likelihood displacement"
    # generations: only the DPO+SFT model writes positive one-line reviews
    assert res["gen_positive_dpo_sft"] >= res["gen_positive_ref"] + 0.5
    checks = {r["name"]: r["passed"] for r in run.records if r["kind"] == "check"}
    assert checks["our_loss_matches_dpo_trainer"] and checks["sft_term_keeps_chosen_likely"]
