"""Submission ids as classes produce them (issue 24, item 3): Jupyter's and Colab's generic names, Canvas's bulk
download, accented names saved on macOS and Windows, the instructor's roster, a metadata id claiming a classmate,
and files that cannot be read. Each test builds the class's folder in tmp_path and checks what an instructor
reads: the id, the status, the points and the report's words."""

from __future__ import annotations

import csv
import json
import os
import unicodedata
from pathlib import Path

import pytest
from test_grading import LAB, craft, enter_crafted_points, write

from labhelpers import records
from labhelpers.course.cli import main
from labhelpers.course.grading import grade, statuses


@pytest.fixture(autouse=True)
def crafted_points(monkeypatch):
    enter_crafted_points(monkeypatch)


@pytest.fixture
def recs(monkeypatch):
    """Records of a crafted lab 01: ``recs()`` passes every check (4 points), ``recs(failing=...)`` fails some."""
    from test_grading import CHECKS

    def make(failing=()):
        monkeypatch.setattr(records, "_log", [])
        monkeypatch.setitem(records._context, "lab", None)
        monkeypatch.setitem(records._context, "profile", "tiny")
        for name, _, required in CHECKS:
            records.record_check(name, name not in failing, value=0.5, threshold=0.25, required=required, lab=LAB)
        return [dict(r) for r in records.recorded()]

    return make


def by_file(grades, root: Path) -> dict[str, tuple]:
    return {Path(g.file).relative_to(root).as_posix(): (g.submission_id, g.status, g.points_earned) for g in grades}


def report_of(out: Path) -> str:
    return (out / "report.md").read_text(encoding="utf-8")


# --------------------------------------------------------------------------------------------------
# Generic names: the folder decides
# --------------------------------------------------------------------------------------------------
def test_untitled_in_every_students_folder_is_that_student(tmp_path, recs):
    """Old code: every one of these was `untitled` (or `untitled1`, ...), so alice and bob were duplicates."""
    root = tmp_path / "class"
    for folder, name in [("alice", "Untitled.ipynb"), ("bob", "Untitled.ipynb"), ("cat", "Untitled1.ipynb"),
                         ("dan", "Untitled-2.ipynb"), ("eve", "Untitled (3).ipynb")]:
        write(root, f"{folder}/{name}", craft(recs(), metadata={"lab": LAB}))
    out = tmp_path / "g"
    grades = grade([root], out)
    assert by_file(grades, root) == {
        "alice/Untitled.ipynb": ("alice", "complete", 4), "bob/Untitled.ipynb": ("bob", "complete", 4),
        "cat/Untitled1.ipynb": ("cat", "complete", 4), "dan/Untitled-2.ipynb": ("dan", "complete", 4),
        "eve/Untitled (3).ipynb": ("eve", "complete", 4)}
    assert "Named: `Untitled.ipynb` is submission `alice` (the name `Untitled` is generic, so the folder decides)." \
        in report_of(out)


def test_colab_copy_of_is_dropped_and_the_lab_alone_names_no_one(tmp_path, recs):
    """Old code: every "Copy of ..." file was `copy_of`: three students in duplicate."""
    root = tmp_path / "class"
    write(root, f"carol/Copy of {LAB}.ipynb", craft(recs()))
    write(root, f"dave/Copy of {LAB}.ipynb", craft(recs(failing=("bleu_rises",))))
    write(root, f"inbox/Copy of erin_{LAB} (1).ipynb", craft(recs()))
    out = tmp_path / "g"
    grades = grade([root], out)
    assert by_file(grades, root) == {f"carol/Copy of {LAB}.ipynb": ("carol", "complete", 4),
                                     f"dave/Copy of {LAB}.ipynb": ("dave", "checks_failed", 3),
                                     f"inbox/Copy of erin_{LAB} (1).ipynb": ("erin", "complete", 4)}
    assert {g.lab for g in grades} == {LAB}
    report = report_of(out)
    assert f"`Copy of {LAB}.ipynb` is submission `carol` (the name `Copy of {LAB}` is generic" in report
    assert f"`Copy of erin_{LAB} (1).ipynb` is submission `erin` (dropped 'Copy of', '(1)')" in report


# --------------------------------------------------------------------------------------------------
# Canvas's bulk download
# --------------------------------------------------------------------------------------------------
def test_a_canvas_late_resubmission_is_the_same_student_and_the_newest_upload_wins(tmp_path, recs):
    """Old code: `smithjane_40123_912300` and `smithjane_late_40123_912345` were two students, both graded."""
    root = tmp_path / "canvas"
    first = f"smithjane_40123_912300_{LAB}.ipynb"
    late = f"smithjane_late_40123_912345_{LAB}-1.ipynb"
    write(root, first, craft(recs(failing=("bleu_rises",))))
    write(root, late, craft(recs()))
    write(root, f"jonesbob_40124_912301_{LAB}.ipynb", craft(recs()))
    out = tmp_path / "g"
    grades = grade([root], out, exports=["canvas"])
    assert by_file(grades, root) == {first: ("smithjane", "superseded", 0), late: ("smithjane", "complete", 4),
                                     f"jonesbob_40124_912301_{LAB}.ipynb": ("jonesbob", "complete", 4)}
    report = report_of(out)
    assert f"{first} is an older Canvas upload of 'smithjane' for lab {LAB}: the newer upload {late} is graded " \
           "instead." in report
    assert f"`{late}` is the newest of 2 Canvas uploads of `smithjane` for lab {LAB}, so it is the one graded " \
           f"(older, superseded: {first})" in report
    assert f"`{late}` is submission `smithjane` (a Canvas download: late, user 40123, upload 912345)" in report
    with (out / "canvas.csv").open(newline="") as fh:
        assert list(csv.reader(fh))[1:] == [["jonesbob", "4", ""], ["smithjane", "4", ""]]


