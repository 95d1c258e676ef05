"""The one notebook runner: ``labhelpers run``, the tests, the benchmarks and the grader's ``--rerun`` use it.

:func:`run_notebook` executes a notebook with papermill in a child process of its own session and returns
what happened. It has two limits:

* ``cell_timeout``: papermill's per-cell limit (the cell raises, the run stops, the notebook is written);
* ``hard_timeout``: the whole run, kernel start included. Past it, every process of the run is stopped: the
  child's process group, and the kernel's, which jupyter_client starts in a session of its own, with any
  process the notebook started (SIGTERM, then SIGKILL after a grace period).

The kernel talks to papermill over IPC sockets, not TCP, so there is no unencrypted TCP port and no warning
about one. The child is the kernel's parent: after papermill shuts the kernel down, it reports the kernel's peak
RSS and CPU time with the notebook's error, and :class:`Execution` carries them (no extra process is needed to
measure a run). :func:`execute_lab` runs a lab and summarises its records as a :class:`LabRun`;
:func:`run_labs` is the loop over labs of ``labhelpers run`` and ``labhelpers rehearse``, and
:func:`lab_notebooks` says where the labs are.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TypeVar

from labhelpers.config import resolve_lab
from labhelpers.records import read_records

KILL_GRACE_S = 5.0
T = TypeVar("T")


NOTEBOOK_PATTERN = "[0-9][0-9]_*.ipynb"  # a lab: two digits, an underscore, its name


def labs_dir() -> Path:
    """The folder with the lab notebooks, for the course's tools: ``$LABS_DIR``, else ``labs/`` of the checkout.

    Only a checkout has that folder; an installed wheel holds no notebooks, so there this raises, naming
    ``LABS_DIR``. A lab that needs the list of labs takes it from the package (``labhelpers.config.lab_names()``),
    never from here.
    """
    env = os.environ.get("LABS_DIR")
    folder = Path(env) if env else Path(__file__).resolve().parents[2] / "labs"
    if not folder.is_dir():
        _no_labs_folder(folder, "LABS_DIR" if env else None)
    return folder


def _no_labs_folder(folder: Path, source: str | None):
    said = f" ({source} names it)" if source else " (an installed package has none)"
    raise FileNotFoundError(f"There is no folder of lab notebooks at {folder}{said}: "
                            "set LABS_DIR to the folder that holds the .ipynb files.")


def lab_notebooks(names: Sequence[str] | None = None, folder: Path | None = None) -> list[Path]:
    """The lab notebooks, in order: every lab in ``folder`` (default :func:`labs_dir`), or those ``names`` asks for.

    ``names`` are numbers or stems (``"05"``, ``"05_generation_parameters"``); one that resolves to no file
    raises ``FileNotFoundError``, an unknown one ``ValueError``. This is the course's one answer to "where are the
    labs?": the CLI, the rehearsal, the generators of setup cells and hardware tables, and the tests ask it.
    """
    if folder is None:
        folder = labs_dir()
    elif not Path(folder).is_dir():
        _no_labs_folder(Path(folder), "the caller")
    folder = Path(folder)
    if not names:
        return sorted(folder.glob(NOTEBOOK_PATTERN))
    out = []
    for name in names:
        stem = resolve_lab(name)
        path = folder / f"{stem}.ipynb"
        if not path.exists():
            raise FileNotFoundError(f"Lab {name!r} resolves to {stem}, but {path} does not exist.")
        out.append(path)
    return out


def parse_value(text: str):
    """Turn a ``-p NAME VALUE`` string into int, float, bool, None or str, as papermill's ``-p`` does."""
    lowered = text.strip().lower()
    if lowered in {"true", "false"}:
        return lowered == "true"
    if lowered in {"none", "null"}:
        return None
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


# --------------------------------------------------------------------------------------------------
# The runner
# --------------------------------------------------------------------------------------------------
@dataclass
class Execution:
    output: Path  # the executed notebook (written even when a cell failed or the run was stopped)
    seconds: float
    timed_out: bool  # stopped at hard_timeout
    error: str | None  # the failing cell's error in one line, or why the run did not start
    returncode: int
    stderr_tail: str = ""
    # The kernel's, as its parent read them just before shutting it down (see kernel_usage); None when the run
    # was stopped or did not start, or the platform has no /proc.
    peak_rss_mib: float | None = None
    cpu_seconds: float | None = None


def _kill_tree(pid: int) -> None:
    """Stop the process ``pid``, its process group, and every descendant's process group."""
    import psutil

    try:
        descendants = psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        descendants = []
    groups = {pid}
    for proc in descendants:
        try:
            groups.add(os.getpgid(proc.pid))
        except ProcessLookupError:
            pass
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for group in groups:
            try:
                os.killpg(group, sig)
            except (ProcessLookupError, PermissionError):
                pass
        _, alive = psutil.wait_procs(descendants, timeout=KILL_GRACE_S if sig == signal.SIGTERM else 1)
        if not alive:
            break


def _tail(path: Path, lines: int = 5) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.strip().splitlines()[-lines:])


