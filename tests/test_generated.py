"""One generator writes every generated block (setup cells, hardware headers, the README's tables); its --check
names each stale block and writes nothing, and a write puts back the exact text."""

from __future__ import annotations

import shutil

import nbformat
import pytest
from conftest import ROOT

from labhelpers.course import generated


@pytest.fixture()
def copy(tmp_path):
    """The files the generator reads and writes, copied: README.md, labs/, and the benchmark suite with its results."""
    shutil.copy(ROOT / "README.md", tmp_path / "README.md")
    shutil.copytree(ROOT / "labs", tmp_path / "labs", ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
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
}


def _run(capsys, *argv):
    code = generated.main(list(argv))
    out = capsys.readouterr().out
    return code, [line.split(": ", 1)[1] for line in out.splitlines() if ": " in line]


def test_the_repository_has_no_stale_block(capsys):
    code = generated.main(["--check"])
    assert code == 0, f"stale blocks, run python -m labhelpers.course.generated:\n{capsys.readouterr().out}"


@pytest.mark.parametrize("stale", CORRUPTIONS)
def test_check_names_the_one_stale_block_and_a_write_restores_the_exact_text(copy, capsys, stale):
    files = [copy / "README.md", *sorted((copy / "labs").glob("*.ipynb"))]
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
