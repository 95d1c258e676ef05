"""Formatting functions and the completion-only collator of lab 01, and its agreement with TRL's own masking."""

from __future__ import annotations

import warnings

import pytest
import torch

from labhelpers.collators import (
    CompletionOnlyCollator,
    TemplateNotFoundWarning,
    find_template_end,
    template_token_ids,
)
from labhelpers.formatting import (
    RESPONSE_TEMPLATE,
    formatting_prompts_func,
    formatting_prompts_func_no_response,
    to_prompt_completion,
)
from labhelpers.tiny import build_tokenizer

WITH_INPUT = {"instruction": "Reverse the letters.", "input": "q z x", "output": "x z q"}
NO_INPUT = {"instruction": "Write a Python function that adds two numbers.", "input": "",
            "output": "def add(a, b):\n    return a + b"}
LONG = {"instruction": "Write the letters twice.", "input": "a b c d e f g h",
        "output": " ".join("abcdefgh" * 4)}


@pytest.fixture(scope="module")
def tok():
    return build_tokenizer("opt")  # OPT-style: </s> prepended, <pad> != </s>


@pytest.fixture(scope="module")
def gpt2_tok():
    tok = build_tokenizer("gpt2")
    tok.pad_token = tok.eos_token  # the usual GPT-2 set-up: padding and end of text share one id
    return tok


def text(example, tok):
    return formatting_prompts_func(example) + tok.eos_token


def prompt_len(example, tok):
    """Tokens up to and including the template, counted independently of the collator."""
    prompt = formatting_prompts_func_no_response(example)
    return len(tok(prompt[: prompt.rindex(RESPONSE_TEMPLATE) + len(RESPONSE_TEMPLATE)])["input_ids"])


# --------------------------------------------------------------------------------------------------
# formatting
# --------------------------------------------------------------------------------------------------
def test_formatting_with_and_without_input():
    assert formatting_prompts_func_no_response(WITH_INPUT) == (
        "### Instruction:\nReverse the letters.\n\n### Input:\nq z x\n\n### Response:\n")
    assert formatting_prompts_func(WITH_INPUT).endswith("### Response:\nx z q")
    for empty in ("", "   ", None):
        prompt = formatting_prompts_func_no_response({**NO_INPUT, "input": empty})
        assert prompt == f"### Instruction:\n{NO_INPUT['instruction']}\n\n### Response:\n"
        assert "### Input" not in formatting_prompts_func({**NO_INPUT, "input": empty})


def test_generation_prompt_is_a_prefix_of_the_training_text():
    for ex in (WITH_INPUT, NO_INPUT, LONG):
        full, prompt = formatting_prompts_func(ex), formatting_prompts_func_no_response(ex)
        assert full == prompt + ex["output"] and prompt.endswith(RESPONSE_TEMPLATE + "\n")


def test_formatting_takes_batches_too():
    batch = {k: [WITH_INPUT[k], NO_INPUT[k]] for k in ("instruction", "input", "output")}
    assert formatting_prompts_func(batch) == [formatting_prompts_func(WITH_INPUT), formatting_prompts_func(NO_INPUT)]
    assert formatting_prompts_func_no_response(batch)[1] == formatting_prompts_func_no_response(NO_INPUT)


def test_prompt_completion_split_right_after_the_template():
    for ex in (WITH_INPUT, NO_INPUT):
        pc = to_prompt_completion(ex)
        assert pc["prompt"].endswith(RESPONSE_TEMPLATE)
        assert pc["prompt"] + pc["completion"] == formatting_prompts_func(ex)
        assert pc["completion"] == "\n" + ex["output"]
    with pytest.raises(ValueError, match="does not occur"):
        to_prompt_completion(WITH_INPUT, response_template="### Answer:")


# --------------------------------------------------------------------------------------------------
# template search
# --------------------------------------------------------------------------------------------------
def test_template_found_where_it_tokenizes_differently_in_context(tok):
    # "Response:" alone starts with the token "Response"; after "### " the tokenizer writes " Response".
    alone = tok("Response:", add_special_tokens=False)["input_ids"]
    ids = tok(text(WITH_INPUT, tok))["input_ids"]
    assert find_template_end(ids, [alone]) is None, "the premise: the plain ids do not occur in context"
    variants = template_token_ids(tok, "Response:")
    assert tuple(alone) in variants and len(variants) >= 2
    end = find_template_end(ids, variants)
    assert end == prompt_len(WITH_INPUT, tok)

    labels = CompletionOnlyCollator(tok, "Response:")([text(WITH_INPUT, tok)])["labels"][0]
    assert (labels[:end] == -100).all() and (labels[end:] != -100).all()


