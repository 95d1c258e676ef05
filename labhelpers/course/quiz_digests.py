"""The self-check questions' module, :mod:`labhelpers.quiz_questions`, rendered from the instructor's plain table.

``instructor/quiz.toml`` holds every question's answer and explanation in plain text (its header says how to write
one). It is not part of the ``labhelpers`` package; what the package gets is :func:`render`'s module, where each
answer is only salted SHA-256 digests and each explanation is base64 (see :mod:`labhelpers.quiz` for what that
hides and what it does not). ``python -m labhelpers.course.generated`` writes it, and ``--check`` fails when it is
stale, like every generated block.

A question keeps its salt from one rendering to the next (read back from the module being replaced), so that the
module changes only where the table did; a new question gets a fresh random salt.
"""

from __future__ import annotations

import ast
import base64
import secrets
import tomllib
from pathlib import Path

TABLE = Path("instructor") / "quiz.toml"
MODULE = Path("labhelpers") / "quiz_questions.py"
HEADER = '''"""The self-check questions of :mod:`labhelpers.quiz`: generated, do not edit.

Written by ``python -m labhelpers.course.generated`` from the instructor's table ``instructor/quiz.toml`` (not part
of this package). Each stored answer is kept only as SHA-256 digests of the question's salt and the accepted
normalised answers; each explanation is base64 of its text. See labhelpers/quiz.py.
"""

QUESTIONS = {
'''
FIELDS = ("choices", "tolerance", "answer", "explanation")


def load_table(path: Path) -> dict[str, dict]:
    """The plain table: question name -> its fields, checked (unknown or missing fields raise ``ValueError``)."""
    table = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    for name, fields in table.items():
        unknown = set(fields) - set(FIELDS)
        if unknown or "explanation" not in fields or ("choices" in fields) == ("tolerance" in fields):
            raise ValueError(f"{path}: question {name!r} needs an explanation and exactly one of choices and "
                             f"tolerance; its fields are {sorted(fields)} (allowed: {', '.join(FIELDS)})")
    return table


def salts_of(module: Path) -> dict[str, str]:
    """Question name -> salt, read (without importing) from a rendered module; empty when there is none."""
    try:
        tree = ast.parse(Path(module).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    [questions] = [node.value for node in tree.body if isinstance(node, ast.Assign)
                   and any(getattr(t, "id", None) == "QUESTIONS" for t in node.targets)]
    salts = {}
    for key, value in zip(questions.keys, questions.values):
        for keyword in getattr(value, "keywords", []):
            if keyword.arg == "salt":
                salts[key.value] = keyword.value.value
    return salts


def render(table: dict[str, dict], salts: dict[str, str] | None = None) -> str:
    """The text of ``labhelpers/quiz_questions.py`` for ``table``, reusing ``salts`` where a question has one."""
    from labhelpers.quiz import Question, accepted_keys, digest

    salts = salts or {}
    lines = [HEADER]
    for name, fields in table.items():
        salt = salts.get(name) or secrets.token_hex(8)
        shape = Question(explanation="", choices=fields.get("choices", ""), tolerance=fields.get("tolerance", 0.0))
        answer = fields.get("answer")
        digests = () if answer is None else tuple(digest(salt, key) for key in accepted_keys(shape, answer))
        encoded = base64.b64encode(fields["explanation"].encode("utf-8")).decode("ascii")
        lines.append(f"    {name!r}: dict(\n")
        lines.append(f"        choices={shape.choices!r}, tolerance={float(shape.tolerance)!r}, salt={salt!r},\n")
        lines.append("        digests=(" + "".join(f"\n            {d!r}," for d in digests)
                     + ("\n        " if digests else "") + "),\n")
        chunks = [encoded[i:i + 100] for i in range(0, len(encoded), 100)]
        lines.append("        explanation=(" + "".join(f"\n            {c!r}" for c in chunks) + "),\n    ),\n")
    lines.append("}\n")
    return "".join(lines)


def render_for(root: Path) -> str:
    """The module that ``root``'s table gives, keeping the salts of ``root``'s current module."""
    return render(load_table(root / TABLE), salts_of(root / MODULE))
