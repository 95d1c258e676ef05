"""Preference rows in chat-message and plain-text form become the same prompt/chosen/rejected text; broken rows
fail with an error naming the row and the field; completion log-probs score exactly the answer tokens."""

from __future__ import annotations

import json

import datasets
import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from labhelpers.data import DatasetSchemaError, load_preferences
from labhelpers.judging import judge_review
from labhelpers.preferences import PreferenceRowError, completion_logps, process_row, to_text_preferences
from labhelpers.synthetic import preferences
from labhelpers.tiny import zoo_path

USER = {"role": "user", "content": "Name a colour."}
EXPECTED = {"prompt": "Human: Name a colour.\n\nAssistant:", "chosen": " Blue.", "rejected": " I will not."}


def ultrafeedback_row(**extra) -> dict:
    """The trl-lib/ultrafeedback_binarized shape: whole conversations, the prompt is their shared start."""
    return {"chosen": [USER, {"role": "assistant", "content": "Blue."}],
            "rejected": [USER, {"role": "assistant", "content": "I will not."}],
            "score_chosen": 8.0, "score_rejected": 2.0, **extra}


def test_chat_rows_with_implicit_prompt():
    assert process_row(ultrafeedback_row()) == EXPECTED


def test_chat_rows_with_explicit_prompt_as_text_or_messages():
    answers = {"chosen": [{"role": "assistant", "content": "Blue."}],
               "rejected": [{"role": "assistant", "content": "I will not."}]}
    assert process_row({"prompt": "Name a colour.", **answers}) == EXPECTED
    assert process_row({"prompt": [USER], **answers}) == EXPECTED


def test_multi_turn_conversation_keeps_every_turn_of_the_prompt():
    turns = [{"role": "system", "content": "Be brief."}, USER, {"role": "assistant", "content": "Red."},
             {"role": "user", "content": "Another?"}]
    row = process_row({"chosen": turns + [{"role": "assistant", "content": " Blue. "}],
                       "rejected": turns + [{"role": "assistant", "content": "No."}]})
    assert row["prompt"] == ("System: Be brief.\n\nHuman: Name a colour.\n\nAssistant: Red.\n\nHuman: Another?"
                             "\n\nAssistant:")
    assert row == {"prompt": row["prompt"], "chosen": " Blue.", "rejected": " No."}


def test_plain_text_rows_are_normalised_to_one_space_before_the_answer():
    row = {"prompt": "Human: Name a colour.\n\nAssistant: ", "chosen": "Blue.", "rejected": "  I will not.\n"}
    assert process_row(row) == EXPECTED
    assert process_row(EXPECTED) == EXPECTED, "already normalised text is left as it is"


def test_the_tokens_of_prompt_plus_answer_start_with_the_tokens_of_the_prompt():
    tok = AutoTokenizer.from_pretrained(zoo_path("tiny-gpt2"))
    for raw in preferences(20, seed=5):
        row = process_row(raw)
        prompt_ids = tok(row["prompt"])["input_ids"]
        for answer in (row["chosen"], row["rejected"]):
            assert tok(row["prompt"] + answer)["input_ids"][: len(prompt_ids)] == prompt_ids


@pytest.mark.parametrize("row, words", [
    ({"prompt": "Hi", "chosen": "Blue."}, ["row 3", "'rejected'", "fields found"]),
    ({"prompt": "Hi", "chosen": None, "rejected": "x"}, ["row 3", "'chosen'"]),
    ({"prompt": "Hi", "chosen": "  ", "rejected": "x"}, ["row 3", "'chosen'"]),
    ({"chosen": "Blue.", "rejected": "No."}, ["row 3", "plain text", "'prompt'"]),
    ({"prompt": "Hi", "chosen": "Blue.", "rejected": [USER]}, ["row 3", "both be strings or both be lists"]),
    ({"chosen": [USER, {"role": "assistant", "content": "a"}],
      "rejected": [{"role": "user", "content": "Other?"}, {"role": "assistant", "content": "b"}]},
     ["row 3", "same conversation"]),
    ({"chosen": [USER], "rejected": [USER]}, ["row 3", "'chosen' must end with an 'assistant' message"]),
    ({"chosen": [USER, {"role": "assistant", "content": "a"}], "rejected": [USER, {"role": "assistant", "content": ""}]},
     ["row 3", "'rejected' answer", "empty"]),
    ({"chosen": [USER, {"role": "bot", "content": "a"}], "rejected": [USER, {"role": "assistant", "content": "b"}]},
     ["row 3", "message 1 of 'chosen'", "'role'"]),
    ({"chosen": [{"role": "assistant", "content": "a"}], "rejected": [{"role": "assistant", "content": "b"}]},
     ["row 3", "no prompt"]),
], ids=["missing-field", "none", "blank", "text-without-prompt", "mixed-forms", "different-prompts",
        "no-answer", "empty-answer", "bad-role", "answer-only"])
def test_broken_rows_raise_one_clear_error(row, words):
    with pytest.raises(PreferenceRowError) as info:
        process_row(row, index=3)
    assert isinstance(info.value, DatasetSchemaError) and isinstance(info.value, ValueError)
    for word in words:
        assert word in str(info.value), str(info.value)


def test_both_synthetic_forms_map_to_identical_text_datasets():
    chat = to_text_preferences(datasets.Dataset.from_list(preferences(30, seed=2)))
    text = to_text_preferences(datasets.Dataset.from_list(preferences(30, seed=2, style="text")))
    assert chat.column_names == text.column_names == ["prompt", "chosen", "rejected"]
    assert chat.to_list() == text.to_list()
    assert len(set(chat["chosen"])) > 10, "the rows differ from each other"