def run_notebook(notebook: Path, out_path: Path, *, parameters: dict | None = None,
                 cell_timeout: float | None = None, hard_timeout: float | None = None, cwd: Path | None = None,
                 kernel_name: str = "python3", env: dict[str, str] | None = None,
                 prefix: Sequence[str] = (), preexec_fn: Callable[[], None] | None = None,
                 sockets: Path | None = None) -> Execution:
    """Execute ``notebook`` into ``out_path`` in a child process (see the module); never raises for the notebook.

    The child starts in ``cwd`` (default: the output's folder), so that ``python -m`` finds the installed
    ``labhelpers`` rather than a source folder under the caller's working directory. ``env`` replaces the
    child's environment (default: this one); ``prefix`` goes before the command (e.g.
    ``unshare --net``); ``preexec_fn`` runs in the child before it starts (e.g. resource limits). ``sockets``
    is the folder for the kernel's IPC sockets (default: a new temporary folder); a sandbox that hides this
    process's temporary folder passes one the run can see (its path must stay short: at most 107 bytes per
    socket path).
    """
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    cwd = Path(cwd or out_path.parent).resolve()
    cmd = [*prefix, sys.executable, "-m", "labhelpers.course.runner", str(Path(notebook).resolve()), str(out_path.resolve()),
           "--parameters", json.dumps(parameters or {}), "--cwd", str(cwd),
           "--kernel", kernel_name]
    if cell_timeout:
        cmd += ["--cell-timeout", str(cell_timeout)]
    started = time.perf_counter()
    # removed here, not by the child: a child stopped at the hard timeout cleans up nothing
    with tempfile.TemporaryDirectory(prefix="lh-run-") as tmp:
        cmd += ["--sockets", str(sockets or tmp)]  # short: a Unix socket path has at most 107 bytes
        stdout, stderr = Path(tmp) / "stdout", Path(tmp) / "stderr"
        with stdout.open("wb") as so, stderr.open("wb") as se:
            try:
                proc = subprocess.Popen(cmd, stdout=so, stderr=se, stdin=subprocess.DEVNULL, env=env, cwd=cwd,
                                        start_new_session=True, preexec_fn=preexec_fn)
            except OSError as err:
                return Execution(out_path, 0.0, False, f"the run could not start: {err}", -1)
            timed_out = False
            try:
                proc.wait(timeout=hard_timeout)
            except subprocess.TimeoutExpired:
                timed_out = True
                _kill_tree(proc.pid)
                proc.wait()
            _kill_tree(proc.pid)  # a process the notebook left running in the background
        seconds = time.perf_counter() - started
        lines = stdout.read_text(encoding="utf-8", errors="replace").strip().splitlines()
        tail = _tail(stderr)
    try:
        report = json.loads(lines[-1]) if lines else {}
        error = report["error"]
    except (json.JSONDecodeError, KeyError, TypeError):
        report, error = {}, None
    if timed_out:
        error = f"stopped after {hard_timeout:g} s (the whole run's limit)"
    elif proc.returncode != 0 and error is None:
        error = f"the runner exited with status {proc.returncode}: {tail.splitlines()[-1] if tail else 'no output'}"
    return Execution(out_path, round(seconds, 2), timed_out, error, proc.returncode, tail,
                     peak_rss_mib=report.get("peak_rss_mib"), cpu_seconds=report.get("cpu_seconds"))


def _execute_here(notebook: str, out_path: str, parameters: dict, cwd: str, kernel_name: str,
                  cell_timeout: float | None, sockets: str) -> tuple[str | None, dict]:
    """The child's work: papermill in this process, the kernel on IPC sockets. Returns the error, if any, and
    the kernel's :func:`kernel_usage` (empty when the kernel never started)."""
    import papermill as pm
    from jupyter_client.manager import AsyncKernelManager
    from traitlets import CaselessStrEnum

    usage: dict = {}

    class IPCKernelManager(AsyncKernelManager):
        transport = CaselessStrEnum(["tcp", "ipc"], default_value="ipc", config=True)

        def _ip_default(self):
            return os.path.join(sockets, "kernel")

        async def shutdown_kernel(self, now: bool = False, restart: bool = False) -> None:
            # the last moment the kernel's /proc entry still holds its memory figures: papermill shuts it down
            # after the last cell, and when a cell failed or timed out
            if not restart:
                usage.update(kernel_usage(getattr(self.provisioner, "pid", None)))
            await super().shutdown_kernel(now=now, restart=restart)

    try:
        pm.execute_notebook(notebook, out_path, parameters=parameters, progress_bar=False, log_output=False,
                            cwd=cwd, kernel_name=kernel_name, execution_timeout=cell_timeout,
                            kernel_manager_class=IPCKernelManager)
    except Exception as exc:  # papermill raises PapermillExecutionError with the cell and traceback
        text = str(exc).strip()
        return f"{type(exc).__name__}: {text.splitlines()[-1] if text else ''}", usage
    return None, usage


