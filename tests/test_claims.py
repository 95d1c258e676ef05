"""Prose that matches the run (issue 25, Deliver 3): every sentence of a lab that may report an outcome of the lab's
own run is in the claims table (``tests/claims.py``), backed by a check or result the lab records or by a value it
prints, or listed as a general statement with the reason. No execution: the notebooks are read as JSON."""

from __future__ import annotations

import copy

import pytest
from claims import (
    CLAIMS,
    GENERAL,
    LABS,
    UNBACKED,
    backed,
    covering,
    is_recorded,
    lab_stems,
    load,
    outcome_sentences,
    printed,
    recorded,
    sentences,
    uncovered,
)

TABLES = {"CLAIMS": CLAIMS, "GENERAL": GENERAL, "UNBACKED": UNBACKED}


def report(found) -> str:
    return "\n".join(f"  {f.lab} cell {f.cell_id}: {f.sentence}" for f in found)


def all_sentences(nb: dict) -> list[str]:
    return [s for cell in nb["cells"] if cell["cell_type"] == "markdown" for s in sentences("".join(cell["source"]))]


def test_every_lab_is_read():
    """The table is checked against the labs the course has, not a list of its own."""
    assert lab_stems() == sorted(p.stem for p in LABS.glob("[0-9][0-9]_*.ipynb"))
    assert len(lab_stems()) >= 7


def assert_complete(nb: dict, stem: str) -> None:
    missing = uncovered(nb, stem)
    assert not missing, ("outcome sentences that neither tests/claims.py's CLAIMS (a check, result or print that "
                         "backs it) nor GENERAL (why it is not about this run) covers:\n" + report(missing))


@pytest.mark.parametrize("stem", lab_stems())
def test_every_outcome_sentence_is_covered(stem):
    """(i) Every flagged sentence is in CLAIMS (with what backs it) or GENERAL (with why it is not about the run)."""
    assert_complete(load(stem), stem)


@pytest.mark.parametrize("stem", lab_stems())
def test_no_stale_entries(stem):
    """(ii) Every entry still matches a flagged sentence of its lab, so the table cannot keep claims the lab dropped."""
    flagged = outcome_sentences(load(stem), stem)
    stale = [(name, key[1]) for name, table in TABLES.items() for key in table
             if key[0] == stem and not any(covering(stem, f.sentence, {key: None}) for f in flagged)]
    assert not stale, "entries that match no flagged sentence of the lab (reworded or removed? update the key):\n" + \
        "\n".join(f"  {name}: {text!r}" for name, text in stale)


def test_every_entry_names_a_lab_that_exists():
    labs = set(lab_stems())
    assert {key[0] for table in TABLES.values() for key in table} <= labs


@pytest.mark.parametrize("stem", lab_stems())
def test_each_sentence_is_covered_by_one_table(stem):
    """A sentence is either backed, general or known unbacked, not two at once (a key too short says two things)."""
    twice = []
    for f in outcome_sentences(load(stem), stem):
        tables = [name for name, table in TABLES.items() if covering(stem, f.sentence, table)]
        if len(tables) > 1:
            twice.append(f"  {f.sentence!r}: {tables}")
    assert not twice, "sentences in more than one table:\n" + "\n".join(twice)


@pytest.mark.parametrize("stem", lab_stems())
def test_backing_exists_in_the_lab(stem):
    """(iii) Every check and result a CLAIMS entry names is recorded by that lab, every printed piece is printed."""
    nb = load(stem)
    names = recorded(nb)
    problems = []
    for (lab, text), backing in CLAIMS.items():
        if lab != stem:
            continue
        assert backing, f"{text!r}: an entry of CLAIMS must name a check, a result or a printed piece"
        problems += [f"{text!r}: no record_check({c!r}, ...) in {lab}" for c in backing.checks
                     if not is_recorded(c, names["check"])]
        problems += [f"{text!r}: no record_result({r!r}, ...) in {lab}" for r in backing.results
                     if not is_recorded(r, names["result"])]
        problems += [f"{text!r}: no print/display call of {lab} contains {p!r}" for p in backing.printed
                     if not printed(nb, p)]
    assert not problems, "\n".join(problems)


def test_general_entries_give_a_reason():
    assert all(isinstance(reason, str) and len(reason.split()) >= 3 for reason in GENERAL.values())
    assert all(isinstance(need, str) and len(need.split()) >= 5 for need in UNBACKED.values())


def test_no_sentence_is_unbacked():
    assert not UNBACKED, "\n".join(f"  {lab}: {text!r}: {need}" for (lab, text), need in UNBACKED.items())


# ---------------------------------------------------------------------------------------------------------------
# The detector and the checks catch what they are for (on copies of the labs, in memory).

UNBACKED_CLAIM = "After training, the model answers every prompt correctly."