def test_last_occurrence_counts_and_ids_are_accepted(tok):
    ids = tok(text(WITH_INPUT, tok))["input_ids"]
    template = tok(RESPONSE_TEMPLATE, add_special_tokens=False)["input_ids"]
    doubled = ids[:-1] + template + ids[-1:]
    assert find_template_end(doubled, [template]) == len(doubled) - 1
    by_ids = CompletionOnlyCollator(tok, template)([{"input_ids": ids}])
    by_text = CompletionOnlyCollator(tok, RESPONSE_TEMPLATE)([{"input_ids": ids}])
    assert torch.equal(by_ids["labels"], by_text["labels"])


def test_empty_template_is_refused(tok):
    with pytest.raises(ValueError, match="empty"):
        CompletionOnlyCollator(tok, "")
    with pytest.raises(ValueError, match="empty"):
        CompletionOnlyCollator(tok, [])


# --------------------------------------------------------------------------------------------------
# the collator
# --------------------------------------------------------------------------------------------------
def test_masks_prompt_trains_response_and_eos(tok):
    batch = CompletionOnlyCollator(tok)([text(WITH_INPUT, tok)])
    ids, labels = batch["input_ids"][0], batch["labels"][0]
    n = prompt_len(WITH_INPUT, tok)
    assert (labels[:n] == -100).all()
    assert torch.equal(labels[n:], ids[n:])
    assert ids[-1] == tok.eos_token_id and labels[-1] == tok.eos_token_id, "EOS is trained: the model learns to stop"
    assert tok.decode(ids[n:]) == "\n" + WITH_INPUT["output"] + tok.eos_token


def test_empty_input_example(tok):
    batch = CompletionOnlyCollator(tok)([text(NO_INPUT, tok)])
    n = prompt_len(NO_INPUT, tok)
    trained = batch["labels"][0] != -100
    assert trained.sum() == batch["input_ids"].shape[1] - n and not trained[:n].any()


def test_mixed_lengths_right_padding(tok):
    examples = [WITH_INPUT, NO_INPUT, LONG]
    collator = CompletionOnlyCollator(tok, padding_side="right")
    batch = collator([text(ex, tok) for ex in examples])
    lengths = [len(tok(text(ex, tok))["input_ids"]) for ex in examples]
    assert batch["input_ids"].shape == (3, max(lengths)) and len(set(lengths)) == 3
    for row, (ex, length) in enumerate(zip(examples, lengths)):
        assert batch["attention_mask"][row].tolist() == [1] * length + [0] * (max(lengths) - length)
        assert (batch["input_ids"][row, length:] == tok.pad_token_id).all()
        assert (batch["labels"][row, length:] == -100).all(), "padding is never trained"
        alone = collator([text(ex, tok)])
        assert torch.equal(batch["labels"][row, :length], alone["labels"][0]), "a row's labels do not depend on the batch"
        assert (batch["labels"][row, : prompt_len(ex, tok)] == -100).all()


def test_left_padding_gives_the_same_labels_shifted(tok):
    texts = [text(ex, tok) for ex in (WITH_INPUT, NO_INPUT, LONG)]
    right = CompletionOnlyCollator(tok, padding_side="right")(texts)
    left = CompletionOnlyCollator(tok, padding_side="left")(texts)
    width = right["input_ids"].shape[1]
    for row in range(3):
        length = int(right["attention_mask"][row].sum())
        assert left["attention_mask"][row].tolist() == [0] * (width - length) + [1] * length
        assert torch.equal(left["input_ids"][row, width - length:], right["input_ids"][row, :length])
        assert torch.equal(left["labels"][row, width - length:], right["labels"][row, :length])
        assert (left["labels"][row, : width - length] == -100).all()


def test_padding_side_defaults_to_the_tokenizers(tok):
    import copy

    left_tok = copy.deepcopy(tok)
    left_tok.padding_side = "left"
    batch = CompletionOnlyCollator(left_tok)([text(WITH_INPUT, tok), text(LONG, tok)])
    assert batch["attention_mask"][0, 0] == 0 and batch["attention_mask"][0, -1] == 1
    with pytest.raises(ValueError, match="padding_side"):
        CompletionOnlyCollator(tok, padding_side="middle")


def test_pad_equal_to_eos_still_trains_the_final_eos(gpt2_tok):
    texts = [text(WITH_INPUT, gpt2_tok), text(LONG, gpt2_tok)]
    batch = CompletionOnlyCollator(gpt2_tok, padding_side="right")(texts)
    short = int(batch["attention_mask"][0].sum())
    assert batch["input_ids"][0, short - 1] == gpt2_tok.eos_token_id
    assert batch["labels"][0, short - 1] == gpt2_tok.eos_token_id, "the real EOS is trained"
    assert (batch["labels"][0, short:] == -100).all(), "the padding EOS ids are not"


