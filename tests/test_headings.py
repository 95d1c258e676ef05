"""Every lab's section numbers run in order: ``## 1.``, ``## 2.``, ...; under ``## N.`` the subsections are ``### N.1``,
``### N.2``, ... Unnumbered headings (Parameters, Summary, an exercise's own heading) may stand anywhere; headings
inside fenced code blocks (a prompt format shown in markdown) are not headings."""

from __future__ import annotations

import json
import re

import pytest
from conftest import LABS, lab_stems

SECTION = re.compile(r"^##\s+(\d+)\.\s")
SUBSECTION = re.compile(r"^###\s+(\d+)\.(\d+)\s")


def headings(nb: dict) -> list[str]:
    found = []
    for cell in nb["cells"]:
        if cell["cell_type"] != "markdown":
            continue
        fenced = False
        for line in "".join(cell["source"]).split("\n"):
            if line.lstrip().startswith("```"):
                fenced = not fenced
            elif not fenced and line.startswith("#"):
                found.append(line)
    return found


def numbering_problems(lines: list[str]) -> list[str]:
    problems, section, sub = [], 0, 0
    for line in lines:
        if m := SECTION.match(line):
            number = int(m.group(1))
            if number != section + 1:
                problems.append(f"{line!r} follows section {section}")
            section, sub = number, 0
        elif m := SUBSECTION.match(line):
            parent, number = int(m.group(1)), int(m.group(2))
            if parent != section or number != sub + 1:
                problems.append(f"{line!r} in section {section}, after subsection {section}.{sub}")
            sub = number if parent == section else sub
    return problems


def test_the_rule_catches_a_subsection_out_of_its_section_and_a_skipped_number():
    assert numbering_problems(["## 1. A", "### 1.1 a", "### 1.2 b", "## 2. B", "### 2.1 c"]) == []
    assert numbering_problems(["## 1. A", "## 2. B", "### 1.3 a"]) == ["'### 1.3 a' in section 2, after subsection 2.0"]
    assert numbering_problems(["## 1. A", "### 1.2 b"]) == ["'### 1.2 b' in section 1, after subsection 1.0"]
    assert numbering_problems(["## 1. A", "## 3. C"]) == ["'## 3. C' follows section 1"]


@pytest.mark.parametrize("stem", lab_stems())
def test_section_numbers_run_in_order(stem):
    nb = json.loads((LABS / f"{stem}.ipynb").read_text(encoding="utf-8"))
    assert numbering_problems(headings(nb)) == []
