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
``DPOTrainer`` does (EOS appended, completion = tokens after the common prefix, ``keep_start`` truncation);
:func:`answer_batch` is that tokenization alone, a padded batch and each prompt's length.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence

from .data import DatasetSchemaError
from .formatting import ROLE_NAMES, dialogue_prompt, formatting_prompts_func_no_response
from .sequences import pad_id_for, response_mask, right_pad, sequence_logps

TEXT_FIELDS = ("prompt", "chosen", "rejected")
# "dialogue": Human/Assistant turns, for a base model; "instruction": lab 01's Alpaca prompt, what its SFT model answers
PROMPT_FORMATS = ("dialogue", "instruction")


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


def _instruction_row(prompt_messages: list[dict], chosen: str, rejected: str, index: int | None) -> dict[str, str]:
    if len(prompt_messages) != 1 or prompt_messages[0]["role"] != "user":
        raise PreferenceRowError(f"{_where(index)}: the instruction format holds one user request, got roles "
                                 f"{[m['role'] for m in prompt_messages]}; use prompt_format='dialogue'.")
    # the prompt ends with a newline, which no token merges across, so the answer needs no leading space
    prompt = formatting_prompts_func_no_response({"instruction": prompt_messages[0]["content"].strip(), "input": ""})
    return {"prompt": prompt, "chosen": chosen.strip(), "rejected": rejected.strip()}


def process_row(row: Mapping, index: int | None = None, prompt_format: str = "dialogue") -> dict[str, str]:
    """One preference row (plain text or chat messages) -> ``{"prompt", "chosen", "rejected"}`` plain text.

    ``prompt_format="dialogue"`` renders the prompt as ``Human: ...`` / ``Assistant:`` turns (a plain-text prompt is
    kept as it is); ``"instruction"`` renders a one-request prompt (a plain-text prompt is the request) in lab 01's
    Alpaca format, ``### Instruction:`` ... ``### Response:``, the format lab 01's SFT model learned to answer.

    Raises :class:`PreferenceRowError` (a ``ValueError``) naming the row and the field when a field is missing,
    empty, or of the wrong kind, or when the two conversations of a chat row do not share their prompt.
    """
    if prompt_format not in PROMPT_FORMATS:
        raise ValueError(f"prompt_format must be one of {PROMPT_FORMATS}, got {prompt_format!r}.")
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
        if prompt_format == "instruction":
            return _instruction_row([{"role": "user", "content": prompt}], chosen, rejected, index)
        return {"prompt": prompt.rstrip(), "chosen": _completion(chosen), "rejected": _completion(rejected)}

    if not (_is_messages(chosen) and _is_messages(rejected)):
        raise PreferenceRowError(
            f"{_where(index)}: 'chosen' and 'rejected' must both be strings or both be lists of messages, got "
            f"{type(chosen).__name__} and {type(rejected).__name__}.")
    chosen = _check_messages(chosen, "chosen", index)
    rejected = _check_messages(rejected, "rejected", index)
    answers = {"chosen": _answer(chosen, "chosen", index), "rejected": _answer(rejected, "rejected", index)}
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
    if prompt_format == "instruction":
        return _instruction_row(prompt_messages, answers["chosen"], answers["rejected"], index)
    return {"prompt": dialogue_prompt(prompt_messages), "chosen": _completion(answers["chosen"]),
            "rejected": _completion(answers["rejected"])}