def kernel_usage(pid: int | None) -> dict:
    """``peak_rss_mib`` and ``cpu_seconds`` of the live process ``pid`` (the kernel); empty if it is gone.

    The peak is the process's ``VmHWM`` (its high-water resident set, kept by the kernel of the OS: exact, not
    sampled), of the kernel process alone. Not ``getrusage(RUSAGE_CHILDREN)`` in its parent: a forked child's
    high-water mark starts from the parent's resident set before ``exec``, so that reads the papermill process's
    ~115 MiB for a kernel that peaked at 52 MiB. The CPU time is the kernel's user + system time plus that of the
    processes it started and waited for (lab 06's launched training runs), since that work is the lab's too.
    """
    import psutil

    if pid is None:
        return {}
    try:
        status = Path(f"/proc/{pid}/status").read_text()
        times = psutil.Process(pid).cpu_times()
    except (OSError, psutil.Error):
        return {}
    peak = re.search(r"^VmHWM:\s+(\d+) kB", status, flags=re.M)
    return {"peak_rss_mib": round(int(peak.group(1)) / 1024) if peak else None,
            "cpu_seconds": round(times.user + times.system + times.children_user + times.children_system, 1)}


def _main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="run one notebook (the child process of run_notebook)")
    parser.add_argument("notebook")
    parser.add_argument("out")
    parser.add_argument("--parameters", default="{}")
    parser.add_argument("--cwd", required=True)
    parser.add_argument("--kernel", default="python3")
    parser.add_argument("--cell-timeout", type=float, default=None)
    parser.add_argument("--sockets", required=True, help="a short folder for the kernel's IPC sockets")
    args = parser.parse_args(argv)
    error, usage = _execute_here(args.notebook, args.out, json.loads(args.parameters), args.cwd, args.kernel,
                                 args.cell_timeout, args.sockets)
    print(json.dumps({"error": error, **usage}))
    return 0


# --------------------------------------------------------------------------------------------------
# Labs
# --------------------------------------------------------------------------------------------------
@dataclass
class LabRun:
    lab: str
    status: str  # "passed" | "checks failed" | "no checks" | "error"
    seconds: float
    output: str
    checks_passed: int = 0
    checks_total: int = 0
    error: str | None = None
    records: list = field(default_factory=list)
    peak_rss_mib: float | None = None  # the kernel's (Execution.peak_rss_mib)
    cpu_seconds: float | None = None  # the kernel's user + system time: steadier than wall time on a busy machine


def lab_status(error: str | None, checks: list[dict]) -> str:
    """``passed`` needs at least one check and every check passed: a notebook that checks nothing did not pass."""
    if error:
        return "error"
    if not checks:
        return "no checks"
    return "passed" if all(r.get("passed") for r in checks) else "checks failed"


def execute_lab(notebook: Path, out_path: Path, parameters: dict | None = None, timeout: float | None = None,
                cwd: Path | None = None, kernel_name: str | None = None, hard_timeout: float | None = None,
                env: dict[str, str] | None = None) -> LabRun:
    """Run one notebook in a fresh kernel; never raises for a failing notebook (the status says it).

    ``timeout`` is the per-cell limit, ``hard_timeout`` the whole run's, ``env`` the run's environment (default:
    this process's), as in :func:`run_notebook`.
    """
    run = run_notebook(Path(notebook), Path(out_path), parameters=parameters, cell_timeout=timeout,
                       hard_timeout=hard_timeout, cwd=cwd, kernel_name=kernel_name or "python3", env=env)
    try:
        records = read_records(run.output) if run.output.exists() else []
    except (OSError, ValueError):
        records = []
    checks = [r for r in records if r.get("kind") == "check"]
    return LabRun(lab=Path(notebook).stem, status=lab_status(run.error, checks), seconds=round(run.seconds, 1),
                  output=str(run.output), checks_passed=sum(bool(r.get("passed")) for r in checks),
                  checks_total=len(checks), error=run.error, records=records, peak_rss_mib=run.peak_rss_mib,
                  cpu_seconds=run.cpu_seconds)


def run_labs(notebooks: Sequence[Path], run_one: Callable[[Path], T], report: Callable[[T], str], *,
             starting: Callable[[Path], str] | None = None, progress_bar: bool = False) -> list[T]:
    """Run each notebook with ``run_one`` in order, printing ``report(result)`` after each; the results.

    The one loop over labs of ``labhelpers run`` (a progress bar) and ``labhelpers rehearse`` (a line as each
    lab starts). An exception from ``run_one`` stops the loop and propagates. Each line is flushed at once, since
    CI reads these logs while the labs run.
    """
    from tqdm.auto import tqdm

    bar = tqdm(notebooks, desc="labs", unit="lab", disable=not progress_bar)

    def say(text: str) -> None:
        if progress_bar:
            bar.write(text)  # above the bar, which stays at the bottom
        else:
            print(text)
        sys.stdout.flush()

    results = []
    for notebook in bar:
        bar.set_postfix_str(notebook.stem)
        if starting is not None:
            say(starting(notebook))
        result = run_one(notebook)
        results.append(result)
        say(report(result))
    return results


def write_summary(runs: list[LabRun], out_dir: Path) -> Path:
    path = out_dir / "summary.json"
    path.write_text(json.dumps({"labs": [asdict(r) for r in runs]}, indent=2))
    return path


if __name__ == "__main__":
    sys.exit(_main())
