"""The grader: one row per notebook with the right status and points, three output files, inputs untouched.

Submissions are crafted here (a small notebook whose outputs hold records made by the real record_check /
record_result, MIME type application/vnd.labhelpers.record+json) into tmp_path; nothing big is committed.
"""

from __future__ import annotations

import copy
import csv
import hashlib
import json
import random
import shutil
from collections import Counter
from dataclasses import asdict
from pathlib import Path
from types import SimpleNamespace

import nbformat
import pytest
from conftest import LABS, lab_stems

from labhelpers import records
from labhelpers.course import points
from labhelpers.course.cli import main
from labhelpers.course.grading import (
    STATUSES,
    GradeOptions,
    RerunOutcome,
    SandboxReport,
    grade,
    parse_expect_versions,
)
from labhelpers.course.grading.flow import run
from labhelpers.course.grading.inspection import Problem
from labhelpers.course.grading.report import summary_table
from labhelpers.course.grading.rerun import SandboxRun
from labhelpers.course.points import listed_points

LAB = "01_instruction_tuning"
OTHER = "02_reward_modeling"
# The crafted lab: three checks worth 4 points (one required) and two results. Their points are entered in
# the grader's table for the tests (crafted_points), the one place points come from.
CHECKS = [("loss_falls", 2, True), ("bleu_rises", 1, False), ("format_ok", 1, False)]
# A check that only the --reference notebook of a test records.
REFERENCE_ONLY = ("explains_masking", 3)


def enter_crafted_points(monkeypatch) -> None:
    """Declare the crafted checks in labhelpers/course/points.py's table, for labs 01 and 02.

    Each passes at value >= its threshold, as the crafted records (value 0.5, threshold 0.25) are made.
    """
    crafted = {name: points.ge(pts) for name, pts in [*((n, p) for n, p, _ in CHECKS), REFERENCE_ONLY]}
    for lab in (LAB, OTHER):
        monkeypatch.setitem(points.LAB_CHECKS, lab, {**points.LAB_CHECKS[lab], **crafted})


@pytest.fixture(autouse=True)
def crafted_points(monkeypatch):
    enter_crafted_points(monkeypatch)


@pytest.fixture
def make_records(monkeypatch):
    """Records made by the real labhelpers calls, without touching the session's record log."""
    monkeypatch.setattr(records, "_log", [])
    monkeypatch.setitem(records._context, "lab", None)

    def make(lab=LAB, *, profile="tiny", failing=(), versions=None, bleu_after=35.5):
        monkeypatch.setitem(records._context, "profile", profile)
        monkeypatch.setattr(records, "_log", [])
        records.record_result("bleu_before", 10.0, lab=lab)
        for name, _, required in CHECKS:
            records.record_check(name, name not in failing, value=0.5, threshold=0.25,
                                 message=f"{name} holds", required=required, lab=lab)
        records.record_result("bleu_after", bleu_after, lab=lab)
        out = copy.deepcopy(records.recorded())
        if versions:
            for r in out:
                r["versions"] = {**r["versions"], **versions}
        return out

    return make


def _record_output(record: dict):
    return nbformat.v4.new_output("display_data", data={records.MIME: record, "text/plain": record["name"]})


def craft(recs: list[dict], *, counts: list | None = None, error_after: int | None = None,
          executed: bool = True, drop: tuple = (), unrun: tuple = (), metadata: dict | None = None) -> dict:
    """A notebook: title, setup, parameters, one code cell per record, summary.

    ``counts`` replaces the execution counts of the code cells; ``error_after=k`` makes the code cell after
    the k-th record raise and leaves the later cells unrun; ``drop`` deletes the cells of the named records;
    ``unrun`` leaves the cells of the named records unrun (no outputs, no count).
    """
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    if metadata:
        nb.metadata["labhelpers"] = metadata
    nb.cells.append(nbformat.v4.new_markdown_cell("# Lab 01: crafted"))
    code = [("import labhelpers", [nbformat.v4.new_output("stream", name="stdout", text="torch 2\n")]),
            ('PROFILE = "auto"', [])]
    for k, r in enumerate(recs):
        if r["name"] in drop:
            continue
        code.append((f"record_{r['kind']}({r['name']!r}, ...)", [] if r["name"] in unrun else [_record_output(r)]))
        if error_after is not None and k + 1 == error_after:
            code.append(("trainer.train()", [nbformat.v4.new_output(
                "error", ename="ValueError", evalue="expected 2 dims, got 3", traceback=["ValueError: ..."])]))
    code.append(("labhelpers.show_summary()", [nbformat.v4.new_output("stream", name="stdout", text="done\n")]))
    n = 0
    stopped = False
    for j, (src, outputs) in enumerate(code):
        cell = nbformat.v4.new_code_cell(src)
        if j == 1:
            cell.metadata["tags"] = ["parameters"]
        names = [r["name"] for r in recs if src.startswith(f"record_{r['kind']}({r['name']!r}")]
        if executed and not stopped and not (names and names[0] in unrun):
            n += 1
            cell.execution_count = n
            cell.outputs = outputs
            stopped = any(o.get("output_type") == "error" for o in outputs)
        nb.cells.append(cell)
    if counts is not None:
        for cell, c in zip([c for c in nb.cells if c.cell_type == "code"], counts):
            cell.execution_count = c
    return nb


