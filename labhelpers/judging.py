"""Judging generated answers to the tiny world's questions (:mod:`labhelpers.synthetic`).

Lab 01 scores its answers per task kind (:func:`right_by_kind`: exact for rules with one answer, by the request's
own terms for a one-line review); lab 03 judges its reviews' form, topic and tone (:func:`judge_review`).
"""

from __future__ import annotations

import re

from .synthetic import FILM_NOUNS, NEGATIVE_WORDS, POSITIVE_WORDS, TONES

_REVIEW_LINE = re.compile(r"^the (\w+) was (\w+) and (\w+) \.$")
_REQUESTED_NOUN = re.compile(r"one line about the (\w+)")


def review_adjectives(answer: str) -> tuple[str, str] | None:
    """The two adjectives of a line of the form ``"the <noun> was <adjective> and <adjective> ."``, else ``None``."""
    match = _REVIEW_LINE.match(answer.strip())
    return (match.group(2), match.group(3)) if match else None


def judge_review(prompt: str, answer: str) -> dict[str, bool]:
    """Judge a generated answer to a :func:`labhelpers.synthetic.review_request` found in ``prompt``.

    ``well_formed``: the answer is exactly ``"the <film noun> was <adjective> and <adjective> ."`` with words from
    the course's lists; ``on_topic``: well formed and about the noun the prompt asked for; ``positive``: well
    formed with both adjectives positive (what the chosen answers of :func:`labhelpers.synthetic.preferences` do).
    """
    asked = _REQUESTED_NOUN.search(prompt)
    match = _REVIEW_LINE.match(answer.strip())
    words = set(POSITIVE_WORDS) | set(NEGATIVE_WORDS)
    well_formed = bool(match) and match.group(1) in FILM_NOUNS and match.group(2) in words and \
        match.group(3) in words
    on_topic = well_formed and asked is not None and match.group(1) == asked.group(1)
    positive = well_formed and match.group(2) in POSITIVE_WORDS and match.group(3) in POSITIVE_WORDS
    return {"well_formed": well_formed, "on_topic": on_topic, "positive": positive}


_LETTER_KINDS = {"Reverse the letters.": "reverse", "Sort the letters in alphabetical order.": "sort",
                 "Write the letters twice.": "twice", "Write the first and the last letter.": "first and last"}
CODE_ALPACA_KINDS = ("function", "loop", "alphabet", "review", *_LETTER_KINDS.values())


def task_kind(instruction: str, input: str = "") -> str:
    """The kind of a :func:`labhelpers.synthetic.code_alpaca` question: one of ``CODE_ALPACA_KINDS``, or ``"other"`` for a record from
    elsewhere (a real dataset)."""
    if input.strip():
        return _LETTER_KINDS.get(instruction, "other")
    for kind, start in (("function", "Write a Python function "), ("loop", "Write a loop over "),
                        ("alphabet", "Write the alphabet from "), ("review", "Write one line about the ")):
        if instruction.startswith(start):
            return kind
    return "other"


def follows_review_request(instruction: str, answer: str) -> bool:
    """Whether ``answer`` is a right answer to a review request: a well-formed line about the noun asked for
    (:func:`judge_review`), both adjectives of one tone, and the tone asked for when the request names one."""
    if not judge_review(instruction, answer)["on_topic"]:
        return False
    adjectives = answer.split()[3::2]  # "the <noun> was <adj> and <adj> ."
    tones = {tone for tone, words in TONES.items() if set(adjectives) <= set(words)}
    tone = re.search(r"in a (\w+) tone", instruction)
    word = re.search(r"using the word (\w+)", instruction)
    return (len(set(adjectives)) == 2 and bool(tones) and (tone is None or tone.group(1) in tones)
            and (word is None or word.group(1) in adjectives))


GENERALISING_KINDS = ("function", "loop", "review")  # answers follow a rule applied to new names, bounds, nouns


def answer_is_right(row: dict, answer: str) -> bool:
    """Whether a generated ``answer`` to a :func:`labhelpers.synthetic.code_alpaca` record is right: exactly the reference output, or,
    for a review request (many right answers), one that :func:`follows_review_request`."""
    if task_kind(row["instruction"], row.get("input") or "") == "review":
        return follows_review_request(row["instruction"], answer)
    return answer.strip() == row["output"].strip()


def count_by_kind(rows: list[dict]) -> dict[str, int]:
    """How many of ``rows`` are of each :func:`task_kind`, in the order of ``CODE_ALPACA_KINDS`` (then ``"other"``)."""
    kinds = [task_kind(row["instruction"], row.get("input") or "") for row in rows]
    return {kind: kinds.count(kind) for kind in (*CODE_ALPACA_KINDS, "other") if kind in kinds}


def right_by_kind(rows: list[dict], answers: list[str]) -> dict[str, float]:
    """The share of :func:`answer_is_right` answers per :func:`task_kind`, ordered as :func:`count_by_kind`."""
    right: dict[str, list[bool]] = {}
    for row, answer in zip(rows, answers, strict=True):
        right.setdefault(task_kind(row["instruction"], row.get("input") or ""), []).append(answer_is_right(row, answer))
    return {kind: sum(right[kind]) / len(right[kind]) for kind in count_by_kind(rows)}
