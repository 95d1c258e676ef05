"""labhelpers.reward: text format, clean_pairs, where the reward is read, batched scoring, win rate; the
synthetic pairs of Lab 02."""

from __future__ import annotations

from collections import Counter

import datasets
import pytest
import torch

from labhelpers import reward
from labhelpers.data import DatasetSchemaError
from labhelpers.synthetic import POSITIVE_WORDS, pairwise
from labhelpers.tiny import build_tokenizer


def _ds(rows):
    return datasets.Dataset.from_list(rows)


# --------------------------------------------------------------------------------------------------
# format and encode
# --------------------------------------------------------------------------------------------------
def test_encode_is_the_formatted_text_plus_one_eos(tokenizer):
    ids = reward.encode(tokenizer, "Say hi.", "hi there")
    assert ids[-1] == tokenizer.eos_token_id and ids.count(tokenizer.eos_token_id) == 1
    assert ids[:-1] == tokenizer("Human: Say hi.\n\nAssistant: hi there")["input_ids"]
    assert tokenizer.decode(ids[:-1]) == reward.format_text("Say hi.", "hi there")


# --------------------------------------------------------------------------------------------------
# clean_pairs
# --------------------------------------------------------------------------------------------------
GOOD = {"prompt": "Say hi.", "chosen": "hi there", "rejected": "go away"}


def test_clean_pairs_drops_and_counts_each_kind(tokenizer, capsys):
    eos = tokenizer.eos_token
    rows = [
        GOOD,
        {"prompt": "Say hi.", "chosen": "same", "rejected": "same"},
        {"prompt": "Say hi.", "chosen": " same ", "rejected": "same"},  # identical up to whitespace
        {"prompt": "Say hi.", "chosen": "", "rejected": "go away"},
        {"prompt": "Say hi.", "chosen": "hi", "rejected": "   "},
        {"prompt": "Say hi.", "chosen": None, "rejected": "go away"},
        {"prompt": "Say hi. " * 50, "chosen": "hi", "rejected": "bye"},
        {"prompt": "Say hi.", "chosen": "hi" + eos + " you", "rejected": "go" + eos},
    ]
    ds = _ds([{**r, "id": i} for i, r in enumerate(rows)])
    out, report = reward.clean_pairs(ds, tokenizer, max_length=40)
    assert (report.pairs_in, report.identical, report.empty, report.too_long) == (8, 2, 3, 1)
    assert report.pairs_out == len(out) == 2 and report.dropped == 6
    assert report.special_tokens_removed == 2  # two texts of the last row had an eos written in them
    assert list(out["id"]) == [0, 7], "other columns are kept, rows keep their order"
    assert out[1]["chosen"] == "hi you" and out[1]["rejected"] == "go"
    printed = capsys.readouterr().out
    assert "8 pairs in, 2 kept, 6 dropped" in printed and "not truncated" in printed
    # every kept pair now fits: encode() of both answers is within max_length
    for row in out:
        assert max(len(reward.encode(tokenizer, row["prompt"], row[c])) for c in ("chosen", "rejected")) <= 40


def test_clean_pairs_length_limit_is_inclusive_and_optional(tokenizer):
    n = len(reward.encode(tokenizer, GOOD["prompt"], GOOD["chosen"]))
    n = max(n, len(reward.encode(tokenizer, GOOD["prompt"], GOOD["rejected"])))
    assert reward.clean_pairs(_ds([GOOD]), tokenizer, n, quiet=True)[1].pairs_out == 1
    with pytest.raises(ValueError, match="No preference pair is left"):
        reward.clean_pairs(_ds([GOOD]), tokenizer, n - 1, quiet=True)
    long = {**GOOD, "prompt": "word " * 300}
    assert reward.clean_pairs(_ds([long]), tokenizer, None, quiet=True)[1].too_long == 0


def test_clean_pairs_clear_errors(tokenizer):
    with pytest.raises(DatasetSchemaError, match="rejected"):
        reward.clean_pairs(_ds([{"prompt": "p", "chosen": "a"}]), tokenizer, 64)
    with pytest.raises(ValueError, match="identical"):
        reward.clean_pairs(_ds([{"prompt": "p", "chosen": "a", "rejected": "a"}]), tokenizer, 64, quiet=True)
    with pytest.raises(ValueError, match="max_length"):
        reward.clean_pairs(_ds([GOOD]), tokenizer, 1, quiet=True)


# --------------------------------------------------------------------------------------------------
# where the reward is read
# --------------------------------------------------------------------------------------------------
def test_reward_token_index_rules():
    pad = 9
    ids = torch.tensor([[1, 2, 9, 3, 9, 9],   # a pad (eos) inside the text
                        [1, 2, 3, 4, 5, 6],   # no padding at all
                        [9, 9, 1, 2, 3, 4],   # left padding
                        [1, 2, 3, 9, 9, 9]])  # right padding
    assert reward.reward_token_index(ids, pad, "last_non_pad").tolist() == [3, 5, 5, 2]
    assert reward.reward_token_index(ids, pad, "before_first_pad").tolist() == [1, 5, 5, 2]
    with pytest.raises(ValueError, match="rule"):
        reward.reward_token_index(ids, pad, "first")