def stamp(nb: dict) -> dict:
    """Give every record the code digests a kernel would have given it (the crafted cells ran in count order)."""
    by_count = {c.execution_count: c.source for c in nb.cells if c.cell_type == "code" and c.execution_count}
    for cell in nb.cells:
        for out in cell.get("outputs", []) if cell.cell_type == "code" else []:
            if records.MIME in out.get("data", {}):
                n = cell.execution_count
                out["data"][records.MIME] = {**out["data"][records.MIME], "code": {
                    "count": n, "cell": records.source_digest(cell.source),
                    "history": [records.source_digest(by_count.get(k, ""), records.HISTORY_DIGEST_CHARS)
                                for k in range(1, n)]}}
    return nb


def write(folder: Path, name: str, nb_or_text) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(nb_or_text, (bytes, str)):
        path.write_bytes(nb_or_text if isinstance(nb_or_text, bytes) else nb_or_text.encode())
    else:
        path.write_text(nbformat.writes(nb_or_text), encoding="utf-8")
    return path


# file -> (submission id, lab, status, points earned, points possible, checks passed, checks total)
EXPECTED = {
    f"alice_{LAB}.ipynb": ("alice", LAB, "complete", 4, 4, 3, 3),
    f"alice_{OTHER}.ipynb": ("alice", OTHER, "complete", 4, 4, 3, 3),
    f"bob_{LAB}.ipynb": ("bob", LAB, "checks_failed", 3, 4, 2, 3),
    f"carol_{LAB}.ipynb": ("carol", LAB, "checks_failed", 0, 4, 2, 3),  # the required check failed
    f"dave_{LAB}.ipynb": ("dave", LAB, "cell_error", 2, 4, 1, 3),
    f"erin_{LAB}.ipynb": ("erin", LAB, "not_executed", 0, 4, 0, 3),
    f"frank_{LAB}.ipynb": ("frank", LAB, "out_of_order", 4, 4, 3, 3),  # shuffled counts
    f"gina_{LAB}.ipynb": ("gina", LAB, "out_of_order", 3, 4, 2, 3),  # executed partly
    f"hank_{LAB}.ipynb": ("hank", LAB, "records_missing", 0, 4, 0, 3),
    f"ivan_{LAB}.ipynb": ("ivan", LAB, "records_missing", 3, 4, 2, 3),  # a check cell was deleted
    f"judy_{LAB}.ipynb": ("judy", LAB, "wrong_lab", 0, 4, 0, 3),
    f"pat_{LAB}.ipynb": ("pat", LAB, "wrong_lab", 4, 4, 3, 3),  # a cell pasted from lab 02: own points count
    f"kim_{LAB}.ipynb": ("kim", LAB, "environment_mismatch", 4, 4, 3, 3),  # profile full
    f"leo_{LAB}.ipynb": ("leo", LAB, "environment_mismatch", 4, 4, 3, 3),  # torch 1.13
    f"mia_{LAB}.ipynb": ("mia", LAB, "duplicate", 4, 4, 3, 3),
    f"mia/{LAB}.ipynb": ("mia", LAB, "duplicate", 4, 4, 3, 3),
    # lab from metadata; a generic name, so the folder is the id, never the metadata's claim ("zoe")
    "nick/final_version.ipynb": ("nick", LAB, "complete", 4, 4, 3, 3),
    # Canvas downloads of one student: the newest upload is graded, the older one earns nothing
    f"wendy_40001_900001_{LAB}.ipynb": ("wendy", LAB, "superseded", 0, 4, 3, 3),
    f"wendy_late_40001_900002_{LAB}-1.ipynb": ("wendy", LAB, "complete", 4, 4, 3, 3),
    f"{LAB}/oscar.ipynb": ("oscar", LAB, "complete", 4, 4, 3, 3),  # lab from the folder name
    f"truncated_{LAB}.ipynb": ("truncated", LAB, "invalid_file", 0, 4, 0, 3),
    "empty.ipynb": ("empty", "", "invalid_file", 0, 0, 0, 0),
    "blank.ipynb": ("blank", "", "invalid_file", 0, 0, 0, 0),
    "notes.ipynb": ("notes", "", "invalid_file", 0, 0, 0, 0),  # plain text
    "list.ipynb": ("list", "", "invalid_file", 0, 0, 0, 0),  # JSON, not a notebook
    "damaged.ipynb": ("damaged", "", "invalid_file", 0, 0, 0, 0),  # a notebook with broken cells
    f"quinn_{LAB}.ipynb": ("quinn", LAB, "check_inconsistent", 3, 4, 2, 3),  # a failed check edited to passed
    f"sam_{LAB}.ipynb": ("sam", LAB, "code_mismatch", 4, 4, 3, 3),  # a cell's code replaced after the run
    f"tess_{LAB}.ipynb": ("tess", LAB, "reference_used", 4, 4, 3, 3),  # an exercise calls the reference
    f"uma_{LAB}.ipynb": ("uma", LAB, "complete", 4, 4, 3, 3),  # digests that fit the code
    f"vic_{LAB}.ipynb": ("vic", LAB, "tampered", 0, 4, 3, 3),  # a cell defines its own record_check
    f"xena_{LAB}.ipynb": ("xena", LAB, "instructor_solution", 0, 4, 0, 3),  # the solution notebook, run
}


