"""Completion-only collation: train on the response, not on the prompt (lab 01).

TRL used to ship ``DataCollatorForCompletionOnlyLM``; TRL 1.x dropped it in favour of prompt/completion datasets
with ``SFTConfig(completion_only_loss=True)``. :class:`CompletionOnlyCollator` does what the old collator did,
so that the masking can be seen and checked token by token:

* every label up to and including the response template (``"### Response:"``) is ``-100``, so the loss is
  averaged over the response tokens only;
* the template is looked for by its token ids, in all the ways the tokenizer writes it in context (a
  BPE merges a leading space or a trailing newline into neighbouring tokens; SentencePiece changes the first
  token after a newline), and the last occurrence in a sequence counts, as in the old collator;
* a sequence in which the template is missing (typically cut off by truncation) gets only ``-100`` labels,
  and one warning per batch names those sequences;
* padding positions (found from the attention mask, not from the pad id, so an EOS that doubles as the pad
  token is still trained) get ``-100`` too.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

from .sequences import pad

IGNORE_INDEX = -100

# Characters that commonly surround a response template in a prompt. Each pair yields the template's token ids
# as the tokenizer writes them in that context.
_BEFORE = ("", " ", "\n", "\n\n", ": ", ".\n")
_AFTER = ("", " ", "\n", "\n\n")


class TemplateNotFoundWarning(UserWarning):
    """A sequence of a batch has no response template, so none of its tokens is trained."""


def _common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


def template_token_ids(tokenizer, response_template: str | Sequence[int]) -> list[tuple[int, ...]]:
    """The token-id sequences that spell ``response_template`` in context, longest first.

    For each context (characters before and after the template), the ids of ``before + template + after``
    are computed and the ids that belong to the context alone are stripped. A token that merges context and
    template characters stays in (it has to be masked anyway). A list of ids is taken as the only variant.
    """
    if not isinstance(response_template, str):
        ids = tuple(int(i) for i in response_template)
        if not ids:
            raise ValueError("response_template is an empty list of token ids.")
        return [ids]
    if not response_template:
        raise ValueError("response_template is an empty string; pass the text that starts the response, "
                         "e.g. '### Response:'.")

    def enc(text: str) -> list[int]:
        return list(tokenizer(text, add_special_tokens=False)["input_ids"]) if text else []

    variants = set()
    for before in _BEFORE:
        for after in _AFTER:
            full = enc(before + response_template + after)
            start = _common_prefix(full, enc(before))
            after_ids = enc(after)
            end = len(full) - _common_prefix(full[::-1], after_ids[::-1])
            if end > start:
                variants.add(tuple(full[start:end]))
    return sorted(variants, key=lambda v: (-len(v), v))


def find_template_end(ids: Sequence[int], variants: Sequence[Sequence[int]]) -> int | None:
    """Index just after the last occurrence of any variant in ``ids`` (``None`` when there is none)."""
    ids = list(ids)
    best = None
    for variant in variants:
        n = len(variant)
        first = variant[0]
        for start in range(len(ids) - n, -1, -1):  # from the right: the last occurrence wins
            if ids[start] == first and tuple(ids[start:start + n]) == tuple(variant):
                if best is None or start + n > best:
                    best = start + n
                break
    return best


class CompletionOnlyCollator:
    """Pad a batch and mask every label up to and including the response template.

    Args:
        tokenizer: the model's tokenizer (its ``pad_token_id`` pads; set one first for GPT-2-style tokenizers).
        response_template: the text that ends the prompt (``"### Response:"``) or its token ids.
        ignore_index: the label value the loss ignores (``-100`` for PyTorch's cross-entropy).
        padding_side: ``"right"`` or ``"left"``; ``None`` uses ``tokenizer.padding_side``.
        max_length: truncate longer sequences to this many tokens (keeping the start), as tokenizing with
            ``truncation=True`` would; ``None`` keeps them whole.
        pad_to_multiple_of: round the padded length up to a multiple of this.

    Call it with a list of examples, each a dict with ``input_ids`` (a list of ints or a 1-D tensor, optionally
    with ``attention_mask``) or a plain string (tokenized with the tokenizer's special tokens). Returns a dict
    of ``(batch, seq_len)`` int64 tensors ``input_ids``, ``attention_mask`` and ``labels``.
    """

    def __init__(self, tokenizer, response_template: str | Sequence[int] = "### Response:", *,
                 ignore_index: int = IGNORE_INDEX, padding_side: str | None = None, max_length: int | None = None,
                 pad_to_multiple_of: int | None = None):
        if tokenizer.pad_token_id is None:
            raise ValueError("The tokenizer has no pad token, so batches cannot be padded. Set one first, e.g. "
                             "tokenizer.pad_token = tokenizer.eos_token (as for GPT-2).")
        padding_side = padding_side or getattr(tokenizer, "padding_side", "right")
        if padding_side not in ("left", "right"):
            raise ValueError(f"padding_side must be 'left' or 'right', got {padding_side!r}.")
        self.tokenizer = tokenizer
        self.response_template = response_template
        self.template_ids = template_token_ids(tokenizer, response_template)
        self.ignore_index = ignore_index
        self.padding_side = padding_side
        self.max_length = max_length
        self.pad_to_multiple_of = pad_to_multiple_of
        self.missing = 0  # how many sequences so far had no template (all labels ignored)

    def _ids(self, example) -> list[int]:
        if isinstance(example, str):
            return list(self.tokenizer(example)["input_ids"])
        if not isinstance(example, dict) or "input_ids" not in example:
            raise TypeError("CompletionOnlyCollator takes strings or dicts with 'input_ids', got "
                            f"{type(example).__name__}" + (f" with keys {sorted(example)}"
                                                           if isinstance(example, dict) else "") + ".")
        ids = example["input_ids"]
        ids = ids.tolist() if hasattr(ids, "tolist") else list(ids)
        mask = example.get("attention_mask")
        if mask is not None:  # keep only the real tokens of an example that arrives padded
            mask = mask.tolist() if hasattr(mask, "tolist") else list(mask)
            ids = [i for i, m in zip(ids, mask) if m]
        return ids

    def __call__(self, examples: list) -> dict:
        if not examples:
            raise ValueError("CompletionOnlyCollator got an empty batch.")
        rows = [self._ids(e) for e in examples]
        if self.max_length is not None:
            rows = [r[: self.max_length] for r in rows]
        labels, missing, empty = [], [], []
        for b, row in enumerate(rows):
            end = find_template_end(row, self.template_ids)
            if end is None:
                missing.append(b)
                end = len(row)
            elif end == len(row):
                empty.append(b)
            labels.append([self.ignore_index] * end + row[end:])
        input_ids, attention_mask = pad(rows, self.tokenizer.pad_token_id, self.padding_side,
                                        multiple_of=self.pad_to_multiple_of)
        labels, _ = pad(labels, self.ignore_index, self.padding_side, multiple_of=self.pad_to_multiple_of)
        self.missing += len(missing)
        if missing or empty:
            self._warn(missing, empty, rows)
        return {"input_ids": input_ids, "attention_mask": attention_mask, "labels": labels}

    def _warn(self, missing: list[int], empty: list[int], rows: list[list[int]]) -> None:
        parts = []
        if missing:
            first = self.tokenizer.decode(rows[missing[0]][-12:])
            parts.append(f"the response template {self.response_template!r} was not found in {len(missing)} "
                         f"sequence(s) (batch rows {missing}; row {missing[0]} ends with {first!r})")
        if empty:
            parts.append(f"{len(empty)} sequence(s) end right after the template (batch rows {empty})")
        limit = f"max_length={self.max_length}" if self.max_length else "the truncation length"
        warnings.warn(
            "CompletionOnlyCollator: " + "; ".join(parts) + ". Their labels are all -100, so they add nothing to "
            f"the loss. Usually truncation cut the response off: raise {limit}, drop over-long examples, or "
            "check that the texts were formatted with the same template.", TemplateNotFoundWarning, stacklevel=3)
