"""The tiny model zoo: loadable like Hub models, deterministic, cached by recipe."""

from __future__ import annotations

import json

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification, AutoTokenizer, pipeline

from labhelpers import tiny


@pytest.mark.parametrize("name", ["tiny-opt", "tiny-gpt2", "tiny-gpt2-imdb"])
def test_causal_lms_load_and_speak(name):
    path = tiny.zoo_path(name)
    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path)
    assert model.config.model_type == {"tiny-opt": "opt"}.get(name, "gpt2")
    card = tiny.zoo_card(name)
    from_scratch = card["recipe"]["init_from"] is None
    assert card["final_loss"] < (0.5 if from_scratch else 1.0) * card["first_loss"], "training lowered the loss"
    ids = tok("the film was", return_tensors="pt")
    out = model.generate(**ids, max_new_tokens=8, do_sample=False, pad_token_id=tok.eos_token_id)
    text = tok.decode(out[0, ids.input_ids.shape[1]:], skip_special_tokens=True)
    assert len(text.split()) >= 2


def test_tokenizer_styles_mimic_the_real_ones():
    gpt2 = AutoTokenizer.from_pretrained(tiny.zoo_path("tiny-gpt2"))
    opt = AutoTokenizer.from_pretrained(tiny.zoo_path("tiny-opt"))
    assert gpt2.pad_token is None and gpt2.eos_token == gpt2.bos_token == "<|endoftext|>"
    assert opt.pad_token == "<pad>" and opt("q z x").input_ids[0] == opt.convert_tokens_to_ids("</s>")
    assert len(gpt2("q z x", add_special_tokens=False).input_ids) == 3, "spaced letters stay one token each"
    assert gpt2.chat_template and "### Assistant" in gpt2.apply_chat_template(
        [{"role": "user", "content": "hi"}], tokenize=False, add_generation_prompt=True)


def test_sentiment_classifier_labels_and_separates_reviews():
    path = tiny.zoo_path("tiny-sentiment")
    model = AutoModelForSequenceClassification.from_pretrained(path)
    assert model.config.id2label == {0: "NEGATIVE", 1: "POSITIVE"}
    clf = pipeline("sentiment-analysis", model=str(path), tokenizer=str(path), device="cpu")
    good, bad = clf(["the film was wonderful and superb .", "the film was awful and boring ."])
    assert good["label"] == "POSITIVE" and bad["label"] == "NEGATIVE"


def test_hub_ids_resolve_to_their_stand_ins():
    assert tiny.zoo_path("facebook/opt-350m") == tiny.zoo_path("tiny-opt")
    with pytest.raises(ValueError, match="Unknown zoo model 'tiny-llama'"):
        tiny.zoo_path("tiny-llama")


def test_rebuild_gives_identical_weights_in_a_new_cache(tmp_path, monkeypatch):
    original = AutoModelForCausalLM.from_pretrained(tiny.zoo_path("tiny-gpt2")).state_dict()
    monkeypatch.setenv("LABHELPERS_CACHE", str(tmp_path))
    rebuilt_path = tiny.zoo_path("tiny-gpt2")
    assert str(rebuilt_path).startswith(str(tmp_path))
    rebuilt = AutoModelForCausalLM.from_pretrained(rebuilt_path).state_dict()
    assert original.keys() == rebuilt.keys()
    assert all(torch.equal(original[k], rebuilt[k]) for k in original)


def test_cache_key_follows_the_recipe(monkeypatch):
    key = tiny.recipe_key("tiny-gpt2")
    assert key == tiny.recipe_key("tiny-gpt2")
    changed = tiny.RECIPES["tiny-gpt2"].__class__(**{**tiny.RECIPES["tiny-gpt2"].__dict__, "steps": 7})
    monkeypatch.setitem(tiny.RECIPES, "tiny-gpt2", changed)
    assert tiny.recipe_key("tiny-gpt2") != key
    assert tiny.recipe_key("tiny-gpt2-imdb") != key, "a child's key follows its parent's"


def test_card_says_it_is_synthetic():
    card = tiny.zoo_card("tiny-opt")
    assert "synthetic" in card["note"] and card["parameters"] < 1_000_000
    assert json.loads((tiny.zoo_path("tiny-opt") / "recipe.json").read_text())["recipe"]["name"] == "tiny-opt"