def to_text_preferences(ds, *, drop_invalid: bool = False, prompt_format: str = "dialogue"):
    """Map a ``datasets.Dataset`` of either shape to exactly the columns ``prompt``, ``chosen``, ``rejected``.

    ``prompt_format`` is :func:`process_row`'s: ``"dialogue"`` or ``"instruction"``.

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
                     fn_kwargs={"prompt_format": prompt_format},
                     desc="Reformatting preferences to plain text")
        return out.select_columns(list(TEXT_FIELDS))

    def checked(row, index):
        try:
            return {**process_row(row, index, prompt_format), "error": ""}
        except PreferenceRowError as err:
            return {**dict.fromkeys(TEXT_FIELDS, ""), "error": str(err)}

    out = ds.map(checked, with_indices=True, remove_columns=ds.column_names, desc="Reformatting preferences to plain text")
    errors = [e for e in out["error"] if e]
    if errors:
        warnings.warn(f"Dropped {len(errors)} of {len(ds)} preference rows that cannot be used; the first: {errors[0]}",
                      stacklevel=2)
        out = out.filter(lambda error: not error, input_columns="error")
    return out.select_columns(list(TEXT_FIELDS))


def answer_batch(tokenizer, prompts: list[str], completions: list[str], *, max_length: int | None = None,
                 add_eos: bool = True, device=None):
    """``prompt + completion`` token ids padded on the right, their attention mask, and each prompt's length.

    Tokenized as TRL's ``DPOTrainer`` does: EOS appended to the completion (when ``add_eos``), the completion
    starting where the tokens of ``prompt`` and of ``prompt + completion`` part ways, the row cut to ``max_length``
    tokens from the start. Returns ``input_ids`` and ``attention_mask`` of shape ``(N, T)`` and ``prompt_lengths``
    of shape ``(N,)``; :func:`labhelpers.sequences.response_mask` turns them into the completion mask.
    """
    import torch

    if len(prompts) != len(completions):
        raise ValueError(f"Got {len(prompts)} prompts but {len(completions)} completions; pass one completion per "
                         "prompt.")
    eos = tokenizer.eos_token if add_eos else ""
    rows, starts = [], []
    for prompt, completion in zip(prompts, completions):
        prompt_ids = tokenizer(prompt)["input_ids"]
        full = completion if completion.endswith(eos) else completion + eos
        ids = tokenizer(prompt + full)["input_ids"]
        start = 0  # the completion starts where the two tokenizations diverge
        while start < min(len(prompt_ids), len(ids)) and prompt_ids[start] == ids[start]:
            start += 1
        rows.append(ids if max_length is None else ids[:max_length])
        starts.append(start)
    input_ids, attention_mask = right_pad(rows, pad_id_for(tokenizer), device=device)
    return input_ids, attention_mask, torch.tensor(starts, device=input_ids.device)


def completion_logps(model, tokenizer, prompts: list[str], completions: list[str], *, batch_size: int = 32,
                     max_length: int | None = None, add_eos: bool = True):
    """Summed log-probability of each completion given its prompt, and its number of tokens.

    For example ``i``: ``logps[i] = Σ_t log π(y_t | x, y_<t)`` over the completion tokens ``y`` (EOS included when
    ``add_eos``), with ``prompt + completion`` cut to ``max_length`` tokens from the start, as in TRL's
    ``DPOTrainer`` (:func:`answer_batch`). Returns two tensors of shape ``(N,)``: ``logps`` (float32) and
    ``n_tokens`` (int64).
    """
    import torch

    if len(prompts) != len(completions):
        raise ValueError(f"Got {len(prompts)} prompts but {len(completions)} completions; pass one completion per "
                         "prompt.")
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    logps, counts = [], []
    with torch.no_grad():
        for b in range(0, len(prompts), batch_size):
            input_ids, attention, prompt_lengths = answer_batch(
                tokenizer, prompts[b:b + batch_size], completions[b:b + batch_size], max_length=max_length,
                add_eos=add_eos, device=device)
            completion_mask = response_mask(input_ids, prompt_lengths, attention)
            logits = model(input_ids=input_ids, attention_mask=attention).logits
            # column t scores token t+1 from its prefix: sequence_logps shifts the mask by one as well
            logps.append(sequence_logps(logits, input_ids, completion_mask).cpu())
            counts.append(completion_mask[:, 1:].sum(-1).cpu())
    model.train(was_training)
    return torch.cat(logps), torch.cat(counts)
