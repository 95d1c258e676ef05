"""Alpaca-style prompt formatting for instruction tuning (lab 01).

A CodeAlpaca record ``{"instruction", "input", "output"}`` becomes one training text::

    ### Instruction:
    <instruction>

    ### Input:            <- only when ``input`` is not empty
    <input>

    ### Response:
    <output>

The generation prompt is the same text without the output, so that it ends with ``"### Response:\\n"`` and the
model continues with the answer. Lab 01 writes both functions in the notebook (an exercise) and checks them
equal to these reference versions.
"""

from __future__ import annotations

RESPONSE_TEMPLATE = "### Response:"


def _one_prompt(instruction: str, input_: str | None) -> str:
    text = f"### Instruction:\n{instruction}\n\n"
    if input_ is not None and str(input_).strip():  # CodeAlpaca marks "no input" with an empty string
        text += f"### Input:\n{input_}\n\n"
    return text + f"{RESPONSE_TEMPLATE}\n"


def formatting_prompts_func_no_response(example: dict) -> str | list[str]:
    """The generation prompt: instruction, input (when not empty) and the response template, no output.

    ``example`` is one record (returns a ``str``) or a batch of columns, as ``Dataset.map(batched=True)``
    passes it (returns a ``list[str]``).
    """
    if isinstance(example["instruction"], list):
        inputs = example.get("input") or [""] * len(example["instruction"])
        return [_one_prompt(i, x) for i, x in zip(example["instruction"], inputs)]
    return _one_prompt(example["instruction"], example.get("input"))


def formatting_prompts_func(example: dict) -> str | list[str]:
    """The training text: the generation prompt followed by the output (no EOS; the tokenizing step adds it)."""
    prompts = formatting_prompts_func_no_response(example)
    if isinstance(prompts, list):
        return [p + o for p, o in zip(prompts, example["output"])]
    return prompts + example["output"]


def to_prompt_completion(example: dict, response_template: str = RESPONSE_TEMPLATE) -> dict[str, str]:
    """Split the training text right after the response template: TRL's prompt/completion format.

    The prompt ends with the template itself, so TRL's ``completion_only_loss`` masks exactly the tokens that
    :class:`labhelpers.collators.CompletionOnlyCollator` masks (everything up to and including the template).
    """
    prompt = formatting_prompts_func_no_response(example)
    if response_template not in prompt:
        raise ValueError(f"The response template {response_template!r} does not occur in the prompt {prompt!r}; "
                         f"use the template that the formatting function writes ({RESPONSE_TEMPLATE!r}).")
    cut = prompt.rindex(response_template) + len(response_template)
    return {"prompt": prompt[:cut], "completion": prompt[cut:] + example["output"]}


# --------------------------------------------------------------------------------------------------
# The dialogue format of labs 02-04: "Human: ...\n\nAssistant: ..."
# --------------------------------------------------------------------------------------------------
# Base models such as gpt2 have no chat template, so conversations are written as plain text turns, the
# format of Anthropic's HH preference data. The reward model (lab 02), the DPO data (lab 03) and the synthetic
# sets all write it through these few names, so that a prompt means the same tokens everywhere.
ROLE_NAMES = {"system": "System", "user": "Human", "assistant": "Assistant"}
TURN_SEPARATOR = "\n\n"
ASSISTANT_CUE = f"{ROLE_NAMES['assistant']}:"


def dialogue_turns(messages: list[dict]) -> str:
    """``[{"role": "user", "content": "Hi"}, ...]`` -> ``"Human: Hi\\n\\n..."``, each content stripped."""
    return TURN_SEPARATOR.join(f"{ROLE_NAMES[m['role']]}: {m['content'].strip()}" for m in messages)


def dialogue_prompt(prompt: str | list[dict]) -> str:
    """The prompt a model answers: the human's text (or earlier turns as messages), then ``"Assistant:"``."""
    turns = dialogue_turns(prompt) if isinstance(prompt, list) else f"{ROLE_NAMES['user']}: {prompt}"
    return f"{turns}{TURN_SEPARATOR}{ASSISTANT_CUE}"


def dialogue_text(prompt: str, response: str) -> str:
    """One whole exchange: ``dialogue_prompt(prompt)``, a space, and the response."""
    return f"{dialogue_prompt(prompt)} {response}"


DIALOGUE_TEMPLATE = dialogue_text("{prompt}", "{response}")
