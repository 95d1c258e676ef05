"""``labhelpers grade --rerun`` runs each submission in a sandbox that hides the instructor.

One batch of small probe notebooks, graded by ``labhelpers grade --rerun`` in a process of its own whose
environment holds a token and whose HOME holds ``.cache/huggingface/token`` (as an instructor's would), tries
the attacks a student would: read the grader's environment and command line through ``/proc``, read the
token file, list and rewrite another submission of the batch before it runs, write into ``--out``, connect to
a Unix socket in the grader's temporary folder, an abstract Unix socket and a TCP port of the grader, start
more processes than the cap allows, allocate more memory than the cap allows; a UTF-8-with-BOM and a UTF-16
notebook rerun ``complete``. Each probe records what it saw with ``record_result``; the test asserts the
statuses, points and report text an instructor gets. Kernel starts take seconds, so the batch is the only
expensive part; the refusal without ``--unsafe-rerun`` starts no kernel.

The batch and ``--out`` lie outside the temporary folder (under ``/var/lib``), so that what hides them is the
list of graded paths the grader passes to the sandbox, not the tmpfs over ``/tmp``.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

import nbformat
import pytest

import labhelpers
from labhelpers.course.grading import Sandbox, grade
from labhelpers.course.grading.rerun import SandboxUnavailable
from labhelpers.tiny import cache_dir

LAB = "01_instruction_tuning"
MARK = "written-by-a-submission"
TOKEN = "hf_FAKE_env_s3cret"
HOME_TOKEN = "hf_FAKE_home_s3cret"
MEMORY_CAP = 1536 * 2**20
PROCESS_CAP = 64


def _sandbox_or_skip(**kwargs) -> Sandbox:
    try:
        return Sandbox(**kwargs).__enter__()
    except SandboxUnavailable as err:  # CI here runs as root with unshare: there it must not skip
        pytest.skip(f"the rerun sandbox cannot be set up on this machine (needs Linux, root, unshare and "
                    f"cgroups): {err}")


BLOCKS = 3  # solution cells of the probe course: each probe notebook puts its code in their bodies


def _notebook(*sources: str) -> dict:
    """A learner's copy of the probe course (see probe_course): ``sources`` are its solution bodies, which is all
    that a rerun takes from a submission; the bodies it leaves out are ``pass``."""
    assert len(sources) <= BLOCKS
    params = nbformat.v4.new_code_cell('PROFILE = "tiny"', metadata={"tags": ["parameters"]})
    head = nbformat.v4.new_code_cell(f'from labhelpers import records\nrecords.set_context(lab="{LAB}", '
                                     'profile=PROFILE)')
    bodies = [*sources, *["pass"] * (BLOCKS - len(sources))]
    cells = [params, head, *(nbformat.v4.new_code_cell(f"### BEGIN SOLUTION\n{b}\n### END SOLUTION") for b in bodies)]
    for n, cell in enumerate(cells):
        cell.id = f"probe-{n}"
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nb


@pytest.fixture(autouse=True)
def probe_course(tmp_path_factory, monkeypatch) -> Path:
    """The course a rerun runs (LABS_DIR): lab 01 as a parameters cell, a setup cell and solution cells."""
    folder = tmp_path_factory.mktemp("probe-course")
    nbformat.write(nbformat.from_dict(_notebook()), folder / f"{LAB}.ipynb")
    monkeypatch.setenv("LABS_DIR", str(folder))
    return folder


# a check the course declares for the lab (1 point, passes below 1.0): every probe records it, so that points
# show what an instructor would see
RAN = 'records.record_check("loss_decreases", True, value=0.5, threshold=1.0, direction="<", message="the probe ran")'


def _attacker(batch: Path, out: Path, home: Path, unix_socket: Path, abstract: str, port: int) -> str:
    """Every attack on the instructor and the batch in one cell; it records what it saw, never raises."""
    victim = batch / f"v_{LAB}.ipynb"
    return f"""
