"""Profile resolution, device/dtype and the frozen lab configs."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest

import labhelpers
from labhelpers import lab_configs
from labhelpers.config import PROFILES, config_labs, lab_config, profile_values, resolve_lab, resolve_profile
from labhelpers.lab_configs import CONFIG_CLASSES, PROFILE_NAMES, GenerationParametersConfig, check_profiles
from labhelpers.tiny import zoo_path


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
    for lab in config_labs():
        assert str(profile_values(lab, "tiny")["model_name"]).startswith(("zoo:", "pipeline:")), lab
        assert not str(profile_values(lab, "full")["model_name"]).startswith(("zoo:", "pipeline:")), lab


# ------------------------------------------------------------------------------------------------
# One home per setting: each lab's class holds its fields, their help and every profile's values
# ------------------------------------------------------------------------------------------------
def test_the_labs_with_a_config_are_the_classes_in_course_order():
    assert config_labs() == sorted(CONFIG_CLASSES) and len(config_labs()) >= 6
    assert PROFILES == ("auto", *PROFILE_NAMES)  # PROFILE takes every profile the classes hold, and auto


@pytest.mark.parametrize("lab", config_labs())
def test_each_class_lists_values_for_exactly_the_profiles(lab):
    assert sorted(CONFIG_CLASSES[lab].PROFILES) == sorted(("common", *PROFILE_NAMES))


@pytest.mark.parametrize("lab", config_labs())
def test_every_lab_field_has_help(lab):
    for f in dataclasses.fields(CONFIG_CLASSES[lab]):
        assert len(f.metadata.get("help", "")) > 10, (lab, f.name)


@pytest.mark.parametrize("lab", config_labs())
@pytest.mark.parametrize("profile", PROFILE_NAMES)
def test_merged_values_are_common_overridden_by_the_profile(lab, profile):
    common, own = CONFIG_CLASSES[lab].PROFILES["common"], CONFIG_CLASSES[lab].PROFILES[profile]
    merged = profile_values(lab, profile)
    assert set(merged) == set(common) | set(own)
    for name, value in merged.items():
        assert value == (own[name] if name in own else common[name]), (lab, profile, name)


def test_a_profile_value_overrides_the_common_one():
    common = CONFIG_CLASSES["06_scaling_up"].PROFILES["common"]["system_prompt"]
    assert profile_values("06_scaling_up", "tiny")["system_prompt"] == "Answer briefly." != common
    assert profile_values("06_scaling_up", "full")["system_prompt"] == common


def test_merged_values_are_a_fresh_dict_each_call():
    profile_values("05_generation_parameters", "tiny")["prompt"] = "changed"
    assert profile_values("05_generation_parameters", "tiny")["prompt"] == "the film was"


@pytest.mark.parametrize("lab", config_labs())
@pytest.mark.parametrize("profile", PROFILE_NAMES)
def test_the_resolved_config_holds_the_profiles_values(lab, profile):
    cfg = lab_config(lab, profile, quiet=True, check_environment=False)
    for name, value in profile_values(lab, profile).items():
        if not str(value).startswith(("zoo:", "pipeline:")):  # zoo and pipeline names become folders
            assert getattr(cfg, name) == value, (lab, profile, name)


def test_an_unknown_lab_or_profile_is_a_clear_error():
    with pytest.raises(ValueError, match="Lab '00_overview' has no config; the labs with one are 01_instruction"):
        profile_values("00_overview", "tiny")
    with pytest.raises(ValueError, match="Unknown profile 'common' for lab 03_dpo; the profiles are tiny, full"):
        profile_values("03_dpo", "common")


def _broken(monkeypatch, **blocks):
    """Lab 05's class with some of its profile blocks replaced, in lab 05's place."""
    broken = type("GenerationParametersConfig", (GenerationParametersConfig,),
                  {"PROFILES": {**GenerationParametersConfig.PROFILES, **blocks}})
    monkeypatch.setitem(CONFIG_CLASSES, "05_generation_parameters", broken)


def test_a_renamed_option_in_a_profile_names_the_lab_the_field_and_the_fields(monkeypatch):
    check_profiles()  # the classes as shipped pass (the import ran it already)
    _broken(monkeypatch, common={"seed": 42, "promt": "x"})
    with pytest.raises(ValueError, match=r"Lab 05_generation_parameters: GenerationParametersConfig.PROFILES\['common'\]"
                                         r" sets 'promt', which is not one of its fields: model_name, .*, prompt\."):
        check_profiles()


def test_a_wrong_type_in_a_profile_names_the_lab_and_the_field(monkeypatch):
    _broken(monkeypatch, tiny={"model_name": "zoo:tiny-gpt2", "max_new_tokens": "20"})
    with pytest.raises(ValueError, match=r"Lab 05_generation_parameters: .*\['tiny'\]: MAX_NEW_TOKENS must be an int"):
        check_profiles()


def test_a_missing_or_extra_profile_block_fails(monkeypatch):
    _broken(monkeypatch, huge={"model_name": "gpt2-xl"})
    with pytest.raises(ValueError, match=r"Lab 05_generation_parameters: .* blocks common, tiny, full, huge; it must "
                                         r"have exactly common, tiny, full\."):
        check_profiles()


def test_a_field_without_a_default_must_be_set_in_every_profile(monkeypatch):
    _broken(monkeypatch, common={"seed": 42})  # no prompt any more
    with pytest.raises(ValueError, match=r"sets no value for prompt in the 'tiny' profile"):
        check_profiles()


def test_the_config_module_imports_no_course_tool():
    import ast
    import inspect

    from labhelpers import config

    tree = ast.parse(inspect.getsource(config))
    imported = [n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
    imported += [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
    assert not [m for m in imported if "course" in m], imported
    assert "from .config" not in inspect.getsource(lab_configs)  # no import circle back


def test_the_config_classes_follow_one_name_pattern_and_shadow_no_library_class():
    import transformers
    import trl

    for cls in CONFIG_CLASSES.values():
        assert cls.__name__.endswith("Config") and "Lab" not in cls.__name__, cls.__name__
        assert not hasattr(trl, cls.__name__) and not hasattr(transformers, cls.__name__), cls.__name__


def test_tiny_config_resolves_zoo_folder_and_is_frozen(capsys):
    cfg = lab_config("05", "tiny")
    printed = capsys.readouterr().out
    assert cfg.profile == "tiny" and cfg.device == "cpu" and cfg.dtype == "float32"
    assert Path(cfg.model_name) == zoo_path("tiny-gpt2", build=False) and cfg.zoo_models == ("tiny-gpt2",)
    labhelpers.prepare_lab(cfg)  # resolving builds nothing; this line of every lab builds what the config names
    assert (Path(cfg.model_name) / "config.json").exists()
    assert "05_generation_parameters" in printed and "model_name" in printed
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.max_new_tokens = 3  # type: ignore[misc]
    assert cfg.prompt == profile_values("05_generation_parameters", "tiny")["prompt"]


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
@pytest.mark.parametrize("lab", config_labs())
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
    assert not own.replace(dataset=profile_values("01_instruction_tuning", "full")["dataset"]).uses_profile_dataset
