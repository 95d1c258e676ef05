"""Lab 01 (instruction tuning): the learning effect in the tiny profile, a run on a CodeAlpaca-format JSON file,
and a clear error for a file with the wrong columns."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import checks_of, failure_of, lab_defaults, results_of

from labhelpers import data
from labhelpers.formatting import formatting_prompts_func

SAMPLE = Path(__file__).parent / "data" / "code_alpaca_sample.json"



@pytest.mark.notebook
def test_tiny_run_learns_and_both_masking_ways_agree(executed_lab):
    run = executed_lab("01")
    assert run.error is None, failure_of(run)
    results, checks = results_of(run), checks_of(run)
    min_gain = lab_defaults("01")["min_bleu_gain"]
    assert results["bleu_after"] >= results["bleu_before"] + min_gain
    assert 0 <= results["bleu_before"] <= 100 and 0 <= results["bleu_after"] <= 100
    assert results["response_loss"]["after"] < 0.5 * results["response_loss"]["before"]
    for name in ("formatting_matches_reference", "mask_by_hand_matches_collator", "masking_ways_agree",
                 "loss_decreases", "bleu_improves", "unmasked_run_learns_the_prompts"):
        assert checks[name]["passed"], f"{name}: {checks[name]['message']} (value {checks[name]['value']})"
    assert checks["bleu_improves"]["threshold"] == min_gain
    # exercise 1.3 equals F.cross_entropy(ignore_index=-100) on the collator's labels
    assert checks["masked_ce_matches_library"]["passed"] and checks["masked_ce_matches_library"]["value"] < 1e-5
    # the validation curve: the held-out loss at least halves, and ends where section 6's response loss is
    validation = results["validation_loss"]
    assert checks["validation_loss_falls"]["passed"] and validation["end"] < 0.5 * validation["start"], validation
    assert abs(validation["end"] - results["response_loss"]["after"]) < 0.15, (validation, results["response_loss"])
    experiment = results["masking_experiment"]
    assert experiment["prompt_loss_unmasked"] < experiment["prompt_loss_masked"]
    assert {"bleu_masked", "bleu_unmasked", "response_loss_masked", "response_loss_unmasked"} <= set(experiment)


@pytest.mark.notebook
def test_runs_to_the_end_on_a_codealpaca_json_file(executed_lab):
    run = executed_lab("01", DATASET=str(SAMPLE), MAX_STEPS=8)
    assert run.error is None, run.error
    results, checks = results_of(run), checks_of(run)
    assert isinstance(results["bleu_before"], (int, float)) and isinstance(results["bleu_after"], (int, float))
    # real rows are long for the tiny tokenizer: truncation and the dropped rows must not break the masking
    assert checks["masking_ways_agree"]["passed"]
    assert checks["formatting_matches_reference"]["passed"]


@pytest.mark.notebook
def test_wrong_schema_stops_with_the_loaders_error(executed_lab, tmp_path_factory):
    path = tmp_path_factory.mktemp("bad") / "questions.json"
    path.write_text(json.dumps([{"question": "What is 2 + 2?", "answer": "4"}] * 5))
    run = executed_lab("01", DATASET=str(path))
    assert run.error is not None and "DatasetSchemaError" in run.error, run.error
    assert "KeyError" not in run.error
    assert not any(r["kind"] == "result" for r in run.records), "it stopped before any result"


def test_sample_file_is_codealpaca_shaped_with_long_rows():
    raw = json.loads(SAMPLE.read_text())
    assert isinstance(raw, list) and 25 <= len(raw) <= 40
    assert all(set(r) == {"instruction", "input", "output"} for r in raw)
    ds = data.load_code_alpaca(str(SAMPLE))
    with_input = sum(bool(x.strip()) for x in ds["input"]) / len(ds)
    assert 0.35 <= with_input <= 0.65
    from labhelpers.tiny import build_tokenizer

    tok = build_tokenizer("opt")
    lengths = [len(tok(formatting_prompts_func(r))["input_ids"]) for r in ds]
    assert max(lengths) > 256, "some rows exceed the tiny profile's max_length (and the tiny model's context)"
    assert sum(n <= 128 for n in lengths) >= len(lengths) // 2, "most rows fit"
