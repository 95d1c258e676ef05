"""Profile resolution, device/dtype and the frozen lab configs."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from labhelpers.config import LAB_DEFAULTS, lab_config, resolve_lab, resolve_profile


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
    with pytest.raises(AttributeError, match="no field or option 'beta'"):
        _ = cfg.beta


def test_full_with_a_local_model_on_cpu_warns_about_the_slowdown(monkeypatch, tmp_path):
    monkeypatch.setattr("torch.cuda.is_available", lambda: False)
    with pytest.warns(UserWarning, match="meant for a GPU"):
        cfg = lab_config("05", "full", quiet=True, MODEL_NAME=str(tmp_path))
    assert cfg.model_name == str(tmp_path)
