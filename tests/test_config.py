"""Profile resolution, device/dtype and the frozen lab configs."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest

from labhelpers.config import LAB_DEFAULTS, lab_config, resolve_lab, resolve_profile
from labhelpers.lab_configs import CONFIG_CLASSES, check_table


def test_explicit_profiles_win_over_the_environment(monkeypatch):
    monkeypatch.setenv("LABS_PROFILE", "full")
    assert resolve_profile("tiny")[0] == "tiny"
    assert "parameters cell" in resolve_profile("tiny")[1]


def test_labs_profile_overrides_auto(monkeypatch):
    monkeypatch.setenv("LABS_PROFILE", "tiny")
    profile, reason = resolve_profile("auto")
    assert profile == "tiny" and "LABS_PROFILE" in reason


@pytest.mark.parametrize("bad", ["gpu", "Tiny-ish", ""])
def test_unknown_profile_lists_the_valid_ones(bad, monkeypatch):
    monkeypatch.delenv("LABS_PROFILE", raising=False)
    if bad == "":
        monkeypatch.setenv("LABS_PROFILE", "cuda")
        bad = "auto"
    with pytest.raises(ValueError, match=r"choose one of 'auto', 'tiny', 'full'"):
        resolve_profile(bad)


def test_profile_is_case_insensitive():
    assert resolve_profile("TINY")[0] == "tiny"


@pytest.mark.parametrize("name", ["05", "5", "05_generation_parameters", "labs/05_generation_parameters.ipynb"])
def test_lab_names_resolve(name):
    assert resolve_lab(name) == "05_generation_parameters"


def test_unknown_lab_is_a_clear_error():
    with pytest.raises(ValueError, match="Unknown lab '99'.*01_instruction_tuning"):
        resolve_lab("99")


def test_every_lab_has_both_profiles_with_a_model():
    for lab, table in LAB_DEFAULTS.items():
        for profile in ("tiny", "full"):
            merged = {**table.get("common", {}), **table[profile]}
            assert "model_name" in merged, (lab, profile)
        assert str(table["tiny"]["model_name"]).startswith("zoo:"), lab
        assert not str(table["full"]["model_name"]).startswith("zoo:"), lab


def test_tiny_config_resolves_zoo_folder_and_is_frozen(capsys):
    cfg = lab_config("05", "tiny")
    printed = capsys.readouterr().out
    assert cfg.profile == "tiny" and cfg.device == "cpu" and cfg.dtype == "float32"
    assert (Path(cfg.model_name) / "config.json").exists()
    assert "05_generation_parameters" in printed and "model_name" in printed
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.max_new_tokens = 3  # type: ignore[misc]
    assert cfg.prompt == LAB_DEFAULTS["05_generation_parameters"]["common"]["prompt"]


def test_overrides_apply_and_none_keeps_default():
    cfg = lab_config("05", "tiny", quiet=True, MAX_NEW_TOKENS=7, PROMPT=None)
    assert cfg.max_new_tokens == 7
    assert cfg.prompt == "the film was"
    changed = cfg.replace(prompt="hello", max_new_tokens=3)
    assert (changed.prompt, changed.max_new_tokens, cfg.prompt) == ("hello", 3, "the film was")


def test_unknown_override_names_the_known_ones():
    with pytest.raises(ValueError, match="Unknown setting 'MAX_STESP'.*MAX_NEW_TOKENS"):
        lab_config("05", "tiny", quiet=True, MAX_STESP=3)


def test_unknown_option_attribute_is_an_attribute_error():
    cfg = lab_config("05", "tiny", quiet=True)
    with pytest.raises(AttributeError, match="has no attribute 'beta'"):
        _ = cfg.beta


def test_full_with_a_local_model_on_cpu_warns_about_the_slowdown(monkeypatch, tmp_path):
    monkeypatch.setattr("torch.cuda.is_available", lambda: False)
    with pytest.warns(UserWarning, match="meant for a GPU") as caught:
        cfg = lab_config("05", "full", quiet=True, MODEL_NAME=str(tmp_path))
    assert cfg.model_name == str(tmp_path)
    message = str(caught[0].message)
    assert "will take hours" in message and 'PROFILE = "tiny"' in message and "minutes" not in message


# ------------------------------------------------------------------------------------------------
# Typed, frozen, picklable, and free of side effects
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("lab", sorted(LAB_DEFAULTS))
@pytest.mark.parametrize("profile", ["tiny", "full"])
def test_every_config_pickles_and_deep_copies(lab, profile):
    import copy
    import pickle

    cfg = lab_config(lab, profile, quiet=True, check_environment=False)
    assert pickle.loads(pickle.dumps(cfg)) == cfg and copy.deepcopy(cfg) == cfg
    assert type(cfg) is CONFIG_CLASSES[lab]


@pytest.mark.parametrize("name,value,expected", [("MAX_STEPS", "ten", "MAX_STEPS must be an int or None"),
                                                  ("LEARNING_RATE", "fast", "LEARNING_RATE must be a float"),
                                                  ("SEED", 4.5, "SEED must be an int"),
                                                  ("PROMPT", 3, "PROMPT must be a str")])
def test_a_wrong_type_names_the_field_and_the_type(name, value, expected):
    with pytest.raises(ValueError, match=expected):
        lab_config("05", "tiny", quiet=True, **{name: value})


def test_replace_checks_names_and_types_too():
    cfg = lab_config("03", "tiny", quiet=True)
    assert cfg.replace(beta=0.5).beta == 0.5 and cfg.beta == 0.1
    with pytest.raises(ValueError, match="BETA must be a float"):
        cfg.replace(beta="high")
    with pytest.raises(ValueError, match="Unknown setting 'BETTA'"):
        cfg.replace(betta=0.5)


def test_a_renamed_option_in_the_table_fails_the_table_check():
    table = {"05_generation_parameters": {"common": {"promt": "x"}, "tiny": {}, "full": {}}}
    with pytest.raises(ValueError, match="Unknown setting 'PROMT' for GenerationConfigLab"):
        check_table(table)


@pytest.mark.notebook  # builds a zoo model in a cold cache: a child process for tens of seconds
def test_resolving_a_config_trains_nothing_and_leaves_the_rng_and_records_alone(tmp_path):
    """On a cold zoo cache, in a fresh process: seed, lab_config, draw == seed, draw; no zoo folder appears."""
    import subprocess
    import sys

    code = """
import torch, labhelpers, os
from labhelpers import records
torch.manual_seed(0); expected = torch.rand(3)
torch.manual_seed(0); cfg = labhelpers.lab_config("05", "tiny", quiet=True); got = torch.rand(3)
print(torch.equal(expected, got), os.path.exists(cfg.model_name), records._context["lab"])
labhelpers.prepare_lab(cfg)
print(os.path.exists(os.path.join(cfg.model_name, "recipe.json")), records._context["lab"])
"""
    env = {**os.environ, "LABHELPERS_CACHE": str(tmp_path / "cold"), "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["True", "False", "None", "True", "05_generation_parameters"]


def test_uses_profile_dataset_tells_the_profiles_own_data_from_a_learners(tmp_path):
    own = lab_config("01", "tiny", quiet=True)
    assert own.uses_profile_dataset
    assert lab_config("01", "full", quiet=True, check_environment=False).uses_profile_dataset
    theirs = lab_config("01", "tiny", quiet=True, DATASET=str(tmp_path / "mine.json"))
    assert not theirs.uses_profile_dataset
    assert not own.replace(dataset=LAB_DEFAULTS["01_instruction_tuning"]["full"]["dataset"]).uses_profile_dataset
