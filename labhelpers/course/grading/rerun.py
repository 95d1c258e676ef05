"""``--rerun``: execute each submission in a sandbox that hides the instructor, and compare its records.

One :class:`Sandbox` per grading batch holds a read-only copy of the installed ``labhelpers`` (on
``PYTHONPATH``, ahead of an editable install) and a pristine copy of the zoo cache. Each submission then runs
through :func:`labhelpers.course.runner.run_notebook` in a box of its own (HOME, working folder, TMPDIR, IPC
sockets, zoo copy), with the notebook the grader parsed written as UTF-8 JSON, and:

* an environment reduced to :data:`ALLOWED_ENV` plus the sandbox's own variables (no tokens);
* namespaces (``unshare --mount --mount-proc --pid --net --ipc --uts``, as root): its own ``/proc`` (the
  grader's processes, environment and command line are invisible), no network (a new network namespace: no
  TCP to the host, no abstract Unix sockets), and a mount namespace in which ``/tmp``, ``/var/tmp``,
  ``/dev/shm``, ``/run``, ``/home``, ``/root``, the grader's HOME, the instructor's checkout, the zoo cache,
  the batch's folders and ``--out`` are empty tmpfs; only the Python installation and the labhelpers copy
  (read-only) and this submission's box (read-write) are bound back, and ``/`` is read-only
  (:mod:`.sandbox_enter` does this);
* an unprivileged user (uid :data:`SANDBOX_UID`, no capabilities, no new privileges), so that the submission
  cannot undo those mounts and a process limit binds;
* memory and process caps for the whole run: a cgroup per submission (v2, else v1 ``memory`` + ``pids``),
  else per-process ``rlimit`` s (address space, and ``RLIMIT_NPROC`` for the unprivileged user); a CPU-time
  limit and the runner's whole-process-group kill at ``timeout``.

The namespaces are tried once per batch with a short probe that checks, from inside, what it can see. A
protection that cannot be set up makes the sandbox refuse (:class:`SandboxUnavailable`, naming what is
missing and the fix) unless ``unsafe=True`` (``--unsafe-rerun``); :meth:`Sandbox.report` lists what ran and
what did not, and the summary, ``grades.json`` and ``report.md`` print it. After each submission the
labhelpers copy is verified against its digest and rebuilt if it changed.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import resource
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from labhelpers.course.grading.inspection import Problem
from labhelpers.course.grading.transplant import Transplant
from labhelpers.course.runner import run_notebook

ALLOWED_ENV = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
DEFAULT_MEMORY_BYTES = 8 * 2**30  # the whole run (papermill, kernel, its children), where a cgroup caps it
DEFAULT_MAX_PROCESSES = 256  # processes and threads of the whole run (a cgroup's pids.max counts both)
FALLBACK_ADDRESS_SPACE = 16 * 2**30  # per process, without a cgroup; torch reserves far more than it touches
SANDBOX_UID = SANDBOX_GID = 65534  # nobody
HIDDEN_ALWAYS = ("/tmp", "/var/tmp", "/dev/shm", "/run", "/home", "/root")
TMP_FOLDERS = ("/tmp", "/var/tmp", "/dev/shm")  # hidden by a world-writable (sticky) empty tmpfs
NEVER_HIDDEN = ("/", "/usr", "/etc", "/bin", "/sbin", "/lib", "/lib64", "/lib32", "/proc", "/sys", "/dev", "/var",
                "/opt")
NAMESPACES = ("unshare", "--mount", "--mount-proc", "--pid", "--fork", "--kill-child", "--net", "--ipc", "--uts")
ENTER = Path(__file__).with_name("sandbox_enter.py")
GiB = 2**30


class SandboxUnavailable(ValueError):
    """A protection of the rerun sandbox cannot be set up on this machine, and ``--unsafe-rerun`` was not given."""


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


def _chown_tree(folder: Path, uid: int, gid: int) -> None:
    for path in [folder, *folder.rglob("*")]:
        os.lchown(path, uid, gid)


def _under(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def _gib(n: int) -> str:
    return f"{n / GiB:g} GiB"


def _safe_name(name: str) -> str:
    """A file name for the executed copy: the submission's name without folders or odd characters."""
    stem = re.sub(r"[^\w.\- ]", "_", Path(name).name)[:100].strip(". ") or "notebook"
    return stem if stem.endswith(".ipynb") else stem + ".ipynb"


