"""The setup cell: identical in every lab, generated from labhelpers.setup_cell, and safe on Colab."""

from __future__ import annotations

import subprocess
import sys
import types

import nbformat
import pytest
from conftest import LABS

from labhelpers import setup_cell


def test_every_lab_opens_with_the_generated_setup_cell():
    labs = setup_cell.lab_notebooks(LABS)
    assert len(labs) >= 6
    for path in labs:
        cell = nbformat.read(str(path), as_version=4).cells[setup_cell.SETUP_CELL_INDEX]
        assert cell.source == setup_cell.setup_cell_source(), f"{path.name}: run python -m labhelpers.setup_cell"


def test_the_cell_installs_the_runtime_from_the_one_repository_and_revision():
    source = setup_cell.setup_cell_source()
    assert f'"{setup_cell.REPOSITORY}"' in source and f'"{setup_cell.REVISION}"' in source
    assert "labhelpers @ git+{repo}@{revision}" in source  # no extras: the runtime only
    assert "[dev]" not in source and "[course]" not in source and "-e" not in source.split()


def _run_cell(monkeypatch, returncode: int) -> list[list[str]]:
    calls = []

    def fake_run(cmd, *args, **kwargs):
        calls.append(cmd)
        return subprocess.CompletedProcess(cmd, returncode)

    monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    monkeypatch.setattr(subprocess, "run", fake_run)
    exec(compile(setup_cell.setup_cell_source(), "<setup cell>", "exec"), {})
    return calls


def test_on_colab_it_pip_installs_the_revision(monkeypatch, capsys):
    calls = _run_cell(monkeypatch, 0)
    assert calls == [[sys.executable, "-m", "pip", "install", "-q",
                      f"labhelpers @ git+{setup_cell.REPOSITORY}@{setup_cell.REVISION}"]]
    assert "torch" in capsys.readouterr().out  # then it imports labhelpers and prints the versions


def test_a_failed_install_names_the_url_and_how_to_use_a_fork(monkeypatch):
    monkeypatch.setenv("LABS_REPO", "https://example.invalid/fork")
    with pytest.raises(RuntimeError, match=r"from https://example.invalid/fork at main .*LABS_REPO.*re-run"):
        _run_cell(monkeypatch, 1)


def test_outside_colab_nothing_is_installed(monkeypatch):
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    calls = []
    monkeypatch.setattr(subprocess, "run", lambda cmd, *a, **k: calls.append(cmd))
    exec(compile(setup_cell.setup_cell_source(), "<setup cell>", "exec"), {})
    assert calls == []


def test_the_check_mode_reports_a_lab_whose_cell_drifted(tmp_path):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# Lab 99"),
                                         nbformat.v4.new_code_cell("print('old setup')")])
    path = tmp_path / "99_drift.ipynb"
    nbformat.write(nb, str(path))
    assert setup_cell.main(["--labs", str(tmp_path), "--check"]) == 1
    assert setup_cell.main(["--labs", str(tmp_path)]) == 0
    assert setup_cell.main(["--labs", str(tmp_path), "--check"]) == 0
