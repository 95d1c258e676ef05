"""One pipeline (issue 25, Deliver 2): lab 01 hands its SFT model on, and a later lab finds it or the zoo's copy.

The fast tests save a small, untrained OPT (the zoo's shapes, random weights) as a hand-over and resolve lab 02's
config against it in a folder of their own; the notebook test reads lab 01's and lab 02's executed runs.
"""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path

import pytest
from conftest import failure_of

import labhelpers
from labhelpers import stages, tiny
from labhelpers.lab_configs import CONFIG_CLASSES


@pytest.fixture(scope="module")
def opt_and_tokenizer():
    import torch
    from transformers import AutoModelForCausalLM

    tokenizer = tiny.build_tokenizer("opt")
    recipe = tiny.RECIPES["tiny-opt"]
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(tiny._model_config(recipe, tokenizer)).eval()
    return model, tokenizer


def _sft_dir(root: Path, profile: str = "tiny") -> Path:
    return root / "outputs" / "01_instruction_tuning" / f"sft-model-{profile}"


def test_the_folder_follows_lab_02s_convention():
    from labhelpers import reward

    assert stages.stage_dir("sft", "tiny") == os.path.join("outputs", "01_instruction_tuning", "sft-model-tiny")
    assert stages.stage_dir("reward", "full", root="/r") == reward.saved_reward_model_dir("full", root="/r")
    with pytest.raises(ValueError, match="profile must be 'tiny' or 'full'"):
        stages.stage_dir("sft", "auto")


def test_lab_02_takes_the_saved_model_when_its_card_is_there(tmp_path, monkeypatch, opt_and_tokenizer, capsys):
    model, tokenizer = opt_and_tokenizer
    monkeypatch.chdir(tmp_path)
    folder = stages.save_stage("sft", model, tokenizer, profile="tiny", card={"steps": 3, "held_out": {"bleu": [0, 1]}})
    assert Path(folder).resolve() == _sft_dir(tmp_path).resolve()
    card = json.loads((_sft_dir(tmp_path) / stages.CARD).read_text())
    assert card["stage"] == "sft" and card["lab"] == "01_instruction_tuning" and card["profile"] == "tiny"
    assert card["steps"] == 3 and card["held_out"] == {"bleu": [0, 1]} and card["saved_at"]

    cfg = labhelpers.lab_config("02", "tiny", quiet=True)
    assert Path(cfg.model_name) == _sft_dir(tmp_path).resolve()
    assert "tiny-sft" not in cfg.zoo_models  # nothing to build: prepare_lab only says which start it took
    labhelpers.prepare_lab(cfg)
    line = capsys.readouterr().out.strip()
    assert line == cfg.start and "\n" not in line
    assert line.startswith("This lab starts from lab 01's SFT model, saved ") and str(_sft_dir(tmp_path)) in line


def test_without_a_card_lab_02_takes_the_zoos_copy(tmp_path, monkeypatch, opt_and_tokenizer):
    model, tokenizer = opt_and_tokenizer
    monkeypatch.chdir(tmp_path)
    stages.save_stage("sft", model, tokenizer, profile="tiny")
    (_sft_dir(tmp_path) / stages.CARD).unlink()  # a folder without its card, as a half-written save would be

    cfg = labhelpers.lab_config("02", "tiny", quiet=True)
    assert Path(cfg.model_name) == tiny.zoo_path("tiny-sft", build=False) and "tiny-sft" in cfg.zoo_models
    assert cfg.start == (f"Lab 01's SFT model is not in {_sft_dir(tmp_path).resolve()} (run lab 01 first to use "
                         "yours); this lab takes the zoo's copy, trained by lab 01's recipe.")


def test_a_card_of_another_stage_or_profile_is_not_taken(tmp_path, opt_and_tokenizer):
    model, tokenizer = opt_and_tokenizer
    folder = Path(stages.save_stage("sft", model, tokenizer, profile="tiny", root=str(tmp_path)))
    assert stages.read_card(folder, "sft") is not None and stages.read_card(folder, "reward") is None
    assert stages.resolve("pipeline:sft", "tiny", root=str(tmp_path)).zoo is None
    with pytest.raises(ValueError, match="only the tiny profile has a zoo copy"):  # a tiny save is no full model
        stages.resolve("pipeline:sft", "full", root=str(tmp_path))
    (folder / "model.safetensors").unlink()  # a card without weights is no hand-over either
    assert stages.read_card(folder, "sft") is None
    assert stages.resolve("pipeline:sft", "tiny", root=str(tmp_path)).zoo == "tiny-sft"


class _FailingTokenizer:
    def __init__(self, tokenizer, fail: bool):
        self.tokenizer, self.fail, self.card_seen = tokenizer, fail, None

    def save_pretrained(self, folder):
        self.card_seen = (Path(folder) / stages.CARD).exists()
        if self.fail:
            raise OSError("disk full")
        return self.tokenizer.save_pretrained(folder)


