"""Chat data for lab 06: records as conversations, the training chat template, and trained tokens shown one by one.

    conversations = to_conversations(records, system_prompt)     # CodeAlpaca-style rows -> {"messages": [...]}
    template = training_chat_template(tokenizer)                 # has {% generation %} markers, or one clear error
    show_trained_tokens(tokenizer, batch)                        # green: trained, grey: masked, faded: padding
"""

from __future__ import annotations

import html
import random


class ChatTemplateError(ValueError):
    """A chat template that cannot mark the assistant's tokens, used with ``assistant_only_loss=True``."""


def user_message(record: dict) -> str:
    """The user's turn of a CodeAlpaca-style record: the instruction, then the input on its own line if any."""
    text = record["instruction"]
    return f"{text}\n{record['input']}" if record["input"].strip() else text


def to_conversations(records, system_prompt: str, *, two_exchange_share: float = 0.3, seed: int = 0) -> list[dict]:
    """Turn instruction/input/output records into ``{"messages": [...]}`` conversations.

    Each conversation starts with the system prompt, then one user/assistant exchange per record. A share of
    them get a second exchange (the next record), so that a conversation has two assistant turns with a user
    turn between them: the case where masking "everything after the first answer marker" would go wrong.
    """
    rows = list(records)
    rng = random.Random(seed)
    conversations, i = [], 0
    while i < len(rows):
        take = 2 if i + 1 < len(rows) and rng.random() < two_exchange_share else 1
        messages = [{"role": "system", "content": system_prompt}]
        for record in rows[i:i + take]:
            messages += [{"role": "user", "content": user_message(record)},
                         {"role": "assistant", "content": record["output"]}]
        conversations.append({"messages": messages})
        i += take
    return conversations


def has_generation_markers(template) -> bool:
    from trl.chat_template_utils import has_generation_markers as trl_has_markers

    return bool(template) and trl_has_markers(template)


def training_chat_template(tokenizer) -> str:
    """The chat template to train with ``assistant_only_loss=True``: the tokenizer's own, or TRL's patched one.

    ``return_assistant_tokens_mask`` (which the assistant-only loss reads) only knows which tokens the assistant
    wrote from ``{% generation %}`` / ``{% endgeneration %}`` markers in the template. Few Hub models ship them;
    TRL ships marked copies of the templates of common families (Qwen2.5, Llama 3, Gemma, Phi-3, ...) and
    :func:`trl.chat_template_utils.get_training_chat_template` returns the one matching a tokenizer. Anything else
    gets one error that says how to fix it.
    """
    from trl.chat_template_utils import get_training_chat_template

    template = tokenizer.chat_template
    if isinstance(template, dict):
        template = template.get("default")
    if not template:
        raise ChatTemplateError(
            "The tokenizer has no chat template, so assistant_only_loss=True cannot tell the assistant's tokens "
            "apart. Set tokenizer.chat_template to a template that wraps each assistant message in "
            "{% generation %} ... {% endgeneration %}, or train on prompt/completion columns with "
            "completion_only_loss=True instead.")
    if has_generation_markers(template):
        return template
    try:
        patched = get_training_chat_template(tokenizer)
    except ValueError:
        patched = None
    if patched is None or not has_generation_markers(patched):
        raise ChatTemplateError(
            f"The chat template of {getattr(tokenizer, 'name_or_path', 'this tokenizer') or 'this tokenizer'} has no "
            "{% generation %} markers, which assistant_only_loss=True needs to know which tokens the assistant "
            "wrote, and TRL has no marked copy of it. Fix: edit tokenizer.chat_template so that each assistant "
            "message's content and its end-of-turn token sit between {% generation %} and {% endgeneration %} "
            "(see trl/chat_templates/*_training.jinja for examples), or set assistant_only_loss=False.")
    return patched


def show_trained_tokens(tokenizer, batch, rows: int | None = None) -> None:
    """Display a batch token by token: trained tokens (label set) green, masked grey, padding faded.

    ``batch`` holds ``input_ids``, ``attention_mask`` and ``labels`` (``-100`` = not trained). The plain-text
    form marks trained tokens as ``[token]`` and padding as ``·``.
    """
    from IPython.display import display

    ids_rows = batch["input_ids"].tolist()[:rows]
    html_rows, text_rows = [], []
    for ids, seen_row, labels in zip(ids_rows, batch["attention_mask"].tolist(), batch["labels"].tolist()):
        spans, marks = [], []
        for token_id, seen, label in zip(ids, seen_row, labels):
            piece = repr(tokenizer.decode([token_id]))[1:-1]
            kind = "pad" if not seen else ("train" if label != -100 else "masked")
            style = {"train": "background:#c8f7c5;font-weight:bold", "masked": "color:#777",
                     "pad": "color:#ccc"}[kind]
            spans.append(f'<span style="{style};border:1px solid #ddd;margin:1px">{html.escape(piece)}</span>')
            marks.append({"train": f"[{piece}]", "masked": piece, "pad": "·"}[kind])
        trained = sum(label != -100 for label in labels)
        html_rows.append(f"<div style='font-family:monospace;line-height:1.9'>{trained} trained of "
                         f"{sum(seen_row)} tokens: " + "".join(spans) + "</div>")
        text_rows.append(f"{trained:>3} trained: " + " ".join(marks))
    display({"text/html": "<hr>".join(html_rows), "text/plain": "\n".join(text_rows)}, raw=True)
