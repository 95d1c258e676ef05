"""labhelpers.sequences: padding on either side, positions from masks, token log-probs equal to TRL's, and
masked statistics that ignore what the mask drops."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from trl.trainer.utils import entropy_from_logits as trl_entropy
from trl.trainer.utils import selective_log_softmax

from labhelpers import sequences as seq


# --------------------------------------------------------------------------------------------------
# Padding
# --------------------------------------------------------------------------------------------------
def test_right_and_left_padding_place_the_tokens_and_the_mask():
    rows = [[5, 6, 7], torch.tensor([8]), [9, 10]]
    ids, mask = seq.right_pad(rows, 0)
    assert ids.tolist() == [[5, 6, 7], [8, 0, 0], [9, 10, 0]]
    assert mask.tolist() == [[1, 1, 1], [1, 0, 0], [1, 1, 0]]
    ids, mask = seq.left_pad(rows, -100)
    assert ids.tolist() == [[5, 6, 7], [-100, -100, 8], [-100, 9, 10]]
    assert mask.tolist() == [[1, 1, 1], [0, 0, 1], [0, 1, 1]]
    assert ids.dtype == mask.dtype == torch.long


def test_padding_to_a_width_and_to_a_multiple():
    ids, mask = seq.pad([[1, 2, 3]], 0, "right", width=5)
    assert ids.tolist() == [[1, 2, 3, 0, 0]] and mask.sum() == 3
    ids, _ = seq.pad([[1, 2, 3], [4]], 0, "left", multiple_of=4)
    assert ids.tolist() == [[0, 1, 2, 3], [0, 0, 0, 4]]
    ids, _ = seq.pad([[1, 2, 3, 4, 5]], 0, multiple_of=4)
    assert ids.shape == (1, 8)


@pytest.mark.parametrize("call, match", [
    (lambda: seq.pad([[1]], 0, "middle"), "side must be 'left' or 'right'"),
    (lambda: seq.pad([], 0), "at least one"),
    (lambda: seq.pad([[1, 2, 3]], 0, width=2), "width=2 is shorter than the longest sequence"),
    (lambda: seq.pad([torch.ones(2, 2, dtype=torch.long)], 0), r"must be 1-D.*\(2, 2\)"),
])
def test_bad_padding_requests_say_what_is_wrong(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_pad_id_falls_back_to_eos_and_refuses_a_tokenizer_with_neither():
    class Tok:
        def __init__(self, pad, eos):
            self.pad_token_id, self.eos_token_id = pad, eos

    assert seq.pad_id_for(Tok(3, 7)) == 3
    assert seq.pad_id_for(Tok(None, 7)) == 7
    assert seq.pad_id_for(Tok(0, 7)) == 0, "id 0 is a pad id, not a missing one"
    with pytest.raises(ValueError, match="neither a pad nor an eos token"):
        seq.pad_id_for(Tok(None, None))


def test_positions_count_from_each_rows_first_real_token():
    _, mask = seq.left_pad([[1, 2, 3], [4]], 0)
    assert seq.position_ids_from_mask(mask).tolist() == [[0, 1, 2], [0, 0, 0]]
    _, mask = seq.right_pad([[1, 2, 3], [4]], 0)
    assert seq.position_ids_from_mask(mask).tolist() == [[0, 1, 2], [0, 0, 0]]


# --------------------------------------------------------------------------------------------------
# Log-probabilities and entropy
# --------------------------------------------------------------------------------------------------
def test_token_logprobs_equal_trls_and_the_negative_cross_entropy():
    torch.manual_seed(0)
    logits, tokens = torch.randn(3, 5, 11), torch.randint(11, (3, 5))
    ours = seq.token_logprobs(logits, tokens)
    torch.testing.assert_close(ours, selective_log_softmax(logits, tokens))
    torch.testing.assert_close(ours, -F.cross_entropy(logits.transpose(1, 2), tokens, reduction="none"))
    assert seq.token_logprobs(logits.half(), tokens).dtype == torch.float32


def test_next_token_logprobs_score_each_token_by_its_prefix():
    torch.manual_seed(1)
    logits, ids = torch.randn(2, 4, 7), torch.randint(7, (2, 4))
    got = seq.next_token_logprobs(logits, ids)
    assert got.shape == (2, 3)
    for b in range(2):
        for t in range(3):  # the logits at t predict token t+1
            assert got[b, t].item() == pytest.approx(logits[b, t].log_softmax(-1)[ids[b, t + 1]].item(), abs=1e-6)


def test_entropy_equals_trls_and_the_categorical_distributions():
    torch.manual_seed(2)
    logits = torch.randn(2, 3, 13) * 3
    ours = seq.entropy_from_logits(logits)
    torch.testing.assert_close(ours, trl_entropy(logits))
    torch.testing.assert_close(ours, torch.distributions.Categorical(logits=logits).entropy())
    uniform = seq.entropy_from_logits(torch.zeros(1, 13))
    assert uniform.item() == pytest.approx(torch.log(torch.tensor(13.0)).item())


# --------------------------------------------------------------------------------------------------
# Masked statistics
# --------------------------------------------------------------------------------------------------
def test_masked_statistics_ignore_what_the_mask_drops_even_nan_and_inf():
    x = torch.tensor([[1.0, 2.0, float("nan")], [4.0, float("inf"), 6.0]])
    mask = torch.tensor([[1, 1, 0], [1, 0, 1]])
    assert seq.masked_sum(x, mask).item() == 13.0
    assert seq.masked_mean(x, mask).item() == 13.0 / 4
    assert seq.masked_sum(x, mask, dim=-1).tolist() == [3.0, 10.0]
    assert seq.masked_mean(x, mask, dim=-1).tolist() == [1.5, 5.0]
    assert seq.masked_mean(x, torch.zeros_like(mask)).item() == 0.0, "an empty mask gives 0, not NaN"


def test_masked_entries_get_zero_gradient_but_an_upstream_nan_still_poisons_it():
    x = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
    mask = torch.tensor([True, True, False])
    seq.masked_mean(x, mask).backward()
    assert x.grad.tolist() == [0.5, 0.5, 0.0]
    # what the docstring warns about: a NaN computed from a masked entry before the mean reaches the gradient
    y = torch.tensor([1.0, 4.0, -1.0], requires_grad=True)
    seq.masked_mean(torch.sqrt(y), mask).backward()
    assert y.grad[:2].tolist() == pytest.approx([0.25, 0.125]) and torch.isnan(y.grad[2])


def test_masked_whiten_gives_mean_zero_and_unit_variance_over_the_mask():
    torch.manual_seed(3)
    x = torch.randn(4, 6) * 5 + 3
    mask = torch.rand(4, 6) > 0.3
    white = seq.masked_whiten(x, mask)
    kept = white[mask]
    assert kept.mean().item() == pytest.approx(0.0, abs=1e-5)
    assert kept.pow(2).mean().item() == pytest.approx(1.0, abs=1e-4)
    assert (white[~mask] == 0).all()
    torch.testing.assert_close(kept, (x[mask] - x[mask].mean()) / x[mask].std(unbiased=False))