import json, os, pathlib, socket
seen = {{"uid": os.getuid(), "pids": sorted(int(p) for p in os.listdir("/proc") if p.isdigit())}}
found = []
for pid in seen["pids"]:
    for what in ("environ", "cmdline"):
        try:
            text = pathlib.Path(f"/proc/{{pid}}/{{what}}").read_bytes().decode(errors="replace")
        except OSError:
            continue
        for secret in ({TOKEN!r}, {str(batch)!r}, "--out"):
            if secret in text:
                found.append(f"{{pid}} {{what}}: {{secret[:3]}}")
seen["proc_leaks"] = found
def read(path):
    try:
        return pathlib.Path(path).read_text()[:40]
    except OSError as err:
        return type(err).__name__
seen["home_token"] = read({str(home / ".cache/huggingface/token")!r})
seen["root_token"] = read("/root/.cache/huggingface/token")
seen["own_home_token"] = read(pathlib.Path.home() / ".cache/huggingface/token")
try:
    seen["batch_listing"] = sorted(os.listdir({str(batch)!r}))
except OSError as err:
    seen["batch_listing"] = type(err).__name__
try:
    nb = json.loads(pathlib.Path({str(victim)!r}).read_text())
    nb["cells"][-1]["source"] = 'records.record_check("loss_decreases", False, value=2.0, threshold=1.0, direction="<")'
    pathlib.Path({str(victim)!r}).write_text(json.dumps(nb))
    seen["victim_rewritten"] = True
except OSError as err:
    seen["victim_rewritten"] = type(err).__name__
try:
    pathlib.Path({str(out)!r}, "{MARK}.txt").write_text("{MARK}")
    seen["out_written"] = True
except OSError as err:
    seen["out_written"] = type(err).__name__
boxes = pathlib.Path.cwd().parent.parent
seen["boxes"] = sorted(os.listdir(boxes)) if boxes.is_dir() else []
seen["own_box"] = pathlib.Path.cwd().parent.name
seen["checkout"] = read({str(Path(labhelpers.__file__).parent / "__init__.py")!r})
def connect(family, address):
    s = socket.socket(family, socket.SOCK_STREAM)
    s.settimeout(3)
    try:
        s.connect(address)
        return True
    except OSError as err:
        return type(err).__name__
    finally:
        s.close()
seen["unix_socket"] = connect(socket.AF_UNIX, {str(unix_socket)!r})
seen["abstract_socket"] = connect(socket.AF_UNIX, "\\0" + {abstract!r})
seen["tcp_to_grader"] = connect(socket.AF_INET, ("127.0.0.1", {port}))
seen["tcp_out"] = connect(socket.AF_INET, ("1.1.1.1", 53))
records.record_result("seen", seen)
"""


VICTIM = 'records.record_result("victim_value", 1)\n' + RAN

FORK_BOMB = """
import subprocess
procs, refused = [], None
for _ in range(150):  # bounded: without a cap the machine gets 150 sleeping processes for 30 s
    try:
        procs.append(subprocess.Popen(["sleep", "30"]))
    except OSError as err:
        refused = type(err).__name__
        break
records.record_result("fork_bomb", {"started": len(procs), "refused": refused})
for p in procs:
    p.kill()
"""

MEMORY_HOG = """
hog = []
for _ in range(16):  # up to 4 GiB, each page touched
    hog.append(b"\\x01" * (256 * 2**20))
records.record_check("hog_survived", True, message="allocated 4 GiB")
"""

# what the grader's process runs: `labhelpers grade` with the caps made small enough to test
GRADER = f"""
import functools, sys
from labhelpers.course.grading import flow
from labhelpers.course.grading.rerun import Sandbox
from labhelpers.course.cli import main
flow.Sandbox = functools.partial(Sandbox, memory_bytes={MEMORY_CAP}, max_processes={PROCESS_CAP})
sys.exit(main(sys.argv[1:]))
"""


@pytest.fixture
def outside_tmp():
    """A folder outside /tmp and HOME (removed afterwards), as a course's submissions folder would be."""
    base = Path("/var/lib") / f"lh-sandbox-test-{uuid.uuid4().hex[:8]}"
    try:
        base.mkdir()
    except OSError as err:
        pytest.skip(f"cannot make a folder outside the temporary folder ({err}); the sandbox needs root anyway")
    yield base
    shutil.rmtree(base, ignore_errors=True)


