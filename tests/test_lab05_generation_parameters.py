"""Lab 05 (generation parameters): the step-by-step distribution, the quality-diversity trade-off, exercise 5.2."""

from __future__ import annotations

import pytest
from conftest import checks_of, failure_of, results_of


@pytest.mark.notebook
def test_trade_off_step_by_step_and_repetition_penalty_exercise(executed_lab):
    run = executed_lab("05")
    assert run.error is None, failure_of(run)
    results, checks = results_of(run), checks_of(run)
    for name in ("step_by_step_is_greedy", "temperature_trades_quality_for_diversity",
                 "repetition_penalty_matches_library"):
        assert checks[name]["passed"], f"{name}: {checks[name]['message']} (value {checks[name]['value']})"
    assert checks["repetition_penalty_matches_library"]["value"] < 1e-6
    # four steps, each with its own distribution: the entropies are not all the same
    entropies = results["next_token_entropy_by_step"]
    assert len(entropies) == 4 and all(h >= 0 for h in entropies) and max(entropies) - min(entropies) > 0.5, entropies
    # from the coolest to the hottest temperature: clearly more distinct bigrams, clearly less likely text
    trade_off = results["quality_diversity_by_temperature"]
    assert list(trade_off) == ["0.3", "0.7", "1.0", "1.5"]
    assert trade_off["1.5"]["distinct_2"] >= trade_off["0.3"]["distinct_2"] + 0.2, trade_off
    assert trade_off["1.5"]["logprob"] <= trade_off["0.3"]["logprob"] - 1.0, trade_off
    assert all(0 < point["distinct_2"] <= 1 and point["logprob"] < 0 for point in trade_off.values()), trade_off
