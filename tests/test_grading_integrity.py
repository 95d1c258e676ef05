"""What the grader can tell without a rerun: cut-off files, real-life file names, edited records, reference
answers in exercises, the one table of points, and the exports for Gradescope and Canvas."""

from __future__ import annotations

import ast
import csv
import importlib
import json
import re
import shutil
from pathlib import Path

import nbformat
import pytest
from conftest import ROOT, lab_paths

from labhelpers.course import generated, points
from labhelpers.course.cli import main
from labhelpers.course.grading import grade, statuses
from labhelpers.course.grading.discover import Submission, identify, load
from labhelpers.course.grading.exercises import EXERCISES
from labhelpers.course.grading.inspection import Inspection, _check_reference_use
from labhelpers.course.student import BEGIN, END

LAB = "01_instruction_tuning"
CHECK_CALL = re.compile(r"record_check\(\s*f?[\"']([^\"']+)[\"']")


def lab_sources() -> dict[str, list[str]]:
    return {p.stem: [c.source for c in nbformat.read(p, 4).cells if c.cell_type == "code"]
            for p in lab_paths()}


# --------------------------------------------------------------------------------------------------
# Points and statuses: one table each, shown in the README
# --------------------------------------------------------------------------------------------------
def test_every_check_the_labs_record_has_its_points_in_the_one_table():
    unlisted = []
    for lab, sources in lab_sources().items():
        for source in sources:
            for name in CHECK_CALL.findall(source):
                concrete = re.sub(r"\{[^}]*\}", "0.9", name)  # f"top_p_{p}_..." -> one of its values
                if points.listed_points(lab, concrete) is None:
                    unlisted.append(f"{lab}: {name}")
    assert not unlisted, f"add these checks to labhelpers/course/points.py (0 points if they only demonstrate): {unlisted}"


def test_no_lab_gives_a_check_its_points():
    """The table decides points; a points= in a lab's record_check call would be ignored, and mislead a reader."""
    given = []
    for lab, sources in lab_sources().items():
        for source in sources:
            code = "\n".join("" if line.lstrip().startswith(("!", "%")) else line for line in source.splitlines())
            given += [f"{lab} line {node.lineno}" for node in ast.walk(ast.parse(code))
                      if isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", "")) ==
                      "record_check" and any(k.arg == "points" for k in node.keywords)]
    assert not given, f"record_check(points=...) in {given}: enter the points in labhelpers/course/points.py"


def test_demonstrations_carry_no_points():
    assert points.listed_points("05_generation_parameters", "softmax_is_a_distribution") == 0
    assert points.listed_points("05_generation_parameters", "greedy_is_deterministic") == 0
    assert points.listed_points("04_ppo_rlhf", "training_statistics_finite") == 0
    assert points.listed_points("03_dpo", "quiz_anything") == points.QUIZ_POINTS


def test_readme_shows_the_status_and_points_tables_as_generated():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    fix = "run python -m labhelpers.course.generated"
    assert generated.block(readme, "statuses", "README.md") == statuses.markdown_table(), fix
    assert generated.block(readme, "points", "README.md") == points.points_table(), fix


# --------------------------------------------------------------------------------------------------
# Exercises solved with the library's reference
# --------------------------------------------------------------------------------------------------
def test_the_exercise_table_names_real_exercises_and_real_references():
    sources = lab_sources()
    for lab, table in EXERCISES.items():
        if lab not in sources:  # a lab being written: its notebook is not in labs/ yet
            continue
        for func, exercise in table.items():
            assert any(f"def {func}(" in s and BEGIN in s for s in sources.get(lab, [])), f"{lab}: no exercise {func}"
            for dotted in exercise.references:
                module, name = dotted.rsplit(".", 1)
                assert hasattr(importlib.import_module(module), name), dotted


def _reference_problems(lab: str, sources: list[str]) -> list[str]:
    insp = Inspection(Submission(Path("x.ipynb"), "x", lab), lab=lab)
    _check_reference_use(insp, [{"cell_type": "code", "source": s} for s in sources])
    return [p.message for p in insp.problems]


def _solved_with(source: str, func: str, dotted: str) -> str:
    """``source`` with the solution of ``func`` replaced by a call to the reference ``dotted``."""
    module, name = dotted.rsplit(".", 1)
    lines, out, inside = source.split("\n"), [], None
    for line in lines:
        if line.strip() == BEGIN and inside is None:
            indent = line[: len(line) - len(line.lstrip())]
            out += [line, f"{indent}from {module} import {name}", f"{indent}return {name}"]
            inside = True
        elif line.strip() == END and inside:
            out.append(line)
            inside = None
        elif not inside:
            out.append(line)
    return "\n".join(out)


