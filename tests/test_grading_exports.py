"""Exports that do not trust what students wrote (issue 24, item 4): paths stay under --out whatever an id or a
lab claims, CSV cells never start a formula, canvas.csv leaves a grade that needs an instructor empty and says
why, and the Gradescope results.json a student sees holds only the course's own words."""

from __future__ import annotations

import csv
import json
import os
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import pytest
from test_grading import CHECKS, LAB, craft, enter_crafted_points, write

from labhelpers import records
from labhelpers.course.cli import main
from labhelpers.course.grading import grade, report
from labhelpers.course.grading.discover import normalise
from labhelpers.course.grading.statuses import NEEDS_HUMAN, VERDICTS

SECRET = "ghp_FAKEsecret0123456789"
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


@pytest.fixture(autouse=True)
def crafted_points(monkeypatch):
    enter_crafted_points(monkeypatch)


@pytest.fixture
def recs(monkeypatch):
    """Records of a crafted lab 01 (every check passes unless named in ``failing``; ``extra`` adds records)."""

    def make(failing=(), message="", extra=None):
        monkeypatch.setattr(records, "_log", [])
        monkeypatch.setitem(records._context, "lab", None)
        monkeypatch.setitem(records._context, "profile", "tiny")
        for name, _, required in CHECKS:
            records.record_check(name, name not in failing, value=0.5, threshold=0.25, required=required, lab=LAB,
                                 message=message)
        if extra:
            extra()
        return [dict(r) for r in records.recorded()]

    return make


def csv_rows(path: Path) -> list[list[str]]:
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.reader(fh))


# --------------------------------------------------------------------------------------------------
# Paths from ids stay under --out
# --------------------------------------------------------------------------------------------------
def test_ids_and_labs_that_climb_out_of_the_folder_stay_under_out(tmp_path, recs):
    """Old code: the metadata lab `../../../pwned_lab` put results.json outside --out (and the metadata id
    `../../../../pwned_id`, normalised to `/_/_/_/_/pwned_id`, an absolute path, wrote under `/_`)."""
    root = tmp_path / "class"
    write(root, "mallory/Untitled.ipynb", craft(recs(), metadata={"submission_id": "../../../../pwned_id",
                                                                  "lab": "../../../pwned_lab"}))
    write(root, f"ann_{LAB}.ipynb", craft(recs()))
    out = tmp_path / "a" / "b" / "g"  # deep enough that a climb of three lands inside tmp_path
    assert main(["grade", str(root), "--out", str(out), "--export", "gradescope"]) == 0
    written = sorted(tmp_path.rglob("results.json"))
    assert [p.relative_to(out / "gradescope").parts for p in written] == [
        ("ann", LAB, "results.json"), ("mallory", report.safe_name("../../../pwned_lab"), "results.json")]
    assert report.safe_name("../../../pwned_lab").startswith("pwned_lab-")
    assert all(p.resolve().is_relative_to(out.resolve()) for p in tmp_path.rglob("*pwned*"))


def test_a_roster_id_that_is_a_path_is_made_safe(tmp_path, recs):
    root = tmp_path / "class"
    write(root, "a/Untitled.ipynb", craft(recs(), metadata={"lab": LAB}))
    write(root, "b/Untitled.ipynb", craft(recs(), metadata={"lab": LAB}))
    out = tmp_path / "x" / "g"
    grade([root], out, exports=["gradescope"], roster={"a": "../../escaped", "b": str(tmp_path / "absolute")})
    folders = sorted(p.name for p in (out / "gradescope").iterdir())
    assert len(folders) == 2 and all(not f.startswith(".") and "/" not in f for f in folders)
    assert not (tmp_path / "escaped").exists() and not (tmp_path / "absolute").exists()
    assert len(list((out / "gradescope").rglob("results.json"))) == 2


@pytest.mark.parametrize("text,safe", [("alice", "alice"), ("mary_jane-2.0", "mary_jane-2.0"), ("josé", "josé"),
                                       ("", "unknown")])
def test_safe_names_keep_plain_ids_as_they_are(text, safe):
    assert report.safe_name(text) == safe


@pytest.mark.parametrize("text", ["..", ".", "../../etc", "/etc/passwd", ".hidden", "a/b", "a\\b", "x" * 500,
                                  "=HYPERLINK(\"http://evil\")", "nul\0byte", "\n"])