# --------------------------------------------------------------------------------------------------
# Caps: a cgroup per submission
# --------------------------------------------------------------------------------------------------
def _mountinfo() -> list[tuple[str, str, str]]:
    """(mount point, file system type, super options) of this process's mounts."""
    out = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        left, _, right = line.partition(" - ")
        fields, rfields = left.split(), right.split()
        if len(fields) >= 5 and len(rfields) >= 3:
            out.append((fields[4], rfields[0], rfields[2]))
    return out


def _own_cgroups() -> dict[str, str]:
    """This process's cgroup path per v1 controller, and under ``""`` its v2 path."""
    out = {}
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        for c in controllers.split(",") if controllers else [""]:
            out[c] = path
    return out


@dataclass
class _Cgroups:
    """One cgroup per batch (per v1 hierarchy, or one in v2); one under it per submission, with the caps."""

    version: int
    batch: list[Path]
    memory_bytes: int
    max_processes: int

    @classmethod
    def create(cls, name: str, memory_bytes: int, max_processes: int) -> tuple[_Cgroups | None, str]:
        """The batch's cgroups, or None and why not."""
        try:
            mounts, own = _mountinfo(), _own_cgroups()
        except (OSError, ValueError) as err:
            return None, f"cannot read this process's cgroups ({err})"
        why = []
        for make in (cls._v2, cls._v1):
            try:
                return make(name, mounts, own, memory_bytes, max_processes), ""
            except OSError as err:
                why.append(str(err))
        return None, "; ".join(why)

    @classmethod
    def _v2(cls, name, mounts, own, memory_bytes, max_processes) -> _Cgroups:
        root = next((Path(m) for m, fs, _ in mounts if fs == "cgroup2"), None)
        if root is None or "" not in own:
            raise OSError("cgroup v2: not mounted")
        parent = root / own[""].lstrip("/")
        have = (parent / "cgroup.controllers").read_text().split()
        if not {"memory", "pids"} <= set(have):
            raise OSError(f"cgroup v2: the memory and pids controllers are not available (only {have or 'none'})")
        batch = parent / name
        batch.mkdir()
        try:
            (batch / "cgroup.subtree_control").write_text("+memory +pids")
        except OSError:
            batch.rmdir()
            raise
        return cls(2, [batch], memory_bytes, max_processes)

    @classmethod
    def _v1(cls, name, mounts, own, memory_bytes, max_processes) -> _Cgroups:
        batch = []
        for controller in ("memory", "pids"):
            root = next((Path(m) for m, fs, opts in mounts if fs == "cgroup" and controller in opts.split(",")),
                        None)
            if root is None or controller not in own:
                raise OSError(f"cgroup v1: no {controller} hierarchy")
            folder = root / own[controller].lstrip("/") / name
            try:
                folder.mkdir()
            except OSError as err:
                for made in batch:
                    made.rmdir()
                raise OSError(f"cgroup v1: cannot create {folder} ({err.strerror})") from err
            batch.append(folder)
        return cls(1, batch, memory_bytes, max_processes)

    def files(self) -> tuple[str, str]:
        return ("memory.max", "pids.max") if self.version == 2 else ("memory.limit_in_bytes", "pids.max")

    def child(self, name: str) -> list[Path]:
        """A cgroup for one submission, its caps written and read back (OSError if they did not hold)."""
        folders = [b / name for b in self.batch]
        for folder in folders:
            folder.mkdir()
        memory_file, pids_file = self.files()
        for folder in folders:
            if (folder / memory_file).exists():
                self._write(folder / memory_file, self.memory_bytes)
                for swap in ("memory.swap.max", "memory.memsw.limit_in_bytes"):  # no swap beyond the cap
                    try:
                        (folder / swap).write_text("0" if swap == "memory.swap.max" else str(self.memory_bytes))
                    except OSError:
                        pass
            if (folder / pids_file).exists():
                self._write(folder / pids_file, self.max_processes)
        return folders

    @staticmethod
    def _write(path: Path, value: int) -> None:
        path.write_text(str(value))
        if int(path.read_text().split()[0]) > value:  # v1 rounds the memory cap down to whole pages
            raise OSError(f"{path} did not take {value}")

    @staticmethod
    def join(folders: list[Path]) -> None:
        """Move the calling process into ``folders`` (run in the child, before exec)."""
        for folder in folders:
            with open(folder / "cgroup.procs", "w") as f:
                f.write("0")

    def release(self, folders: list[Path]) -> list[str]:
        """Kill what is left in the submission's cgroups, remove them, and say which caps the run reached."""
        hit = self._caps_hit(folders)
        for folder in folders:
            for _ in range(50):
                pids = [int(p) for p in (folder / "cgroup.procs").read_text().split()]
                if not pids:
                    break
                for pid in pids:
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                time.sleep(0.02)
            try:
                folder.rmdir()
            except OSError:
                pass
        return hit

    def _caps_hit(self, folders: list[Path]) -> list[str]:
        hit = []
        for folder in folders:
            events = {}
            for name in ("memory.events", "memory.oom_control", "pids.events"):
                try:
                    for line in (folder / name).read_text().splitlines():
                        key, _, value = line.partition(" ")
                        events[f"{name}:{key}"] = int(value or 0)
                except (OSError, ValueError):
                    pass
            if events.get("memory.events:oom_kill") or events.get("memory.oom_control:oom_kill"):
                hit.append(f"the memory cap ({_gib(self.memory_bytes)}) was reached: a process was killed")
            if events.get("pids.events:max"):
                hit.append(f"the process cap ({self.max_processes} processes and threads) was reached: "
                           f"{events['pids.events:max']} fork(s) refused")
        return hit

    def remove(self) -> None:
        for folder in self.batch:
            try:
                folder.rmdir()
            except OSError:
                pass


