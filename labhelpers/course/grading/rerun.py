"""``--rerun``: execute a copy of each submission in a sandbox, and compare its records with the submitted ones.

One :class:`Sandbox` per grading batch holds a read-only copy of the installed ``labhelpers`` (on
``PYTHONPATH``, ahead of an editable install) and a pristine copy of the zoo cache. Each submission then runs
through :func:`labhelpers.course.runner.run_notebook` with:

* its own temporary HOME, working folder, TMPDIR and copy of the zoo cache;
* an environment reduced to :data:`ALLOWED_ENV` plus the sandbox's own variables (no tokens, no instructor
  variables);
* ``resource`` limits on CPU time and memory, and the runner's whole-process-group kill at ``timeout``;
* where ``unshare`` works (Linux, as root or with user namespaces): a new network namespace (no network),
  a PID namespace, and a mount namespace in which the labhelpers copy, the instructor's HOME, the project,
  the zoo cache and the Python installation are mounted read-only.

After each submission the labhelpers copy is verified against its digest and restored if it changed, so one
submission cannot change what the next one runs. The protections that could not be set up are listed in
:attr:`Sandbox.missing` (the summary reports them); grading goes on without them.
"""

from __future__ import annotations

import hashlib
import os
import resource
import shutil
import stat
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from labhelpers.course.grading.inspection import Problem
from labhelpers.course.runner import run_notebook

ALLOWED_ENV = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
DEFAULT_MEMORY_BYTES = 16 * 2**30  # address space; torch reserves far more than it touches


def _tree_digest(folder: Path) -> str:
    h = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        h.update(path.relative_to(folder).as_posix().encode())
        if path.is_file():
            h.update(path.read_bytes())
    return h.hexdigest()


def _remove_write_bits(folder: Path) -> None:
    for path in [folder, *folder.rglob("*")]:
        mode = path.stat().st_mode
        path.chmod(mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))


def _restore_write_bits(folder: Path) -> None:
    for path in [folder, *folder.rglob("*")]:
        path.chmod(path.stat().st_mode | stat.S_IWUSR)


def _unshare_works(flags: list[str]) -> bool:
    if not shutil.which("unshare"):
        return False
    try:
        return subprocess.run(["unshare", *flags, "true"], capture_output=True, timeout=20).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


@dataclass(frozen=True)
class SandboxRun:
    """One submission's execution in the sandbox."""

    output: Path  # the executed copy (it may not exist: the run did not start)
    seconds: float
    timed_out: bool
    error: str | None
    stderr_tail: str
    library_restored: bool  # the submission changed the read-only labhelpers copy, which was rebuilt


@dataclass(frozen=True)
class SandboxReport:
    """What the sandbox of a batch guarded against, and what it could not set up on this machine."""

    protections: list[str]
    missing: list[str]


@dataclass(frozen=True)
class RerunOutcome:
    """What ``--rerun`` found for one submission; the report, ``grades.json`` and the summary read it as is."""

    seconds: float
    timed_out: bool
    error: str | None
    stderr_tail: str
    library_restored: bool
    executed: str  # the kept executed copy; "" when none was kept
    submitted_problems: list[Problem]
    differences: list[str]  # sentences: how the rerun's records differ from the submitted ones
    submitted_status: str  # the status the submitted file would have had without the rerun

    @classmethod
    def of(cls, run: SandboxRun, *, kept: Path | None, submitted_problems: list[Problem], differences: list[str],
           submitted_status: str) -> RerunOutcome:
        return cls(seconds=run.seconds, timed_out=run.timed_out, error=run.error, stderr_tail=run.stderr_tail,
                   library_restored=run.library_restored, executed=str(kept or ""),
                   submitted_problems=list(submitted_problems), differences=differences,
                   submitted_status=submitted_status)


