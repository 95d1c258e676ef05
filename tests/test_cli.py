"""``labhelpers run`` and ``labhelpers doctor``."""

from __future__ import annotations

import json
import subprocess
import sys

import nbformat
import pytest

from labhelpers.course.cli import doctor_report, main
from labhelpers.course.runner import parse_value


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
    proc = subprocess.run([sys.executable, "-m", "labhelpers.course.cli", "run", "--profile", "gpu"],
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


def _fake_versions(monkeypatch, **fake):
    """importlib.metadata.version answers ``fake`` for the named distributions (the libraries are imported first,
    so their own import-time version checks saw the real ones)."""
    import importlib.metadata

    import transformers  # noqa: F401
    import trl  # noqa: F401

    real = importlib.metadata.version

    def version(name):
        key = name.lower().replace("-", "_")
        if key in fake:
            if fake[key] is None:
                raise importlib.metadata.PackageNotFoundError(name)
            return fake[key]
        return real(name)

    monkeypatch.setattr(importlib.metadata, "version", version)


def _spec(name):
    """pyproject's requirement of ``name``, lower bound first: '>=5.0,<6'."""
    import tomllib
    from pathlib import Path

    from packaging.requirements import Requirement

    project = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())["project"]
    req = next(Requirement(d) for d in project["dependencies"] if Requirement(d).name == name)
    return ",".join(sorted((str(s) for s in req.specifier), key=lambda s: not s.startswith(">")))


def test_doctor_names_a_too_old_package_and_its_fix(monkeypatch, capsys):
    """transformers 4.57 (below the labs' lower bound): a PROBLEM line naming it, the pip command that fixes it,
    and a non-zero exit. The doctor before issue 22 printed the version and said all was well."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    _fake_versions(monkeypatch, transformers="4.57.0")
    assert main(["doctor"]) == 1
    out = capsys.readouterr().out
    spec = _spec("transformers")
    assert f"PROBLEM transformers: 4.57.0 is older than the labs need ({spec})" in out
    assert f'fix: pip install "transformers{spec}"' in out


def test_doctor_names_a_missing_package(monkeypatch, capsys):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    _fake_versions(monkeypatch, sacrebleu=None)
    assert main(["doctor"]) == 1
    out = capsys.readouterr().out
    assert "PROBLEM sacrebleu: not installed" in out
    assert f'fix: pip install "sacrebleu{_spec("sacrebleu")}"' in out


def test_doctor_notes_a_version_newer_than_anything_tested_without_failing(monkeypatch):
    from labhelpers import doctor, versions

    monkeypatch.setattr(doctor, "installed_version",
                        lambda name: "1.99.0" if name == "accelerate" else doctor.metadata.version(name))
    _, findings = doctor.version_problems()
    (note,) = [f for f in findings if f.package == "accelerate"]
    assert not note.fails and "newer than anything CI tested" in note.problem
    assert note.fix.endswith(f'pip install "accelerate=={versions.NEWEST["accelerate"]}" (the tested version)')


def test_doctor_reports_a_trainer_config_the_installed_libraries_reject(monkeypatch, capsys):
    """What transformers 5.15 did to labs 01-04 and 06: a config field the installed TrainingArguments lacks.
    The doctor builds every lab's trainer configs and names the lab, the builder, the error and the fix."""
    import trl

    class SFTConfigOf515(trl.SFTConfig):
        def __init__(self, **kwargs):
            raise TypeError("SFTConfig.__init__() got an unexpected keyword argument 'activation_checkpointing'")

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(trl, "SFTConfig", SFTConfigOf515)
    assert main(["doctor"]) == 1
    out = capsys.readouterr().out
    assert ("PROBLEM lab 01: sft_args (tiny): TypeError: SFTConfig.__init__() got an unexpected keyword argument "
            "'activation_checkpointing'") in out
    assert "PROBLEM lab 06: chat_sft_args (tiny)" in out
    assert 'fix: install the versions CI tested: "transformers==' in out
    assert "lab 02" not in out.split("problems and their fixes:")[1], "RewardConfig still builds"


def test_doctor_does_not_count_the_course_tooling_a_colab_install_lacks(monkeypatch):
    """papermill belongs to the [course] extra, which the setup cell does not install: its absence is no problem."""
    import labhelpers.course.cli as cli

    real = cli._has
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(cli, "_has", lambda module, attr: module != "papermill" and real(module, attr))
    lines, ok = doctor_report()
    assert ok, "\n".join(lines)
    assert any(line.startswith("  absent  papermill.execute_notebook (course tooling only") for line in lines)


def test_run_passes_the_labs_folder_kernel_and_working_folder_through(tmp_path, monkeypatch):
    """What the Colab lane needs: notebooks from a folder of its own, a kernel of another venv, its own cwd."""
    import labhelpers.course.runner as execute

    labs = tmp_path / "copied"
    labs.mkdir()
    _lab(labs, "05_generation_parameters", "pass")
    seen = []

    def fake_execute_lab(nb, out, **kwargs):
        seen.append((nb, kwargs["kernel_name"], kwargs["cwd"]))
        return execute.LabRun(lab=nb.stem, status="passed", seconds=0.0, output=str(out), checks_total=1,
                              checks_passed=1)

    monkeypatch.delenv("LABS_DIR", raising=False)
    monkeypatch.setattr(execute, "execute_lab", fake_execute_lab)
    assert main(["run", "--labs-dir", str(labs), "--kernel", "colab-lane", "--cwd", str(labs),
                 "--out", str(tmp_path / "out")]) == 0
    assert seen == [(labs / "05_generation_parameters.ipynb", "colab-lane", labs)]
