"""One generator writes every generated block (setup cells, hardware headers, the README's tables and Colab links,
the student versions, the quiz digests); its --check names each stale block and writes nothing, and a write puts
back the exact text."""

from __future__ import annotations

import shutil

import nbformat
import pytest
from conftest import ROOT

from labhelpers.course import generated, quiz_digests


@pytest.fixture()
def copy(tmp_path):
    """The files the generator reads and writes, copied: README.md, labs/, student/, the quiz's table and module, and
    the benchmark suite with its results."""
    shutil.copy(ROOT / "README.md", tmp_path / "README.md")
    for folder in ("labs", "student"):
        shutil.copytree(ROOT / folder, tmp_path / folder, ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    for path in (quiz_digests.TABLE, quiz_digests.MODULE):
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / path, tmp_path / path)
    (tmp_path / "benchmarks" / "results").mkdir(parents=True)
    for script in (ROOT / "benchmarks").glob("*.py"):
        shutil.copy(script, tmp_path / "benchmarks")
    shutil.copy(ROOT / "benchmarks" / "results" / "tiny.json", tmp_path / "benchmarks" / "results")
    return tmp_path


def _edit_readme(root, name):
    text = (root / "README.md").read_text(encoding="utf-8")
    body = generated.block(text, name, "README.md")
    lines = body.split("\n")
    lines[-1] += " (edited by hand)"
    (root / "README.md").write_text(generated.fill(text, name, "\n".join(lines)), encoding="utf-8")


def _edit_cell(root, lab, index, edit):
    path = root / "labs" / f"{lab}.ipynb"
    nb = nbformat.read(str(path), as_version=4)
    nb.cells[index].source = edit(nb.cells[index].source)
    nbformat.write(nb, str(path))


CORRUPTIONS = {
    "README.md <!-- hardware:start -->": lambda root: _edit_readme(root, "hardware"),
    "README.md <!-- points:start -->": lambda root: _edit_readme(root, "points"),
    "README.md <!-- statuses:start -->": lambda root: _edit_readme(root, "statuses"),
    "README.md <!-- benchmarks:tiny:start -->": lambda root: _edit_readme(root, "benchmarks:tiny"),
    "labs/03_dpo.ipynb cell 0 <!-- hardware:start -->":
        lambda root: _edit_cell(root, "03_dpo", 0, lambda s: s.replace("13.1 GiB", "10 GB")),
    "labs/02_reward_modeling.ipynb cell 1 (the setup cell)":
        lambda root: _edit_cell(root, "02_reward_modeling", 1, lambda s: s.replace('"main"', '"v0.9"')),
    "README.md <!-- colab:start -->": lambda root: _edit_readme(root, "colab"),
    "student/03_dpo.ipynb": lambda root: _edit_text(root / "student" / "03_dpo.ipynb", "raise NotImplementedError",
                                                    "pass  # raise NotImplementedError"),
    "labhelpers/quiz_questions.py (from instructor/quiz.toml)":
        lambda root: _edit_text(root / quiz_digests.MODULE, "digests=(\n", "digests=(\n            'f00',\n"),
}


def _edit_text(path, old, new):
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def _generated_files(root):
    return [root / "README.md", root / quiz_digests.MODULE, *sorted((root / "labs").glob("*.ipynb")),
            *sorted((root / "student").glob("*.ipynb"))]


def _run(capsys, *argv):
    code = generated.main(list(argv))
    out = capsys.readouterr().out
    return code, [line.split(": ", 1)[1] for line in out.splitlines() if ": " in line]


def test_the_repository_has_no_stale_block(capsys):
    code = generated.main(["--check"])
    assert code == 0, f"stale blocks, run python -m labhelpers.course.generated:\n{capsys.readouterr().out}"


@pytest.mark.parametrize("stale", CORRUPTIONS)
def test_check_names_the_one_stale_block_and_a_write_restores_the_exact_text(copy, capsys, stale):
    files = _generated_files(copy)
    before = {path: path.read_bytes() for path in files}
    CORRUPTIONS[stale](copy)
    corrupted = {path: path.read_bytes() for path in files}
    assert corrupted != before, "the corruption changed nothing"

    assert _run(capsys, "--root", str(copy), "--check") == (1, [stale])
    assert {path: path.read_bytes() for path in files} == corrupted, "--check wrote a file"

    assert _run(capsys, "--root", str(copy)) == (0, [stale])
    assert {path: path.read_bytes() for path in files} == before
    assert _run(capsys, "--root", str(copy), "--check") == (0, [])


