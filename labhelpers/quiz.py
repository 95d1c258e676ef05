"""Self-check questions: each one is a check named ``quiz_<name>`` that the grader scores like any other.

A question's text and its choices stand in the notebook's markdown; the answer cell sets one variable and
calls :func:`check`::

    ANSWER_TIE_LOSS = None  # a number
    ### BEGIN SOLUTION
    ANSWER_TIE_LOSS = 0.693
    ### END SOLUTION
    quiz.check("02_tie_loss", ANSWER_TIE_LOSS)

The student version (``student/``, made by :mod:`labhelpers.course.student`) turns the answer lines into
``ANSWER_... = None``: an unanswered question is recorded as a failed check and the notebook runs on. After any
answer, right or wrong, the explanation is shown; it says what the right answer is and why, so the message of a
wrong answer does not name it first. A question about the lab's own run ("predict before you run") passes the
measured answer as ``correct=`` and the figures the explanation quotes as keyword arguments.

**What this package holds, and what it hides.** The questions live in :mod:`labhelpers.quiz_questions`, generated
(``python -m labhelpers.course.generated``) from the instructor's plain table ``instructor/quiz.toml``, which is
not part of the package. A stored answer is kept only as SHA-256 digests of a per-question salt and the normalised
answer (:func:`digest`); :func:`is_right` compares the digest of the learner's normalised answer with them. The
explanations state the answers, so they are stored base64-encoded: that only keeps them from being read by opening
the file, since anyone can decode them (and a question with three choices can be answered by trying all three).
The digests and the encoding keep a learner from reading an answer by accident; they are not a secret.

**How an answer is normalised.**

* Multiple choice: the letter, stripped of spaces and parentheses, in lower case (``" (B) "`` is ``"b"``).
* A number with ``tolerance == 0``: its exact value, as a fraction (``2`` and ``2.0`` are the same answer; a bool
  is refused). It must equal the stored answer exactly.
* A number with ``tolerance = w > 0``: the number line is cut into cells of width ``w``, taken as the decimal
  ``w`` is written in (``Fraction(str(w))``, so ``0.01`` is exactly 1/100), and an answer ``x`` is its cell
  ``k(x) = floor(x / w)``, computed exactly on ``x``'s binary value. The stored digests are those of the right
  answer's cell ``k`` and its two neighbours, so the **accepted interval is exactly ``[w·(k − 1), w·(k + 2))``**:
  it holds every answer within ``w`` of the right one (``[a − w, a + w]``) and nothing ``2w`` or more away. For
  ``02_tie_loss`` (log 2 ≈ 0.6931, ``w = 0.01``, ``k = 69``) it is ``[0.68, 0.71)``.
"""

from __future__ import annotations

import base64
import hashlib
import math
from dataclasses import dataclass
from fractions import Fraction
from numbers import Real
from typing import Any

from . import quiz_questions
from .records import record_check


@dataclass(frozen=True)
class Question:
    """One self-check question: multiple choice when ``choices`` is set, else a number within ``tolerance``.

    ``digests`` are :func:`digest` of ``salt`` and each accepted normalised answer (:func:`accepted_keys`); they
    are empty for a question whose right answer the lab measures (``check(..., correct=...)``). ``explanation`` is
    the base64 of the UTF-8 text, which may hold ``{placeholders}`` for figures of the run, filled from
    ``check``'s keywords (:func:`explanation` decodes it).
    """

    explanation: str
    salt: str = ""
    digests: tuple[str, ...] = ()
    choices: str = ""
    tolerance: float = 0.0


QUESTIONS: dict[str, Question] = {name: Question(**fields) for name, fields in quiz_questions.QUESTIONS.items()}


def digest(salt: str, key: str) -> str:
    """SHA-256 (hex) of a question's salt and one normalised answer (a :func:`answer_key`)."""
    return hashlib.sha256(f"{salt}\n{key}".encode()).hexdigest()


def _cell(value: float, tolerance: float) -> int:
    return math.floor(Fraction(value) / Fraction(str(tolerance)))


def answer_key(question: Question, value: Any) -> str:
    """The text a normalised answer is digested as: ``choice:b``, ``number:2`` or ``cell:69`` (see the module)."""
    if question.choices:
        return f"choice:{value}"
    if question.tolerance == 0:
        return f"number:{Fraction(value)}"
    return f"cell:{_cell(value, question.tolerance)}"