def test_superseded_is_a_status_that_earns_nothing_right_after_duplicate():
    order = list(statuses.STATUSES)
    assert order.index("superseded") == order.index("duplicate") + 1
    assert "superseded" in statuses.ZERO_POINT_STATUSES and "superseded" not in statuses.NEEDS_HUMAN
    assert "newer" in statuses.VERDICTS["superseded"]


def test_two_files_of_one_student_outside_canvas_stay_duplicates(tmp_path, recs):
    root = tmp_path / "class"
    write(root, f"mia_{LAB}.ipynb", craft(recs()))
    write(root, f"mia_{LAB} (1).ipynb", craft(recs()))
    grades = grade([root], tmp_path / "g")
    assert sorted(g.status for g in grades) == ["duplicate", "duplicate"]


# --------------------------------------------------------------------------------------------------
# Accented names: NFC and NFD are one id
# --------------------------------------------------------------------------------------------------
def test_an_accented_name_saved_on_macos_and_on_windows_is_one_student(tmp_path, recs):
    """Old code: two rows, `josé` twice in different bytes, both complete."""
    root = tmp_path / "class"
    nfc = f"josé_{LAB}.ipynb"
    nfd = unicodedata.normalize("NFD", f"josé_{LAB} (1).ipynb")
    write(root, nfc, craft(recs()))
    write(root, nfd, craft(recs()))
    write(root, unicodedata.normalize("NFD", "zoë") + "/Untitled.ipynb", craft(recs(), metadata={"lab": LAB}))
    grades = grade([root], tmp_path / "g")
    got = sorted((g.submission_id, g.status) for g in grades)
    assert got == [("josé", "duplicate"), ("josé", "duplicate"), ("zoë", "complete")]
    assert all(unicodedata.is_normalized("NFC", g.submission_id) for g in grades)