@pytest.mark.parametrize("lab", sorted(EXERCISES))
def test_the_labs_own_solutions_are_not_flagged_and_a_reference_call_is(lab):
    if lab not in lab_sources():
        pytest.skip(f"{lab}.ipynb is not in labs/ yet")
    sources = lab_sources()[lab]
    assert _reference_problems(lab, sources) == [], "the lab's own solution is taken for the reference"
    for func, exercise in EXERCISES[lab].items():
        cheated = [_solved_with(s, func, exercise.references[0]) if f"def {func}(" in s else s for s in sources]
        found = _reference_problems(lab, cheated)
        assert len(found) == 1 and f"`{func}` uses {exercise.references[0]}" in found[0], (func, found)


def test_the_exercise_name_imported_from_the_reference_is_flagged():
    sources = lab_sources()["02_reward_modeling"] + ["from labhelpers.losses import bradley_terry_loss as bt_loss"]
    [found] = _reference_problems("02_reward_modeling", sources)
    assert "`bt_loss` uses labhelpers.losses.bradley_terry_loss" in found


# --------------------------------------------------------------------------------------------------
# Submission ids
# --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name,expected,renamed", [
    (f"alice_{LAB}.ipynb", "alice", False),
    (f"alice_{LAB} (1).ipynb", "alice", True),
    (f"alice_{LAB} (12).ipynb", "alice", True),
    (f"Alice-{LAB}-final.ipynb", "alice", True),
    (f"ALICE_{LAB.upper()}_v2.ipynb", "alice", True),
    (f"alice_final_{LAB} copy.ipynb", "alice", True),
    (f"alice_{LAB}-1.ipynb", "alice", True),
    (f"alice {LAB.replace('_', ' ')}.ipynb", "alice", True),
    (f"  alice__{LAB}__.ipynb", "alice", False),  # the separators around the lab go either way
    (f"mary_jane_{LAB}.ipynb", "mary_jane", False),
    ("bob.ipynb", "bob", False),
    ("bob (1).ipynb", "bob", True),
])
def test_submission_ids_survive_how_files_arrive(name, expected, renamed):
    naming = identify(Path("/class") / name, {})
    assert (naming.submission_id, naming.lab) == (expected, None if name.startswith("bob") else LAB)
    assert bool(naming.renamed) == renamed, naming.renamed
    if renamed:
        assert naming.renamed[0].startswith(f"`{name}` is submission `{expected}`")


# --------------------------------------------------------------------------------------------------
# Cut-off and damaged files
# --------------------------------------------------------------------------------------------------
def _executed_like() -> str:
    """An executed-looking notebook with every kind of JSON token: strings with escapes and non-ASCII text,
    integers, floats with exponents, negative numbers, true/false/null, nested lists and objects."""
    nb = nbformat.v4.new_notebook()
    for k in range(6):
        cell = nbformat.v4.new_code_cell(f'print("größe \\\\n {k}")\nx = {{"é": [1.5e-07, -3, None]}}',
                                         execution_count=k + 1)
        cell.outputs = [nbformat.v4.new_output("display_data", data={"application/vnd.labhelpers.record+json": {
            "name": f"c{k}", "passed": k % 2 == 0, "value": -2.5e-7 * k, "threshold": None, "note": "✓ \"q\""}})]
        nb.cells.append(cell)
    return nbformat.writes(nb)


def _cut_messages(text: str, encoding: str, positions) -> dict[str, int]:
    found: dict[str, int] = {}
    for cut in positions:
        raw = text.encode(encoding)[:cut]
        nb, why = load(_write(raw))
        key = "cut off" if why and "cut off" in why else (why or "loaded")[:60]
        found[key] = found.get(key, 0) + 1
    return found


_TMP: list[Path] = []


def _write(raw: bytes) -> Path:
    _TMP[0].write_bytes(raw)
    return _TMP[0]


@pytest.fixture(autouse=True)
def scratch(tmp_path):
    _TMP[:] = [tmp_path / "cut.ipynb"]


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "utf-16", "utf-32"])
def test_a_file_cut_anywhere_is_cut_off(encoding):
    text = _executed_like()
    size = len(text.encode(encoding))
    start = {"utf-8": 1, "utf-8-sig": 4, "utf-16": 3, "utf-32": 5}[encoding]  # at least one character
    assert _cut_messages(text, encoding, range(start, size, 1 if encoding == "utf-8" else 7)) == {
        "cut off": len(range(start, size, 1 if encoding == "utf-8" else 7))}


def test_a_damaged_file_is_not_called_cut_off():
    text = _executed_like()
    middle = text.index('"passed"')
    for damaged in (text[:middle] + text[middle + 1:], text.replace(": true", ": ture", 1),
                    text[:middle] + "," + text[middle:], text.replace('"execution_count": 2', '"execution_count": 2.', 1)):
        nb, why = load(_write(damaged.encode()))
        assert nb is None and "damaged or edited by hand" in why and "cut off" not in why