# --------------------------------------------------------------------------------------------------
# The sandbox
# --------------------------------------------------------------------------------------------------
# Run inside the sandbox once per batch: what can it see?
# A hidden folder may only hold the paths that lead to the folders bound back.
_PROBE = """
import json, os, socket, sys
hidden, keep = json.loads(sys.argv[1]), json.loads(sys.argv[2])
def leaks(folder):
    out = []
    for entry in sorted(os.listdir(folder)) if os.path.isdir(folder) else []:
        path = os.path.join(folder, entry)
        if path in keep:
            continue
        if any(k.startswith(path + "/") for k in keep):
            out += leaks(path)
        else:
            out.append(path)
    return out
print(json.dumps({"uid": os.getuid(), "euid": os.geteuid(),
                  "processes": sum(p.isdigit() for p in os.listdir("/proc")),
                  "interfaces": [n for _, n in socket.if_nameindex()],
                  "visible": [p for h in hidden for p in leaks(h)][:5],
                  "root_writable": os.access("/", os.W_OK)}))
"""


@dataclass(frozen=True)
class SandboxRun:
    """One submission's execution in the sandbox."""

    output: Path  # the executed copy (it may not exist: the run did not start)
    seconds: float
    timed_out: bool
    error: str | None
    stderr_tail: str
    library_restored: bool  # the submission changed the read-only labhelpers copy, which was rebuilt
    caps_hit: tuple[str, ...] = ()  # the memory or process cap stopped something


@dataclass(frozen=True)
class SandboxReport:
    """What the sandbox of a batch guarded against, and what it could not set up on this machine."""

    protections: list[str]
    missing: list[str]
    unsafe: bool = False  # --unsafe-rerun: grading went on with what is missing


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
    bodies_taken: int = 0  # solution bodies taken from the submission into the course's notebook
    bodies_not_found: list[str] = field(default_factory=list)  # course cells run with their TODO instead
    cells_dropped: list[str] = field(default_factory=list)  # cells the learner added: not run

    @classmethod
    def of(cls, run: SandboxRun, *, kept: Path | None, submitted_problems: list[Problem], differences: list[str],
           submitted_status: str, transplanted: Transplant | None = None) -> RerunOutcome:
        return cls(seconds=run.seconds, timed_out=run.timed_out, error=run.error, stderr_tail=run.stderr_tail,
                   library_restored=run.library_restored, executed=str(kept or ""),
                   submitted_problems=list(submitted_problems), differences=differences,
                   submitted_status=submitted_status,
                   bodies_taken=transplanted.taken if transplanted else 0,
                   bodies_not_found=list(transplanted.not_found) if transplanted else [],
                   cells_dropped=list(transplanted.dropped) if transplanted else [])


