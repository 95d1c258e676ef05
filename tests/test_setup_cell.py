"""The setup cell: identical in every lab, generated from labhelpers.course.setup_cell, and safe on Colab."""

from __future__ import annotations

import subprocess
import sys
import types

import nbformat
import pytest
from conftest import lab_paths

from labhelpers.course import generated, setup_cell


def test_every_lab_opens_with_the_generated_setup_cell():
    labs = lab_paths()
    assert len(labs) >= 6
    for path in labs:
        cell = nbformat.read(str(path), as_version=4).cells[setup_cell.SETUP_CELL_INDEX]
        assert cell.source == setup_cell.setup_cell_source(), f"{path.name}: run python -m labhelpers.course.generated"


def test_the_cell_installs_the_runtime_from_the_one_repository_and_revision():
    source = setup_cell.setup_cell_source()
    assert f'"{setup_cell.REPOSITORY}"' in source and f'"{setup_cell.REVISION}"' in source
    assert "labhelpers{extra} @ git+{repo}@{revision}" in source  # the runtime, and bitsandbytes on a GPU
    assert "[dev]" not in source and "[course]" not in source and "-e" not in source.split()
    assert "--upgrade" not in source and "-U" not in source.split()  # pip keeps what Colab has when it can


class _Dist:
    def __init__(self, name, version):
        self.metadata, self.version = {"Name": name}, version


def _run_cell(monkeypatch, returncode: int, *, installed=None, after_pip=None, modules=None,
              gpu: bool = False) -> list[list[str]]:
    """Run the setup cell as on Colab, with pip faked: ``installed`` versions become ``after_pip`` once pip ran.

    ``modules`` maps module names to the distribution that provides them (``packages_distributions``).
    """
    import importlib.metadata
    import shutil

    calls = []
    state = {"versions": dict(installed or {"torch": "2.11.0"})}

    def fake_run(cmd, *args, **kwargs):
        calls.append(cmd)
        state["versions"].update(after_pip or {})
        return subprocess.CompletedProcess(cmd, returncode)

    monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    monkeypatch.setattr(subprocess, "run", fake_run)
    monkeypatch.setattr(shutil, "which", lambda name: "/usr/bin/nvidia-smi" if gpu and name == "nvidia-smi" else None)
    monkeypatch.setattr(importlib.metadata, "distributions",
                        lambda: [_Dist(n, v) for n, v in state["versions"].items()])
    monkeypatch.setattr(importlib.metadata, "packages_distributions",
                        lambda: {m: [d] for m, d in (modules or {}).items()})
    exec(compile(setup_cell.setup_cell_source(), "<setup cell>", "exec"), {})
    return calls


def test_on_colab_it_pip_installs_the_revision(monkeypatch, capsys):
    calls = _run_cell(monkeypatch, 0)
    assert calls == [[sys.executable, "-m", "pip", "install", "-q",
                      f"labhelpers @ git+{setup_cell.REPOSITORY}@{setup_cell.REVISION}"]]
    assert "torch" in capsys.readouterr().out  # then it imports labhelpers and prints the versions


def test_on_a_colab_gpu_it_installs_bitsandbytes_too(monkeypatch):
    calls = _run_cell(monkeypatch, 0, gpu=True)
    assert calls[0][-1] == f"labhelpers[gpu] @ git+{setup_cell.REPOSITORY}@{setup_cell.REVISION}"


def test_an_upgrade_of_an_imported_package_asks_for_a_restart(monkeypatch):
    monkeypatch.setitem(sys.modules, "fake_datasets_module", types.ModuleType("fake_datasets_module"))
    with pytest.raises(RuntimeError, match=r"pip upgraded datasets 4\.0\.0 -> 4\.7\.0, already imported.*Restart"):
        _run_cell(monkeypatch, 0, installed={"datasets": "4.0.0", "pyarrow": "18.1.0"},
                  after_pip={"datasets": "4.7.0", "pyarrow": "21.0.0", "trl": "1.16.0"},
                  modules={"fake_datasets_module": "datasets", "pyarrow_not_imported": "pyarrow"})


def test_an_upgrade_of_packages_not_yet_imported_goes_on(monkeypatch, capsys):
    _run_cell(monkeypatch, 0, installed={"datasets": "4.0.0"}, after_pip={"datasets": "4.7.0", "trl": "1.16.0"},
              modules={"module_nobody_imported": "datasets"})
    assert "torch" in capsys.readouterr().out


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
    (tmp_path / "labs").mkdir()
    path = tmp_path / "labs" / "99_drift.ipynb"
    nbformat.write(nb, str(path))
    drifted = ["labs/99_drift.ipynb cell 1 (the setup cell)"]
    assert generated.update(tmp_path, check=True, only=["setup"]) == drifted
    assert nbformat.read(str(path), as_version=4).cells[1].source == "print('old setup')"
    assert generated.update(tmp_path, only=["setup"]) == drifted
    assert generated.update(tmp_path, check=True, only=["setup"]) == []
    assert nbformat.read(str(path), as_version=4).cells[1].source == setup_cell.setup_cell_source()