def test_text_outside_the_markers_is_never_rewritten(copy, capsys):
    readme = copy / "README.md"
    text = readme.read_text(encoding="utf-8")
    edited = text.replace("## Benchmarks", "## Benchmarks (edited by hand)", 1)
    readme.write_text(edited, encoding="utf-8")
    assert _run(capsys, "--root", str(copy)) == (0, [])
    assert readme.read_text(encoding="utf-8") == edited


def test_a_missing_marker_is_an_error_naming_the_file_and_the_marker(copy, capsys):
    readme = copy / "README.md"
    readme.write_text(readme.read_text(encoding="utf-8").replace("<!-- points:end -->\n", ""), encoding="utf-8")
    assert generated.main(["--root", str(copy), "--check"]) == 2
    assert "README.md needs exactly one <!-- points:start --> … <!-- points:end -->" in capsys.readouterr().err


def test_a_marker_mentioned_inside_a_line_is_not_a_marker():
    text = "see `<!-- x:start -->` in prose\n<!-- x:start -->\nold\n<!-- x:end -->\nafter `<!-- x:end -->`"
    assert generated.block(text, "x") == "old"
    assert generated.fill(text, "x", "new\nlines") == text.replace("\nold\n", "\nnew\nlines\n")


def test_student_folder_holds_exactly_one_student_version_per_lab(copy, capsys):
    """A missing one is written, one whose lab is gone is removed; a lab's stale setup cell is reported once (the
    student version is made from the lab as the generator rewrites it)."""
    (copy / "student" / "01_instruction_tuning.ipynb").unlink()
    (copy / "student" / "99_gone.ipynb").write_text("{}", encoding="utf-8")
    expected = ["student/01_instruction_tuning.ipynb", "student/99_gone.ipynb (no such lab in labs/)"]
    assert _run(capsys, "--root", str(copy), "--check") == (1, expected)
    assert _run(capsys, "--root", str(copy)) == (0, expected)
    assert sorted(p.name for p in (copy / "student").iterdir()) == sorted(p.name for p in (copy / "labs").iterdir())
    assert _run(capsys, "--root", str(copy), "--check") == (0, [])


def test_an_instructor_adds_a_question_to_the_table(copy, capsys):
    """Editing the plain table is all it takes: the module gains the question's digests and encoded explanation,
    every other question keeps its salt, and the plain text is nowhere in the module."""
    module = copy / quiz_digests.MODULE
    salts = quiz_digests.salts_of(module)
    with (copy / quiz_digests.TABLE).open("a", encoding="utf-8") as table:
        table.write('\n[99_new]\nchoices = "ab"\nanswer = "a"\nexplanation = "Because a is the first letter."\n')
    name = f"{quiz_digests.MODULE.as_posix()} (from {quiz_digests.TABLE.as_posix()})"
    assert _run(capsys, "--root", str(copy)) == (0, [name])
    new_salts = quiz_digests.salts_of(module)
    assert set(new_salts) == set(salts) | {"99_new"} and {k: new_salts[k] for k in salts} == salts
    assert "first letter" not in module.read_text(encoding="utf-8")
    namespace: dict = {}
    exec(module.read_text(encoding="utf-8"), namespace)
    from labhelpers import quiz

    question = quiz.Question(**namespace["QUESTIONS"]["99_new"])
    assert question.digests == (quiz.digest(new_salts["99_new"], "choice:a"),)


def test_colab_links_open_the_student_versions_of_the_course_repository():
    from labhelpers.course.setup_cell import REPOSITORY

    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = generated.block(text, "colab", "README.md")
    labs = sorted(p.stem for p in (ROOT / "labs").glob("*.ipynb"))
    assert REPOSITORY == "https://github.com/llm-finetuning-labs/llm-finetuning-labs"
    for stem in labs:
        url = ("https://colab.research.google.com/github/llm-finetuning-labs/llm-finetuning-labs/blob/main/"
               f"student/{stem}.ipynb")
        assert f"]({url})" in block and f"](student/{stem}.ipynb)" in block
    assert "/labs/" not in block and "](labs/" not in block
    intro = text.split("## Quick start")[0]  # the course's table and where to start: the student versions
    assert "](labs/0" not in intro and all(f"](student/{stem}.ipynb)" in intro for stem in labs if stem != "00_overview")