def test_the_save_is_atomic_and_writes_the_card_last(tmp_path, opt_and_tokenizer):
    import torch

    model, tokenizer = opt_and_tokenizer
    first = _FailingTokenizer(tokenizer, fail=False)
    folder = Path(stages.save_stage("sft", model, first, profile="tiny", root=str(tmp_path), card={"run": 1}))
    assert first.card_seen is False  # the card comes after the weights and the tokenizer
    weights = (folder / "model.safetensors").read_bytes()
    other = copy.deepcopy(model)
    with torch.no_grad():
        next(other.parameters()).add_(1.0)
    with pytest.raises(OSError, match="disk full"):
        stages.save_stage("sft", other, _FailingTokenizer(tokenizer, fail=True), profile="tiny",
                          root=str(tmp_path), card={"run": 2})
    # the failed save left the earlier one as it was: its card and its weights
    assert stages.read_card(folder, "sft")["run"] == 1 and (folder / "model.safetensors").read_bytes() == weights
    assert sorted(p.name for p in folder.parent.iterdir()) == [folder.name]  # no temporary folder left behind
    stages.save_stage("sft", model, tokenizer, profile="tiny", root=str(tmp_path), card={"run": 3})
    assert stages.read_card(folder, "sft")["run"] == 3
    assert sorted(p.name for p in folder.parent.iterdir()) == [folder.name]


def test_a_pipeline_name_that_does_not_exist_is_one_clear_error():
    with pytest.raises(ValueError) as info:
        labhelpers.lab_config("03", "tiny", quiet=True, MODEL_NAME="pipeline:dpo")
    assert str(info.value) == ("Unknown pipeline model 'pipeline:dpo': the pipeline hands over 'pipeline:sft' "
                               "(lab 01's SFT model), 'pipeline:reward' (lab 02's reward model).")


def test_pipeline_reward_falls_back_to_the_zoos_reward_model(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    start = stages.resolve("pipeline:reward", "tiny")
    assert start.zoo == "tiny-reward" and Path(start.path) == tiny.zoo_path("tiny-reward", build=False)
    assert "trained by lab 02's recipe" in start.line
    assert tiny.RECIPES["tiny-reward"].init_from == "tiny-sft"  # lab 02's recipe starts from the SFT copy


@pytest.mark.parametrize("lab, model", [("02", "gpt2"), ("03", "gpt2"), ("04", "lvwerra/gpt2-imdb")])
def test_in_full_each_lab_says_what_it_starts_from_and_why(lab, model):
    cfg = labhelpers.lab_config(lab, "full", quiet=True, check_environment=False)
    assert cfg.model_name == model
    assert cfg.start.startswith(f"This lab starts from {model}") and "not lab 01's opt-350m SFT model: " in cfg.start
    assert set(CONFIG_CLASSES[cfg.lab].STARTS_FROM) <= {"tiny", "full"}


def test_a_pipeline_reward_model_is_named_in_the_same_line(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = labhelpers.lab_config("04", "tiny", quiet=True, MODEL_NAME="pipeline:sft",
                                REWARD_MODEL_NAME="pipeline:reward")
    assert cfg.zoo_models[-2:] == ("tiny-sft", "tiny-reward") and "\n" not in cfg.start
    assert Path(cfg.reward_model_name) == tiny.zoo_path("tiny-reward", build=False)
    assert cfg.start.startswith("Lab 01's SFT model is not in ") and " Lab 02's reward model is not in " in cfg.start
    full = labhelpers.lab_config("04", "full", quiet=True, check_environment=False, REWARD_MODEL_NAME=str(tmp_path))
    assert full.start == CONFIG_CLASSES["04_ppo_rlhf"].STARTS_FROM["full"]  # no pipeline name: the reason alone


def test_a_model_set_in_the_parameters_cell_is_named_as_such(tmp_path):
    cfg = labhelpers.lab_config("02", "full", quiet=True, check_environment=False, MODEL_NAME=str(tmp_path))
    assert cfg.start == f"This lab starts from {tmp_path}, set by MODEL_NAME in the parameters cell."


def test_the_sft_copys_key_follows_lab_01s_tiny_recipe(monkeypatch):
    before = tiny.recipe_key("tiny-sft")
    cls = CONFIG_CLASSES["01_instruction_tuning"]
    tiny_values = {**cls.PROFILES["tiny"], "max_steps": cls.PROFILES["tiny"]["max_steps"] + 1}
    monkeypatch.setattr(cls, "PROFILES", {**cls.PROFILES, "tiny": tiny_values})
    assert tiny.recipe_key("tiny-sft") != before
    assert tiny.recipe_key("tiny-reward") != tiny.recipe_key("tiny-sft")


@pytest.mark.notebook(labs=("01", "02"))
def test_the_zoos_copy_is_lab_01s_model_and_lab_02_in_tests_takes_it(executed_lab):
    """Each executed lab has a working folder of its own (conftest), so lab 02 never sees lab 01's save: it takes
    the zoo's copy, whichever lab finished first. The copy is lab 01's run, so either start gives the same lab 02."""
    from transformers import AutoModelForCausalLM

    first, second = executed_lab("01"), executed_lab("02")
    assert first.error is None, failure_of(first)
    assert second.error is None, failure_of(second)
    saved = Path(first.output).parent / "01_instruction_tuning" / stages.stage_dir("sft", "tiny")
    card = stages.read_card(saved, "sft")
    assert card is not None and card["steps"] > 0 and card["held_out"]["bleu"][1] > card["held_out"]["bleu"][0]
    mine = AutoModelForCausalLM.from_pretrained(saved)
    zoo = AutoModelForCausalLM.from_pretrained(tiny.zoo_path("tiny-sft"))
    gap = max((a - b).abs().max().item() for a, b in zip(mine.parameters(), zoo.parameters()))
    assert gap < 1e-4, gap  # 0.0 on one machine: the same recipe, rows, seed, threads and evaluations
    cells = json.loads(Path(second.output).read_text())["cells"]
    printed = "".join("".join(o.get("text", "")) for c in cells if c["cell_type"] == "code" for o in c["outputs"])
    assert "this lab takes the zoo's copy, trained by lab 01's recipe." in printed