def test_safe_names_never_leave_their_folder(text):
    name = report.safe_name(text)
    assert name and not name.startswith(".") and len(name) <= report.SAFE_NAME_CHARACTERS + 9
    assert all(c.isalnum() or c in "_-." for c in name) and name not in (".", "..")
    assert report.safe_name(text) != report.safe_name(text + "x"), "two ids never share a folder"


def test_a_link_planted_in_the_output_folder_is_refused(tmp_path):
    out = tmp_path / "gradescope"
    out.mkdir()
    os.symlink(tmp_path / "elsewhere", out / "alice")
    with pytest.raises(ValueError, match="resolves outside"):
        report.inside(out, "alice", LAB, "results.json")


# --------------------------------------------------------------------------------------------------
# CSV cells never start a formula
# --------------------------------------------------------------------------------------------------
def test_formula_file_names_are_neutralised_in_both_csvs(tmp_path, recs, monkeypatch):
    """Old code: `=HYPERLINK(...)` and `@SUM(...)` came out as live formulas in gradebook.csv and canvas.csv."""
    root = tmp_path / "class"
    names = ['=HYPERLINK("evil.example","click")', "@SUM(1+1)", "+cmd", "=2+5"]
    for name in names:
        write(root, f"{name}_{LAB}.ipynb", craft(recs(extra=lambda: records.record_result("=1+1", 2.0, lab=LAB))))
    monkeypatch.chdir(root)  # the file column then starts with the file's own name
    out = tmp_path / "g"
    assert main(["grade", ".", "--out", str(out), "--export", "canvas"]) == 0
    gradebook, canvas = csv_rows(out / "gradebook.csv"), csv_rows(out / "canvas.csv")
    numeric = [i for i, c in enumerate(gradebook[0]) if c.startswith(("points_", "checks_"))]
    for rows, numeric_columns in ((gradebook, numeric), (canvas, range(1, len(canvas[0]) - 1))):
        for row in rows[1:]:
            for i, cell in enumerate(row):
                assert not cell.startswith(FORMULA_START) or (i in numeric_columns and float(cell) < 0), cell
    ids = sorted(r[0] for r in gradebook[1:])
    assert ids == sorted(["'" + normalise(n) for n in names])
    assert sorted(r[0] for r in canvas[1:]) == ids
    assert {r[gradebook[0].index("file")] for r in gradebook[1:]} == {f"'{n}_{LAB}.ipynb" for n in names}
    assert {r[gradebook[0].index("key_results")] for r in gradebook[1:]} == {"'=1+1=2"}
    assert {r[gradebook[0].index("points_earned")] for r in gradebook[1:]} == {"4"}


@pytest.mark.parametrize("value,numeric,cell", [
    ("=1+2", False, "'=1+2"), ("+1", False, "'+1"), ("-2", False, "'-2"), ("@A1", False, "'@A1"),
    ("\tx", False, "'\tx"), ("\rx", False, "'\rx"), ("alice", False, "alice"), ("", True, ""),
    (-3, True, "-3"), ("-3", True, "-3"), ("-1.5e3", True, "-1.5e3"), ("-1+cmd", True, "'-1+cmd"), (4, True, "4"),
    ("=SUM(A1)", True, "'=SUM(A1)"),
])
def test_a_cell_is_neutralised_unless_it_is_a_number_in_a_numeric_column(value, numeric, cell):
    assert report.csv_cell(value, numeric) == cell


# --------------------------------------------------------------------------------------------------
# canvas.csv: a grade that needs an instructor is left for one
# --------------------------------------------------------------------------------------------------
def test_canvas_leaves_a_duplicate_empty_and_says_why(tmp_path, recs):
    """Old code: canvas.csv held the points of whichever duplicate was graded last, and no status column."""
    root = tmp_path / "class"
    write(root, f"mia_{LAB}.ipynb", craft(recs()))
    write(root, f"mia_{LAB} (1).ipynb", craft(recs(failing=("bleu_rises",))))
    write(root, f"ann_{LAB}.ipynb", craft(recs()))
    out = tmp_path / "g"
    grade([root], out, exports=["canvas"])
    assert csv_rows(out / "canvas.csv") == [
        ["SIS Login ID", LAB, "status"], ["ann", "4", ""],
        ["mia", "", f"duplicate: 2 files for {LAB}, an instructor decides"]]


