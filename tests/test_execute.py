"""The one notebook runner: per-cell and whole-run limits, every process stopped, no transport warning."""

from __future__ import annotations

import subprocess
import sys
import time

import nbformat
import psutil
import pytest

from labhelpers.course.runner import execute_lab, lab_status, run_notebook


def _notebook(path, *sources):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell('PROFILE = "tiny"', metadata={"tags": ["parameters"]})]
                                  + [nbformat.v4.new_code_cell(s) for s in sources])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)
    return path


def test_the_hard_timeout_stops_the_kernel_and_what_it_started(tmp_path):
    pid_file = tmp_path / "pids"
    nb = _notebook(tmp_path / "slow.ipynb",
                   "import os, subprocess, time\n"
                   "child = subprocess.Popen(['sleep', '600'], start_new_session=True)  # a group of its own\n"
                   f"open({str(pid_file)!r}, 'w').write(f'{{os.getpid()}} {{child.pid}}')\n"
                   "time.sleep(600)")
    # A short limit first; a kernel slow to start on a busy machine gets a longer one, since the test needs the
    # notebook to have started its child before the limit strikes.
    for limit in (6, 30):
        started = time.perf_counter()
        run = run_notebook(nb, tmp_path / "out" / "slow.ipynb", hard_timeout=limit)
        assert run.timed_out and f"stopped after {limit} s" in run.error
        assert time.perf_counter() - started < limit + 25, "the run was not stopped at its limit"
        if pid_file.exists():
            break
    kernel, grandchild = map(int, pid_file.read_text().split())
    time.sleep(1)
    alive = [p for p in (kernel, grandchild) if psutil.pid_exists(p) and psutil.Process(p).status() != "zombie"]
    assert alive == [], "the kernel or a process it started outlived the timeout"
    assert run.output.exists(), "the partly executed notebook is still written"


def test_the_cell_timeout_fails_the_cell_and_the_run_ends(tmp_path):
    nb = _notebook(tmp_path / "cell.ipynb", "import time\ntime.sleep(120)", "print('never')")
    run = execute_lab(nb, tmp_path / "out" / "cell.ipynb", timeout=2)
    assert run.status == "error" and not run.checks_total and "Timeout" in run.error


def test_a_notebook_without_checks_has_not_passed(tmp_path):
    run = execute_lab(_notebook(tmp_path / "none.ipynb", "x = 1"), tmp_path / "out" / "none.ipynb")
    assert run.status == "no checks" and run.error is None
    assert lab_status(None, [{"passed": True}]) == "passed"
    assert lab_status(None, [{"passed": True}, {"passed": False}]) == "checks failed"
    assert lab_status("boom", [{"passed": True}]) == "error"


@pytest.fixture
def one_lab(tmp_path, monkeypatch):
    labs = tmp_path / "labs"
    labs.mkdir()
    _notebook(labs / "05_generation_parameters.ipynb",
              "from labhelpers import record_check\nrecord_check('ok', True, message='fine')")
    monkeypatch.setenv("LABS_DIR", str(labs))
    return labs


def test_labhelpers_run_prints_no_kernel_transport_warning(one_lab, tmp_path):
    done = subprocess.run([sys.executable, "-m", "labhelpers.course.cli", "run", "05", "--profile", "tiny", "--out",
                           str(tmp_path / "out")], capture_output=True, text=True, timeout=300)
    printed = done.stdout + done.stderr
    assert done.returncode == 0, printed
    assert "05_generation_parameters: passed" in printed
    assert "without encryption" not in printed and "WARNING" not in printed, printed