# --------------------------------------------------------------------------------------------------
# The instructor's roster
# --------------------------------------------------------------------------------------------------
def _roster(path: Path, rows: list[list[str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows(rows)
    return path


def test_a_roster_maps_files_and_folders_to_ids_and_wins_over_names(tmp_path, recs, capsys):
    """Old code: `--roster` was an unknown option (argparse exits 2)."""
    root = tmp_path / "class"
    write(root, "section_a/alice/Untitled.ipynb", craft(recs(), metadata={"lab": LAB, "submission_id": "bob"}))
    write(root, "section_a/bob/Untitled.ipynb", craft(recs(), metadata={"lab": LAB}))
    write(root, f"carol_{LAB}.ipynb", craft(recs()))
    write(root, f"dan_{LAB}.ipynb", craft(recs()))
    roster = _roster(tmp_path / "roster.csv", [["file", "submission_id"], ["section_a/alice", "a.smith@uni.edu"],
                                               ["./section_a/bob/Untitled.ipynb", "b.jones@uni.edu"],
                                               [f"carol_{LAB}.ipynb", "c.wu@uni.edu"]])
    out = tmp_path / "g"
    assert main(["grade", str(root), "--out", str(out), "--roster", str(roster)]) == 0
    with (out / "gradebook.csv").open(newline="", encoding="utf-8") as fh:
        rows = {Path(r["file"]).relative_to(root).as_posix(): (r["submission_id"], r["status"]) for r in csv.DictReader(fh)}
    assert rows == {"section_a/alice/Untitled.ipynb": ("a.smith@uni.edu", "complete"),
                    "section_a/bob/Untitled.ipynb": ("b.jones@uni.edu", "complete"),
                    f"carol_{LAB}.ipynb": ("c.wu@uni.edu", "complete"), f"dan_{LAB}.ipynb": ("dan", "complete")}
    report = report_of(out)
    assert f"`Untitled.ipynb` is submission `a.smith@uni.edu` (--roster {roster}, row 2)" in report
    assert "its notebook metadata claims submission id `bob`, but it is submission `a.smith@uni.edu`" in report
    assert "renamed: `Untitled.ipynb` is submission `b.jones@uni.edu`" in capsys.readouterr().out


def test_the_library_takes_a_roster_as_a_dict(tmp_path, recs):
    root = tmp_path / "class"
    write(root, "alice/Untitled.ipynb", craft(recs(), metadata={"lab": LAB}))
    [g] = grade([root], tmp_path / "g", roster={"alice/": "A-17"})
    assert (g.submission_id, g.status) == ("A-17", "complete")


@pytest.mark.parametrize("rows,message", [
    ([["file", "id"], ["alice", "a1"]],
     "row 1 (the header) lacks the column submission_id (it has 'file', 'id'). Give a CSV file whose first row is "
     "`file,submission_id`."),
    ([["file", "submission_id"], ["alice", "a1"], ["./alice/", "a2"]],
     "row 3: './alice/' is already mapped by row 2. Keep one row per file or folder."),
    ([["file", "submission_id"], ["alice", ""]],
     "row 2: the submission_id is empty. Give every row both a file (or folder) and the submission id it belongs to."),
    (None, "cannot be read (No such file or directory). Give a CSV file whose first row is `file,submission_id`."),
])
def test_a_roster_that_cannot_be_used_is_one_error_naming_the_row_and_the_fix(tmp_path, recs, capsys, rows, message):
    root = tmp_path / "class"
    write(root, "alice/Untitled.ipynb", craft(recs(), metadata={"lab": LAB}))
    roster = _roster(tmp_path / "roster.csv", rows) if rows else tmp_path / "missing.csv"
    out = tmp_path / "g"
    assert main(["grade", str(root), "--out", str(out), "--roster", str(roster)]) == 2
    err = capsys.readouterr().err
    assert err == f"error: --roster {roster}{'' if message.startswith('cannot') else ','} {message}\n"
    assert not out.exists(), "nothing is written for a roster that cannot be used"


# --------------------------------------------------------------------------------------------------
# A metadata id is never trusted
# --------------------------------------------------------------------------------------------------
def test_a_metadata_id_claiming_a_classmate_is_reported_and_harms_no_one(tmp_path, recs):
    """Old code: mallory's file became `alice`, and both alice and mallory were `duplicate`."""
    root = tmp_path / "class"
    write(root, f"alice_{LAB}.ipynb", craft(recs()))
    write(root, f"mallory_{LAB}.ipynb", craft(recs(failing=("bleu_rises",)), metadata={"submission_id": "Alice"}))
    write(root, f"ned_{LAB}.ipynb", craft(recs(), metadata={"submission_id": "NED"}))  # agrees: no note
    out = tmp_path / "g"
    grades = grade([root], out)
    assert by_file(grades, root) == {f"alice_{LAB}.ipynb": ("alice", "complete", 4),
                                     f"mallory_{LAB}.ipynb": ("mallory", "checks_failed", 3),
                                     f"ned_{LAB}.ipynb": ("ned", "complete", 4)}
    note = (f"`mallory_{LAB}.ipynb`: its notebook metadata claims submission id `Alice`, but it is submission "
            "`mallory` (ids come from the roster or the file and folder names; a metadata id is not trusted)")
    assert f"Named: {note}." in report_of(out)
    notebooks = json.loads((out / "grades.json").read_text(encoding="utf-8"))["notebooks"]
    assert {n["submission_id"]: n["renamed"] for n in notebooks} == {"alice": [], "mallory": [note], "ned": []}


# --------------------------------------------------------------------------------------------------
# Files that are not there or cannot be read
# --------------------------------------------------------------------------------------------------
def test_a_dangling_symlink_gets_an_invalid_file_row_saying_so(tmp_path, recs, capsys):
    """Old code: no row and no message at all."""
    root = tmp_path / "class"
    write(root, f"alice_{LAB}.ipynb", craft(recs()))
    os.symlink(tmp_path / "gone" / "work.ipynb", root / f"zed_{LAB}.ipynb")
    out = tmp_path / "g"
    assert main(["grade", str(root), "--out", str(out)]) == 0
    grades = {n["submission_id"]: n for n in json.loads((out / "grades.json").read_text())["notebooks"]}
    zed = grades["zed"]
    assert (zed["status"], zed["points_earned"], zed["lab"]) == ("invalid_file", 0, LAB)
    message = (f"The file is a symbolic link to {tmp_path / 'gone' / 'work.ipynb'}, which does not exist: the "
               "notebook itself was never handed in. Submit the .ipynb file, not a link to it.")
    assert zed["problems"] == [{"code": "invalid_file", "message": message}]
    assert message in report_of(out)
    [one] = grade([root / f"zed_{LAB}.ipynb"], tmp_path / "h")  # named on the command line, too
    assert one.status == "invalid_file"


def test_a_file_that_cannot_be_read_gets_an_invalid_file_row_saying_so(tmp_path, recs, monkeypatch):
    """(The old code said this too; kept here so that the symlink's handling does not lose it.)"""
    root = tmp_path / "class"
    locked = write(root, f"yan_{LAB}.ipynb", craft(recs()))
    read_bytes = Path.read_bytes

    def refuse(self):
        if self == locked:
            raise PermissionError(13, "Permission denied")
        return read_bytes(self)

    monkeypatch.setattr(Path, "read_bytes", refuse)
    [g] = grade([root], tmp_path / "g")
    assert (g.submission_id, g.status, g.points_earned) == ("yan", "invalid_file", 0)
    assert g.problems[0].message.startswith("The file could not be read (Permission denied)")