@pytest.mark.notebook(labs=["01"])
def test_the_executed_lab_cut_at_many_positions_is_cut_off(executed_lab):
    text = Path(executed_lab("01").output).read_text(encoding="utf-8")
    size = len(text.encode())
    positions = sorted(set(range(1, size, max(1, size // 150))) | {text.encode().index(b'"source"') + 5})
    assert _cut_messages(text, "utf-8", positions) == {"cut off": len(positions)}


# --------------------------------------------------------------------------------------------------
# Exports
# --------------------------------------------------------------------------------------------------
GRADESCOPE_TOP = {"score", "execution_time", "output", "output_format", "visibility", "stdout_visibility",
                  "extra_data", "tests", "leaderboard"}
GRADESCOPE_TEST = {"score", "max_score", "status", "name", "name_format", "number", "output", "output_format",
                   "tags", "visibility", "extra_data"}


def _class_folder(tmp_path: Path) -> Path:
    from test_grading import CHECKS, craft

    from labhelpers import records

    recs = []
    saved, context = list(records._log), dict(records._context)
    for lab, failing in ((LAB, ()), (LAB, ("bleu_rises",)), ("02_reward_modeling", ())):
        records._log.clear()
        records.set_context(lab=lab, profile="tiny")
        for name, _, required in CHECKS:
            records.record_check(name, name not in failing, value=1.0, threshold=0.5, required=required)
        recs.append(list(records._log))
    records._log[:] = saved
    records._context.update(context)
    root = tmp_path / "class"
    root.mkdir()
    nbformat.write(craft(recs[0]), root / f"ann_{LAB}.ipynb")
    nbformat.write(craft(recs[1]), root / f"ben_{LAB}.ipynb")
    nbformat.write(craft(recs[2]), root / "ann_02_reward_modeling.ipynb")
    (root / "empty.ipynb").write_bytes(b"")
    return root


def test_exports_follow_the_documented_formats(tmp_path, monkeypatch):
    from test_grading import enter_crafted_points

    enter_crafted_points(monkeypatch)
    root = _class_folder(tmp_path)
    out = tmp_path / "g"
    assert main(["grade", str(root), "--out", str(out), "--export", "gradescope,canvas"]) == 0
    results = sorted((out / "gradescope").glob("*/*/results.json"))
    assert [p.relative_to(out / "gradescope").as_posix() for p in results] == [
        "ann/01_instruction_tuning/results.json", "ann/02_reward_modeling/results.json",
        "ben/01_instruction_tuning/results.json", "empty/unknown/results.json"]
    for path in results:
        doc = json.loads(path.read_text())
        assert set(doc) <= GRADESCOPE_TOP and isinstance(doc["score"], float) and isinstance(doc["output"], str)
        for test in doc["tests"]:
            assert set(test) <= GRADESCOPE_TEST and {"name", "score", "max_score", "output"} <= set(test)
            assert isinstance(test["score"], float) and isinstance(test["max_score"], float)
            assert test["status"] in ("passed", "failed") and 0 <= test["score"] <= test["max_score"]
    ben = json.loads((out / "gradescope/ben/01_instruction_tuning/results.json").read_text())
    assert ben["score"] == sum(t["score"] for t in ben["tests"]) == 3.0
    assert [(t["name"], t["status"], t["max_score"]) for t in ben["tests"]] == [
        ("loss_falls", "passed", 2.0), ("bleu_rises", "failed", 1.0), ("format_ok", "passed", 1.0)]
    with (out / "canvas.csv").open(newline="") as fh:
        rows = list(csv.reader(fh))
    assert rows == [["SIS Login ID", "01_instruction_tuning", "02_reward_modeling", "status"],
                    ["ann", "4", "4", ""], ["ben", "3", "", ""]]
    gradebook = (out / "gradebook.csv").read_text().splitlines()[0]
    assert gradebook == ("submission_id,lab,status,points_earned,points_possible,checks_passed,checks_total,"
                         "key_results,file,rerun_differs"), "gradebook.csv keeps its columns"


def test_an_unknown_export_format_gets_one_message_listing_the_valid_ones(tmp_path, capsys):
    root = _class_folder(tmp_path)
    assert main(["grade", str(root), "--out", str(tmp_path / "g"), "--export", "gradescope,moodle"]) == 2
    err = capsys.readouterr().err
    assert "Unknown export format 'moodle'; valid formats: gradescope, canvas." in err


# --------------------------------------------------------------------------------------------------
# Acceptance: lab 01 as instructors receive it
# --------------------------------------------------------------------------------------------------
def _edited_copies(text: str) -> dict[str, str]:
    """The ways the acceptance folder's copies of an executed lab 01 were changed."""
    nb = json.loads(text)
    mime = "application/vnd.labhelpers.record+json"
    flipped = json.loads(text)
    for cell in flipped["cells"]:
        for out in cell.get("outputs", []):
            rec = out.get("data", {}).get(mime)
            if rec and rec["name"] == "loss_decreases":  # as a run that fails it records it, then flipped
                rec["value"], rec["passed"] = 1.25, True
    replaced = json.loads(text)
    cell = next(c for c in replaced["cells"] if "def formatting_prompts_func(" in "".join(c["source"]))
    cell["source"] = "".join(cell["source"]).replace(
        'return formatting_prompts_func_no_response(example) + example["output"]',
        'return formatting_prompts_func_no_response(example) + example["output"].strip()')
    assert cell["source"] != "".join(next(c for c in nb["cells"] if "def formatting_prompts_func(" in
                                          "".join(c["source"]))["source"])
    inside_string = text.index('"source"', len(text) // 2) + 15
    return {"flipped": json.dumps(flipped), "replaced": json.dumps(replaced), "cut": text[:inside_string]}


@pytest.mark.notebook(labs=["01"])
def test_lab01_folder_gets_one_row_each_with_the_right_status(executed_lab, tmp_path, monkeypatch):
    # Every copy here is made from the executed solution notebook, which the grader would call
    # instructor_solution before anything else (tests/test_grading_course.py): without the course's notebooks
    # it grades them on their records alone.
    monkeypatch.setenv("LABS_DIR", str(tmp_path / "no_course_notebooks"))
    run = executed_lab("01")
    assert run.status == "passed", run.error
    text = Path(run.output).read_text(encoding="utf-8")
    edited = _edited_copies(text)
    root = tmp_path / "class"
    root.mkdir()
    shutil.copy(run.output, root / f"ann_{LAB}.ipynb")
    (root / f"ben_{LAB}.ipynb").write_text(edited["flipped"], encoding="utf-8")
    (root / f"cat_{LAB}.ipynb").write_text(edited["replaced"], encoding="utf-8")
    shutil.copy(run.output, root / f"dan_{LAB}.ipynb")
    shutil.copy(run.output, root / f"dan_{LAB} (1).ipynb")
    (root / f"eve_{LAB}.ipynb").write_text(edited["cut"], encoding="utf-8")
    (root / f"fay_{LAB}.ipynb").write_bytes(b"")
    before = {p.name: p.read_bytes() for p in root.iterdir()}

    grades = grade([root], tmp_path / "g")
    assert {p.name: p.read_bytes() for p in root.iterdir()} == before, "an input byte changed"
    got = sorted((Path(g.file).name, g.submission_id, g.status) for g in grades)
    assert got == [(f"ann_{LAB}.ipynb", "ann", "complete"), (f"ben_{LAB}.ipynb", "ben", "check_inconsistent"),
                   (f"cat_{LAB}.ipynb", "cat", "code_mismatch"), (f"dan_{LAB} (1).ipynb", "dan", "duplicate"),
                   (f"dan_{LAB}.ipynb", "dan", "duplicate"), (f"eve_{LAB}.ipynb", "eve", "invalid_file"),
                   (f"fay_{LAB}.ipynb", "fay", "invalid_file")]
    by_file = {Path(g.file).name: g for g in grades}
    assert "cut off" in by_file[f"eve_{LAB}.ipynb"].problems[0].message
    assert "empty" in by_file[f"fay_{LAB}.ipynb"].problems[0].message
    assert by_file[f"ben_{LAB}.ipynb"].points_earned < by_file[f"ann_{LAB}.ipynb"].points_earned
    report = (tmp_path / "g" / "report.md").read_text()
    assert f"this file and dan_{LAB}.ipynb" in report and f"`dan_{LAB} (1).ipynb` is submission `dan`" in report


def test_a_failed_quiz_edited_to_passed_is_caught(tmp_path):
    from test_grading import craft

    from labhelpers import records

    saved, context = list(records._log), dict(records._context)
    records._log.clear()
    records.set_context(lab=LAB, profile="tiny")
    records.record_check("quiz_01_ignore_index", False, value="a", threshold="b", message="wrong")
    made = [dict(r) for r in records._log]
    records._log[:] = saved
    records._context.update(context)
    made[0]["passed"] = True
    nbformat.write(craft(made), tmp_path / f"kay_{LAB}.ipynb")
    [g] = grade([tmp_path / f"kay_{LAB}.ipynb"], tmp_path / "g")
    assert g.status == "check_inconsistent" and g.points_earned == 0 and g.checks[0].passed is False
