"""The one notebook runner: per-cell and whole-run limits, every process stopped, no transport warning, the
kernel's peak memory and CPU time; the one loop over labs; the one answer to where the labs are."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import nbformat
import psutil
import pytest

from labhelpers.course.runner import execute_lab, lab_notebooks, lab_status, labs_dir, run_labs, run_notebook


def _notebook(path, *sources):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell('PROFILE = "tiny"', metadata={"tags": ["parameters"]})]
                                  + [nbformat.v4.new_code_cell(s) for s in sources])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)
    return path


@pytest.mark.notebook  # starts Jupyter kernels for seconds each (the fast lane skips it)
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


@pytest.mark.notebook  # starts Jupyter kernels for seconds each (the fast lane skips it)
def test_the_cell_timeout_fails_the_cell_and_the_run_ends(tmp_path):
    nb = _notebook(tmp_path / "cell.ipynb", "import time\ntime.sleep(120)", "print('never')")
    run = execute_lab(nb, tmp_path / "out" / "cell.ipynb", timeout=2)
    assert run.status == "error" and not run.checks_total and "Timeout" in run.error


@pytest.mark.notebook  # starts Jupyter kernels for seconds each (the fast lane skips it)
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


@pytest.mark.notebook  # starts Jupyter kernels for seconds each (the fast lane skips it)
def test_labhelpers_run_prints_no_kernel_transport_warning(one_lab, tmp_path):
    done = subprocess.run([sys.executable, "-m", "labhelpers.course.cli", "run", "05", "--profile", "tiny", "--out",
                           str(tmp_path / "out")], capture_output=True, text=True, timeout=300)
    printed = done.stdout + done.stderr
    assert done.returncode == 0, printed
    assert "05_generation_parameters: passed" in printed
    assert "without encryption" not in printed and "WARNING" not in printed, printed


ALLOCATE_MIB = 200


@pytest.mark.notebook  # starts Jupyter kernels for seconds each (the fast lane skips it)
def test_the_runner_reports_the_kernels_peak_memory_and_cpu_time(tmp_path):
    """A kernel that fills a 200 MiB array and spins for a second: its peak RSS and CPU time come back from the
    runner itself, and the peak is the kernel's (an idle kernel's is at least 190 MiB lower)."""
    idle = run_notebook(_notebook(tmp_path / "idle.ipynb", "x = 1"), tmp_path / "out" / "idle.ipynb")
    busy = run_notebook(_notebook(tmp_path / "busy.ipynb",
                                  "import time\nimport numpy as np\n"
                                  f"block = np.ones({ALLOCATE_MIB} * 2**20 // 8)  # written, so resident\n"
                                  "end = time.process_time() + 1.5\n"
                                  "while time.process_time() < end:\n    pass"),
                        tmp_path / "out" / "busy.ipynb")
    assert busy.error is None and idle.error is None, (busy, idle)
    assert busy.peak_rss_mib >= ALLOCATE_MIB, busy
    assert busy.peak_rss_mib - idle.peak_rss_mib >= ALLOCATE_MIB - 10, (busy.peak_rss_mib, idle.peak_rss_mib)
    assert busy.cpu_seconds >= 1.5 > idle.cpu_seconds > 0, (busy.cpu_seconds, idle.cpu_seconds)
    lab = execute_lab(tmp_path / "busy.ipynb", tmp_path / "out" / "lab.ipynb")
    assert lab.peak_rss_mib >= ALLOCATE_MIB and lab.cpu_seconds >= 1.5, lab


@pytest.mark.notebook  # starts Jupyter kernels for seconds each (the fast lane skips it)
def test_a_stopped_run_reports_no_memory_figure(tmp_path):
    run = run_notebook(_notebook(tmp_path / "slow.ipynb", "import time\ntime.sleep(600)"),
                       tmp_path / "out" / "slow.ipynb", hard_timeout=8)
    assert run.timed_out and run.peak_rss_mib is None and run.cpu_seconds is None


def _labs_folder(folder, *stems):
    folder.mkdir()
    for stem in stems:
        _notebook(folder / f"{stem}.ipynb", "x = 1")
    (folder / "notes.ipynb").write_text("{}")  # not a lab: no number
    return folder


def test_labs_dir_honours_the_variable(tmp_path, monkeypatch):
    labs = _labs_folder(tmp_path / "elsewhere", "05_generation_parameters", "01_instruction_tuning")
    monkeypatch.setenv("LABS_DIR", str(labs))
    assert labs_dir() == labs
    assert lab_notebooks() == [labs / "01_instruction_tuning.ipynb", labs / "05_generation_parameters.ipynb"]
    assert lab_notebooks(["5"]) == [labs / "05_generation_parameters.ipynb"]
    with pytest.raises(FileNotFoundError, match="03_dpo"):
        lab_notebooks(["03"])
    monkeypatch.delenv("LABS_DIR")
    assert labs_dir() == Path(__file__).resolve().parents[1] / "labs"  # the checkout's


def test_a_missing_labs_folder_names_labs_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("LABS_DIR", str(tmp_path / "gone"))
    with pytest.raises(FileNotFoundError, match=r"gone \(LABS_DIR names it\): set LABS_DIR"):
        lab_notebooks()
    with pytest.raises(FileNotFoundError, match="set LABS_DIR"):
        lab_notebooks(folder=tmp_path / "also-gone")


def test_run_labs_runs_each_lab_in_order_and_reports_each(tmp_path, capsys):
    labs = [tmp_path / "01_a.ipynb", tmp_path / "02_b.ipynb"]
    results = run_labs(labs, lambda nb: nb.stem.upper(), lambda r: f"done {r}", starting=lambda nb: f"start {nb.stem}")
    assert results == ["01_A", "02_B"]
    assert capsys.readouterr().out.splitlines() == ["start 01_a", "done 01_A", "start 02_b", "done 02_B"]

    def fail_second(nb):
        if nb.stem == "02_b":
            raise RuntimeError("no stand-in")
        return nb.stem

    with pytest.raises(RuntimeError, match="no stand-in"):
        run_labs(labs, fail_second, str)
    assert capsys.readouterr().out.splitlines() == ["01_a"]