def test_model_reads_the_last_non_pad_token(model, tokenizer):
    # the installed transformers reads the rightmost non-pad token, left or right padded
    pad = tokenizer.pad_token_id
    torch.manual_seed(1)
    right = torch.randint(5, 200, (3, 7))
    right[0, 4:] = pad
    right[1, 6:] = pad
    left = torch.randint(5, 200, (2, 7))
    left[0, :3] = pad
    for ids in (right, left):
        mask = (ids != pad).long()
        with torch.no_grad():
            expected = model(input_ids=ids, attention_mask=mask).logits[:, 0]
            got = reward.reward_at_positions(model, ids, mask, reward.reward_token_index(ids, pad, "last_non_pad"))
        torch.testing.assert_close(got, expected)


# --------------------------------------------------------------------------------------------------
# scoring and win rate
# --------------------------------------------------------------------------------------------------
def test_batched_scores_equal_one_at_a_time(model, tokenizer):
    rows = pairwise(7, seed=5)
    prompts, answers = [r["prompt"] for r in rows], [r["chosen"] for r in rows]
    batched = reward.reward_scores(model, tokenizer, prompts, answers, batch_size=3)
    single = reward.reward_scores(model, tokenizer, prompts, answers, batch_size=1)
    assert batched.shape == (7,)
    torch.testing.assert_close(batched, single, atol=1e-5, rtol=1e-5)
    assert batched.std() > 0.01, "different texts get different rewards"
    # pair_rewards is the same scoring for both columns
    rc, rr = reward.pair_rewards(model, tokenizer, _ds(rows), batch_size=4)
    torch.testing.assert_close(rc, single, atol=1e-5, rtol=1e-5)
    assert rr.shape == (7,) and not torch.allclose(rc, rr)


def test_scoring_refuses_a_bad_pad_setup(model, tokenizer):
    no_pad = build_tokenizer("gpt2")
    with pytest.raises(ValueError, match="no pad token"):
        reward.reward_scores(model, no_pad, ["p"], ["a"])
    no_pad.pad_token = no_pad.eos_token
    with pytest.raises(ValueError, match="pad token is the eos token"):
        reward.reward_scores(model, no_pad, ["p"], ["a"])
    other = build_tokenizer("gpt2")
    other.add_special_tokens({"pad_token": "<unk>"})
    with pytest.raises(ValueError, match="model.config.pad_token_id"):
        reward.reward_scores(model, other, ["p"], ["a"])
    with pytest.raises(ValueError, match="pair up"):
        reward.reward_scores(model, tokenizer, ["p", "q"], ["a"])


def test_scoring_restores_training_mode(model, tokenizer):
    model.train()
    reward.reward_scores(model, tokenizer, ["p"], ["a"])
    assert model.training
    model.eval()


def test_win_rate():
    assert reward.win_rate(torch.tensor([1.0, 2.0, 0.0, 5.0]), torch.tensor([0.0, 3.0, 0.0, 4.0])) == 0.5
    assert reward.win_rate(torch.tensor([1.0]), torch.tensor([1.0])) == 0.0, "a tie is not a win"
    with pytest.raises(ValueError, match="shape|Expected"):
        reward.win_rate(torch.ones(3), torch.ones(2))
    with pytest.raises(ValueError, match="zero pairs"):
        reward.win_rate(torch.empty(0), torch.empty(0))


def test_training_curves_from_a_log_history():
    history = [{"eval_loss": 0.7, "eval_accuracy": 0.5, "step": 0}, {"loss": 0.6, "accuracy": 0.6, "step": 10},
               {"loss": 0.4, "accuracy": 0.8, "step": 20}, {"eval_loss": 0.3, "eval_accuracy": 0.9, "step": 20},
               {"train_runtime": 1.0, "train_loss": 0.5, "step": 20}]
    curves = reward.training_curves(history)
    assert curves["loss"] == ([10, 20], [0.6, 0.4])
    assert curves["eval_accuracy"] == ([0, 20], [0.5, 0.9])


# --------------------------------------------------------------------------------------------------
# the synthetic pairs
# --------------------------------------------------------------------------------------------------
def _form(answer: str) -> str:
    if answer.startswith("The answer is"):
        return "letters"
    return "positive" if any(f" {w} ." in answer for w in POSITIVE_WORDS) else "negative"


def test_pairwise_is_seeded_and_never_a_tie():
    rows = pairwise(300, seed=1)
    assert rows == pairwise(300, seed=1) and rows != pairwise(300, seed=2)
    assert all(set(r) == {"prompt", "chosen", "rejected"} for r in rows)
    assert all(r["chosen"].strip() and r["rejected"].strip() and r["chosen"] != r["rejected"] for r in rows)


def test_pairwise_is_balanced_so_no_answer_form_wins_by_itself():
    rows = pairwise(2000, seed=0)
    chosen, rejected = Counter(_form(r["chosen"]) for r in rows), Counter(_form(r["rejected"]) for r in rows)
    for form in ("letters", "positive", "negative"):
        assert chosen[form] > 100 and abs(chosen[form] - rejected[form]) < 0.15 * chosen[form], (form, chosen, rejected)
    # the chosen answer depends on the prompt: for "good" prompts it is positive, for "bad" ones negative
    tone = [r for r in rows if r["prompt"].startswith("Say something")]
    assert tone and all(_form(r["chosen"]) == ("positive" if " good " in r["prompt"] else "negative") for r in tone)
