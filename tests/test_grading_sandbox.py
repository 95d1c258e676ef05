"""``labhelpers grade --rerun`` runs each submission in a sandbox: one submission cannot change the next one.

Two tiny submissions are graded in one batch (in this order): ``a_...`` tries to write into labhelpers, the
zoo cache (its copy and the instructor's own) and $HOME, and to read the instructor's variables; ``b_...``
records what it can see of all that. Kernel starts take seconds, so the notebooks are small.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import nbformat
import pytest

import labhelpers
from labhelpers.course.grading import Sandbox, grade
from labhelpers.tiny import cache_dir

LAB = "01_instruction_tuning"
MARK = "written-by-a-submission"


def _notebook(source: str) -> dict:
    params = nbformat.v4.new_code_cell('PROFILE = "tiny"', metadata={"tags": ["parameters"]})
    nb = nbformat.v4.new_notebook(cells=[params, nbformat.v4.new_code_cell(source)])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nb


ATTACK = f"""
import os, pathlib, labhelpers
targets = [pathlib.Path(labhelpers.__file__), pathlib.Path(os.environ["LABHELPERS_CACHE"]) / "zoo" / "{MARK}",
           pathlib.Path.home() / "{MARK}", pathlib.Path({str(cache_dir())!r}) / "{MARK}"]
for target in targets:
    try:
        if target.suffix == ".py":
            target.chmod(0o644)
            target.write_text(target.read_text() + "\\nSUBMISSION_WAS_HERE = True\\n")
        else:
            target.write_text("{MARK}")
        print("wrote", target)
    except OSError as err:
        print("could not write", target, err)
"""

PROBE = f"""
import os, pathlib, socket, labhelpers
from labhelpers import records
records.set_context(lab="{LAB}", profile=PROFILE)
sock = socket.socket()
sock.settimeout(3)
records.record_result("seen", {{
    "instructor_variables": sorted(k for k in ("LABHELPERS_INSTRUCTOR_TOKEN", "HF_TOKEN") if k in os.environ),
    "library_file": labhelpers.__file__,
    "library_changed": hasattr(labhelpers, "SUBMISSION_WAS_HERE"),
    "cache_copy_marked": (pathlib.Path(os.environ["LABHELPERS_CACHE"]) / "zoo" / "{MARK}").exists(),
    "home_marked": (pathlib.Path.home() / "{MARK}").exists(),
    "home": str(pathlib.Path.home()),
    "network_reachable": sock.connect_ex(("1.1.1.1", 53)) == 0,
}})
records.record_check("probe_ran", True, message="the probe ran")
"""


def _digest(folder: Path) -> str:
    h = hashlib.sha256()
    for path in sorted(folder.rglob("*.py")):
        h.update(path.read_bytes())
    return h.hexdigest()


@pytest.mark.timeout(300)
@pytest.mark.notebook  # starts Jupyter kernels for seconds each (the fast lane skips it)
def test_a_submission_changes_nothing_for_the_next_one(tmp_path, monkeypatch):
    monkeypatch.setenv("LABHELPERS_INSTRUCTOR_TOKEN", "s3cret")
    monkeypatch.setenv("HF_TOKEN", "hf_s3cret")
    subs = tmp_path / "subs"
    subs.mkdir()
    nbformat.write(_notebook(ATTACK), subs / f"a_{LAB}.ipynb")
    nbformat.write(_notebook(PROBE), subs / f"b_{LAB}.ipynb")
    source = Path(labhelpers.__file__).parent
    before = _digest(source)

    with Sandbox() as box:
        grades = grade([subs], tmp_path / "g", rerun=True, timeout=120, sandbox=box)
        missing = list(box.missing)
    probe = {g.submission_id: g for g in grades}["b"].results["seen"]

    assert probe["instructor_variables"] == [], "the instructor's variables reached a submission"
    assert not probe["library_changed"], "the first submission changed the labhelpers the second one imports"
    assert Path(probe["library_file"]).parent != source and "lh-sandbox-" in probe["library_file"]
    assert not probe["cache_copy_marked"] and not probe["home_marked"]
    assert not (cache_dir() / MARK).exists(), "a submission wrote into the instructor's zoo cache"
    assert _digest(source) == before, "a submission changed the editable labhelpers source"
    assert "lh-sandbox-" in probe["home"] and probe["home"] != str(Path.home())
    if not any("network" in m for m in missing):
        assert not probe["network_reachable"]
    doc = json.loads((tmp_path / "g" / "grades.json").read_text())
    assert doc["sandbox"]["missing"] == missing
    print("sandbox missing protections:", missing or "none")  # shown with -s: what this machine allows


@pytest.mark.notebook  # starts Jupyter kernels for seconds each (the fast lane skips it)
def test_missing_protections_are_reported_and_grading_goes_on(tmp_path, monkeypatch, capsys):
    import labhelpers.course.grading.rerun as rerun

    monkeypatch.setattr(rerun, "_unshare_works", lambda flags: False)
    subs = tmp_path / "subs"
    subs.mkdir()
    nbformat.write(_notebook(PROBE), subs / f"b_{LAB}.ipynb")
    from labhelpers.course.cli import main

    assert main(["grade", str(subs), "--out", str(tmp_path / "g"), "--rerun", "--timeout", "120"]) == 0
    out = capsys.readouterr().out
    assert "sandbox: missing protection: no network: `unshare --net` is not available" in out
    assert "complete" in out
    assert "**Missing protection:** no network" in (tmp_path / "g" / "report.md").read_text()