def accepted_keys(question: Question, answer: Any) -> list[str]:
    """The keys accepted for the right ``answer``: itself, or for a tolerance its cell and both neighbours."""
    if question.choices or question.tolerance == 0:
        return [answer_key(question, answer)]
    k = _cell(answer, question.tolerance)
    return [f"cell:{cell}" for cell in (k - 1, k, k + 1)]


def explanation(name: str) -> str:
    """The explanation of question ``name`` as text (``{placeholders}`` not yet filled)."""
    return base64.b64decode(_question(name).explanation).decode("utf-8")


def _question(name: str) -> Question:
    if name not in QUESTIONS:
        raise ValueError(f"No self-check question {name!r}; the questions are {', '.join(QUESTIONS)}.")
    return QUESTIONS[name]


def _normalise(name: str, question: Question, given: Any) -> Any:
    """The answer in the form it is compared in, or a ValueError that says what a valid answer looks like."""
    if question.choices:
        letter = str(given).strip().strip("()").strip().lower()
        if not isinstance(given, str) or letter not in question.choices:
            raise ValueError(f"Question {name!r} takes one of the letters {', '.join(question.choices)} "
                             f"(a string such as \"{question.choices[0]}\"), got {given!r}.")
        return letter
    if isinstance(given, bool) or not isinstance(given, Real) or not math.isfinite(given):
        raise ValueError(f"Question {name!r} takes a finite number (such as 0.5), got {given!r}.")
    return float(given)


def is_right(name: str, given: Any, correct: Any = None) -> bool:
    """Whether ``given`` is a right answer to question ``name``: what :func:`check` records as ``passed``.

    The grader calls it to decide a recorded ``quiz_<name>`` check from the record's ``value`` (and, for a
    question about the run, its ``threshold`` as ``correct``). ``correct`` overrides the stored answer; a
    question without one needs it (``ValueError``). ``None``, or an answer of the wrong form, is not right.
    """
    question = _question(name)
    if correct is None and not question.digests:
        raise ValueError(f"Question {name!r} is about this run: pass the measured answer as correct=.")
    try:
        given = _normalise(name, question, given)
    except ValueError:
        return False
    if correct is None:
        return digest(question.salt, answer_key(question, given)) in question.digests
    return answer_key(question, given) in accepted_keys(question, _normalise(name, question, correct))


def check(name: str, answer: Any, *, correct: Any = None, **figures: Any) -> None:
    """Score ``answer`` to question ``name``, record the check ``quiz_<name>``, show the explanation.

    ``answer=None`` (not answered yet) records a failed check without the explanation. ``correct`` overrides
    the stored answer (for a prediction about the lab's own run); ``figures`` fill the explanation's
    placeholders. Returns nothing, so that a quiz cell, which ends with this call, echoes no ``Out: True``; the
    record says whether the answer is right, as :func:`is_right` does.

    The record's ``value`` is the normalised answer given. Its ``threshold`` is ``correct`` for a question about
    the run (the measured answer, compared with ``==``), and empty for a stored question: the record never holds
    a stored answer, and the grader decides it with :func:`is_right`.
    """
    question = _question(name)
    if correct is None and not question.digests:
        raise ValueError(f"Question {name!r} is about this run: pass the measured answer as correct=.")
    right = None if correct is None else _normalise(name, question, correct)
    try:
        text = explanation(name).format(**figures)
    except KeyError as missing:
        raise ValueError(f"Question {name!r} explains itself with this run's figures: pass {missing} (and the "
                         "others its explanation names) as keyword arguments to quiz.check.") from None
    variable = "ANSWER_" + name.split("_", 1)[1].upper()
    if answer is None:
        record_check(f"quiz_{name}", False,
                     message=f"not answered yet: set {variable} (it is None) and run the cell again")
        return
    given = _normalise(name, question, answer)
    passed = is_right(name, given, right)
    record_check(f"quiz_{name}", passed, value=given, threshold=right,
                 direction="==" if right is not None and question.choices else None,
                 message="right" if passed else "not quite: the explanation below says why")
    _show(text)


def _show(text: str) -> None:
    try:
        from IPython import get_ipython
        from IPython.display import Markdown, display

        if get_ipython() is not None:
            display(Markdown(f"**Why:** {text}"))
            return
    except ImportError:
        pass
    print(f"Why: {text}")