@dataclass
class Sandbox:
    """The per-batch part of the sandbox (see the module). Use as a context manager.

    ``hide``: more folders the submissions must not see (the batch's paths and ``--out``; a file stands for
    its folder). ``unsafe``: go on where a protection cannot be set up (the report says what is missing).
    """

    hide: Sequence[str | Path] = ()
    unsafe: bool = False
    memory_bytes: int = DEFAULT_MEMORY_BYTES
    max_processes: int = DEFAULT_MAX_PROCESSES
    cpu_seconds: int | None = None  # default: twice the timeout
    uid: int = SANDBOX_UID
    gid: int = SANDBOX_GID
    root: Path = field(init=False)
    library: Path = field(init=False)
    zoo: Path | None = field(init=False, default=None)
    prefix: list[str] = field(init=False, default_factory=list)
    protections: list[str] = field(init=False, default_factory=list)
    missing: list[str] = field(init=False, default_factory=list)
    setup_seconds: float = field(init=False, default=0.0)
    _hidden: list[tuple[str, str]] = field(init=False, default_factory=list)
    _keep: list[str] = field(init=False, default_factory=list)
    _isolated: bool = field(init=False, default=False)  # namespaces + mounts + unprivileged user all verified
    _cgroups: _Cgroups | None = field(init=False, default=None)
    _digest: str = field(init=False, default="")
    _count: int = field(init=False, default=0)

    def __enter__(self) -> Sandbox:
        import labhelpers
        from labhelpers.tiny import cache_dir

        started = time.perf_counter()
        self.root = Path(tempfile.mkdtemp(prefix="lh-sandbox-"))
        try:
            self._source = Path(labhelpers.__file__).resolve().parent
            self.library = self.root / "lib"
            self._install_library()
            zoo = cache_dir() / "zoo"
            if zoo.is_dir():
                self.zoo = self.root / "zoo"
                shutil.copytree(zoo, self.zoo, symlinks=True)
            self.protections += ["environment reduced to an allow-list",
                                 "a box per submission (HOME, working folder, TMPDIR, sockets, zoo copy)",
                                 "read-only labhelpers copy, verified after each submission",
                                 "CPU-time limit and process-group kill at the timeout"]
            self._isolate()
            self._caps()
            if self.missing and not self.unsafe:
                raise SandboxUnavailable(
                    "--rerun runs each submission's code, and this machine cannot hide the instructor from it: "
                    + "; ".join(self.missing) + ". Fix what is named, or pass --unsafe-rerun to rerun anyway "
                    "(a submission may then read and change what the user running the grader can).")
        except BaseException:
            self.__exit__()
            raise
        self.setup_seconds = round(time.perf_counter() - started, 3)
        return self

    def _install_library(self) -> None:
        target = self.library / "labhelpers"
        shutil.copytree(self._source, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        _remove_write_bits(self.library)
        self._digest = _tree_digest(target)

    # -- what to hide and what to bind back ---------------------------------------------------------
    def _hidden_folders(self) -> list[tuple[str, str]]:
        """(folder, tmpfs mode) to hide, outermost only; system folders are never hidden (noted)."""
        from labhelpers.tiny import cache_dir

        wanted = [Path(p) for p in HIDDEN_ALWAYS] + [Path.home(), cache_dir()]
        if not any(part == "site-packages" for part in self._source.parts):  # an editable install: its checkout
            wanted.append(self._source.parent)
        for p in self.hide:
            p = Path(p).absolute()
            wanted.append(p if p.is_dir() or not p.exists() and not p.suffix else p.parent)
        folders = sorted({Path(os.path.realpath(p)) for p in wanted if p.exists()}, key=lambda p: len(p.parts))
        out: list[Path] = []
        for p in folders:
            if str(p) in NEVER_HIDDEN:
                self.missing.append(f"{p} cannot be hidden (a system folder was named to hide)")
            elif not any(_under(p, q) for q in out):
                out.append(p)
        return [(str(p), "1777" if str(p) in TMP_FOLDERS else "755") for p in out]

    def _kept_folders(self) -> list[str]:
        """The Python installation (read-only bound back, even under a hidden folder)."""
        exe = Path(sys.executable)
        candidates = {Path(sys.prefix), Path(sys.base_prefix), Path(sys.exec_prefix), Path(sys.base_exec_prefix),
                      exe.resolve().parent.parent}
        real = sorted({Path(os.path.realpath(p)) for p in candidates} | {p.absolute() for p in candidates
                                                                          if not p.is_symlink()},
                      key=lambda p: len(p.parts))
        out: list[Path] = []
        for p in real:
            if p.exists() and not any(_under(p, q) for q in out):
                out.append(p)
        return [str(p) for p in out]

    def _config(self, box: Path, cwd: Path) -> Path:
        keep = [[p, False] for p in self._keep] + [[str(self.library), False], [str(box), True]]
        path = box.parent / f"{box.name}.json"
        path.write_text(json.dumps({"hide": self._hidden, "keep": keep, "uid": self.uid, "gid": self.gid,
                                    "cwd": str(cwd)}))
        return path

    def _command_prefix(self, config: Path) -> list[str]:
        return [*NAMESPACES, sys.executable, "-I", "-S", str(ENTER), str(config)]

    # -- setting up, verified from inside ------------------------------------------------------------
    def _isolate(self) -> None:
        needs = ("its own /proc, hidden folders (HOME, temporary folders, the batch, --out, the checkout), no "
                 "network and an unprivileged user")
        if sys.platform != "linux":
            self.missing.append(f"{needs}: these need Linux namespaces (rerun on Linux, e.g. in a VM)")
            return
        if os.geteuid() != 0:
            self.missing.append(f"{needs}: setting up the namespaces needs root (run the grader as root, e.g. with "
                                "sudo or in a container; the sandbox drops to an unprivileged user itself)")
            return
        if not shutil.which("unshare"):
            self.missing.append(f"{needs}: `unshare` is not installed (install util-linux)")
            return
        self._hidden, self._keep = self._hidden_folders(), self._kept_folders()
        seen, why = self._probe()
        if seen is None:
            self.missing.append(f"{needs}: the sandbox could not start ({why}); in a container, allow "
                                "CAP_SYS_ADMIN (e.g. docker run --privileged)")
            return
        problems = self._judge(seen)
        if problems:
            self.missing.append(f"{needs}: the probe inside the sandbox saw " + "; ".join(problems))
            return
        self._isolated = True
        hidden = ", ".join(p for p, _ in self._hidden)
        self.protections += [
            f"own PID namespace and /proc (the probe saw {seen['processes']} process(es); the grader's environment "
            "and command line are not readable)",
            f"empty tmpfs over {hidden}; bound back: the Python installation ({', '.join(self._keep)}) and the "
            "labhelpers copy read-only, the submission's box read-write; / read-only",
            "new network namespace: no network, no abstract Unix sockets (only a loopback that is down)",
            f"runs as uid {self.uid} without capabilities or new privileges (cannot undo the mounts)"]

    def _probe(self) -> tuple[dict | None, str]:
        box = self.root / "probe"
        box.mkdir()
        os.chown(box, self.uid, self.gid)
        keep = [*self._keep, str(self.library), str(box)]
        cmd = [*self._command_prefix(self._config(box, box)), sys.executable, "-I", "-S", "-c", _PROBE,
               json.dumps([p for p, _ in self._hidden]), json.dumps(keep)]
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=60, env={"PATH": os.environ.get(
                "PATH", "/usr/bin:/bin")}, cwd="/")
        except (OSError, subprocess.TimeoutExpired) as err:
            return None, str(err)
        if done.returncode != 0:
            return None, (done.stderr.strip().splitlines() or [f"exit status {done.returncode}"])[-1]
        try:
            return json.loads(done.stdout.strip().splitlines()[-1]), ""
        except (ValueError, IndexError):
            return None, f"the probe printed {done.stdout[-200:]!r}"

    def _judge(self, seen: dict) -> list[str]:
        problems = []
        if seen["uid"] != self.uid or seen["euid"] != self.uid:
            problems.append(f"uid {seen['euid']} instead of {self.uid}")
        if seen["processes"] > 3:
            problems.append(f"{seen['processes']} processes in /proc")
        if set(seen["interfaces"]) - {"lo"}:
            problems.append(f"network interfaces {seen['interfaces']}")
        if seen["visible"]:
            problems.append(f"the contents of {', '.join(seen['visible'])}")
        if seen["root_writable"]:
            problems.append("a writable /")
        return problems

    def _caps(self) -> None:
        name = self.root.name
        self._cgroups, why = _Cgroups.create(name, self.memory_bytes, self.max_processes) \
            if sys.platform == "linux" and os.geteuid() == 0 else (None, "needs root on Linux")
        if self._cgroups:
            try:
                self._cgroups.release(self._cgroups.child("probe"))
            except OSError as err:
                self._cgroups.remove()
                self._cgroups, why = None, f"the caps did not hold ({err})"
        if self._cgroups:
            memory, pids = self._cgroups.files()
            self.protections.append(
                f"cgroup v{self._cgroups.version} per submission: memory {_gib(self.memory_bytes)} for the whole run "
                f"({memory}), {self.max_processes} processes and threads ({pids})")
            return
        self.protections.append(f"no cgroup ({why}): per-process limits instead, address space "
                                f"{_gib(FALLBACK_ADDRESS_SPACE)} (RLIMIT_AS; the run's total is not capped)")
        if self._isolated:
            self.protections.append(f"{self.max_processes} processes for the sandbox's user (RLIMIT_NPROC)")
        else:
            self.missing.append("a process-count cap: no cgroup could be made and RLIMIT_NPROC does not bind root "
                                "(run as root with cgroups mounted: v2 with memory and pids, or v1 memory and pids)")

    def __exit__(self, *exc) -> None:
        if self._cgroups:
            self._cgroups.remove()
        if getattr(self, "root", None) and self.root.exists():
            _restore_write_bits(self.root)
            shutil.rmtree(self.root, ignore_errors=True)

    def environment(self, home: Path, cache: Path, tmp: Path, profile: str) -> dict[str, str]:
        env = {k: os.environ[k] for k in ALLOWED_ENV if k in os.environ}
        env.update(HOME=str(home), TMPDIR=str(tmp), PYTHONPATH=str(self.library), LABHELPERS_CACHE=str(cache),
                   LABS_PROFILE=profile, HF_HUB_OFFLINE="1", HF_HOME=str(home / ".cache" / "huggingface"),
                   MPLBACKEND="Agg", TOKENIZERS_PARALLELISM="false", PYTHONDONTWRITEBYTECODE="1",
                   JUPYTER_PLATFORM_DIRS="1", PYTHONNOUSERSITE="1")
        return env

    def _preexec(self, cpu_seconds: int, cgroups: list[Path]):
        fallback = not cgroups
        processes = self.max_processes if self._isolated else None

        def apply() -> None:
            if cgroups:
                _Cgroups.join(cgroups)
            resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds))
            resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
            if fallback:
                resource.setrlimit(resource.RLIMIT_AS, (FALLBACK_ADDRESS_SPACE, FALLBACK_ADDRESS_SPACE))
                if processes:
                    resource.setrlimit(resource.RLIMIT_NPROC, (processes, processes))

        return apply

    def report(self) -> SandboxReport:
        return SandboxReport(protections=list(self.protections), missing=list(self.missing), unsafe=self.unsafe)

    def run(self, notebook: dict, name: str, *, profile: str, timeout: float) -> SandboxRun:
        """Execute ``notebook`` (the parsed notebook, written into the box as UTF-8 JSON) as ``name``."""
        self._count += 1
        box = self.root / f"{self._count:04d}"
        home, work, tmp, cache, sockets = box / "home", box / "work", box / "tmp", box / "cache", box / "s"
        for folder in (home, work, tmp, sockets):
            folder.mkdir(parents=True)
        if self.zoo:
            shutil.copytree(self.zoo, cache / "zoo", symlinks=True)
        name = _safe_name(name)
        submitted = work / ("submitted_" + name)
        submitted.write_text(json.dumps(notebook, ensure_ascii=False, indent=1), encoding="utf-8")
        prefix: list[str] = []
        if self._isolated:
            _chown_tree(box, self.uid, self.gid)
            prefix = self._command_prefix(self._config(box, work))
        cgroups = self._cgroups.child(box.name) if self._cgroups else []
        try:
            run = run_notebook(submitted, work / name, parameters={"PROFILE": profile}, cell_timeout=timeout,
                               hard_timeout=timeout, cwd=work, env=self.environment(home, cache, tmp, profile),
                               prefix=prefix, sockets=sockets,
                               preexec_fn=self._preexec(self.cpu_seconds or int(2 * timeout) + 30, cgroups))
        finally:
            hit = self._cgroups.release(cgroups) if self._cgroups else []
        error = run.error
        if hit and (error or run.returncode):
            error = f"{error or 'the run failed'} ({'; '.join(hit)})"
        tampered = self._verify_library()
        return SandboxRun(output=run.output, seconds=run.seconds, timed_out=run.timed_out, error=error,
                          stderr_tail=run.stderr_tail, library_restored=tampered, caps_hit=tuple(hit))

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
