"""Token sequences in batches: padding, positions, log-probabilities of tokens, and statistics over masks.

Every lab that scores or trains on a batch of texts of different lengths needs the same few steps, and small
slips in them (padding on the wrong side, positions counted from the padding, a log-prob off by one token)
change the numbers silently. They live here once:

* :func:`pad_id_for` -- the id a batch is padded with: the tokenizer's pad token, else its eos token;
* :func:`pad` (:func:`left_pad`, :func:`right_pad`) -- stack sequences of different lengths, with their mask;
* :func:`position_ids_from_mask` -- positions ``0, 1, ...`` from each row's first real token;
* :func:`token_logprobs` / :func:`next_token_logprobs` / :func:`entropy_from_logits` -- what a model gave the
  tokens it was shown;
* :func:`masked_sum`, :func:`masked_mean`, :func:`masked_whiten` -- statistics over the entries a mask keeps;
* :func:`response_mask` / :func:`sequence_logps` -- which tokens of a right-padded ``prompt + answer`` batch are the
  answer, and the summed log-probability of those tokens (what DPO and PPO score; lab 03's exercise 3.3).

Shapes: ``B`` rows, ``T`` padded length, ``V`` vocabulary size.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

SIDES = ("left", "right")


def pad_id_for(tokenizer) -> int:
    """The token id that pads a batch: ``tokenizer.pad_token_id``, or the eos id when there is no pad token.

    GPT-2-style tokenizers have no pad token; their eos is safe for padding as long as the attention mask, not
    the id, says which positions are padding (everything in this module reads the mask).
    """
    if tokenizer.pad_token_id is not None:
        return int(tokenizer.pad_token_id)
    if tokenizer.eos_token_id is not None:
        return int(tokenizer.eos_token_id)
    raise ValueError("The tokenizer has neither a pad nor an eos token, so batches cannot be padded. Set one, "
                     "e.g. tokenizer.add_special_tokens({'pad_token': '<pad>'}).")


def _as_list(sequence) -> list[int]:
    if isinstance(sequence, torch.Tensor):
        if sequence.ndim != 1:
            raise ValueError(f"Each sequence must be 1-D, got a tensor of shape {tuple(sequence.shape)}.")
        return sequence.tolist()
    return [int(t) for t in sequence]


def pad(sequences: Sequence, pad_value: int, side: str = "right", *, width: int | None = None,
        multiple_of: int | None = None, device=None) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack 1-D sequences (lists of ints or tensors) into ``(B, T)`` int64 ``values`` and ``attention_mask``.

    ``side="right"`` puts the padding after each sequence (the usual layout for training and scoring),
    ``side="left"`` before it (for generation, so that every row's last column is its newest token).
    ``T`` is the longest length, or ``width`` when given, rounded up to a multiple of ``multiple_of``.
    ``pad_value`` fills the padding: a pad token id for ``input_ids``, ``-100`` for labels.
    """
    if side not in SIDES:
        raise ValueError(f"side must be 'left' or 'right', got {side!r}.")
    rows = [_as_list(s) for s in sequences]
    if not rows:
        raise ValueError("pad() got no sequences; a batch needs at least one.")
    longest = max(len(r) for r in rows)
    if width is None:
        width = longest
    elif width < longest:
        raise ValueError(f"width={width} is shorter than the longest sequence ({longest} tokens); truncate first.")
    if multiple_of:
        width = -(-width // multiple_of) * multiple_of
    values = torch.full((len(rows), width), pad_value, dtype=torch.long)
    attention_mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        start = width - len(row) if side == "left" else 0
        values[i, start:start + len(row)] = torch.tensor(row, dtype=torch.long)
        attention_mask[i, start:start + len(row)] = 1
    if device is not None:
        values, attention_mask = values.to(device), attention_mask.to(device)
    return values, attention_mask


def left_pad(sequences: Sequence, pad_value: int, **kwargs) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`pad` with the padding on the left."""
    return pad(sequences, pad_value, "left", **kwargs)


def right_pad(sequences: Sequence, pad_value: int, **kwargs) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`pad` with the padding on the right."""
    return pad(sequences, pad_value, "right", **kwargs)


def position_ids_from_mask(attention_mask: torch.Tensor) -> torch.Tensor:
    """Positions ``0, 1, 2, ...`` counted from each row's first real token; ``(B, T) -> (B, T)``.

    GPT-2 adds a learned embedding of the position to each token. Without explicit ``position_ids`` it
    numbers the columns, so a left-padded row would start at position 3 instead of 0 and the model would
    score a different text than it generated. Padding positions get 0 (the mask hides them anyway).
    """
    return (attention_mask.long().cumsum(-1) - 1).clamp(min=0)


def token_logprobs(logits: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    """``log p(token)`` under ``logits`` at the same position: ``(B, N, V)`` and ``(B, N) -> (B, N)``, float32.

    The softmax runs in float32 even for half-precision logits: its log of a small probability is where
    fp16 loses the most digits.
    """
    return torch.gather(F.log_softmax(logits.float(), dim=-1), -1, tokens.unsqueeze(-1)).squeeze(-1)


def next_token_logprobs(logits: torch.Tensor, input_ids: torch.Tensor) -> torch.Tensor:
    """``log p(x_{t+1} | x_0..x_t)`` of a causal LM's own input: ``(B, T, V)`` and ``(B, T) -> (B, T-1)``.

    The logits at position ``t`` predict token ``t+1``, so column ``t`` of the result is about token ``t+1``.
    """
    return token_logprobs(logits[:, :-1], input_ids[:, 1:])


def entropy_from_logits(logits: torch.Tensor) -> torch.Tensor:
    """Entropy ``-Σ_v p_v log p_v`` of each distribution over the last dimension: ``(..., V) -> (...)``."""
    logits = logits.float()
    return torch.logsumexp(logits, dim=-1) - (F.softmax(logits, dim=-1) * logits).sum(-1)


def masked_sum(x: torch.Tensor, mask: torch.Tensor, dim: int | None = None) -> torch.Tensor:
    """Sum of ``x`` over the entries where ``mask`` is true, over ``dim`` (all dimensions when ``None``).

    The masked-out entries are replaced by 0 before the sum, so their values never reach the result, not even
    NaN or inf. Their gradient is 0; but a NaN that ``x`` computed from them upstream still poisons the gradient
    there (``0 · NaN`` is NaN), so keep non-finite numbers out of the computation before ``x`` too.
    """
    kept = torch.where(mask.bool(), x, torch.zeros_like(x))
    return kept.sum() if dim is None else kept.sum(dim)


def masked_mean(x: torch.Tensor, mask: torch.Tensor, dim: int | None = None) -> torch.Tensor:
    """Mean of ``x`` over the entries where ``mask`` is true (0 where the mask keeps nothing); see :func:`masked_sum`."""
    count = mask.bool().sum() if dim is None else mask.bool().sum(dim)
    return masked_sum(x, mask, dim) / count.clamp(min=1)


def masked_whiten(x: torch.Tensor, mask: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Shift and scale ``x`` to mean 0 and variance 1 over the masked entries; the other entries become 0."""
    mask = mask.bool()
    mean = masked_mean(x, mask)
    var = masked_mean((x - mean) ** 2, mask)
    return torch.where(mask, (x - mean) * torch.rsqrt(var + eps), torch.zeros_like(x))


def response_mask(input_ids: torch.Tensor, prompt_lengths: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """1 on the answer tokens of a right-padded ``prompt + answer`` batch, 0 on the prompt and the padding.

    Row ``i`` holds its prompt in its first ``prompt_lengths[i]`` columns, then its answer, then padding (where
    ``attention_mask`` is 0). ``(B, T)``, ``(B,)``, ``(B, T) -> (B, T)`` int64.
    """
    columns = torch.arange(input_ids.shape[1], device=input_ids.device)
    after_prompt = columns[None, :] >= torch.as_tensor(prompt_lengths, device=input_ids.device)[:, None]
    return (after_prompt & attention_mask.bool()).long()


def sequence_logps(logits: torch.Tensor, input_ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``Σ_t log p(x_t | x_<t)`` over the tokens ``t`` where ``mask`` is 1: ``(B, T, V)``, ``(B, T)``, ``(B, T) -> (B,)``.

    The logits at column ``t`` predict token ``t + 1``, so the log-probs are shifted by one and so is the mask: the
    first token of a row is never scored (nothing predicts it).
    """
    return masked_sum(next_token_logprobs(logits, input_ids), mask[:, 1:], dim=-1)