def _listen(family, address) -> socket.socket:
    s = socket.socket(family, socket.SOCK_STREAM)
    s.bind(address)
    s.listen(8)
    return s


@pytest.mark.timeout(600)
@pytest.mark.notebook  # starts Jupyter kernels for seconds each (the fast lane skips it)
def test_a_rerun_cannot_reach_the_instructor_the_batch_or_the_machine(outside_tmp, monkeypatch):
    _sandbox_or_skip().__exit__()
    batch, out, home = outside_tmp / "submissions", outside_tmp / "grades", outside_tmp / "instructor-home"
    batch.mkdir()
    (home / ".cache" / "huggingface").mkdir(parents=True)
    (home / ".cache" / "huggingface" / "token").write_text(HOME_TOKEN)
    monkeypatch.setenv("HF_TOKEN", TOKEN)  # the grader's environment (its /proc/<pid>/environ)
    monkeypatch.setenv("HOME", str(home))
    unix_socket = Path(tempfile.gettempdir()) / f"lh-grader-{uuid.uuid4().hex[:8]}.sock"
    abstract = f"lh-grader-{uuid.uuid4().hex[:8]}"
    listeners = [_listen(socket.AF_UNIX, str(unix_socket)), _listen(socket.AF_UNIX, "\0" + abstract),
                 _listen(socket.AF_INET, ("127.0.0.1", 0))]
    port = listeners[2].getsockname()[1]
    nbformat.write(nbformat.from_dict(_notebook(_attacker(batch, out, home, unix_socket, abstract, port), RAN)),
                   batch / f"m_{LAB}.ipynb")
    nbformat.write(nbformat.from_dict(_notebook(VICTIM)), batch / f"v_{LAB}.ipynb")
    text = json.dumps(_notebook('records.record_result("encoding", "é ü")\n' + RAN), ensure_ascii=False)
    (batch / f"c_{LAB}.ipynb").write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))
    (batch / f"d_{LAB}.ipynb").write_bytes(text.encode("utf-16"))
    nbformat.write(nbformat.from_dict(_notebook(FORK_BOMB, RAN)), batch / f"e_{LAB}.ipynb")
    nbformat.write(nbformat.from_dict(_notebook(RAN, MEMORY_HOG)), batch / f"f_{LAB}.ipynb")
    victim_bytes = (batch / f"v_{LAB}.ipynb").read_bytes()
    try:
        done = subprocess.run([sys.executable, "-c", GRADER, "grade", str(batch), "--out", str(out), "--rerun",
                               "--timeout", "180"], capture_output=True, text=True, timeout=580, env=os.environ.copy())
    finally:
        for s in listeners:
            s.close()
        unix_socket.unlink(missing_ok=True)
    assert done.returncode == 0, done.stderr[-3000:]
    doc = json.loads((out / "grades.json").read_text())
    grades = {g["submission_id"]: g for g in doc["notebooks"]}
    seen = grades["m"]["results"]["seen"]
    print(json.dumps(seen, indent=1), done.stdout, sep="\n")  # with -s: what the attacker saw

    # /proc: only the sandbox's own processes, none of the grader's environment or command line
    assert seen["proc_leaks"] == [] and len(seen["pids"]) < 20 and seen["uid"] == 65534
    # HOME: the instructor's token file is not there (their HOME is an empty tmpfs; the box's HOME is empty)
    assert seen["home_token"] == "FileNotFoundError" and seen["root_token"] == "FileNotFoundError"
    assert seen["own_home_token"] == "FileNotFoundError"
    # the batch, --out and the instructor's checkout are hidden; other boxes too
    assert seen["batch_listing"] == [] or seen["batch_listing"] == "FileNotFoundError"
    assert seen["victim_rewritten"] in ("FileNotFoundError", "PermissionError", "OSError")
    assert seen["out_written"] in ("FileNotFoundError", "PermissionError", "OSError")
    assert seen["checkout"] == "FileNotFoundError"
    assert seen["own_box"] != "0001" and [n for n in seen["boxes"] if n[:1].isdigit()] == [seen["own_box"]]
    # no network, Unix sockets included
    for key in ("unix_socket", "abstract_socket", "tcp_to_grader", "tcp_out"):
        assert seen[key] is not True, f"{key}: the submission connected"

    assert (batch / f"v_{LAB}.ipynb").read_bytes() == victim_bytes
    assert not (out / f"{MARK}.txt").exists()
    assert not (cache_dir() / MARK).exists()
    for sid in "cdemv":
        assert grades[sid]["status"] == "complete", (sid, grades[sid]["status"], grades[sid]["problems"])
        assert grades[sid]["points_earned"] == grades[sid]["points_possible"] == 1
    assert grades["v"]["results"]["victim_value"] == 1
    assert grades["c"]["results"]["encoding"] == grades["d"]["results"]["encoding"] == "é ü"

    bomb = grades["e"]["results"]["fork_bomb"]
    assert bomb["started"] < PROCESS_CAP and bomb["refused"] == "BlockingIOError", bomb
    hog = grades["f"]
    assert hog["status"] == "cell_error" and "hog_survived" not in {c["name"] for c in hog["checks"]}
    assert "memory cap (1.5 GiB) was reached" in hog["rerun"]["error"], hog["rerun"]
    assert any("The rerun stopped: DeadKernelError" in p["message"] for p in hog["problems"])

    # what the instructor reads: which protections ran, in the summary, grades.json and report.md
    assert "sandbox: every protection in place" in done.stdout
    assert doc["sandbox"]["missing"] == [] and not doc["sandbox"]["unsafe"]
    protections = " ".join(doc["sandbox"]["protections"])
    for words in ("own PID namespace and /proc", str(batch), str(out), str(home), "new network namespace",
                  "runs as uid 65534", "cgroup v1 per submission: memory 1.5 GiB", f"{PROCESS_CAP} processes"):
        assert words in protections
    report = (out / "report.md").read_text()
    assert "Rerun sandbox: " in report and "own PID namespace and /proc" in report
    for name in ("gradebook.csv", "grades.json", "report.md"):
        text = (out / name).read_text()
        assert TOKEN not in text and HOME_TOKEN not in text, f"a secret reached {name}"


