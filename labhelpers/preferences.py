"""Preference data for DPO: one plain-text ``prompt``/``chosen``/``rejected`` form, and the log-probabilities of
completions that the DPO loss is built from.

Preference sets come in two shapes:

* **plain text** -- ``{"prompt": str, "chosen": str, "rejected": str}`` (e.g. Anthropic-HH-style sets after
  splitting off the prompt);
* **chat messages** -- ``chosen`` and ``rejected`` are lists of ``{"role", "content"}`` messages, either the
  whole conversation (the prompt is the shared beginning, as in ``trl-lib/ultrafeedback_binarized``) or only the
  answer, with the prompt in a ``prompt`` column (a string or messages).

:func:`process_row` turns one row of either shape into plain text, and :func:`to_text_preferences` maps a whole
``datasets.Dataset``. Chat messages are rendered as ``Human: ...`` / ``Assistant: ...`` turns (the dialogue format of
:mod:`labhelpers.formatting`) because base models
such as ``gpt2`` have no chat template; the prompt always ends with ``"Assistant:"`` and every completion starts
with one space, so that the tokens of ``prompt + completion`` start with the tokens of ``prompt`` (DPO scores the
completion tokens only, and finds them by that common prefix).

:func:`completion_logps` sums ``log π(y_t | x, y_<t)`` over the completion tokens, tokenizing exactly as TRL's
``DPOTrainer`` does (EOS appended, completion = tokens after the common prefix, ``keep_start`` truncation).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence

from .data import DatasetSchemaError
from .formatting import ROLE_NAMES, dialogue_prompt
from .sequences import masked_sum, next_token_logprobs, pad_id_for, right_pad

TEXT_FIELDS = ("prompt", "chosen", "rejected")


class PreferenceRowError(DatasetSchemaError):
    """One row of a preference set cannot be turned into ``prompt``/``chosen``/``rejected`` text."""


def _where(index: int | None) -> str:
    return "a row" if index is None else f"row {index}"


def _is_messages(value) -> bool:
    return isinstance(value, Sequence) and not isinstance(value, str)


def _check_messages(messages, field: str, index: int | None) -> list[dict]:
    out = []
    for i, message in enumerate(messages):
        if not isinstance(message, Mapping) or not isinstance(message.get("content"), str) \
                or message.get("role") not in ROLE_NAMES:
            raise PreferenceRowError(
                f"{_where(index)}: message {i} of {field!r} must be a dict with a 'role' in "
                f"{sorted(ROLE_NAMES)} and a string 'content', got {message!r}.")
        out.append({"role": message["role"], "content": message["content"]})
    return out


def _answer(messages: list[dict], field: str, index: int | None) -> str:
    if not messages or messages[-1]["role"] != "assistant":
        raise PreferenceRowError(f"{_where(index)}: {field!r} must end with an 'assistant' message (the answer), "
                                 f"got roles {[m['role'] for m in messages]}.")
    if not messages[-1]["content"].strip():
        raise PreferenceRowError(f"{_where(index)}: the {field!r} answer (its last message) is empty.")
    return messages[-1]["content"]


def _completion(text: str) -> str:
    # One leading space: the completion's first token then cannot merge with the prompt's last one.
    return " " + text.strip()


def process_row(row: Mapping, index: int | None = None) -> dict[str, str]:
    """One preference row (plain text or chat messages) -> ``{"prompt", "chosen", "rejected"}`` plain text.

    Raises :class:`PreferenceRowError` (a ``ValueError``) naming the row and the field when a field is missing,
    empty, or of the wrong kind, or when the two conversations of a chat row do not share their prompt.
    """
    for field in ("chosen", "rejected"):
        value = row.get(field)
        if value is None or (isinstance(value, str) and not value.strip()) or (_is_messages(value) and not value):
            raise PreferenceRowError(
                f"{_where(index)} has no {field!r} answer (got {value!r}); every row needs non-empty 'chosen' and "
                f"'rejected' fields (fields found: {sorted(row)}). Drop or fix this row before training.")
    chosen, rejected, prompt = row["chosen"], row["rejected"], row.get("prompt")

    if isinstance(chosen, str) and isinstance(rejected, str):  # plain text
        if not isinstance(prompt, str) or not prompt.strip():
            raise PreferenceRowError(
                f"{_where(index)} is plain text but has no 'prompt' (got {prompt!r}); plain-text rows need a "
                f"'prompt' string beside 'chosen' and 'rejected' (fields found: {sorted(row)}).")
        return {"prompt": prompt.rstrip(), "chosen": _completion(chosen), "rejected": _completion(rejected)}

    if not (_is_messages(chosen) and _is_messages(rejected)):
        raise PreferenceRowError(
            f"{_where(index)}: 'chosen' and 'rejected' must both be strings or both be lists of messages, got "
            f"{type(chosen).__name__} and {type(rejected).__name__}.")
    chosen = _check_messages(chosen, "chosen", index)
    rejected = _check_messages(rejected, "rejected", index)
    answers = {"chosen": _completion(_answer(chosen, "chosen", index)),
               "rejected": _completion(_answer(rejected, "rejected", index))}
    if prompt is None:  # implicit prompt: everything before the final answer, shared by both conversations
        prompt_messages = chosen[:-1]
        if prompt_messages != rejected[:-1]:
            raise PreferenceRowError(
                f"{_where(index)}: without a 'prompt' field, 'chosen' and 'rejected' must be the same conversation "
                "up to their last (assistant) message, but they differ before it.")
    elif isinstance(prompt, str):
        prompt_messages = [{"role": "user", "content": prompt}]
    else:
        prompt_messages = _check_messages(prompt, "prompt", index)
    if not prompt_messages:
        raise PreferenceRowError(f"{_where(index)} has no prompt: the conversation holds only the answer and there "
                                 "is no 'prompt' field.")
    return {"prompt": dialogue_prompt(prompt_messages), **answers}


def to_text_preferences(ds, *, drop_invalid: bool = False):
    """Map a ``datasets.Dataset`` of either shape to exactly the columns ``prompt``, ``chosen``, ``rejected``.

    A row that :func:`process_row` rejects raises its :class:`PreferenceRowError`; with ``drop_invalid=True`` such
    rows are dropped instead, with one warning that counts them and quotes the first reason (large scraped sets
    hold a few empty or malformed answers).
    """
    missing = [c for c in ("chosen", "rejected") if c not in ds.column_names]
    if missing:
        raise PreferenceRowError(f"The preference set has no column(s) {missing}; found {ds.column_names}. A "
                                 "preference set needs 'chosen' and 'rejected' (and 'prompt' when they are plain text).")
    if not drop_invalid:
        out = ds.map(process_row, with_indices=True, remove_columns=ds.column_names,
                     desc="Reformatting preferences to plain text")
        return out.select_columns(list(TEXT_FIELDS))

    def checked(row, index):
        try:
            return {**process_row(row, index), "error": ""}
        except PreferenceRowError as err:
            return {**dict.fromkeys(TEXT_FIELDS, ""), "error": str(err)}

    out = ds.map(checked, with_indices=True, remove_columns=ds.column_names, desc="Reformatting preferences to plain text")
    errors = [e for e in out["error"] if e]
    if errors:
        warnings.warn(f"Dropped {len(errors)} of {len(ds)} preference rows that cannot be used; the first: {errors[0]}",
                      stacklevel=2)
        out = out.filter(lambda error: not error, input_columns="error")
    return out.select_columns(list(TEXT_FIELDS))


def completion_logps(model, tokenizer, prompts: list[str], completions: list[str], *, batch_size: int = 32,
                     max_length: int | None = None, add_eos: bool = True):
    """Summed log-probability of each completion given its prompt, and its number of tokens.

    For example ``i``: ``logps[i] = Σ_t log π(y_t | x, y_<t)`` over the completion tokens ``y`` (EOS included when
    ``add_eos``), with ``prompt + completion`` cut to ``max_length`` tokens from the start, as in TRL's
    ``DPOTrainer``. Returns two tensors of shape ``(N,)``: ``logps`` (float32) and ``n_tokens`` (int64).
    """
    import torch

    if len(prompts) != len(completions):
        raise ValueError(f"Got {len(prompts)} prompts but {len(completions)} completions; pass one completion per "
                         "prompt.")
    eos = tokenizer.eos_token if add_eos else ""
    rows = []
    for prompt, completion in zip(prompts, completions):
        prompt_ids = tokenizer(prompt)["input_ids"]
        full = completion if completion.endswith(eos) else completion + eos
        ids = tokenizer(prompt + full)["input_ids"]
        start = 0  # the completion starts where the two tokenizations diverge
        while start < min(len(prompt_ids), len(ids)) and prompt_ids[start] == ids[start]:
            start += 1
        mask = [0] * start + [1] * (len(ids) - start)
        if max_length is not None:
            ids, mask = ids[:max_length], mask[:max_length]
        rows.append((ids, mask))

    device = next(model.parameters()).device
    pad_id = pad_id_for(tokenizer)
    was_training = model.training
    model.eval()
    logps, counts = [], []
    with torch.no_grad():
        for b in range(0, len(rows), batch_size):
            chunk = rows[b:b + batch_size]
            input_ids, attention = right_pad([ids for ids, _ in chunk], pad_id, device=device)
            completion_mask, _ = right_pad([m for _, m in chunk], 0, device=device)
            logits = model(input_ids=input_ids, attention_mask=attention).logits
            # column t scores token t+1 from its prefix, so the mask shifts by one as well
            token_logps = next_token_logprobs(logits, input_ids)
            logps.append(masked_sum(token_logps, completion_mask[:, 1:], dim=-1).cpu())
            counts.append(completion_mask[:, 1:].sum(-1).cpu())
    model.train(was_training)
    return torch.cat(logps), torch.cat(counts)