def test_template_absent_masks_everything_with_one_warning(tok):
    collator = CompletionOnlyCollator(tok)
    texts = ["just some text without the marker", text(WITH_INPUT, tok), "more text, no marker either"]
    with pytest.warns(TemplateNotFoundWarning) as caught:
        batch = collator(texts)
    assert len(caught) == 1, "one warning per batch, naming every affected row"
    message = str(caught[0].message)
    assert "[0, 2]" in message and RESPONSE_TEMPLATE in message and "-100" in message
    assert (batch["labels"][0] == -100).all() and (batch["labels"][2] == -100).all()
    assert (batch["labels"][1] != -100).any()
    assert collator.missing == 2


def test_template_at_the_truncation_boundary(tok):
    ids = tok(text(WITH_INPUT, tok))["input_ids"]
    end = prompt_len(WITH_INPUT, tok)

    with pytest.warns(TemplateNotFoundWarning, match="not found"):  # cut inside the template
        inside = CompletionOnlyCollator(tok, max_length=end - 1)([{"input_ids": ids}])
    assert inside["input_ids"].shape[1] == end - 1 and (inside["labels"] == -100).all()

    with pytest.warns(TemplateNotFoundWarning, match="end right after the template"):  # cut just after it
        at_end = CompletionOnlyCollator(tok, max_length=end)([{"input_ids": ids}])
    assert (at_end["labels"] == -100).all()

    with warnings.catch_warnings():
        warnings.simplefilter("error", TemplateNotFoundWarning)
        one_more = CompletionOnlyCollator(tok, max_length=end + 1)([{"input_ids": ids}])
    assert one_more["labels"][0].tolist() == [-100] * end + [ids[end]], "only the first response token is trained"


def test_accepts_tensors_and_padded_examples(tok):
    enc = tok([text(WITH_INPUT, tok), text(NO_INPUT, tok)], padding=True, return_tensors="pt")
    padded = CompletionOnlyCollator(tok)([{"input_ids": enc["input_ids"][i], "attention_mask": enc["attention_mask"][i]}
                                          for i in range(2)])
    plain = CompletionOnlyCollator(tok)([text(WITH_INPUT, tok), text(NO_INPUT, tok)])
    for key in ("input_ids", "attention_mask", "labels"):
        assert torch.equal(padded[key], plain[key])
    assert padded["labels"].dtype == torch.long


def test_bad_inputs_are_clear_errors(tok, gpt2_tok):
    with pytest.raises(TypeError, match="input_ids"):
        CompletionOnlyCollator(tok)([{"text": "no ids"}])
    with pytest.raises(ValueError, match="empty batch"):
        CompletionOnlyCollator(tok)([])
    no_pad = build_tokenizer("gpt2")
    with pytest.raises(ValueError, match="pad token"):
        CompletionOnlyCollator(no_pad)


# --------------------------------------------------------------------------------------------------
# (a) our collator vs (b) TRL's prompt/completion path
# --------------------------------------------------------------------------------------------------
def test_collator_and_trl_completion_only_loss_give_identical_labels(tok, tmp_path):
    from datasets import Dataset
    from transformers import OPTConfig, OPTForCausalLM
    from trl import SFTConfig, SFTTrainer

    from labhelpers.training import checkpointing_field

    rows = [WITH_INPUT, NO_INPUT, LONG, {**WITH_INPUT, "input": "a b c d e", "output": "e d c b a"},
            {**NO_INPUT, "instruction": "Write the alphabet from a to e.", "output": "a b c d e"}]
    max_length = 48
    lengths = [len(tok(text(r, tok))["input_ids"]) for r in rows]
    assert max(lengths) > max_length > prompt_len(LONG, tok), "the batch has one truncated row"
    assert len(set(lengths)) >= 4, "mixed lengths"

    model = OPTForCausalLM(OPTConfig(vocab_size=len(tok), hidden_size=16, num_hidden_layers=1, ffn_dim=32,
                                     num_attention_heads=2, max_position_embeddings=128, word_embed_proj_dim=16,
                                     pad_token_id=tok.pad_token_id, bos_token_id=tok.bos_token_id,
                                     eos_token_id=tok.eos_token_id))
    args = SFTConfig(output_dir=str(tmp_path), max_length=max_length, completion_only_loss=True, report_to="none",
                     use_cpu=True, bf16=False, fp16=False, **{checkpointing_field(SFTConfig): False})
    trainer = SFTTrainer(model=model, args=args, processing_class=tok,
                         train_dataset=Dataset.from_list([to_prompt_completion(r) for r in rows]))
    prepared = list(trainer.train_dataset)
    assert len(prepared) == len(rows)
    trl_batch = trainer.data_collator([{"input_ids": p["input_ids"], "labels": p["labels"]} for p in prepared])

    # (a) from the same records, formatted and tokenized independently of TRL
    ours = CompletionOnlyCollator(tok, RESPONSE_TEMPLATE, max_length=max_length, padding_side="right")(
        [text(r, tok) for r in rows])
    for key in ("input_ids", "attention_mask", "labels"):
        assert torch.equal(trl_batch[key], ours[key]), key
    assert (ours["labels"] != -100).sum(dim=1).min() > 0