def _refusing_probe(self):
    return None, "unshare: unshare failed: Operation not permitted"


def test_rerun_refuses_without_a_protection_and_names_it(tmp_path, monkeypatch, capsys):
    import labhelpers.course.grading.rerun as rerun
    from labhelpers.course.cli import main

    monkeypatch.setattr(rerun.Sandbox, "_probe", _refusing_probe)
    subs = tmp_path / "subs"
    subs.mkdir()
    nbformat.write(nbformat.from_dict(_notebook(RAN)), subs / f"b_{LAB}.ipynb")
    assert main(["grade", str(subs), "--out", str(tmp_path / "g"), "--rerun"]) == 2
    err = capsys.readouterr().err
    assert "error: --rerun runs each submission's code, and this machine cannot hide the instructor" in err
    assert "--unsafe-rerun" in err
    if sys.platform == "linux" and os.geteuid() == 0 and shutil.which("unshare"):
        assert "Operation not permitted" in err and "allow CAP_SYS_ADMIN" in err
    assert not (tmp_path / "g" / "reruns").exists() or not any((tmp_path / "g" / "reruns").iterdir())


@pytest.mark.notebook  # starts a Jupyter kernel
def test_unsafe_rerun_goes_on_and_reports_what_is_missing(tmp_path, monkeypatch, capsys):
    import labhelpers.course.grading.rerun as rerun
    from labhelpers.course.cli import main

    monkeypatch.setattr(rerun.Sandbox, "_probe", _refusing_probe)
    subs = tmp_path / "subs"
    subs.mkdir()
    nbformat.write(nbformat.from_dict(_notebook(RAN)), subs / f"b_{LAB}.ipynb")
    assert main(["grade", str(subs), "--out", str(tmp_path / "g"), "--unsafe-rerun", "--timeout", "120"]) == 0
    out = capsys.readouterr().out
    assert "sandbox: missing protection: its own /proc, hidden folders" in out
    assert "complete" in out
    report = (tmp_path / "g" / "report.md").read_text()
    assert "**Missing protection:** its own /proc, hidden folders" in report
    assert json.loads((tmp_path / "g" / "grades.json").read_text())["sandbox"]["unsafe"] is True