@dataclass
class Sandbox:
    """The per-batch part of the sandbox (see the module). Use as a context manager."""

    cpu_seconds: int | None = None  # default: twice the timeout
    memory_bytes: int = DEFAULT_MEMORY_BYTES
    root: Path = field(init=False)
    library: Path = field(init=False)
    zoo: Path | None = field(init=False, default=None)
    prefix: list[str] = field(init=False, default_factory=list)
    protections: list[str] = field(init=False, default_factory=list)
    missing: list[str] = field(init=False, default_factory=list)
    _digest: str = field(init=False, default="")
    _count: int = field(init=False, default=0)

    def __enter__(self) -> Sandbox:
        import labhelpers
        from labhelpers.tiny import cache_dir

        self.root = Path(tempfile.mkdtemp(prefix="lh-sandbox-"))
        self._source = Path(labhelpers.__file__).resolve().parent
        self.library = self.root / "lib"
        self._install_library()
        zoo = cache_dir() / "zoo"
        if zoo.is_dir():
            self.zoo = self.root / "zoo"
            shutil.copytree(zoo, self.zoo, symlinks=True)
        else:
            self.missing.append(f"a zoo cache to copy ({zoo} does not exist: each rerun builds the zoo itself)")
        self.protections += ["temporary HOME, working folder and zoo cache per submission",
                             "environment reduced to an allow-list", "read-only labhelpers copy, verified after "
                             "each submission", "CPU-time and memory limits", "process-group kill at the timeout"]
        self._namespaces()
        return self

    def _install_library(self) -> None:
        target = self.library / "labhelpers"
        shutil.copytree(self._source, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        _remove_write_bits(self.library)
        self._digest = _tree_digest(target)

    def _namespaces(self) -> None:
        if sys.platform != "linux":
            self.missing.append("network, PID and mount namespaces (Linux only)")
            return
        if not _unshare_works(["--net", "--pid", "--fork", "--kill-child"]):
            self.missing.append("no network: `unshare --net` is not available or not permitted (run as root or "
                                "enable user namespaces); submissions could reach the network")
            return
        self.prefix = ["unshare", "--net", "--pid", "--fork", "--kill-child"]
        self.protections.append("no network (new network namespace) and a PID namespace")
        from labhelpers.tiny import cache_dir

        read_only = sorted({str(p) for p in (self.library, Path.home(), self._source.parent, cache_dir(),
                                             Path(sys.prefix).resolve(), Path(sys.base_prefix).resolve())
                            if p.exists()})
        if _unshare_works(["--mount", "--fork", "sh", "-c", "mount --bind / / 2>/dev/null; exit 0"]):
            self.prefix[1:1] = ["--mount"]
            self.prefix += ["sh", "-c", 'for d in $LH_READ_ONLY; do mount --bind "$d" "$d" && '
                            'mount -o remount,bind,ro "$d" || exit 97; done; exec "$@"', "sandbox"]
            self._read_only = " ".join(read_only)
            self.protections.append("read-only mounts of " + ", ".join(read_only))
        else:
            self._read_only = ""
            self.missing.append("read-only mounts (no mount namespace): only the labhelpers copy's digest check "
                                "protects it")

    def __exit__(self, *exc) -> None:
        _restore_write_bits(self.root)
        shutil.rmtree(self.root, ignore_errors=True)

    def environment(self, home: Path, cache: Path, tmp: Path, profile: str) -> dict[str, str]:
        env = {k: os.environ[k] for k in ALLOWED_ENV if k in os.environ}
        env.update(HOME=str(home), TMPDIR=str(tmp), PYTHONPATH=str(self.library), LABHELPERS_CACHE=str(cache),
                   LABS_PROFILE=profile, HF_HUB_OFFLINE="1", HF_HOME=str(home / ".cache" / "huggingface"),
                   MPLBACKEND="Agg", TOKENIZERS_PARALLELISM="false", PYTHONDONTWRITEBYTECODE="1",
                   JUPYTER_PLATFORM_DIRS="1", PYTHONNOUSERSITE="1")
        if getattr(self, "_read_only", ""):
            env["LH_READ_ONLY"] = self._read_only
        return env

    def _limits(self, cpu_seconds: int):
        memory = self.memory_bytes

        def apply() -> None:
            resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds))
            resource.setrlimit(resource.RLIMIT_AS, (memory, memory))

        return apply

    def report(self) -> SandboxReport:
        return SandboxReport(protections=list(self.protections), missing=list(self.missing))

    def run(self, notebook: Path, *, profile: str, timeout: float) -> SandboxRun:
        """Execute a copy of ``notebook`` in a fresh folder."""
        self._count += 1
        box = self.root / f"{self._count:04d}"
        home, work, tmp, cache = box / "home", box / "work", box / "tmp", box / "cache"
        for folder in (home, work, tmp):
            folder.mkdir(parents=True)
        if self.zoo:
            shutil.copytree(self.zoo, cache / "zoo", symlinks=True)
        submitted = work / ("submitted_" + notebook.name)
        shutil.copyfile(notebook, submitted)  # papermill reads the copy: the submission is never opened for writing
        run = run_notebook(submitted, work / notebook.name, parameters={"PROFILE": profile},
                           cell_timeout=timeout, hard_timeout=timeout, cwd=work,
                           env=self.environment(home, cache, tmp, profile), prefix=self.prefix,
                           preexec_fn=self._limits(self.cpu_seconds or int(2 * timeout) + 30))
        tampered = self._verify_library()
        return SandboxRun(output=run.output, seconds=run.seconds, timed_out=run.timed_out, error=run.error,
                          stderr_tail=run.stderr_tail, library_restored=tampered)

    def _verify_library(self) -> bool:
        """Whether the labhelpers copy changed (it is then rebuilt from the source for the next submission)."""
        target = self.library / "labhelpers"
        if _tree_digest(target) == self._digest:
            return False
        _restore_write_bits(self.library)
        shutil.rmtree(self.library)
        self._install_library()
        return True


def _same(a, b) -> bool:
    import math

    if isinstance(a, bool) or isinstance(b, bool) or a is None or b is None:
        return a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return math.isclose(a, b, rel_tol=1e-4, abs_tol=1e-6)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return a == b


def compare_records(submitted: list[dict], rerun: list[dict]) -> list[str]:
    """Sentences naming each check or result whose rerun differs from the submitted record."""
    from labhelpers.course.grading.score import fmt, last_by_name

    out = []
    for kind in ("check", "result"):
        old, new = last_by_name(submitted, kind), last_by_name(rerun, kind)
        for name in list(old) + [n for n in new if n not in old]:
            if name not in new:
                out.append(f"{kind} {name} is in the submission but was not recorded on rerun")
            elif name not in old:
                out.append(f"{kind} {name} was recorded on rerun but is not in the submission")
            elif kind == "check" and bool(old[name].get("passed")) != bool(new[name].get("passed")):
                was, now = ("passed", "failed") if old[name].get("passed") else ("failed", "passed")
                out.append(f"check {name} {was} in the submission but {now} on rerun")
            elif not _same(old[name].get("value"), new[name].get("value")):
                out.append(f"{kind} {name}: submitted {fmt(old[name].get('value'))}, "
                           f"rerun {fmt(new[name].get('value'))}")
    return out