def test_canvas_grades_the_readable_file_beside_an_unreadable_one(tmp_path, recs):
    """Before: one unreadable and one readable file of an id emptied the cell as a 'duplicate' that no row was."""
    root = tmp_path / "class"
    write(root, f"mia_{LAB}.ipynb", craft(recs()))
    write(root, f"mia_{LAB} (1).ipynb", b"")
    out = tmp_path / "g"
    statuses = sorted(g.status for g in grade([root], out, exports=["canvas"]))
    assert statuses == ["complete", "invalid_file"]
    assert csv_rows(out / "canvas.csv") == [["SIS Login ID", LAB, "status"], ["mia", "4", ""]]


def test_canvas_leaves_every_status_that_needs_a_human_empty(tmp_path, recs):
    root = tmp_path / "class"
    write(root, f"ann_{LAB}.ipynb", craft(recs()))
    [g] = grade([root], tmp_path / "g")
    for status in sorted(NEEDS_HUMAN - {"duplicate"}):
        report.write_canvas([replace(g, status=status)], tmp_path / "canvas.csv")
        assert csv_rows(tmp_path / "canvas.csv")[1] == ["ann", "", f"{status}: {LAB}, an instructor decides"]
    report.write_canvas([replace(g, status="checks_failed", points_earned=3.0)], tmp_path / "canvas.csv")
    assert csv_rows(tmp_path / "canvas.csv")[1] == ["ann", "3", ""]


# --------------------------------------------------------------------------------------------------
# Gradescope: only the course's words reach the student
# --------------------------------------------------------------------------------------------------
def test_results_json_holds_no_record_message_problem_message_or_path(tmp_path, recs):
    """Old code: the record's message, the problem messages and the record's value went into results.json."""
    root = tmp_path / "class"

    def leak():
        records.record_check(f"leak_{SECRET}", True, value=SECRET, message=f"token {SECRET}", lab=LAB)
        records.record_result("stolen", SECRET, lab=LAB)

    nb = craft(recs(failing=("bleu_rises",), message=f"see {SECRET}", extra=leak), error_after=4)
    [error] = [o for c in nb.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    error["evalue"] = f"HOME token {SECRET}"  # an error value quoting the secret
    write(root, f"eve_{LAB}.ipynb", nb)
    out = tmp_path / "g"
    assert main(["grade", str(root), "--out", str(out), "--export", "gradescope"]) == 0
    assert SECRET in (out / "report.md").read_text(), "the instructor's report still shows everything"
    [path] = (out / "gradescope").rglob("results.json")
    text = path.read_text()
    assert SECRET not in text and str(tmp_path) not in text and "eve_" not in text and "ipynb" not in text
    doc = json.loads(text)
    earned, possible = doc["score"], sum(t["max_score"] for t in doc["tests"])
    assert doc["output"] == f"Status: cell_error. {VERDICTS['cell_error']} Points: {earned:g} of {possible:g}."
    assert [(t["name"], t["status"], t["output"]) for t in doc["tests"][:3]] == [
        ("loss_falls", "passed", "Passed (2 points, required)."), ("bleu_rises", "failed", "Failed (1 point)."),
        ("format_ok", "passed", "Passed (1 point).")]
    unlisted = doc["tests"][3]
    assert unlisted["name"] == report.UNLISTED_CHECK and unlisted["output"].startswith("Passed (")


def test_values_reach_results_json_only_from_a_rerun_and_only_numbers(tmp_path, recs):
    root = tmp_path / "class"
    write(root, f"ann_{LAB}.ipynb", craft(recs()))
    [g] = grade([root], tmp_path / "g")
    assert "0.5" not in json.dumps(report.gradescope_result(g)), "no value without a rerun"
    rerun = SimpleNamespace(seconds=12.0)
    doc = report.gradescope_result(replace(g, rerun=rerun))
    assert doc["tests"][0]["output"] == "Passed (2 points, required). Value in the course's rerun: 0.5; needed: >= 0.25."
    texts = replace(g, rerun=rerun, checks=[replace(c, value=SECRET, threshold=SECRET) for c in g.checks])
    assert SECRET not in json.dumps(report.gradescope_result(texts)), "a text value never goes out"
