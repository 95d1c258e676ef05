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
    # the trainer averages per-batch means, section 6 per token: with answers of unequal length (code, one-line
    # reviews, letters) the two differ by a few tenths of a nat, not by the size of the fall
    assert abs(validation["end"] - results["response_loss"]["after"]) < 0.25 * results["response_loss"]["after"], \
        (validation, results["response_loss"])
    experiment = results["masking_experiment"]
    assert experiment["prompt_loss_unmasked"] < experiment["prompt_loss_masked"]
    assert {"bleu_masked", "bleu_unmasked", "response_loss_masked", "response_loss_unmasked"} <= set(experiment)
    # held-out questions are new: the rule-following kinds must be answered right after training, not before
    defaults = lab_defaults("01")
    for name, margin in (("exact_match_rises_on_generalising_tasks", "min_generalising_rise"),
                         ("code_passes_tests_rises", "min_code_pass_rise")):
        assert checks[name]["passed"] and checks[name]["threshold"] == defaults[margin], checks[name]
        assert checks[name]["value"] >= 2 * defaults[margin], f"{name} lost its headroom: {checks[name]['value']}"
    by_kind = results["right_by_kind"]
    assert by_kind["function"]["held-out after"] - by_kind["function"]["held-out before"] >= 0.5, by_kind["function"]
    assert all(row["held-out rows"] >= 1 for row in by_kind.values()), by_kind


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


def test_every_tiny_row_has_a_kind_and_its_reference_is_right():
    from labhelpers import judging, synthetic

    rows = synthetic.code_alpaca(440, seed=42)
    counts = judging.count_by_kind(rows)
    assert set(counts) == set(judging.CODE_ALPACA_KINDS), counts  # no "other": every row is scored by its kind
    assert 0.12 <= counts["review"] / len(rows) <= 0.25, counts
    assert judging.right_by_kind(rows, [row["output"] for row in rows]) == {kind: 1.0 for kind in counts}
    reviews = [row for row in rows if judging.task_kind(row["instruction"]) == "review"]
    plain = [row for row in reviews if row["instruction"] == synthetic.review_request(row["instruction"].split()[-1][:-1])]
    assert plain, "some review rows ask exactly what labs 03 and 04 ask"


@pytest.mark.parametrize("instruction, answer, why", [
    ("Write one line about the film.", "the plot was great and funny .", "another noun"),
    ("Write one line about the film.", "the film was great and awful .", "two tones"),
    ("Write one line about the film.", "the film was great and great .", "one adjective twice"),
    ("Write one line about the film.", "the film was great and funny . the film", "runs on"),
    ("Write one line about the film, in a good tone.", "the film was dull and awful .", "the other tone"),
    ("Write one line about the film, using the word moving.", "the film was great and funny .", "without the word"),
])
def test_a_plausible_wrong_review_is_not_right(instruction, answer, why):
    from labhelpers import judging

    row = {"instruction": instruction, "input": "", "output": "the film was moving and great ."}
    assert not judging.answer_is_right(row, answer), why
    assert judging.answer_is_right(row, "the film was moving and superb .")


def test_other_kinds_are_right_only_when_exact():
    from labhelpers import judging

    row = {"instruction": "Reverse the letters.", "input": "a b c", "output": "c b a"}
    assert judging.answer_is_right(row, " c b a ") and not judging.answer_is_right(row, "c b")
    rows = [row, {"instruction": "Write the alphabet from a to c.", "input": "", "output": "a b c"}]
    assert judging.right_by_kind(rows, ["c b a", "a b"]) == {"alphabet": 0.0, "reverse": 1.0}
