"""The tiny model zoo: loadable like Hub models, deterministic, cached by recipe."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification, AutoTokenizer, pipeline

from labhelpers import tiny


# OPT and the fine-tuned GPT-2 are built in a cold cache only for these tests (seconds each): the fast lane skips
# them, as it skips every test that builds a model nothing else in it needs
@pytest.mark.parametrize("name", [pytest.param("tiny-opt", marks=pytest.mark.notebook), "tiny-gpt2",
                                  pytest.param("tiny-gpt2-imdb", marks=pytest.mark.notebook)])
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


def test_tokenizer_styles_mimic_the_real_ones(tmp_path):
    gpt2 = AutoTokenizer.from_pretrained(tiny.zoo_path("tiny-gpt2"))
    tiny.build_tokenizer("opt").save_pretrained(tmp_path)  # as the zoo saves it, without training OPT
    opt = AutoTokenizer.from_pretrained(tmp_path)
    assert gpt2.pad_token is None and gpt2.eos_token == gpt2.bos_token == "<|endoftext|>"
    assert opt.pad_token == "<pad>" and opt("q z x").input_ids[0] == opt.convert_tokens_to_ids("</s>")
    assert len(gpt2("q z x", add_special_tokens=False).input_ids) == 3, "spaced letters stay one token each"
    assert gpt2.chat_template and "### Assistant" in gpt2.apply_chat_template(
        [{"role": "user", "content": "hi"}], tokenize=False, add_generation_prompt=True)


@pytest.mark.notebook  # builds the classifier in a cold cache (seconds), which nothing else in the fast lane needs
def test_sentiment_classifier_labels_and_separates_reviews():
    path = tiny.zoo_path("tiny-sentiment")
    model = AutoModelForSequenceClassification.from_pretrained(path)
    assert model.config.id2label == {0: "NEGATIVE", 1: "POSITIVE"}
    clf = pipeline("sentiment-analysis", model=str(path), tokenizer=str(path), device="cpu")
    good, bad = clf(["the film was wonderful and superb .", "the film was awful and boring ."])
    assert good["label"] == "POSITIVE" and bad["label"] == "NEGATIVE"


def test_hub_ids_resolve_to_the_zoo_models_that_replace_them():
    assert tiny.zoo_path("facebook/opt-350m", build=False) == tiny.zoo_path("tiny-opt", build=False)
    for recipe in tiny.RECIPES.values():
        assert tiny.zoo_path(recipe.hub_id, build=False) == tiny.zoo_path(recipe.name, build=False), recipe.hub_id
    with pytest.raises(ValueError, match="Unknown zoo model 'tiny-llama'"):
        tiny.zoo_path("tiny-llama")


# A cut-down recipe (a few steps) exercises the whole build and install path in seconds.
QUICK = {"name": "tiny-sentiment", "steps": 3}
BUILD_SCRIPT = """
import dataclasses, json, sys
from labhelpers import tiny
name, steps = sys.argv[1], int(sys.argv[2])
tiny.RECIPES[name] = dataclasses.replace(tiny.RECIPES[name], steps=steps)
builds = []
train = tiny._train
tiny._train = lambda recipe, path: (builds.append(str(path)), train(recipe, path))[1]
print(json.dumps({"path": str(tiny.zoo_path(name)), "built": len(builds)}))
"""


def quick_recipe(monkeypatch):
    recipe = dataclasses.replace(tiny.RECIPES[QUICK["name"]], steps=QUICK["steps"])
    monkeypatch.setitem(tiny.RECIPES, QUICK["name"], recipe)
    return recipe


def start_build(cache: Path) -> subprocess.Popen:
    env = {**os.environ, "LABHELPERS_CACHE": str(cache), "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-c", BUILD_SCRIPT, QUICK["name"], str(QUICK["steps"])], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(process: subprocess.Popen) -> dict:
    out, err = process.communicate(timeout=600)
    assert process.returncode == 0, err[-2000:]
    return json.loads(out.strip().splitlines()[-1])


def weights(folder: str) -> dict:
    from safetensors.torch import load_file

    return load_file(str(Path(folder) / "model.safetensors"))


@pytest.mark.notebook  # two child processes, each building a model
def test_two_processes_build_identical_weights_in_two_fresh_caches(tmp_path):
    first, second = start_build(tmp_path / "a"), start_build(tmp_path / "b")
    a, b = finish(first), finish(second)
    assert a["built"] == b["built"] == 1 and Path(a["path"]).name == Path(b["path"]).name
    wa, wb = weights(a["path"]), weights(b["path"])
    assert wa.keys() == wb.keys() and len(wa) > 10
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


@pytest.mark.notebook  # two child processes racing for one cache
def test_two_processes_share_one_build_under_the_lock(tmp_path):
    first, second = start_build(tmp_path), start_build(tmp_path)
    a, b = finish(first), finish(second)
    assert a["path"] == b["path"]
    assert a["built"] + b["built"] == 1, "the second process waited for the first one's folder"
    leftovers = [p.name for p in Path(a["path"]).parent.iterdir() if not p.name.endswith(".lock")]
    assert leftovers == [Path(a["path"]).name], "no temporary or half-built folders are left behind"


def test_a_folder_without_its_card_is_moved_aside_and_rebuilt(tmp_path, monkeypatch):
    monkeypatch.setenv("LABHELPERS_CACHE", str(tmp_path))
    quick_recipe(monkeypatch)
    path = tiny.zoo_path(QUICK["name"], build=False)
    path.mkdir(parents=True)
    (path / "config.json").write_text("{}")  # an interrupted copy: files, but no recipe.json
    with pytest.warns(UserWarning, match="was incomplete"):
        assert tiny.zoo_path(QUICK["name"]) == path
    assert json.loads((path / "recipe.json").read_text())["recipe"]["steps"] == QUICK["steps"]
    assert AutoModelForSequenceClassification.from_pretrained(path).config.id2label[1] == "POSITIVE"
    [aside] = [p for p in path.parent.iterdir() if p.name.startswith(".incomplete-")]
    assert (aside / "config.json").read_text() == "{}", "the broken folder is kept for a look, not deleted"
    # a card for another recipe under this name is not trusted either
    card = json.loads((path / "recipe.json").read_text())
    (path / "recipe.json").write_text(json.dumps({**card, "recipe": {**card["recipe"], "steps": 999}}))
    with pytest.warns(UserWarning, match="was incomplete"):
        tiny.zoo_path(QUICK["name"])
    assert json.loads((path / "recipe.json").read_text())["recipe"]["steps"] == QUICK["steps"]


def test_building_a_model_leaves_the_callers_random_state_alone(tmp_path, monkeypatch):
    import random

    import numpy as np

    monkeypatch.setenv("LABHELPERS_CACHE", str(tmp_path))
    quick_recipe(monkeypatch)

    def draws():
        return torch.rand(3).tolist(), random.random(), float(np.random.rand())

    torch.manual_seed(123), random.seed(123), np.random.seed(123)
    expected = draws()
    torch.manual_seed(123), random.seed(123), np.random.seed(123)
    tiny.zoo_path(QUICK["name"])  # a cold cache: this trains a model, seeded with the recipe's own seed
    assert (tmp_path / "zoo").is_dir()
    assert draws() == expected


def test_cache_key_follows_the_recipe(monkeypatch):
    key = tiny.recipe_key("tiny-gpt2")
    assert key == tiny.recipe_key("tiny-gpt2")
    changed = tiny.RECIPES["tiny-gpt2"].__class__(**{**tiny.RECIPES["tiny-gpt2"].__dict__, "steps": 7})
    monkeypatch.setitem(tiny.RECIPES, "tiny-gpt2", changed)
    assert tiny.recipe_key("tiny-gpt2") != key
    assert tiny.recipe_key("tiny-gpt2-imdb") != key, "a child's key follows its parent's"


def test_card_says_it_is_synthetic():
    card = tiny.zoo_card("tiny-gpt2")
    assert "synthetic" in card["note"] and card["parameters"] < 1_000_000
    assert json.loads((tiny.zoo_path("tiny-gpt2") / "recipe.json").read_text())["recipe"]["name"] == "tiny-gpt2"