@pytest.fixture
def submissions(tmp_path, make_records) -> Path:
    """A folder with one crafted submission per status (see EXPECTED)."""
    root = tmp_path / "submissions"
    good = make_records()
    write(root, f"alice_{LAB}.ipynb", craft(good))
    write(root, f"alice_{OTHER}.ipynb", craft(make_records(OTHER)))
    write(root, f"bob_{LAB}.ipynb", craft(make_records(failing=("bleu_rises",))))
    write(root, f"carol_{LAB}.ipynb", craft(make_records(failing=("loss_falls",))))
    write(root, f"dave_{LAB}.ipynb", craft(good, error_after=2))
    write(root, f"erin_{LAB}.ipynb", craft(good, executed=False))
    n_code = sum(c.cell_type == "code" for c in craft(good).cells)
    shuffled = list(range(1, n_code + 1))
    random.Random(0).shuffle(shuffled)
    write(root, f"frank_{LAB}.ipynb", craft(good, counts=shuffled))
    write(root, f"gina_{LAB}.ipynb", craft(good, unrun=("format_ok",)))
    write(root, f"hank_{LAB}.ipynb", craft([]))
    write(root, f"ivan_{LAB}.ipynb", craft(good, drop=("format_ok",)))
    write(root, f"judy_{LAB}.ipynb", craft(make_records(OTHER)))
    write(root, f"pat_{LAB}.ipynb", craft(good + make_records(OTHER)[:1]))
    write(root, f"kim_{LAB}.ipynb", craft(make_records(profile="full")))
    write(root, f"leo_{LAB}.ipynb", craft(make_records(versions={"torch": "1.13.1"})))
    write(root, f"mia_{LAB}.ipynb", craft(good))
    write(root, f"mia/{LAB}.ipynb", craft(good))
    write(root, "nick/final_version.ipynb", craft(good, metadata={"submission_id": "zoe", "lab": "01"}))
    write(root, f"{LAB}/oscar.ipynb", craft(good))
    write(root, f"wendy_40001_900001_{LAB}.ipynb", craft(good))
    write(root, f"wendy_late_40001_900002_{LAB}-1.ipynb", craft(good))
    text = nbformat.writes(craft(good))
    write(root, f"truncated_{LAB}.ipynb", text[: len(text) // 2])
    write(root, "empty.ipynb", b"")
    write(root, "blank.ipynb", "  \n")
    write(root, "notes.ipynb", "my answers: 42")
    write(root, "list.ipynb", "[1, 2]")
    write(root, "damaged.ipynb", json.dumps({"metadata": [], "cells": [
        {"cell_type": "code", "source": [1, 2], "outputs": [], "execution_count": "one"}]}))
    flipped = make_records(failing=("bleu_rises",))
    flipped[2].update(passed=True, value=0.1)  # edited: the course passes bleu_rises at value >= threshold (0.25)
    write(root, f"quinn_{LAB}.ipynb", craft(flipped))
    edited = stamp(craft(good))
    edited.cells[1].source = "import labhelpers  # and something else than what ran"
    write(root, f"sam_{LAB}.ipynb", edited)
    cheat = craft(good)
    cheat.cells.insert(2, nbformat.v4.new_code_cell(
        "def mask_by_hand(input_ids, attention_mask, template_ids):\n"
        "    ### BEGIN SOLUTION\n"
        "    from labhelpers.collators import CompletionOnlyCollator\n"
        "    return CompletionOnlyCollator(tokenizer)(input_ids)['labels']\n"
        "    ### END SOLUTION", execution_count=None))
    write(root, f"tess_{LAB}.ipynb", _ran_in_order(cheat))
    write(root, f"uma_{LAB}.ipynb", stamp(craft(good)))
    forged = craft(good)
    forged.cells.insert(2, nbformat.v4.new_code_cell("def record_check(name, passed, **kw):\n    ...", execution_count=1))
    write(root, f"vic_{LAB}.ipynb", forged)
    solution = nbformat.read(LABS / f"{LAB}.ipynb", as_version=4)  # the instructor's notebook, run
    for n, cell in enumerate(c for c in solution.cells if c.cell_type == "code"):
        cell.execution_count = n + 1
    write(root, f"xena_{LAB}.ipynb", solution)
    return root


def _ran_in_order(nb: dict) -> dict:
    """Renumber the code cells 1, 2, ... as a top-to-bottom run would."""
    for n, cell in enumerate([c for c in nb.cells if c.cell_type == "code"], 1):
        cell.execution_count = n
    return nb


def snapshot(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def read_gradebook(out: Path) -> dict[str, dict]:
    with (out / "gradebook.csv").open(newline="", encoding="utf-8") as fh:
        return {row["file"]: row for row in csv.DictReader(fh)}


def as_tuple(row: dict) -> tuple:
    return (row["submission_id"], row["lab"], row["status"], float(row["points_earned"]),
            float(row["points_possible"]), int(row["checks_passed"]), int(row["checks_total"]))


def test_every_status_gets_its_row_and_points(submissions, tmp_path, capsys):
    before = snapshot(submissions)
    out = tmp_path / "grades"
    assert main(["grade", str(submissions), "--out", str(out), "--profile", "tiny"]) == 0
    assert snapshot(submissions) == before, "grading changed, added or removed a file in the input folder"

    rows = read_gradebook(out)
    got = {Path(f).relative_to(submissions).as_posix(): as_tuple(r) for f, r in rows.items()}
    assert got == {f: (i, lab, s, float(e), float(p), cp, ct) for f, (i, lab, s, e, p, cp, ct) in EXPECTED.items()}
    assert set(STATUSES) - {"timeout"} == {t[2] for t in got.values()}, "every status is covered"
    assert rows[str(submissions / f"alice_{LAB}.ipynb")]["key_results"] == "bleu_before=10; bleu_after=35.5"

    doc = json.loads((out / "grades.json").read_text())
    assert len(doc["notebooks"]) == len(EXPECTED) and doc["statuses"] == STATUSES
    printed = capsys.readouterr().out.splitlines()
    counts = Counter(status for _, _, status, *_ in EXPECTED.values())
    assert printed[len(EXPECTED) + 2] == ", ".join(f"{counts[s]} {s}" for s in STATUSES if s in counts)
    assert printed[0].split() == ["submission", "lab", "status", "points", "checks"]
    assert Counter(tuple(line.split()) for line in printed[1:len(EXPECTED) + 1]) == Counter(
        (i, lab or "?", s, f"{e}/{p}", f"{cp}/{ct}") for i, lab, s, e, p, cp, ct in EXPECTED.values())
    assert printed[-1] == f"gradebook.csv, grades.json, report.md are in {out}/"


def test_report_explains_each_problem_in_words(submissions, tmp_path):
    grade([submissions], tmp_path / "g", options=GradeOptions(profile="tiny"))
    report = (tmp_path / "g" / "report.md").read_text()
    sections = {s.split("\n", 1)[0]: s for s in report.split("\n## ")[1:]}

    def section(sid, lab=LAB):
        return sections[f"{sid} — lab {lab}"]

    assert "not passed: loss_falls (failed)" in section("carol") and "gets 0 points" in section("carol")
    assert "gets 0 points" not in section("bob") and "gets 0 points" not in section("erin")
    assert "❌ **loss_falls**" in section("carol") and "Your value: 0.5; needed: <= 0.25" in section("carol")
    assert "raised ValueError: expected 2 dims, got 3" in section("dave") and "`trainer.train()`" in section("dave")
    assert "no outputs" in section("erin")
    assert "not run once from top to bottom" in section("frank") and "never ran" in section("gina")
    assert "format_ok never ran" in section("ivan")
    assert f"holds records of lab {OTHER}" in section("judy")
    assert "profile 'full'" in section("kim") and "torch 1.13.1" in section("leo")
    assert f"2 submissions of 'mia' for lab {LAB}: this file and mia_{LAB}.ipynb" in report
    assert (f"the newer upload wendy_late_40001_900002_{LAB}-1.ipynb is graded instead" in report
            and "is the newest of 2 Canvas uploads of `wendy`" in report)
    assert "metadata claims submission id `zoe`, but it is submission `nick`" in section("nick")
    assert "cut off" in section("truncated") and "empty" in section("empty", "unknown")
    assert "not a Jupyter notebook" in section("list", "unknown")
    assert "structure is damaged" in section("damaged", "unknown")
    assert "bleu_rises says passed with value 0.1, which the course's comparison fails" in section("quinn")
    assert "cell 2 (`import labhelpers  # and something else than what ran`)" in section("sam")
    assert "`mask_by_hand` uses labhelpers.collators.CompletionOnlyCollator" in section("tess")
    assert "Not verifiable without a rerun" in section("alice") and "Not verifiable" not in section("uma")
    assert "only `--rerun` verifies" in report


def test_expectations_come_from_the_batch_when_none_are_given(submissions, tmp_path, capsys):
    """Colab work: no --profile or --expect-versions. Mixed profiles are reported, other versions are not."""
    by_id = {g.submission_id: g for g in grade([submissions], tmp_path / "g")}
    assert by_id["kim"].status == "complete", "a notebook in profile full is not failed for it"
    assert by_id["leo"].status == "environment_mismatch", "torch 1.13 is not what most of the batch used"
    assert main(["grade", str(submissions), "--out", str(tmp_path / "h")]) == 0
    printed = capsys.readouterr().out
    assert "Profiles in this batch: 1 full, 21 tiny (mixed)" in printed and "versions most of the batch" in printed


def test_reference_sets_the_expected_environment(submissions, tmp_path, make_records):
    ref_path = write(tmp_path / "ref", f"{LAB}.ipynb", craft(make_records(profile="full")))
    assert main(["grade", str(submissions), "--out", str(tmp_path / "g"), "--reference", str(ref_path)]) == 0
    rows = {Path(f).name: r["status"] for f, r in read_gradebook(tmp_path / "g").items()}
    assert rows[f"kim_{LAB}.ipynb"] == "complete" and rows[f"bob_{LAB}.ipynb"] == "environment_mismatch"


def test_expectations_can_be_relaxed(submissions, tmp_path):
    options = GradeOptions(profile="any", expect_versions=parse_expect_versions("any"))
    by_id = {g.submission_id: g for g in grade([submissions], tmp_path / "g", options=options)}
    assert by_id["kim"].status == by_id["leo"].status == "complete"
    # an explicit version list: torch 1.13 is then the expected one and everyone else differs
    options = GradeOptions(profile="tiny", expect_versions=parse_expect_versions("torch=1.13"))
    by_id = {g.submission_id: g for g in grade([submissions], tmp_path / "h", options=options)}
    assert by_id["leo"].status == "complete" and by_id["alice"].status == "environment_mismatch"
    with pytest.raises(ValueError, match="--expect-versions"):
        parse_expect_versions("torch>=2")


def test_reference_defines_the_labs_checks(submissions, tmp_path, make_records):
    ref = make_records()
    records.record_check(REFERENCE_ONLY[0], True, lab=LAB)
    ref += records.recorded()[-1:]
    ref_path = write(tmp_path / "ref", f"{LAB}.ipynb", craft(ref))
    assert main(["grade", str(submissions), "--out", str(tmp_path / "g"), "--reference", str(ref_path),
                 "--profile", "tiny"]) == 0
    rows = {Path(f).name: as_tuple(r) for f, r in read_gradebook(tmp_path / "g").items()}
    assert rows[f"alice_{LAB}.ipynb"] == ("alice", LAB, "records_missing", 4, 7, 3, 4)
    assert rows[f"alice_{OTHER}.ipynb"][2:] == ("complete", 4, 4, 3, 3)  # no reference for that lab: union


def test_single_files_and_bad_paths(submissions, tmp_path, capsys):
    out = tmp_path / "one"
    assert main(["grade", str(submissions / f"bob_{LAB}.ipynb"), str(submissions / "empty.ipynb"),
                 "--out", str(out)]) == 0
    assert [r["status"] for r in read_gradebook(out).values()] == ["checks_failed", "invalid_file"]
    assert main(["grade", str(tmp_path / "nowhere"), "--out", str(out)]) == 2
    assert "does not exist" in capsys.readouterr().err
    (tmp_path / "nothing").mkdir()
    assert main(["grade", str(tmp_path / "nothing"), "--out", str(tmp_path / "none")]) == 2
    assert capsys.readouterr().err == f"error: no .ipynb files found under {tmp_path / 'nothing'}.\n"
    assert not (tmp_path / "none").exists(), "nothing to grade: no output folder is made"


def test_output_inside_the_input_folder_is_not_graded(submissions, tmp_path):
    out = submissions / "grades"
    first = grade([submissions], out)
    (out / "reruns").mkdir()
    shutil.copy(submissions / f"alice_{LAB}.ipynb", out / "reruns" / f"alice_{LAB}.ipynb")
    second = grade([submissions], out)
    assert len(first) == len(second) == len(EXPECTED)


def test_points_come_from_the_table_and_never_from_the_record(tmp_path, make_records):
    recs = make_records()
    for r in recs:
        if r["kind"] == "check":
            r["points"] = 50  # what a record of schema 2 carried, or an edited one claims
    records.record_check("not_in_the_table", True, lab=LAB)
    unlisted = {**records.recorded()[-1], "points": 7}
    [g] = grade([write(tmp_path / "s", f"amy_{LAB}.ipynb", craft(recs + [unlisted]))], tmp_path / "g")
    assert [(c.name, c.points) for c in g.checks] == [
        ("loss_falls", 2), ("bleu_rises", 1), ("format_ok", 1), ("not_in_the_table", points.UNLISTED_POINTS)]
    assert (g.status, g.points_earned, g.points_possible) == ("complete", 4, 4), "an unlisted check earns nothing"


def test_the_command_and_the_library_write_the_same_files(submissions, tmp_path):
    assert main(["grade", str(submissions), "--out", str(tmp_path / "cli"), "--export", "gradescope,canvas"]) == 0
    book = run([submissions], tmp_path / "api", exports=["gradescope", "canvas"])
    assert book.written == ["gradebook.csv", "grades.json", "report.md", "gradescope/*/*/results.json", "canvas.csv"]

    def contents(folder: Path) -> dict[str, object]:
        files = {p.relative_to(folder).as_posix(): p.read_text() for p in sorted(folder.rglob("*")) if p.is_file()}
        doc = json.loads(files.pop("grades.json"))
        doc.pop("generated")  # the time of the run
        return {**files, "grades.json": doc}

    assert contents(tmp_path / "cli") == contents(tmp_path / "api")


class FakeSandbox:
    """Stands in for the sandbox without a kernel: 'running' a submission hands back a prepared outcome."""

    def __init__(self, runs: dict[str, SandboxRun]):
        self.runs, self.calls = runs, []

    def run(self, notebook: dict, name: str, *, profile: str, timeout: float) -> SandboxRun:
        assert isinstance(notebook, dict) and notebook.get("cells") is not None  # the parsed notebook
        self.calls.append((name, profile, timeout))
        return self.runs[name]

    def report(self) -> SandboxReport:
        return SandboxReport(protections=["a stand-in"], missing=["every real protection"])


def test_a_rerun_outcome_reaches_every_output_unchanged(tmp_path, make_records, mini_course):
    root = tmp_path / "subs"
    ben = write(root, f"ben_{LAB}.ipynb", craft(make_records(bleu_after=99.0)))  # the file claims 99
    dan = write(root, f"dan_{LAB}.ipynb", craft(make_records(bleu_after=12.0)))
    executed = write(tmp_path / "box", "ben_executed.ipynb", craft(make_records(bleu_after=12.0)))
    box = FakeSandbox({ben.name: SandboxRun(executed, 1.5, False, None, "", library_restored=True),
                       dan.name: SandboxRun(tmp_path / "box" / "never_written.ipynb", 7.0, True, "stopped", "", False)})
    out = tmp_path / "g"
    book = run([root], out, options=GradeOptions(profile="tiny"), rerun=True, timeout=7, sandbox=box)
    assert box.calls == [(ben.name, "tiny", 7), (dan.name, "tiny", 7)]
    by_id = {g.submission_id: g for g in book.grades}
    # the crafted files hold only the mini course's parameters cell: its solution stays the TODO, theirs do not run
    transplanted = {"bodies_taken": 0, "bodies_not_found": ["`BLEU_AFTER = None`"],
                    "cells_dropped": [f"cell {n} (`{src}`)" for n, src in (
                        (2, "import labhelpers"), (4, "record_result('bleu_before', ...)"),
                        (5, "record_check('loss_falls', ...)"), (6, "record_check('bleu_rises', ...)"),
                        (7, "record_check('format_ok', ...)"), (8, "record_result('bleu_after', ...)"))]}
    transplanted["cells_dropped"].append("cell 9 (`labhelpers.show_summary()`)")
    assert by_id["ben"].rerun == RerunOutcome(
        seconds=1.5, timed_out=False, error=None, stderr_tail="", library_restored=True,
        executed=str(out / "reruns" / f"0000_{ben.name}"), submitted_problems=[],
        differences=["result bleu_after: submitted 99, rerun 12"], submitted_status="complete", **transplanted)
    assert (out / "reruns" / f"0000_{ben.name}").read_bytes() == executed.read_bytes()
    never = [f"check {n} is in the submission but was not recorded on rerun" for n, _, _ in CHECKS]
    assert by_id["dan"].rerun == RerunOutcome(
        seconds=7.0, timed_out=True, error="stopped", stderr_tail="", library_restored=False, executed="",
        submitted_problems=[], differences=never + [f"result {n} is in the submission but was not recorded on rerun"
                                                    for n in ("bleu_before", "bleu_after")],
        submitted_status="complete", **transplanted)
    assert (by_id["ben"].status, by_id["dan"].status, by_id["dan"].points_earned) == ("complete", "timeout", 0)
    assert by_id["dan"].problems[0] == Problem("timeout", (
        "Rerunning the notebook took longer than 7 s and was stopped. Make sure it finishes in the tiny profile "
        "within the lab's stated time."))

    doc = json.loads((out / "grades.json").read_text())
    assert [n["rerun"] for n in doc["notebooks"]] == [json.loads(json.dumps(asdict(g.rerun))) for g in book.grades]
    assert doc["sandbox"] == {"protections": ["a stand-in"], "missing": ["every real protection"], "unsafe": False}
    assert [r["rerun_differs"] for r in read_gradebook(out).values()] == ["yes", "yes"]
    report = (out / "report.md").read_text()
    assert ("The rerun wrote into the read-only labhelpers copy; it was restored for the next submission.\n\n"
            "The rerun ran the course's notebook with 0 solution bodies taken from this file. Not found here, so run "
            "as the student version's TODO: `BLEU_AFTER = None`. Cells added to the student version were not run: "
            "cell 2 (`import labhelpers`), cell 4 (`record_result('bleu_before', ...)`), ")  in report
    assert ("Rerun (1.5 s; the submitted file had status complete): the rerun's records differ from the submitted "
            "ones:\n\n- result bleu_after: submitted 99, rerun 12\n") in report
    assert "Rerun (7.0 s; the submitted file had status complete)" in report
    table = summary_table(book.grades, book.expect, book.sandbox).splitlines()
    assert [line.split()[-1] for line in table[1:3]] == ["DIFFERS", "DIFFERS"]
    assert table[-1] == "sandbox: missing protection: every real protection"


# --------------------------------------------------------------------------------------------------
# --rerun: executes a copy (kernel starts: a few seconds each)
# --------------------------------------------------------------------------------------------------
def _course_cells(body: str) -> list:
    """The cells of the mini course below, with ``body`` between its solution markers."""
    params = nbformat.v4.new_code_cell('PROFILE = "auto"')
    params.metadata["tags"] = ["parameters"]
    setup = nbformat.v4.new_code_cell(f"import time\nfrom labhelpers import records\n"
                                      f"records.set_context(lab={LAB!r}, profile=PROFILE)")
    solution = nbformat.v4.new_code_cell(f"BLEU_AFTER = None\nSLEEP = 0\n### BEGIN SOLUTION\n{body}\n### END SOLUTION")
    checks = nbformat.v4.new_code_cell(
        "time.sleep(SLEEP)\n" + "".join(f"records.record_check({n!r}, True, required={r})\n" for n, _, r in CHECKS)
        + "records.record_result('bleu_after', BLEU_AFTER)\n")
    for n, cell in enumerate((params, setup, solution, checks)):
        cell.id = f"mini-{n}"
    return [params, setup, solution, checks]


@pytest.fixture
def mini_course(tmp_path, monkeypatch) -> Path:
    """A course whose lab 01 is four cells, its solution setting BLEU_AFTER (LABS_DIR points at it): a rerun runs
    these cells with the submission's solution body, so a kernel runs seconds, not the real lab."""
    folder = tmp_path / "course"
    folder.mkdir()
    nb = nbformat.v4.new_notebook(cells=_course_cells("BLEU_AFTER = 12.0"))
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, folder / f"{LAB}.ipynb")
    monkeypatch.setenv("LABS_DIR", str(folder))
    return folder


def _runnable(result_value: float, fake_output: float | None = None, sleep: float = 0) -> dict:
    """A learner's copy of the mini course: its solution body sets BLEU_AFTER (and how long the checks wait); its
    saved outputs may claim another value."""
    nb = nbformat.v4.new_notebook(cells=_course_cells(f"BLEU_AFTER = {result_value}\nSLEEP = {sleep}"))
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    if fake_output is not None:  # what the learner's file shows
        for n, cell in enumerate(nb.cells, 1):
            cell.execution_count = n
        recs = []
        for n, _, r in CHECKS:
            recs.append({"schema": 1, "lab": LAB, "name": n, "kind": "check", "profile": "tiny",
                         "versions": records.versions(), "passed": True, "value": None, "threshold": None,
                         "message": "", "points": 99, "required": r})  # schema 1 carried points
        recs.append({"schema": 1, "lab": LAB, "name": "bleu_after", "kind": "result", "profile": "tiny",
                     "versions": records.versions(), "value": fake_output, "description": ""})
        nb.cells[-1].outputs = [_record_output(r) for r in recs]
    return nb


@pytest.mark.notebook  # starts Jupyter kernels for seconds each (the fast lane skips it)
def test_rerun_grades_the_reexecuted_copy_and_reports_differences(tmp_path, capsys, mini_course):
    root = tmp_path / "subs"
    honest = write(root, f"ann_{LAB}.ipynb", _runnable(12.0, fake_output=12.0))
    faked = write(root, f"ben_{LAB}.ipynb", _runnable(12.0, fake_output=99.0))
    unrun = write(root, f"cid_{LAB}.ipynb", _runnable(12.0))
    forger = _runnable(12.0, fake_output=12.0)  # a cell of its own replaces record_check before the checks run
    forger.cells.insert(3, nbformat.v4.new_code_cell(
        "def record_check(name, passed, **kw):\n    records.record_result('forged_' + name, True)",
        execution_count=3))
    write(root, f"eve_{LAB}.ipynb", forger)
    write(root, "empty.ipynb", b"")
    before = snapshot(root)
    out = tmp_path / "g"
    assert main(["grade", str(root), "--out", str(out), "--rerun", "--timeout", "120"]) == 0
    assert snapshot(root) == before
    grades = {n["submission_id"]: SimpleNamespace(**n) for n in json.loads((out / "grades.json").read_text())["notebooks"]}

    assert grades["ann"].status == "complete" and grades["ann"].rerun["differences"] == []
    assert grades["ann"].points_possible == 4, "the submitted records' points (99 each) are ignored"
    assert grades["ben"].status == "complete" and grades["ben"].results["bleu_after"] == 12.0
    assert grades["ben"].rerun["differences"] == ["result bleu_after: submitted 99, rerun 12"]
    assert grades["cid"].status == "complete" and grades["cid"].rerun["submitted_status"] == "not_executed"
    assert grades["empty"].status == "invalid_file" and grades["empty"].rerun is None
    # the rerun ran the course's cells with eve's solution body; her added cell was dropped, not run again
    assert grades["eve"].rerun["submitted_status"] == "tampered" and grades["eve"].status == "complete"
    assert grades["eve"].rerun["cells_dropped"] == ["cell 4 (`def record_check(name, passed, **kw):`)"]
    assert grades["eve"].rerun["bodies_taken"] == 1 and "forged_loss_falls" not in grades["eve"].results
    rows = {Path(f).name: r for f, r in read_gradebook(out).items()}
    assert rows[faked.name]["rerun_differs"] == "yes" and rows[honest.name]["rerun_differs"] == "no"
    assert rows[unrun.name]["status"] == "complete" and rows["empty.ipynb"]["rerun_differs"] == ""
    assert "submitted 99, rerun 12" in (out / "report.md").read_text()
    printed = capsys.readouterr()
    assert "DIFFERS" in printed.out and f"rerunning {root / ('ben_' + LAB + '.ipynb')}" in printed.err
    assert len(list((out / "reruns").glob("*.ipynb"))) == 4, "the executed copies are kept for a look"


@pytest.mark.notebook  # starts Jupyter kernels for seconds each (the fast lane skips it)
def test_rerun_stops_a_notebook_at_the_timeout(tmp_path, mini_course):
    slow = write(tmp_path / "subs", f"dan_{LAB}.ipynb", _runnable(12.0, fake_output=12.0, sleep=300))
    [g] = grade([slow], tmp_path / "g", rerun=True, timeout=4)
    assert g.status == "timeout" and g.points_earned == 0 and g.rerun.timed_out
    assert g.rerun.seconds < 26, "the kernel was not stopped at the timeout"
    assert "longer than 4 s" in (tmp_path / "g" / "report.md").read_text()


# --------------------------------------------------------------------------------------------------
# Acceptance: the executed labs mixed with broken copies
# --------------------------------------------------------------------------------------------------
NOTEBOOKS = lab_stems()


@pytest.mark.notebook(labs="all")
@pytest.mark.skipif(not NOTEBOOKS, reason="no lab notebooks under labs/ yet")
def test_executed_labs_mixed_with_broken_ones(executed_lab, tmp_path, capsys, monkeypatch):
    # The copies are made from the executed solution notebooks, which are instructor_solution where the course's
    # notebooks are found (tests/test_grading_course.py); here they are graded on their records alone.
    monkeypatch.setenv("LABS_DIR", str(tmp_path / "no_course_notebooks"))
    root = tmp_path / "class"
    root.mkdir()
    expected = {}
    for stem in NOTEBOOKS:
        run = executed_lab(stem)
        shutil.copy(run.output, root / f"{stem}.ipynb")  # what `labhelpers run` wrote: id = folder name
        expected[f"{stem}.ipynb"] = ("class", stem, "complete")
        text = Path(run.output).read_text(encoding="utf-8")
        write(root, f"cut_{stem}.ipynb", text[: len(text) * 2 // 3])
        expected[f"cut_{stem}.ipynb"] = ("cut", stem, "invalid_file")
        shutil.copy(LABS / f"{stem}.ipynb", root / f"fresh_{stem}.ipynb")  # committed without outputs
        expected[f"fresh_{stem}.ipynb"] = ("fresh", stem, "not_executed")
        nb = json.loads(text)
        code = [c for c in nb["cells"] if c["cell_type"] == "code" and c.get("execution_count")]
        counts = [c["execution_count"] for c in code]
        shuffled = counts[::-1]  # reversed: never increasing
        for c, n in zip(code, shuffled):
            c["execution_count"] = n
        write(root, f"shuffled_{stem}.ipynb", json.dumps(nb))
        expected[f"shuffled_{stem}.ipynb"] = ("shuffled", stem, "out_of_order")
        nb = json.loads(text)
        broken = next(i for i, c in enumerate(nb["cells"]) if c["cell_type"] == "code"
                                   and any(o.get("output_type") == "display_data" for o in c["outputs"]))
        nb["cells"][broken]["outputs"] = [{"output_type": "error", "ename": "RuntimeError", "evalue": "boom",
                                           "traceback": []}]
        for c in nb["cells"][broken + 1:]:
            if c["cell_type"] == "code":
                c["outputs"], c["execution_count"] = [], None
        write(root, f"crash_{stem}.ipynb", json.dumps(nb))
        expected[f"crash_{stem}.ipynb"] = ("crash", stem, "cell_error")
    write(root, "empty.ipynb", b"")
    expected["empty.ipynb"] = ("empty", "", "invalid_file")

    before = snapshot(root)
    out = tmp_path / "grades"
    assert main(["grade", str(root), "--out", str(out)]) == 0
    assert snapshot(root) == before
    assert all((out / f).stat().st_size > 0 for f in ("gradebook.csv", "grades.json", "report.md"))
    rows = read_gradebook(out)
    got = {Path(f).name: (r["submission_id"], r["lab"], r["status"]) for f, r in rows.items()}
    assert got == expected
    for stem in NOTEBOOKS:
        row = rows[str(root / f"{stem}.ipynb")]
        # a lab earns points when one of its recorded checks is worth any (quiz_* checks count through their pattern)
        recorded = records.read_records(root / f"{stem}.ipynb")
        checks = [r["name"] for r in recorded if r["kind"] == "check"]
        scored = any((listed_points(stem, name) or 0) > 0 for name in checks)
        has_results = any(r["kind"] == "result" for r in recorded)  # lab 00 records checks only
        assert row["points_earned"] == row["points_possible"] and (float(row["points_possible"]) > 0) == scored
        assert bool(row["key_results"]) == has_results, f"{stem}: key results {row['key_results']!r}"
    assert "gradebook.csv" in capsys.readouterr().out
