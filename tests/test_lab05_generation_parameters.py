"""Lab 05 (generation parameters): the step-by-step distribution, the quality-diversity trade-off, exercise 5.2;
greedy stays greedy whatever the model's own generation config asks for."""

from __future__ import annotations

import pytest
import torch
from conftest import checks_of, failure_of, results_of
from lab_cells import lab_code, model_loads, run_cells


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


def test_greedy_stays_the_arg_max_for_a_model_whose_generation_config_asks_for_sampling_and_penalties(tmp_path):
    """generate() fills what it is not given from the model's generation_config.json (Qwen2.5's asks for sampling
    and a repetition penalty). The lab's greedy cells, run on a tiny model saved with such a config, still agree
    with the arg-max loop, with themselves, and with sampling at T = 1e-4."""
    from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig

    import labhelpers
    from labhelpers import records

    tiny = labhelpers.lab_config("05", "tiny", quiet=True)
    labhelpers.prepare_lab(tiny)
    model = AutoModelForCausalLM.from_pretrained(tiny.model_name, dtype=torch.float32)
    model.generation_config = GenerationConfig(do_sample=True, temperature=0.7, top_k=20, top_p=0.8,
                                               repetition_penalty=1.5, no_repeat_ngram_size=1)
    model.save_pretrained(tmp_path / "penalised")
    AutoTokenizer.from_pretrained(tiny.model_name).save_pretrained(tmp_path / "penalised")
    parameters = {"PROFILE": "tiny", "DEVICE": None, "MODEL_NAME": str(tmp_path / "penalised"), "PROMPT": None,
                  "MAX_NEW_TOKENS": None}
    lab = run_cells("05_generation_parameters", ["1333ca92", "57eb7ab3", "1710eb8f", "e05136e2", "e05136e2-2",
                                                 "b007e848"], {"labhelpers": labhelpers, **parameters})
    checks = {r["name"]: r for r in records.recorded() if r["kind"] == "check"}
    for name in ("step_by_step_is_greedy", "greedy_is_deterministic", "low_temperature_equals_greedy"):
        assert checks[name]["passed"], (name, checks[name]["value"])
    ids = lab["inputs"].input_ids
    with torch.no_grad():  # the lab's greedy continuation (section 3), token by token: the arg-max every time
        for _ in range(len(lab["greedy_ids"])):
            ids = torch.cat([ids, lab["model"](ids).logits[:, -1].argmax(-1, keepdim=True)], dim=1)
    assert lab["greedy_ids"].tolist() == ids[0, lab["inputs"].input_ids.shape[1]:].tolist()


def test_the_model_loads_in_float32_with_neutral_greedy_generation_defaults_before_any_generate():
    code = lab_code("05_generation_parameters")
    loads = model_loads(code)
    assert loads and all("dtype=torch.float32" in call for call in loads), loads
    defaults = code.index("model.generation_config = training.greedy_generation_config(")
    assert defaults < code.index(".generate(")