@pytest.mark.timeout(300)
@pytest.mark.notebook  # starts Jupyter kernels for seconds each (the fast lane skips it)
def test_a_submission_changes_nothing_for_the_next_one(tmp_path, monkeypatch):
    """The labhelpers copy, the zoo cache and HOME: one submission cannot change what the next one runs."""
    attack = f"""
import os, pathlib, labhelpers
for target in [pathlib.Path(labhelpers.__file__), pathlib.Path(os.environ["LABHELPERS_CACHE"]) / "zoo" / "{MARK}",
               pathlib.Path.home() / "{MARK}", pathlib.Path({str(cache_dir())!r}) / "{MARK}"]:
    try:
        if target.suffix == ".py":
            target.chmod(0o644)
            target.write_text(target.read_text() + "\\nSUBMISSION_WAS_HERE = True\\n")
        else:
            target.write_text("{MARK}")
    except OSError as err:
        print("could not write", target, err)
"""
    probe = f"""
import os, pathlib
records.record_result("seen", {{
    "instructor_variables": sorted(k for k in ("LABHELPERS_INSTRUCTOR_TOKEN", "HF_TOKEN") if k in os.environ),
    "library_file": labhelpers.__file__,
    "library_changed": hasattr(labhelpers, "SUBMISSION_WAS_HERE"),
    "cache_copy_marked": (pathlib.Path(os.environ["LABHELPERS_CACHE"]) / "zoo" / "{MARK}").exists(),
    "home_marked": (pathlib.Path.home() / "{MARK}").exists(),
    "home": str(pathlib.Path.home()),
}})
"""
    monkeypatch.setenv("LABHELPERS_INSTRUCTOR_TOKEN", "s3cret")
    monkeypatch.setenv("HF_TOKEN", "hf_s3cret")
    subs = tmp_path / "subs"
    subs.mkdir()
    nbformat.write(nbformat.from_dict(_notebook(attack, RAN)), subs / f"a_{LAB}.ipynb")
    nbformat.write(nbformat.from_dict(_notebook("import labhelpers\n" + probe, RAN)), subs / f"b_{LAB}.ipynb")
    source = Path(labhelpers.__file__).parent

    box = _sandbox_or_skip(hide=[subs, tmp_path / "g"])
    try:
        grades = grade([subs], tmp_path / "g", rerun=True, timeout=120, sandbox=box)
    finally:
        box.__exit__()
    seen = {g.submission_id: g for g in grades}["b"].results["seen"]

    assert seen["instructor_variables"] == [], "the instructor's variables reached a submission"
    assert not seen["library_changed"], "the first submission changed the labhelpers the second one imports"
    assert Path(seen["library_file"]).parent != source and "lh-sandbox-" in seen["library_file"]
    assert not seen["cache_copy_marked"] and not seen["home_marked"]
    assert not (cache_dir() / MARK).exists(), "a submission wrote into the instructor's zoo cache"
    assert "SUBMISSION_WAS_HERE" not in (source / "__init__.py").read_text(), "a submission changed the source"
    assert "lh-sandbox-" in seen["home"] and seen["home"] != str(Path.home())