def test_both_forms_load_from_local_files(tmp_path):
    for style in ("messages", "text"):
        path = tmp_path / f"{style}.jsonl"
        path.write_text("".join(json.dumps(r) + "\n" for r in preferences(6, seed=4, style=style)))
        ds = to_text_preferences(load_preferences(str(path)))
        assert ds.to_list() == [process_row(r) for r in preferences(6, seed=4, style="text")]


def test_dataset_errors_name_the_missing_column_and_the_broken_row():
    with pytest.raises(PreferenceRowError, match=r"no column\(s\) \['rejected'\]"):
        to_text_preferences(datasets.Dataset.from_list([{"prompt": "a", "chosen": "b"}]))
    rows = preferences(4, seed=0, style="text")
    rows[2]["rejected"] = None
    with pytest.raises(PreferenceRowError, match="row 2 has no 'rejected'"):
        to_text_preferences(datasets.Dataset.from_list(rows))


def test_drop_invalid_keeps_the_good_rows_and_says_what_it_dropped():
    rows = preferences(5, seed=0, style="text")
    rows[1]["chosen"], rows[3]["prompt"] = "", None
    with pytest.warns(UserWarning, match=r"Dropped 2 of 5 .* row 1 has no 'chosen'"):
        ds = to_text_preferences(datasets.Dataset.from_list(rows), drop_invalid=True)
    assert ds.column_names == ["prompt", "chosen", "rejected"]
    assert ds.to_list() == [process_row(rows[i]) for i in (0, 2, 4)]


# --------------------------------------------------------------------------------------------------------------
# completion_logps
# --------------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny_lm():
    path = zoo_path("tiny-gpt2")
    tok = AutoTokenizer.from_pretrained(path)
    tok.pad_token = tok.eos_token
    return AutoModelForCausalLM.from_pretrained(path).eval(), tok


def _manual_logp(model, tok, prompt: str, answer: str) -> tuple[float, int]:
    """Score one example without batching: full-vocabulary log-softmax, answer tokens + EOS only."""
    prompt_ids = tok(prompt)["input_ids"]
    answer_ids = tok(prompt + answer)["input_ids"][len(prompt_ids):] + [tok.eos_token_id]
    ids = torch.tensor([prompt_ids + answer_ids])
    with torch.no_grad():
        logp = torch.log_softmax(model(ids).logits[0].double(), -1)
    total = sum(logp[len(prompt_ids) + i - 1, t].item() for i, t in enumerate(answer_ids))
    return total, len(answer_ids)


def test_completion_logps_equal_a_token_by_token_sum(tiny_lm):
    model, tok = tiny_lm
    rows = [process_row(r) for r in preferences(5, seed=9)]
    rows.append({"prompt": "Human: Hi\n\nAssistant:", "chosen": " the film was great and wonderful . the plot "
                 "was moving and funny .", "rejected": " no"})  # different lengths: padding must not leak in
    prompts = [r["prompt"] for r in rows] * 2
    answers = [r["chosen"] for r in rows] + [r["rejected"] for r in rows]
    logps, counts = completion_logps(model, tok, prompts, answers, batch_size=4)
    assert logps.shape == counts.shape == (len(answers),) and logps.dtype == torch.float32
    for i, (p, a) in enumerate(zip(prompts, answers)):
        expected, n = _manual_logp(model, tok, p, a)
        assert counts[i].item() == n
        assert logps[i].item() == pytest.approx(expected, abs=1e-4)
    single, _ = completion_logps(model, tok, prompts, answers, batch_size=1)
    torch.testing.assert_close(logps, single, atol=1e-5, rtol=0)


def test_completion_logps_truncate_like_the_trainer_and_check_lengths(tiny_lm):
    model, tok = tiny_lm
    row = process_row(preferences(1, seed=1)[0])
    prompt_len = len(tok(row["prompt"])["input_ids"])
    full, n_full = completion_logps(model, tok, [row["prompt"]], [row["chosen"]])
    cut, n_cut = completion_logps(model, tok, [row["prompt"]], [row["chosen"]], max_length=prompt_len + 3)
    assert n_cut.item() == 3 < n_full.item()
    assert cut.item() > full.item(), "fewer tokens, fewer negative log-probs summed"
    no_eos, n_no_eos = completion_logps(model, tok, [row["prompt"]], [row["chosen"]], add_eos=False)
    assert n_no_eos.item() == n_full.item() - 1
    with pytest.raises(ValueError, match="2 prompts but 1 completions"):
        completion_logps(model, tok, [row["prompt"]] * 2, [row["chosen"]])


def test_judge_review_reads_form_topic_and_sentiment():
    prompt = "Human: Write one line about the plot.\n\nAssistant:"
    assert judge_review(prompt, " the plot was great and superb .") == \
        {"well_formed": True, "on_topic": True, "positive": True}
    assert judge_review(prompt, "the cast was great and superb .") == \
        {"well_formed": True, "on_topic": False, "positive": True}
    assert judge_review(prompt, "the plot was great and awful .") == \
        {"well_formed": True, "on_topic": True, "positive": False}
    for broken in ("the plot was great", "````````", "the plot was great and superb . the end", ""):
        assert judge_review(prompt, broken) == {"well_formed": False, "on_topic": False, "positive": False}
