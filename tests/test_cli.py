"""``labhelpers run`` and ``labhelpers doctor``."""

from __future__ import annotations

import json
import subprocess
import sys

import nbformat
import pytest

from labhelpers.cli import doctor_report, main
from labhelpers.execute import parse_value


def _lab(folder, stem, body):
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell(f"# {stem}"),
        nbformat.v4.new_code_cell('PROFILE = "auto"', metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell(body)])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, folder / f"{stem}.ipynb")


@pytest.fixture
def fake_labs(tmp_path, monkeypatch):
    """A labs folder with one passing, one failing-check and one raising lab (seconds, not minutes)."""
    labs = tmp_path / "labs"
    labs.mkdir()
    head = "from labhelpers import lab_config, record_check, record_result\ncfg = lab_config('{n}', PROFILE, quiet=True)\n"
    _lab(labs, "01_instruction_tuning", head.format(n="01") + "record_result('seen_profile', PROFILE)\n"
         "record_check('ok', True, message='fine')")
    _lab(labs, "02_reward_modeling", head.format(n="02") + "record_check('bad', False, message='not fine')")
    _lab(labs, "03_dpo", head.format(n="03") + "raise RuntimeError('boom in cell 3')")
    monkeypatch.setenv("LABS_DIR", str(labs))
    return labs


@pytest.mark.notebook  # child processes for long (the fast lane skips it)
def test_run_writes_executed_notebooks_and_summary(fake_labs, tmp_path, capsys):
    out = tmp_path / "out"
    code = main(["run", "01", "--profile", "tiny", "--out", str(out)])
    assert code == 0
    summary = json.loads((out / "summary.json").read_text())["labs"]
    assert [(s["lab"], s["status"], s["checks_passed"], s["checks_total"]) for s in summary] == [
        ("01_instruction_tuning", "passed", 1, 1)]
    assert (out / "01_instruction_tuning.ipynb").exists()
    assert not (fake_labs / "outputs").exists(), "labs write into the output folder, never into labs/"
    table = capsys.readouterr().out
    assert "01_instruction_tuning  passed" in table


@pytest.mark.notebook  # child processes for long (the fast lane skips it)
def test_run_exits_nonzero_on_a_failed_check_or_an_error(fake_labs, tmp_path):
    out = tmp_path / "out"
    assert main(["run", "--profile", "tiny", "--out", str(out)]) == 1
    runs = {s["lab"]: s for s in json.loads((out / "summary.json").read_text())["labs"]}
    assert runs["01_instruction_tuning"]["status"] == "passed"
    assert runs["02_reward_modeling"]["status"] == "checks failed"
    assert runs["03_dpo"]["status"] == "error" and "boom in cell 3" in runs["03_dpo"]["error"]


@pytest.mark.notebook  # child processes for long (the fast lane skips it)
def test_parameters_reach_the_notebook(fake_labs, tmp_path):
    out = tmp_path / "out"
    assert main(["run", "1", "--out", str(out), "--profile", "tiny", "-p", "EXTRA", "3"]) == 0
    nb = json.loads((out / "01_instruction_tuning.ipynb").read_text())
    injected = "".join(nb["cells"][2]["source"])
    assert "EXTRA = 3" in injected and 'PROFILE = "tiny"' in injected


def test_unknown_lab_and_unknown_profile_are_clear(fake_labs, tmp_path, capsys):
    assert main(["run", "42", "--out", str(tmp_path)]) == 2
    assert "Unknown lab '42'" in capsys.readouterr().err
    proc = subprocess.run([sys.executable, "-m", "labhelpers.cli", "run", "--profile", "gpu"],
                          capture_output=True, text=True)
    assert proc.returncode == 2 and "invalid choice: 'gpu'" in proc.stderr and "'tiny'" in proc.stderr


@pytest.mark.parametrize("text,value", [("3", 3), ("0.5", 0.5), ("True", True), ("none", None), ("gpt2", "gpt2"),
                                        ("1e-3", 1e-3)])
def test_parameter_values_are_typed_like_papermill(text, value):
    assert parse_value(text) == value


def test_doctor_reports_versions_device_cache_hub_and_apis(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    lines, ok = doctor_report()
    text = "\n".join(lines)
    assert ok, text
    for needle in ("transformers", "trl", "device:", "cache folder:", "Hub: NOT reachable (HF_HUB_OFFLINE is set",
                   "ok      trl.SFTTrainer", "trl.PPOTrainer: gone -> use labhelpers.ppo.PPOTrainer",
                   "evaluation_strategy=...): gone -> use eval_strategy="):
        assert needle in text