def with_sentence(nb: dict, sentence: str, cell_index: int | None = None) -> dict:
    """A copy of the notebook with ``sentence`` as a new paragraph at the end of one of its markdown cells."""
    nb = copy.deepcopy(nb)
    markdown = [c for c in nb["cells"] if c["cell_type"] == "markdown"]
    cell = markdown[len(markdown) // 2 if cell_index is None else cell_index]
    cell["source"] = "".join(cell["source"]).rstrip() + "\n\n" + sentence + "\n"
    return nb


@pytest.mark.parametrize("stem", lab_stems())
def test_an_added_unbacked_claim_fails_the_completeness_check(stem):
    """(iv) One unbacked outcome sentence added to a copy of the lab is found, and named."""
    nb = load(stem)
    edited = with_sentence(nb, UNBACKED_CLAIM)
    added = {f.sentence for f in uncovered(edited, stem)} - {f.sentence for f in uncovered(nb, stem)}
    assert added == {UNBACKED_CLAIM}
    with pytest.raises(AssertionError, match=rf"{stem} cell \S+: After training, the model answers every prompt"):
        assert_complete(edited, stem)


@pytest.mark.parametrize("claim", [
    "After training, the model answers every prompt correctly.",
    "The reward rose from 0.37 to 0.75.",
    "Held-out exact match is higher than before.",
    "BLEU fell by 3 points.",
    "The trained model writes shorter answers.",
    "LoRA trails full fine-tuning by 6.6 BLEU.",
    "This run took 42 s.",
    "* DPO collapses: every answer is the same string.",
    "| reward | 0.372 | 0.750 |",
])
def test_the_detector_flags_outcome_sentences(claim):
    nb = {"cells": [{"cell_type": "markdown", "id": "x", "source": claim}]}
    assert [f.sentence for f in outcome_sentences(nb, "99_made_up")] == [claim]


@pytest.mark.parametrize("text", [
    "A causal language model reads one string.",
    "```\nthe loss rose from 1 to 2\n```",
    "## 5.2 Train",
    "### Exercise 1.3: the masked loss by hand",
    "<!-- hardware:start -->",
])
def test_the_detector_leaves_alone_what_reports_nothing(text):
    nb = {"cells": [{"cell_type": "markdown", "id": "x", "source": text}]}
    assert outcome_sentences(nb, "99_made_up") == []


def test_sentences_are_cut_at_sentence_ends_list_items_and_table_rows():
    text = ("## 6. After training\nSame prompts. The loss fell, e.g. to 0.5 nats.\n\n* one item\n  continued\n"
            "* two\n\n| a | b |\n|---|---|\n| 1 | 2 |\n")
    assert sentences(text) == ["## 6. After training", "Same prompts.", "The loss fell, e.g. to 0.5 nats.",
                               "* one item continued", "* two", "| a | b |", "| 1 | 2 |"]


def test_a_quoted_paragraph_reads_on_across_its_lines():
    text = "> **What the course said.** The rollout\n> libraries differ. Second\n> line.\n>\n> * a quoted item\n"
    assert sentences(text) == ["**What the course said.**", "The rollout libraries differ.", "Second line.",
                               "* a quoted item"]


def test_a_reworded_sentence_makes_its_entry_stale():
    """(ii) on a copy: rewording a backed sentence leaves its key matching nothing."""
    (stem, text), _ = next(iter(CLAIMS.items()))
    nb = copy.deepcopy(load(stem))
    for cell in nb["cells"]:
        if cell["cell_type"] == "markdown":
            cell["source"] = "".join(cell["source"]).replace(text.split()[-1], "REWORDED")
    flagged = outcome_sentences(nb, stem)
    assert not any(covering(stem, f.sentence, {(stem, text): None}) for f in flagged)


def test_backing_that_the_lab_does_not_record_is_caught():
    """(iii) on made-up names: a check, result or print the lab does not have is not found."""
    nb = load("01_instruction_tuning")
    names = recorded(nb)
    assert is_recorded("bleu_improves", names["check"]) and not is_recorded("bleu_doubles", names["check"])
    assert is_recorded("bleu_after", names["result"]) and not is_recorded("bleu_improves", names["result"])
    assert printed(nb, "Held-out BLEU") and not printed(nb, "Held-out ROUGE")
    top_p = recorded(load("05_generation_parameters"))["check"]
    assert is_recorded("top_p_0.9_matches_library", top_p)  # an f-string name matches any value of its field
    assert backed(checks="a").checks == ("a",) and not backed()


def test_a_key_matches_across_line_breaks_and_spacing():
    nb = {"cells": [{"cell_type": "markdown", "id": "x", "source": "The loss\nfell   to 0.5 nats."}]}
    flagged = outcome_sentences(nb, "99_made_up")
    assert covering("99_made_up", flagged[0].sentence, {("99_made_up", "loss fell to"): None})
