"""The package's two floors: ``labhelpers/`` is what a lab imports, ``labhelpers/course/`` the course's tools.

A lab runs on a plain wheel install without the ``[course]`` extra, so nothing a notebook reaches may import the
tools: the learner's modules and the notebooks' code cells are scanned for any import of ``labhelpers.course``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import nbformat
import pytest
from conftest import ROOT, lab_paths

PACKAGE = ROOT / "labhelpers"
LEARNER_MODULES = sorted(p for p in PACKAGE.rglob("*.py") if "course" not in p.relative_to(PACKAGE).parts)
MAX_LEARNER_MODULE_LINES = 400
LONGER_BY_DESIGN = {"ppo.py"}  # the PPO trainer reads top to bottom in one file, as a trainer of TRL does


def _module_of(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def course_imports(source: str, module: str, is_package: bool = False) -> list[str]:
    """The imports of ``labhelpers.course`` (or anything in it) in some Python source, relative ones resolved."""
    found = []
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            names = [base, *(f"{base}.{alias.name}" for alias in node.names)]
        else:
            continue
        found += [f"line {node.lineno}: {name}" for name in names
                  if name == "labhelpers.course" or name.startswith("labhelpers.course.")][:1]
    return found


@pytest.mark.parametrize("path", LEARNER_MODULES, ids=lambda p: str(p.relative_to(ROOT)))
def test_a_learner_module_never_imports_the_courses_tools(path):
    found = course_imports(path.read_text(encoding="utf-8"), _module_of(path), path.name == "__init__.py")
    assert not found, f"{path.relative_to(ROOT)} imports the course's tools ({'; '.join(found)}): a lab must run " \
                      "without them; move the shared code down into labhelpers/ or the caller up into course/"


@pytest.mark.parametrize("notebook", lab_paths(), ids=lambda p: p.stem)
def test_a_notebook_never_imports_the_courses_tools(notebook):
    cells = [c for c in nbformat.read(notebook, as_version=4).cells if c.cell_type == "code"]
    for index, cell in enumerate(cells):
        # "!pip ..." and "%magic" lines are not Python: blank them, keeping the line numbers
        code = "\n".join("" if line.lstrip().startswith(("!", "%")) else line for line in cell.source.splitlines())
        found = course_imports(code, "labs.notebook")
        assert not found, f"{notebook.name}, code cell {index}: {'; '.join(found)}"


def test_the_scan_finds_each_way_of_writing_an_upward_import():
    """What the scan would see in a learner module that reached up: absolute, relative, and submodule forms."""
    upward = {
        "import labhelpers.course.runner": "labhelpers.records",
        "from labhelpers.course import points": "labhelpers.records",
        "from labhelpers import course": "labhelpers.records",
        "from .course.timing import sync": "labhelpers.ppo",
        "from . import course": "labhelpers.ppo",
        "from .. import course": "labhelpers.scripts.sft_lora",
        "def f():\n    from .course import hardware\n": "labhelpers.config",
    }
    for source, module in upward.items():
        assert course_imports(source, module), source
    for source, module in {"from . import records": "labhelpers.quiz", "import labhelpers.coursework": "x.y",
                           "from labhelpers.config import lab_names": "labhelpers.pipeline"}.items():
        assert not course_imports(source, module), source
    assert course_imports("from . import points", "labhelpers.course", is_package=True)


@pytest.mark.parametrize("path", LEARNER_MODULES, ids=lambda p: str(p.relative_to(ROOT)))
def test_a_learner_module_stays_short_enough_to_read(path):
    if path.name in LONGER_BY_DESIGN:
        return
    lines = len(path.read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_LEARNER_MODULE_LINES, f"{path.relative_to(ROOT)} has {lines} lines: split it by meaning"
