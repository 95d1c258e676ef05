"""The claims table: every sentence of a lab that may report an outcome of the lab's own run, and what backs it.

Issue 25 asks that prose match the run: a sentence that says what *this* run did ("the reward rises", "after
training the model stops at end-of-text", "15.6 BLEU") is backed by a check recorded on this run, or is printed
from the measured values. This module finds such sentences and says, for each, what backs it.

* :func:`outcome_sentences` is the detector. It reads the markdown cells of a lab (fenced code removed), cuts
  them into sentences (a list item, a table row and a heading count as one) and flags every sentence that
  matches :data:`OUTCOME` (verbs of change, comparisons, "after training", numbers with units, ...). It errs on
  the side of flagging: a general statement it flags is listed in :data:`GENERAL` with the reason it is not
  about this run.
* :data:`CLAIMS` maps a flagged sentence that is about this run to what backs it: the names of the checks
  (``record_check("name", ...)`` in that lab), of the results (``record_result("name", ...)``) or a piece of a
  ``print(...)`` call of the lab's code that prints the value the sentence reports.
* Both tables are keyed by ``(lab stem, a distinctive substring of the sentence)``, so that an edit elsewhere in
  the lab leaves the entry alone. A substring matches a sentence after whitespace is collapsed.

``tests/test_claims.py`` keeps the tables complete (every flagged sentence covered), fresh (every entry still
matches a sentence of its lab) and true to the code (every named check, result and print exists in the lab).
``python tests/claims.py [lab ...]`` lists the flagged sentences no entry covers, to fill the table; with ``--all``,
every flagged sentence with what the table says of it.
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path

LABS = Path(__file__).resolve().parents[1] / "labs"

# What a sentence about a run's outcome tends to contain. Broad on purpose: a false alarm costs one line in
# GENERAL, a miss costs an unbacked claim.
_CHANGE = (r"ris(?:e|es|en|ing)|rose|fall(?:s|en|ing)?|fell|improv(?:e|es|ed|ing)|learn(?:s|ed|t|ing)?|"
           r"beat(?:s|en)?|collaps(?:e|es|ed|ing)|drop(?:s|ped|ping)?|grow(?:s|n|ing)?|grew|"
           r"stay(?:s|ed|ing)?|end(?:s|ed)?|increas(?:e|es|ed|ing)|decreas(?:e|es|ed|ing)|"
           r"climb(?:s|ed|ing)?|shr(?:ink|inks|ank|unk)|converg(?:e|es|ed|ing)|trail(?:s|ed|ing)?|"
           r"gain(?:s|ed)?|wins?|won|los(?:e|es|t)|drift(?:s|ed|ing)?|reach(?:es|ed)?|goes (?:up|down)|"
           r"went (?:up|down)|doubl(?:e|es|ed)|halv(?:e|es|ed)|outperform(?:s|ed)?|succeed(?:s|ed)?|"
           r"fail(?:s|ed)?|degrad(?:e|es|ed)|diverg(?:e|es|ed)|overfit(?:s|ted)?|memoris(?:e|es|ed)|"
           r"generalis(?:e|es|ed)|scor(?:e|es|ed)|pass(?:es|ed)?|stops?|stopped|match(?:es|ed)|"
           r"emit(?:s|ted)?|writes|wrote|answer(?:s|ed)|hack(?:s|ed)|taught|teach(?:es)?|gave|giv(?:e|es)|got|gets?|"
           r"ran|equall?(?:ed|s)|agree(?:s|d)?|became|becomes|kept|keeps|show(?:s|ed|n)|mov(?:e|es|ed)|"
           r"chang(?:e|es|ed)|differ(?:s|ed)?|found|finds|made|makes")
_PATTERNS = [
    rf"\b(?:{_CHANGE})\b",
    r"\b(?:higher|lower|better|worse|larger|smaller|faster|slower|more|less|fewer|closer|further)\b",
    r"\b(?:after|before) (?:training|the run|fine-tuning|DPO|PPO|SFT|the update)",
    r"\bthe (?:trained|fine-tuned|tuned) (?:model|policy)",
    r"\b(?:this|the|your|each|one) run\b|\bthis lab's run\b|\bin `?tiny`?\b|\bon this machine\b",
    r"\b(?:you (?:will )?see|we see|as you can see|shows? that|the (?:table|plot|figure|chart|output|cell) "
    r"(?:above|below)|above|below)\b",
    r"\d(?:[\d.,]*)\s*(?:%|×|x\b|s\b|sec|seconds?|min(?:utes?)?\b|h\b|hours?|GiB|MiB|GB|MB|KB|nats?|bits?|"
    r"tokens?|steps?|points?|BLEU|epochs?|pairs?|rows?|prompts?|params?|parameters?|M\b|B\b|k\b)",
    r"\d\.\d",
    r"->|→|⇒",
]
OUTCOME = re.compile("|".join(f"(?:{p})" for p in _PATTERNS), re.IGNORECASE)

_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)  # the generators' markers
_FENCE = re.compile(r"^\s*(```|~~~)")
_BLOCK_START = re.compile(r"^\s*(?:[-*+]\s|\d+[.)]\s|#{1,6}\s|\|)")
_QUOTE = re.compile(r"^\s*>\s?")
_SENTENCE_END = re.compile(r"(?<=[.!?])([\"')\]*_]*)\s+(?=[A-Z(\"'*`_\[])")
# Numbers that name a part of the course, not a figure: "### 5.2", "Exercise 1.3", "§4.2", "lab 03".
_SECTION_NUMBER = re.compile(r"^#+\s*(?:\d+(?:\.\d+)*\.?)?|\b(?:Exercise|section|§|lab|labs|quiz|step)\s*\d+(?:\.\d+)*"
                             r"|§\s*\d+(?:\.\d+)*", re.IGNORECASE)
_ABBREVIATIONS = re.compile(r"\b(?:e\.g|i\.e|etc|vs|cf|Fig|al|approx|resp|no)\.$", re.IGNORECASE)


def normalise(text: str) -> str:
    """Whitespace collapsed: how sentences and table keys are compared."""
    return " ".join(text.split())


def markdown_cells(nb: dict) -> list[tuple[str, str]]:
    """``(cell id, source)`` of each markdown cell."""
    return [(c.get("id", ""), "".join(c["source"])) for c in nb["cells"] if c["cell_type"] == "markdown"]


def blocks(source: str) -> list[str]:
    """The cell's text outside fenced code, cut into paragraphs, list items, table rows, quotes and headings."""
    found, current, fenced = [], [], False
    for line in _COMMENT.sub("", source).split("\n"):
        line = _QUOTE.sub("", line)  # a quoted paragraph reads on across its "> " lines
        if _FENCE.match(line):
            fenced = not fenced
            continue
        if fenced:
            continue
        if not line.strip() or _BLOCK_START.match(line) or current[:1] and current[0].startswith("#"):
            if current:
                found.append(" ".join(current))
            current = [line.strip()] if line.strip() else []
        else:
            current.append(line.strip())
    if current:
        found.append(" ".join(current))
    return [normalise(b) for b in found if b.strip()]


def sentences(source: str) -> list[str]:
    """The sentences of one markdown cell (fenced code removed); a heading, list item or table row is one."""
    found = []
    for block in blocks(source):
        if re.fullmatch(r"\|?[\s:|-]+\|?", block):  # a table's rule line
            continue
        if block.startswith("#"):
            found.append(block)
            continue
        marker = re.match(r"(?:[-*+]|\d+[.)])\s+", block)
        pieces, start = [], 0
        for m in _SENTENCE_END.finditer(block, marker.end() if marker else 0):
            if _ABBREVIATIONS.search(block[start:m.start(1)]):
                continue
            pieces.append(block[start:m.end(1)])  # closing quotes, brackets and emphasis stay with it
            start = m.end()
        pieces.append(block[start:])
        found.extend(p.strip() for p in pieces if p.strip())
    return found


@dataclass(frozen=True)
class Flagged:
    lab: str
    cell_id: str
    sentence: str


def outcome_sentences(nb: dict, lab: str) -> list[Flagged]:
    """Every sentence of the lab's markdown that the detector flags as a possible outcome claim."""
    return [Flagged(lab, cell_id, s) for cell_id, source in markdown_cells(nb) for s in sentences(source)
            if OUTCOME.search(_SECTION_NUMBER.sub("", s))]


def load(lab: str, folder: Path = LABS) -> dict:
    return json.loads((folder / f"{lab}.ipynb").read_text(encoding="utf-8"))


def lab_stems(folder: Path = LABS) -> list[str]:
    return sorted(p.stem for p in folder.glob("[0-9][0-9]_*.ipynb"))


# ---------------------------------------------------------------------------------------------------------------
# What the lab's code records and prints: the names a table entry may cite.

_RECORD = re.compile(r"record_(check|result)\(\s*(f?)([\"'])(.+?)\3")
_QUIZ = re.compile(r"quiz\.check\(\s*([\"'])(.+?)\1")


def lab_code(nb: dict) -> str:
    return "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code")


def recorded(nb: dict) -> dict[str, list[str]]:
    """``{"check": [...], "result": [...]}``: the names the lab records (an f-string's fields become ``*``)."""
    names: dict[str, list[str]] = {"check": [], "result": []}
    code = lab_code(nb)
    for kind, f, _, name in _RECORD.findall(code):
        names[kind].append(re.sub(r"\{[^}]*\}", "*", name) if f else name)
    names["check"] += [f"quiz_{name}" for _, name in _QUIZ.findall(code)]
    return names


def is_recorded(name: str, names: list[str]) -> bool:
    return any(fnmatchcase(name, pattern) for pattern in names)


def printed(nb: dict, piece: str) -> bool:
    """Whether a ``print(`` or ``display(`` call of the lab's code contains ``piece``."""
    code = lab_code(nb)
    for opening in ("print(", "display(", "show_summary(", "show_table(", "print_table("):
        start = code.find(opening)
        while start >= 0:
            depth, end = 0, start
            for end in range(start + len(opening) - 1, len(code)):
                depth += {"(": 1, ")": -1}.get(code[end], 0)
                if depth == 0:
                    break
            if piece in code[start:end + 1]:
                return True
            start = code.find(opening, end)
    return False


# ---------------------------------------------------------------------------------------------------------------
# The tables.


@dataclass(frozen=True)
class Backing:
    """What backs an outcome sentence: checks and results the lab records, pieces of its print calls."""

    checks: tuple[str, ...] = ()
    results: tuple[str, ...] = ()
    printed: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.checks or self.results or self.printed)


def _names(value) -> tuple[str, ...]:
    return (value,) if isinstance(value, str) else tuple(value)


def backed(checks=(), results=(), printed=()) -> Backing:
    return Backing(_names(checks), _names(results), _names(printed))


C = backed  # short form for the table below

# (lab stem, distinctive substring of the sentence) -> what backs it
CLAIMS: dict[tuple[str, str], Backing] = {
    # 00_overview
    ('00_overview', 'The check compares it with `labhelpers.sequences.next_token_logprobs`,'): C(checks='next_token_logprobs_match_model_loss'),
    ('00_overview', "A causal LM's logits at position"): C(checks=('next_token_logprobs_match_model_loss', 'greedy_loop_matches_generate')),
    # 01_instruction_tuning
    ('01_instruction_tuning', 'The tasks are small enough for'): C(checks=('bleu_improves', 'validation_loss_falls')),
    ('01_instruction_tuning', 'Below, `Response:` alone and'): C(printed="'Response:' alone ->"),
    ('01_instruction_tuning', 'Here the template tokenizes the'): C(printed='the variants searched for'),
    ('01_instruction_tuning', 'A correct answer written differently'): C(printed='BLEU of the rewrite'),
    ('01_instruction_tuning', 'BLEU does not run the code: the rewrite above'): C(printed='passes:'),
    ('01_instruction_tuning', 'character away from the reference'): C(printed='passes:'),
    ('01_instruction_tuning', 'The table and the verdicts below are this run'): C(results='right_by_kind', checks='exact_match_rises_on_generalising_tasks'),
    ('01_instruction_tuning', 'The **prompt loss** is where'): C(checks='unmasked_run_learns_the_prompts', results='masking_experiment'),
    ('01_instruction_tuning', '`SFTTrainer` fine-tuned the model;'): C(results=('bleu_before', 'bleu_after', 'exact_match_before', 'exact_match_after'), printed='Held-out BLEU'),
    ('01_instruction_tuning', 'Training lowered the held-out'): C(checks=('response_loss_falls', 'unmasked_run_learns_the_prompts')),
    ('01_instruction_tuning', 'Every result and check of this'): C(printed='show_summary'),
    ('01_instruction_tuning', 'Records became training texts'): C(checks='formatting_matches_reference'),
    ('01_instruction_tuning', '`CompletionOnlyCollator` finds'): C(checks='masking_ways_agree'),
    ('01_instruction_tuning', 'Training on the whole text instead,'): C(checks='unmasked_run_learns_the_prompts'),
    # 02_reward_modeling
    ('02_reward_modeling', 'They are **balanced**: every'): C(results='win_rate_before'),
    ('02_reward_modeling', '`reward.clean_pairs(ds, tokenizer,'): C(checks='clean_pairs_handles_bad_pairs', results='pairs_after_cleaning'),
    ('02_reward_modeling', 'The head printed above has `out_features=1`,'): C(printed='head {model.score}'),
    ('02_reward_modeling', 'keep eos out of the texts themselves:'): C(checks=('clean_pairs_handles_bad_pairs', 'reward_read_at_final_eos')),
    ('02_reward_modeling', 'We pre-tokenize, so that training,'): C(checks='preprocess_matches_scoring'),
    ('02_reward_modeling', 'An untrained head is a random'): C(results='win_rate_before'),
    ('02_reward_modeling', 'Before training the margins $r_c'): C(checks=('win_rate_improves', 'win_rate_after_high'),
                                                                       results='reward_margin_mean'),
    ('02_reward_modeling', "The win rate here is the trainer's"): C(checks='win_rate_is_eval_accuracy'),
    ('02_reward_modeling', 'The trained model is saved under'): C(checks='saved_reward_model_reloads'),
    ('02_reward_modeling', 'The reloaded model must give'): C(checks='saved_reward_model_reloads'),
    ('02_reward_modeling', 'Its loss is the Bradley–Terry'): C(checks=('bt_loss_matches_library', 'bt_loss_matches_trainer')),
    ('02_reward_modeling', 'The win rate on held-out pairs'): C(checks='win_rate_is_eval_accuracy'),
    ('02_reward_modeling', 'The recorded results are below.'): C(printed='show_summary'),
    ('02_reward_modeling', 'Under pad = eos neither rule'): C(checks='pad_eos_pitfall_shown', printed='rewards differ by'),
    ('02_reward_modeling', 'OPT is worse off: it writes its eos'): C(checks='pad_eos_pitfall_shown', printed='reads {where}'),
    ('02_reward_modeling', 'With GPT-2, `before_first_pad` gives'): C(checks='pad_eos_pitfall_shown',
                                                                        printed='rewards differ by'),
    # 03_dpo
    ('03_dpo', 'The optimum moves most of the'): C(printed="{'π_r':>6}"),
    ('03_dpo', '### 1.2 No other policy does'): C(checks='optimum_beats_other_policies'),
    ('03_dpo', 'We perturb $\\pi_r$ at random'): C(checks=('optimum_beats_other_policies', 'optimum_value_is_beta_log_Z')),
    ('03_dpo', 'But it depends only on the prompt,'): C(checks='Z_cancels_in_reward_differences'),
    ('03_dpo', 'Large $\\beta$: the policy stays'): C(checks='larger_beta_less_reward_less_kl'),
    ('03_dpo', 'The same function takes both'): C(checks=('missing_field_error_is_clear', 'both_forms_give_the_same_text')),
    ('03_dpo', 'A plain-text preference file'): C(checks='chat_and_text_sets_load'),
    ('03_dpo', 'At step 0 every margin is 0 and'): C(checks='dpo_loss_starts_at_log_2'),
    ('03_dpo', 'Look at the last panel and the'): C(checks='margin_grows_mostly_by_rejected_fall'),
    ('03_dpo', 'We save the trained policy (the'): C(checks='reloaded_model_is_the_trained_one', results='pref_accuracy_after'),
    ('03_dpo', 'A length equal to `MAX_NEW_TOKENS`'): C(printed='is the cap (MAX_NEW_TOKENS)'),
    ('03_dpo', 'Plain DPO reached a high preference'): C(checks='dpo_learns_the_preferences'),
    ('03_dpo', 'When one answer is given to at'): C(printed='collapse:'),
    ('03_dpo', 'Plain DPO reaches a high preference'): C(checks=('dpo_learns_the_preferences', 'likelihood_displacement')),
    ('03_dpo', 'Adding the SFT term anchors the'): C(checks=('sft_term_keeps_chosen_likely', 'dpo_sft_answers_well', 'dpo_sft_narrows_the_words'), results=('pref_accuracy_dpo_sft', 'generation_shape'), printed='the SFT term, this run'),
    ('03_dpo', 'Section 1.4 showed on the toy'): C(checks='larger_beta_less_reward_less_kl'),
    ('03_dpo', "After your code, the course's"): C(checks='beta_experiment_direction'),
    ('03_dpo', 'The margin grows mostly by pushing'): C(checks=('margin_grows_mostly_by_rejected_fall', 'likelihood_displacement', 'sft_term_keeps_chosen_likely')),
    ('03_dpo', 'The records of this run:'): C(printed='show_summary'),
    ('03_dpo', 'Small $\\beta$: the reward dominates,'): C(checks='larger_beta_less_reward_less_kl'),
    ('03_dpo', 'The loss is the negative **log**-likelihood'): C(checks=('dpo_loss_starts_at_log_2', 'log_keeps_the_gradient_of_wrong_pairs')),
    ('03_dpo', 'DPO is Bradley–Terry on those'): C(checks=('dpo_loss_matches_library', 'our_loss_matches_dpo_trainer')),
    ('03_dpo', 'The next cell scores held-out pairs with'): C(checks=('answer_logps_match_library', 'answer_logps_match_dpo_trainer')),
    ('03_dpo', '`plain_dpo_degenerates`: at most 20 %'): C(checks='plain_dpo_degenerates'),
    ('03_dpo', "This is the section's lesson, likelihood"): C(checks=('plain_dpo_degenerates', 'likelihood_displacement')),
    ('03_dpo', '`dpo_sft_answers_well`: DPO + SFT writes'): C(checks='dpo_sft_answers_well'),
    ('03_dpo', '`topic_stays_the_start_models`: DPO + SFT'): C(checks='topic_stays_the_start_models'),
    ('03_dpo', 'Whether that text still ends is this run'): C(results='generation_shape', printed='end with '),
    ('03_dpo', '`dpo_sft_narrows_the_words`: DPO + SFT'): C(checks='dpo_sft_narrows_the_words', results='review_adjectives'),
    ('03_dpo', 'the policy settles on the few that the margin'): C(checks=('dpo_sft_narrows_the_words', 'dpo_sft_answers_well'), results='review_adjectives'),
    ('03_dpo', "Following the topic is the SFT model's job"): C(checks='topic_stays_the_start_models', printed='about the requested noun'),
    ('03_dpo', 'In `tiny` it goes all the way, even'): C(checks='plain_dpo_degenerates'),
    ('03_dpo', 'DPO teaches only what separates the'): C(checks='topic_stays_the_start_models'),
    ('03_dpo', 'You wrote the answer mask and the summed'): C(checks=('answer_logps_match_library', 'answer_logps_match_dpo_trainer')),
    ('03_dpo', "In `tiny`, from lab 01's SFT model: plain"): C(checks=('plain_dpo_degenerates', 'dpo_sft_answers_well', 'topic_stays_the_start_models')),
    ('02_reward_modeling', 'The tiny generator balances the forms'): C(results='reward_length_correlation', printed='the reward follows length'),
    ('02_reward_modeling', 'the line under the correlations says'): C(results='reward_length_correlation', printed='the reward follows length'),
    # 04_ppo_rlhf
    ('04_ppo_rlhf', "The cell below loads lab 02's model"): C(printed='rewards in use'),
    ('04_ppo_rlhf', 'The reward scores the text, not the review'): C(printed='praise and complaint'),
    ('04_ppo_rlhf', 'Such a text scored near the top'): C(printed='score ≥ {cut:.3f}'),
    ('04_ppo_rlhf', 'the line printed under the checks says'): C(checks='reward_hacking_named', printed='reward hacking'),
    ('04_ppo_rlhf', "Lab 02's pairs never ranked a broken line"): C(printed='rewards in use'),
    ('04_ppo_rlhf', 'The workaround used here: give every'): C(printed='prompt lengths in tokens after re-tokenising'),
    ('04_ppo_rlhf', 'GRPO works without a value head'): C(checks='grpo_improves', printed='the independent judge'),
    ('04_ppo_rlhf', 'Section 3.4 writes one of its'): C(checks='ppo_step_by_hand_matches_trainer'),
    ('04_ppo_rlhf', 'Because $\\nabla \\log \\pi(a)$'): C(checks='reward_sign_sets_update_direction'),
    ('04_ppo_rlhf', 'The term $-\\tfrac1N r_i\\,\\nabla\\log\\pi_\\theta(a_i)$'): C(checks='bandit_sga_finds_best_response'),
    ('04_ppo_rlhf', 'Summed over a response, the rewards'): C(printed='summed per response'),
    ('04_ppo_rlhf', 'At the end the same batch goes'): C(checks='ppo_step_by_hand_matches_trainer'),
    ('04_ppo_rlhf', '(In this first step the policy'): C(printed='β = {beta:.3f}; per response'),
    ('04_ppo_rlhf', 'The first minibatch sees ratio'): C(printed='hand_log'),
    ('04_ppo_rlhf', 'The same batch, handed to `PPOTrainer.step`'): C(checks='ppo_step_by_hand_matches_trainer'),
    ('04_ppo_rlhf', 'On a CPU they agree exactly;'): C(checks='ppo_step_by_hand_matches_trainer', printed='relative differences'),
    ('04_ppo_rlhf', 'Before training, we measure the'): C(results='reward_before'),
    ('04_ppo_rlhf', 'One NaN reward would turn every'): C(checks='broken_rewards_are_caught'),
    ('04_ppo_rlhf', 'The cell after the curves compares'): C(checks='objective_rises', results='objective_first_last', printed='The objective {went}'),
    ('04_ppo_rlhf', 'Each update climbs it on the batch'): C(checks='objective_rises', results='objective_first_last'),
    ('04_ppo_rlhf', 'Without the penalty the reward ends'): C(checks=('no_kl_reward_about_as_high', 'no_kl_drifts_further', 'no_kl_loses_fluency')),
    ('04_ppo_rlhf', 'GPT-2 learns one embedding per'): C(checks='position_ids_fix_left_padding'),
    ('04_ppo_rlhf', "The second prompt's responses"): C(checks='group_advantages_match_trl', printed='"advantages "'),
    ('04_ppo_rlhf', 'In the first group the best response'): C(checks='group_advantages_match_trl', printed='"advantages "'),
    ('04_ppo_rlhf', 'You estimated a policy gradient'): C(checks=('reward_sign_sets_update_direction', 'reward_improves', 'kl_stays_bounded', 'no_kl_drifts_further', 'grpo_improves')),
    ('04_ppo_rlhf', 'Each PPO update climbs score'): C(checks=('reward_improves', 'kl_stays_bounded', 'objective_rises'), results='objective_first_last'),
    ('04_ppo_rlhf', 'Without the penalty the reward rose'): C(checks=('no_kl_reward_about_as_high', 'no_kl_drifts_further', 'no_kl_loses_fluency', 'reward_hacking_named')),
    ('04_ppo_rlhf', 'The records below are what the'): C(printed='show_summary'),
    ('04_ppo_rlhf', 'Maximum likelihood raises $\\log\\pi_\\theta(a)$'): C(checks='own_samples_likelihood_goes_nowhere'),
    # 05_generation_parameters
    ('05_generation_parameters', '### 3.1 Temperature → 0 is greedy'): C(checks='low_temperature_equals_greedy'),
    ('05_generation_parameters', 'No setting wins both: you choose'): C(checks='temperature_trades_quality_for_diversity', results='quality_diversity_by_temperature'),
    ('05_generation_parameters', 'Small models (and big ones, on'): C(results='repeated_bigrams'),
    ('05_generation_parameters', '`min_new_tokens` holds the end-of-sequence'): C(checks='min_new_tokens_respected'),
    ('05_generation_parameters', 'Temperature trades certainty'): C(checks=('entropy_rises_with_temperature', 'low_temperature_equals_greedy')),
    ('05_generation_parameters', 'The records of this run:'): C(printed='show_summary'),
    ('05_generation_parameters', 'Low temperatures give likely'): C(checks='temperature_trades_quality_for_diversity'),
    # 06_scaling_up
    ('06_scaling_up', 'The lines under the table print those extras'): C(checks='memory_formula_within_25pct', results='memory_measured', printed='the extras weigh less on the'),
    ('06_scaling_up', 'They do not grow with the weights'): C(checks='memory_formula_within_25pct', results='memory_measured', printed='the extras weigh less on the'),
    ('06_scaling_up', 'The measured peak runs above the formula'): C(checks='memory_formula_within_25pct', results='memory_measured', printed='of the formula on top of it'),
    ('06_scaling_up', 'In the first row both answers'): C(checks='loss_covers_only_assistant_turns'),
    ('06_scaling_up', 'We build the `SFTTrainer` of'): C(checks='loss_covers_only_assistant_turns'),
    ('06_scaling_up', 'A name the model does not have'): C(printed='"ValueError:", err'),
    ('06_scaling_up', 'How to read this: the lines above'): C(results='lora_gap_to_full', printed='On this run LoRA gained'),
    ('06_scaling_up', 'On a budget this small LoRA moves'): C(checks='lora_count_matches_formula', results='trainable_fraction'),
    ('06_scaling_up', 'Full fine-tuning of the 1.5B'): C(results='memory_table_gib'),
    ('06_scaling_up', 'LoRA brings it to about 3 GiB'): C(results='memory_table_gib'),
    ('06_scaling_up', "(The lab's own model is small"): C(results='memory_table_gib'),
    ('06_scaling_up', "In `tiny` the lab's model has"): C(printed='LoRA trains {lora_total:,} of {total:,}'),
    ('06_scaling_up', '`labhelpers.lora.trainable_parameters_to_float32`'): C(printed='trainable parameters as TRL leaves them'),
    ('06_scaling_up', 'They are the choice when full'): C(results='memory_table_gib'),
    ('06_scaling_up', 'A word on the flag the documentation'): C(checks='both_ranks_ran'),
    ('06_scaling_up', 'Same global batch, same data'): C(checks=('ddp_matches_one_process', 'same_global_batch')),
    ('06_scaling_up', 'Launched on more processes than'): C(printed='print(err)'),
    ('06_scaling_up', 'With `{% generation %}` markers'): C(checks='loss_covers_only_assistant_turns'),
    ('06_scaling_up', 'LoRA trains $r(d_\\text{in}+d_\\text{out})$'): C(checks=('lora_count_matches_formula', 'lora_layer_matches_peft', 'merged_matches_adapter')),
    ('06_scaling_up', 'The table above shows the gap'): C(results='lora_gap_to_full', printed='On this run LoRA gained'),
    ('06_scaling_up', 'Every result and check of this'): C(printed='show_summary'),    ('06_scaling_up', 'About a third of the training'): C(printed='training conversations from'),
    ('06_scaling_up', 'float32** (here, and on a GPU'): C(checks='merged_matches_adapter'),
    ('06_scaling_up', '`accelerate launch` ran the same'): C(checks=('both_ranks_ran', 'ddp_matches_one_process')),

}

# Why a flagged sentence is not a claim about this run (the reasons GENERAL gives).
COURSE = "describes the course or a lab's place in it"
PIPELINE = "the course's pipeline as designed (lab 00's figure), not what this run loaded"
HEAD = "a heading or a lead-in that states no outcome"
LESSON = "what the lab will teach"
HEADER = "the generated header: a figure of labhelpers/course/hardware.py (the benchmarks), not this run"
PROFILE = "about a profile or its hardware, not this run"
DEF = "a definition or a formula"
HOW = "explains how the method or the code works"
SETTING = "says what a setting does or why it is chosen"
DATA = "describes the dataset or how it is generated"
SPLIT = "a property of the split, asserted by tests/test_held_out.py for every lab"
ASK = "asks the learner (an exercise, a prediction, an experiment to try)"
QUIZ = "a self-check question or one of its options"
ORIG = "quotes or corrects the original course"
NAV = "points to another lab, section or output"
READ = "how to read a statistic, figure or table in general"
REAL = "what happens in general or on real models (the literature)"
BENCH = "a finding of benchmarks/ (figures in the README), not this run"
TRL = "a fact about the code of TRL or transformers"
HEDGE = "a hedged reading guide that states no outcome"
HYPO = "a hypothetical case the lab does not run"

# (lab stem, distinctive substring of the sentence) -> why it is not a claim about this run
GENERAL: dict[tuple[str, str], str] = {
    # 00_overview
    ('00_overview', 'The labs of this course turn'): COURSE,
    ('00_overview', 'You will learn**'): HEAD,
    ('00_overview', 'Afterwards the model answers'): REAL,
    ('00_overview', 'A **reward model**, [lab 02](02_reward_modeling.ipynb),'): COURSE,
    ('00_overview', 'RLHF with PPO**, [lab 04](04_ppo_rlhf.ipynb),'): COURSE,
    ('00_overview', 'DPO**, [lab 03](03_dpo.ipynb),'): COURSE,
    ('00_overview', '01 first**: every later stage'): COURSE,
    ('00_overview', '(a) SFT is cheaper, so it goes'): QUIZ,
    ('00_overview', '`full` | a GPU with internet'): PROFILE,
    ('00_overview', '`tiny` is for learning the mechanics'): PROFILE,
    ('00_overview', '`full` is for seeing real answers'): PROFILE,
    ('00_overview', 'A `tiny` run of lab 01 passes'): QUIZ,
    ('00_overview', '(a) that the real opt-350m would'): QUIZ,
    ('00_overview', '`tiny` teaches the mechanics'): PROFILE,
    ('00_overview', 'Next, [lab 01](01_instruction_tuning.ipynb)'): NAV,
    ('00_overview', '`tiny` and `full` alike | any'): PROFILE,
    ('00_overview', 'A causal LM reads tokens $x_1,'): DEF,
    ('00_overview', 'Their log-softmax is $\\log p_\\theta(\\,\\cdot'): DEF,
    ('00_overview', '`model.generate(..., do_sample=False)`'): HOW,
    ('00_overview', 'Whether a model stops there is'): NAV,
    ('00_overview', 'Pre-training** (not in this course)'): DEF,
    ('00_overview', 'Generation parameters**, [lab'): COURSE,
    ('00_overview', 'Give a number.'): QUIZ,
    ('00_overview', "Each lab's first cell gives its"): NAV,
    ('00_overview', "figure's hand-overs are real"): HOW,  # how labhelpers.stages resolves; tests/test_stages.py
    ('00_overview', 'In `full` each lab says what it starts'): PROFILE,
    ('00_overview', "Lab 01's loss, the log-ratios"): COURSE,
    # 01_instruction_tuning
    ('01_instruction_tuning', 'It is the first stage after pre-training'): COURSE,
    ('01_instruction_tuning', 'You will learn to**'): HEAD,
    ('01_instruction_tuning', 'measure the effect on held-out prompts before'): LESSON,
    ('01_instruction_tuning', 'The course scored the code answers with'): ORIG,
    ('01_instruction_tuning', 'In `tiny` the base model was pre-trained on short sentences'): PROFILE,
    ('01_instruction_tuning', 'so an endless loop or a crash fails that answer'): HOW,
    ('01_instruction_tuning', 'BLEU stays as the'): HOW,
    ('01_instruction_tuning', 'measure for every answer, code or not;'): HOW,
    ('01_instruction_tuning', '### 6.1 Memorised or generalised?'): HEAD,
    ('01_instruction_tuning', 'We score the held-out rows and as many training rows'): HOW,
    ('01_instruction_tuning', 'An answer is **right** when it is exactly the reference'): DEF,
    ('01_instruction_tuning', 'A kind right on the training rows but not on the held-out'): DEF,
    ('01_instruction_tuning', '`full`: `facebook/opt-350m`;'): PROFILE,
    ('01_instruction_tuning', '`tiny` | any CPU, offline |'): HEADER,  # the figure is regenerated by the benchmarks
    ('01_instruction_tuning', '`full` | a GPU, e.g. a Colab'): HEADER,
    ('01_instruction_tuning', 'Leave a value at `None` to use'): NAV,
    ('01_instruction_tuning', '[CodeAlpaca-20k](https://huggingface.co/datasets/sahil2801/CodeAlpaca-20k)'): DATA,
    ('01_instruction_tuning', '`output`: the answer we want'): DATA,
    ('01_instruction_tuning', 'It is generated: CodeAlpaca follows'): DATA,
    ('01_instruction_tuning', 'That matters for this lab, because'): REAL,
    ('01_instruction_tuning', "Where do CodeAlpaca's answers"): QUIZ,
    ('01_instruction_tuning', '(a) programmers wrote and reviewed'): QUIZ,
    ('01_instruction_tuning', '`load_code_alpaca` accepts the'): HOW,
    ('01_instruction_tuning', 'The test examples are never trained'): SPLIT,
    ('01_instruction_tuning', 'In `tiny` no test *question*'): SPLIT,
    ('01_instruction_tuning', 'A dataset smaller than `N_TRAIN'): HOW,
    ('01_instruction_tuning', 'with the response**: the *training'): HOW,
    ('01_instruction_tuning', 'Do **not** add an end-of-sequence'): ASK,
    ('01_instruction_tuning', "OPT's tokenizer puts `</s>` at"): HOW,
    ('01_instruction_tuning', '`labhelpers.collators.CompletionOnlyCollator`'): HOW,
    ('01_instruction_tuning', 'Below, every token of the batch:'): HOW,
    ('01_instruction_tuning', 'A training text is 30 tokens'): QUIZ,
    ('01_instruction_tuning', 'TRL 1.x does the masking itself'): HOW,
    ('01_instruction_tuning', 'For both ways to mask **the same'): HOW,
    ('01_instruction_tuning', '## 4. The model before training'): HEAD,
    ('01_instruction_tuning', 'We load the model in float32,'): SETTING,
    ('01_instruction_tuning', 'On a GPU the trainer adds **mixed'): HOW,
    ('01_instruction_tuning', 'Then we generate answers for'): HOW,
    ('01_instruction_tuning', 'greedy decoding**, so that the'): HOW,
    ('01_instruction_tuning', 'We pass it as a whole `GenerationConfig`'): SETTING,
    ('01_instruction_tuning', 'a second copy of the tokenizer'): HOW,
    ('01_instruction_tuning', 'Besides BLEU we measure how well'): HOW,
    ('01_instruction_tuning', 'The response loss is $\\mathcal{L}_{\\text{response}}$'): HOW,
    ('01_instruction_tuning', 'Both are in **nats**, the unit'): DEF,
    ('01_instruction_tuning', '`max_length`: sequences are truncated'): SETTING,
    ('01_instruction_tuning', '`train_sampling_strategy="group_by_length"`:'): SETTING,
    ('01_instruction_tuning', '`activation_checkpointing=False`'): SETTING,
    ('01_instruction_tuning', '`group_by_length`: `python benchmarks/bench_sft.py`'): BENCH,
    ('01_instruction_tuning', "TRL's `padding_free=True` (one"): BENCH,
    ('01_instruction_tuning', 'We take a batch of its prepared'): HOW,
    ('01_instruction_tuning', '`training.train(trainer)` runs'): HOW,
    ('01_instruction_tuning', 'Beside it, the **validation loss**:'): HOW,
    ('01_instruction_tuning', 'The training loss alone cannot'): REAL,
    ('01_instruction_tuning', '## 6. After training'): HEAD,
    ('01_instruction_tuning', 'We train a fresh copy of the'): HOW,
    ('01_instruction_tuning', 'Which of the two fine-tuned models'): ASK,
    ('01_instruction_tuning', 'Write your prediction down now;'): ASK,
    ('01_instruction_tuning', 'The **response loss** and **BLEU**'): HOW,
    ('01_instruction_tuning', 'With a budget this small the'): HEDGE,
    ('01_instruction_tuning', 'It matters more when prompts'): REAL,
    ('01_instruction_tuning', '[Lab 02](02_reward_modeling.ipynb)'): PIPELINE,
    ('01_instruction_tuning', 'The fine-tuned model of section 5'): HOW,
    ('01_instruction_tuning', 'In this lab you fine-tune a causal'): LESSON,
    ('01_instruction_tuning', 'train on the **response only**'): LESSON,
    ('01_instruction_tuning', 'At test time the model gets exactly'): HOW,
    ('01_instruction_tuning', 'Instruction masking keeps only'): DEF,
    ('01_instruction_tuning', 'A sequence in which the template'): HOW,
    ('01_instruction_tuning', 'Newlines are shown as `\\n`.'): HOW,
    ('01_instruction_tuning', 'Give a number.'): QUIZ,
    ('01_instruction_tuning', 'Write `mask_by_hand(input_ids,'): ASK,
    ('01_instruction_tuning', 'in each row find the **last**'): ASK,
    ('01_instruction_tuning', 'The labels decide which tokens'): DEF,
    ('01_instruction_tuning', 'Write `masked_cross_entropy(logits,'): ASK,
    ('01_instruction_tuning', '`return_full_text=False`, so'): SETTING,
    ('01_instruction_tuning', '### 5.1 Do the two ways agree?'): HEAD,
    ('01_instruction_tuning', 'Change `MAX_STEPS` or the dataset'): ASK,
    # 02_reward_modeling
    ('02_reward_modeling', 'Nobody can write that function'): REAL,
    ('02_reward_modeling', 'A **reward model** learns from'): DEF,
    ('02_reward_modeling', "In [lab 00's pipeline](00_overview.ipynb)"): PIPELINE,
    ('02_reward_modeling', 'You will learn to**'): HEAD,
    ('02_reward_modeling', 'read a pairwise preference dataset'): LESSON,
    ('02_reward_modeling', 'format the data the way `RewardTrainer`'): LESSON,
    ('02_reward_modeling', 'write the **Bradley–Terry loss**'): LESSON,
    ('02_reward_modeling', 'score answers with `score(query,'): LESSON,
    ('02_reward_modeling', "`tiny`: lab 01's SFT model, a tiny OPT"): PROFILE,
    ('02_reward_modeling', 'turn a causal LM into a reward model'): LESSON,
    ('02_reward_modeling', 'has a `<pad>` of its own, so below'): HOW,
    ('02_reward_modeling', "for GPT-2's tokenizer (which writes no eos"): QUIZ,
    ('02_reward_modeling', "This is a **decoder** (lab 01's OPT"): DEF,
    ('02_reward_modeling', '`full`: `gpt2` (124 M), 4 400'): PROFILE,
    ('02_reward_modeling', '`tiny` | any CPU, offline |'): HEADER,  # the figure is regenerated by the benchmarks
    ('02_reward_modeling', '`full` | a GPU, e.g. a Colab'): HEADER,
    ('02_reward_modeling', 'Each row is one comparison: a'): DATA,
    ('02_reward_modeling', 'The reward model never sees a'): HOW,
    ('02_reward_modeling', 'Many rejected answers are off'): DATA,
    ('02_reward_modeling', 'chosen and rejected identical'): HOW,
    ('02_reward_modeling', 'empty (or missing) chosen or'): HOW,
    ('02_reward_modeling', 'prompt + answer longer than `max_length`'): HOW,
    ('02_reward_modeling', 'The new head (`score`) starts'): HOW,
    ('02_reward_modeling', 'It writes no response: it *reads*'): HOW,
    ('02_reward_modeling', 'Writing responses is the job'): COURSE,
    ('02_reward_modeling', 'Every text is then padded with'): HOW,
    ('02_reward_modeling', 'Inner eos tokens no longer cut'): HOW,
    ('02_reward_modeling', 'Below, one held-out answer is'): NAV,
    ('02_reward_modeling', 'give the tokenizer a **distinct'): HOW,
    ('02_reward_modeling', "TRL 1.16's `RewardTrainer` (`trl/trainer/reward_trainer.py`)"): HOW,
    ('02_reward_modeling', 'Its `DataCollatorForPreference`'): HOW,
    ('02_reward_modeling', '`gpt2` has 124 M parameters;'): PROFILE,
    ('02_reward_modeling', 'Pass `peft_config=peft.LoraConfig(task_type="SEQ_CLS",'): HOW,
    ('02_reward_modeling', '`RewardConfig` turns **activation'): BENCH,
    ('02_reward_modeling', 'The Bradley–Terry model says'): DEF,
    ('02_reward_modeling', 'The optional **margin** $m^{(i)}'): DEF,
    ('02_reward_modeling', 'Implement `bt_loss(rewards_chosen,'): ASK,
    ('02_reward_modeling', 'What is the Bradley–Terry loss'): QUIZ,
    ('02_reward_modeling', 'Then the same with a `margin`'): HOW,
    ('02_reward_modeling', '(a) it rises &nbsp; (b) it falls'): QUIZ,
    ('02_reward_modeling', '## 6. Scoring answers, and the'): HEAD,
    ('02_reward_modeling', '`score(query, response)` appends'): HOW,
    ('02_reward_modeling', 'The **win rate** on held-out'): DEF,
    ('02_reward_modeling', '`trainer.train()` runs the loop:'): HOW,
    ('02_reward_modeling', 'The trainer logs the loss and'): HOW,
    ('02_reward_modeling', 'On a GPU the trainer trains in'): HOW,
    ('02_reward_modeling', 'After the unwrap the trained'): HOW,
    ('02_reward_modeling', 'It checks that every logged training'): HOW,
    ('02_reward_modeling', 'The dotted lines mark chance:'): READ,
    ('02_reward_modeling', 'A training loss far below the'): READ,
    ('02_reward_modeling', '## 8. After training'): HEAD,
    ('02_reward_modeling', '### 8.1 Win rate and reward margins'): HEAD,
    ('02_reward_modeling', '### 8.2 Which answer is better?'): HEAD,
    ('02_reward_modeling', 'Use `score` to pick the better'): HOW,
    ('02_reward_modeling', '### 8.3 Does a longer answer'): HEAD,
    ('02_reward_modeling', 'A reward model learns whatever'): REAL,
    ('02_reward_modeling', 'Length is the best known one:'): REAL,
    ('02_reward_modeling', 'A reward that follows length'): REAL,
    ('02_reward_modeling', '[Lab 04](04_ppo_rlhf.ipynb) finds'): PIPELINE,
    ('02_reward_modeling', 'Both run in float32 on every'): SETTING,
    ('02_reward_modeling', 'Try it**: write your own prompt'): ASK,
    ('02_reward_modeling', 'A reward model is a causal LM'): LESSON,
    ('02_reward_modeling', "TRL 1.16's `RewardTrainer` takes"): HOW,
    ('02_reward_modeling', '[Lab 03](03_dpo.ipynb) learns'): NAV,
    ('02_reward_modeling', '[Lab 04](04_ppo_rlhf.ipynb) uses'): NAV,
    ('02_reward_modeling', '`compute_loss` above called the'): HOW,
    ('02_reward_modeling', 'Two shortcuts look right on a'): HOW,
    ('02_reward_modeling', '### 1.2 Pairs that cannot teach'): HEAD,
    ('02_reward_modeling', 'First on a handful of hand-made'): NAV,
    ('02_reward_modeling', 'In a batch, texts are padded'): HOW,
    ('02_reward_modeling', 'Both are padded **with eos**,'): HOW,
    ('02_reward_modeling', '#### Under the hood: what changed'): HEAD,
    ('02_reward_modeling', '`labhelpers.training.reward_args(cfg)`'): HOW,
    ('02_reward_modeling', 'Only differences of rewards enter'): DEF,
    ('02_reward_modeling', 'Compute $\\log\\sigma$ with `F.logsigmoid`:'): ASK,
    ('02_reward_modeling', 'Give a number (in nats).'): QUIZ,
    ('02_reward_modeling', 'You add 5 to every reward the'): QUIZ,
    ('02_reward_modeling', 'So the check runs your function'): HOW,
    ('02_reward_modeling', 'It compares your positions with'): HOW,
    ('02_reward_modeling', 'Every later call of `model` in'): HYPO,
    ('02_reward_modeling', 'Lab 04 uses an **encoder** sentiment'): SETTING,
    ('02_reward_modeling', 'Then look for an answer that'): ASK,
    # 03_dpo
    ('03_dpo', 'DPO (Rafailov et al., 2023) reaches'): DEF,
    ('03_dpo', "In [lab 00's pipeline](00_overview.ipynb)"): PIPELINE,
    ('03_dpo', 'You will learn to**'): HEAD,
    ('03_dpo', 'compute the optimum of the KL-regularised'): LESSON,
    ('03_dpo', 'train with `DPOConfig`/`DPOTrainer`'): LESSON,
    ('03_dpo', 'measure **likelihood displacement**'): LESSON,
    ('03_dpo', '`full`: `gpt2` (124M) on 2,000'): PROFILE,
    ('03_dpo', '`tiny` | any CPU, offline |'): HEADER,  # the figure is regenerated by the benchmarks
    ('03_dpo', '`full` | a GPU, e.g. a Colab'): HEADER,
    ('03_dpo', 'A **policy** is a language model'): DEF,
    ('03_dpo', 'RLHF looks for a policy $\\pi$'): DEF,
    ('03_dpo', 'The **Kullback–Leibler divergence**'): DEF,
    ('03_dpo', 'It is $\\ge 0$, it is $0$ only'): DEF,
    ('03_dpo', 'We check all of this on one prompt'): HOW,
    ('03_dpo', '$Z(x)$ sums over *all* possible'): DEF,
    ('03_dpo', '(a) $Z = 1$ for every language'): QUIZ,
    ('03_dpo', 'Substitute the reward of the'): DEF,
    ('03_dpo', 'The log-probabilities are of'): DEF,
    ('03_dpo', 'It needs two decoder models,'): HOW,
    ('03_dpo', 'The course also wrote the loss'): ORIG,
    ('03_dpo', '`load_preferences` reads a Hub'): HOW,
    ('03_dpo', "The course's real set, `trl-lib/ultrafeedback_binarized`,"): DATA,
    ('03_dpo', '### 2.2 Reformat: chat messages'): HEAD,
    ('03_dpo', 'the prompt must be **shared**'): HOW,
    ('03_dpo', 'the tokens of `prompt + answer` must begin'): HOW,
    ('03_dpo', 'Each pair becomes plain text in the format'): HOW,
    ('03_dpo', "In `tiny` the lab starts from lab 01's SFT model, tuned"): SETTING,
    ('03_dpo', 'Scraped sets hold the odd empty'): HOW,
    ('03_dpo', '`gpt2` (`full`) has no padding token'): HOW,
    ('03_dpo', "Lab 01's OPT-style model (`tiny`) has a"): HOW,
    ('03_dpo', '[Lab 02](02_reward_modeling.ipynb#2.1-The-pitfall:-pad-=-eos)'): HOW,
    ('03_dpo', 'TRL 1.16 removed `max_prompt_length`'): HOW,
    ('03_dpo', 'So we drop pairs with very long'): HOW,
    ('03_dpo', 'We load the reference ourselves'): HOW,
    ('03_dpo', 'With `ref_model=None` (and neither'): HOW,
    ('03_dpo', 'In the pipeline of [lab 00](00_overview.ipynb),'): PIPELINE,
    ('03_dpo', 'In `tiny` this lab does exactly that:'): SETTING,
    ('03_dpo', 'Section 6 judges what the SFT model writes'): NAV,
    ('03_dpo', '`answer_batch` tokenizes a batch exactly'): HOW,
    ('03_dpo', 'What DPO learns from, and what PPO scores'): HOW,
    ('03_dpo', 'The logits at column $t$ are the prediction'): DEF,
    ('03_dpo', '`loss_type`: a list; `["sigmoid"]`'): SETTING,
    ('03_dpo', '`precompute_ref_log_probs=True`:'): SETTING,
    ('03_dpo', "Since the course's TRL, `DPOTrainer(beta=...)`,"): HOW,
    ('03_dpo', '`precompute_ref_log_probs=True` stores'): SETTING,
    ('03_dpo', 'It pays whenever a pair is seen'): SETTING,
    ('03_dpo', '`python benchmarks/bench_trainers.py`'): BENCH,
    ('03_dpo', '`gradient_checkpointing=False`:'): SETTING,
    ('03_dpo', '(On a GPU the trainer runs the'): HOW,
    ('03_dpo', 'It is just as happy when both'): HOW,
    ('03_dpo', 'In practice that is what often'): REAL,
    ('03_dpo', 'Preference accuracy looks perfect'): REAL,
    ('03_dpo', 'TRL 1.16 combines losses with'): HOW,
    ('03_dpo', 'We train it from the same starting'): HOW,
    ('03_dpo', 'preference accuracy** (does it'): HOW,
    ('03_dpo', "the chosen answers' mean log-probability"): HOW,
    ('03_dpo', '### 6.1 Beyond accuracy: how'): HEAD,
    ('03_dpo', 'Preference accuracy says nothing'): HOW,
    ('03_dpo', 'Two more numbers, on one sampled'): HOW,
    ('03_dpo', 'answer length** in tokens: preference'): REAL,
    ('03_dpo', 'Each answer ends at its first'): HOW,
    ('03_dpo', 'The score counts positions from'): HOW,
    ('03_dpo', 'Read the three columns together:'): READ,
    ('03_dpo', 'Can its chosen answers still'): QUIZ,
    ('03_dpo', '(a) no: a high accuracy means'): QUIZ,
    ('03_dpo', 'On the tiny set a generation'): HOW,
    ('03_dpo', 'Three measures need no judge:'): DEF,
    ('03_dpo', 'Greedy answers depend on the prompt alone'): HOW,
    ('03_dpo', "**This run's outcome in `tiny`, checked."): HEAD,
    ('03_dpo', 'Three checks say what the lines above show'): HEAD,
    ('03_dpo', 'Both answers of every pair name that noun'): DATA,
    ('03_dpo', 'A higher log-prob of the chosen'): HOW,
    ('03_dpo', 'Other remedies: a larger β, fewer'): REAL,
    ('03_dpo', '### Exercise 3.4: a larger β,'): HEAD,
    ('03_dpo', 'Measure it on a trained model:'): ASK,
    ('03_dpo', 'The loss $-\\log\\sigma(\\beta\\cdot\\text{margin})$ is nearly'): HOW,
    ('03_dpo', 'Rerun the lab with `SFT_WEIGHT'): ASK,
    ('03_dpo', 'Relate what you see to the β'): ASK,
    ('03_dpo', '[Lab 04](04_ppo_rlhf.ipynb) optimises'): NAV,
    ('03_dpo', 'Then, for every policy $\\pi$,'): DEF,
    ('03_dpo', 'Give a number.'): QUIZ,
    ('03_dpo', 'Give a number (in nats).'): QUIZ,
    ('03_dpo', 'Any change you made to the model'): HOW,
    ('03_dpo', 'Mixed precision (`fp16`/`bf16`,'): HOW,
    ('03_dpo', '`labhelpers.training.dpo_args`'): HOW,
    ('03_dpo', '#### Under the hood: API changes'): HEAD,
    ('03_dpo', '`dpo_args(run_name, loss_type,'): HOW,
    # 04_ppo_rlhf
    ('04_ppo_rlhf', 'A language model that writes movie'): COURSE,
    ('04_ppo_rlhf', 'In `tiny` the lab runs that pipeline'): PROFILE,
    ('04_ppo_rlhf', 'In `tiny` the policy is **lab 01'): DATA,
    ('04_ppo_rlhf', 'In `full` the policy is a GPT-2'): PROFILE,
    ('04_ppo_rlhf', 'In `tiny` the queries are the request'): SPLIT,
    ('04_ppo_rlhf', 'In `full` each query is a review'): HOW,
    ('04_ppo_rlhf', '`REWARD_SOURCE` picks the one'): HEAD,
    ('04_ppo_rlhf', '`REWARD_SOURCE` | scores | default'): HEAD,
    ('04_ppo_rlhf', '`"classifier"` | P(POSITIVE) of the review'): SETTING,
    ('04_ppo_rlhf', 'the classifier still scores every review'): HOW,
    ('04_ppo_rlhf', 'Each PPO step: **(1)** draw'): HOW,
    ('04_ppo_rlhf', 'A reward model is only as good'): REAL,
    ('04_ppo_rlhf', 'You will learn to**'): HEAD,
    ('04_ppo_rlhf', 'build the pieces PPO adds for'): LESSON,
    ('04_ppo_rlhf', 'run the RLHF loop step by step:'): LESSON,
    ('04_ppo_rlhf', '`tiny` | any CPU, offline |'): HEADER,  # the figure is regenerated by the benchmarks
    ('04_ppo_rlhf', '`full` | a GPU, e.g. a Colab'): HEADER,
    ('04_ppo_rlhf', '## Words of reinforcement learning,'): HEAD,
    ('04_ppo_rlhf', 'episode**, **rollout** | one'): DEF,
    ('04_ppo_rlhf', 'reward** $r$ | the number the'): DEF,
    ('04_ppo_rlhf', 'return** | the sum of the rewards'): DEF,
    ('04_ppo_rlhf', 'value** $V_t$ | the return expected'): DEF,
    ('04_ppo_rlhf', 'advantage** $A_t$ | how much'): DEF,
    ('04_ppo_rlhf', 'KL penalty** | $\\beta\\,\\mathrm{KL}(\\pi_\\theta'): DEF,
    ('04_ppo_rlhf', 'Reinforcement learning maximises'): DEF,
    ('04_ppo_rlhf', 'For a softmax the exact gradient'): DEF,
    ('04_ppo_rlhf', 'With a language model we cannot'): HOW,
    ('04_ppo_rlhf', 'In code one writes the **surrogate'): HOW,
    ('04_ppo_rlhf', "PPO's value head is a learned"): DEF,
    ('04_ppo_rlhf', 'A response earns reward 0.3 while'): QUIZ,
    ('04_ppo_rlhf', '(Supervised maximum likelihood'): HOW,
    ('04_ppo_rlhf', 'The policy stays in float32 even'): SETTING,
    ('04_ppo_rlhf', 'A second copy of the same checkpoint'): HOW,
    ('04_ppo_rlhf', 'Nothing in this lab looks for'): HOW,
    ('04_ppo_rlhf', 'The pipeline returns, for each'): HOW,
    ('04_ppo_rlhf', 'It took `output[1]["score"]`,'): ORIG,
    ('04_ppo_rlhf', 'Which reward model scores the'): HEAD,
    ('04_ppo_rlhf', "RLHF's reward model is the kind"): PIPELINE,
    ('04_ppo_rlhf', 'A policy learns what its reward'): REAL,
    ('04_ppo_rlhf', '(The original course\'s "the reward'): ORIG,
    ('04_ppo_rlhf', 'KL**: $\\frac1B\\sum_i \\sum_t \\big(\\log\\pi(y_{i,t})'): DEF,
    ('04_ppo_rlhf', 'Sampling uses the full distribution'): SETTING,
    ('04_ppo_rlhf', 'Why does PPO sample its rollouts'): QUIZ,
    ('04_ppo_rlhf', '(a) for the most varied text'): QUIZ,
    ('04_ppo_rlhf', 'The reward model scores only'): DEF,
    ('04_ppo_rlhf', 'Summed over a response that is'): DEF,
    ('04_ppo_rlhf', 'The advantage of each token is'): DEF,
    ('04_ppo_rlhf', 'The value head learns by regressing'): DEF,
    ('04_ppo_rlhf', 'After the first update the policy'): DEF,
    ('04_ppo_rlhf', '### 3.1 Exercise 4.1: generalised'): HEAD,
    ('04_ppo_rlhf', 'The plot then shows what the'): HOW,
    ('04_ppo_rlhf', 'Take $A > 0$, $\\epsilon = 0.2$'): QUIZ,
    ('04_ppo_rlhf', 'Change 2 above, in code.'): ASK,
    ('04_ppo_rlhf', 'In a batch of left-padded responses'): DEF,
    ('04_ppo_rlhf', 'With left padding every response'): HOW,
    ('04_ppo_rlhf', 'Everything `PPOTrainer.step`'): HOW,
    ('04_ppo_rlhf', '(1) Rollout and (2) score.'): HEAD,
    ('04_ppo_rlhf', 'One batch of training openings,'): HOW,
    ('04_ppo_rlhf', 'One forward pass of the policy'): HOW,
    ('04_ppo_rlhf', 'No gradients: these numbers stay'): HOW,
    ('04_ppo_rlhf', 'Your exercise 4.3 turns the scores'): HOW,
    ('04_ppo_rlhf', 'The policy loss weights each'): HOW,
    ('04_ppo_rlhf', 'For a minibatch of rollouts,'): DEF,
    ('04_ppo_rlhf', 'The value loss is its counterpart'): DEF,
    ('04_ppo_rlhf', '`ppo_epochs` passes over the batch,'): HOW,
    ('04_ppo_rlhf', 'After the update, the controller'): HOW,
    ('04_ppo_rlhf', '$$\\beta \\leftarrow \\beta\\,\\Big(1'): DEF,
    ('04_ppo_rlhf', 'Above the target β grows and'): HOW,
    ('04_ppo_rlhf', '"The rollout libraries, such'): ORIG,
    ('04_ppo_rlhf', 'library, nor something apart'): ORIG,
    ('04_ppo_rlhf', 'policy, and it is how reinforcement'): ORIG,
    ('04_ppo_rlhf', '`trainer.generate`) only produces'): ORIG,
    ('04_ppo_rlhf', 'learning from the rewards of'): ORIG,
    ('04_ppo_rlhf', 'the return to expect, a baseline'): ORIG,
    ('04_ppo_rlhf', 'once per response: a step collects'): ORIG,
    ('04_ppo_rlhf', 'response tokens (section 3.4,'): ORIG,
    ('04_ppo_rlhf', 'The first batch shows what the'): NAV,
    ('04_ppo_rlhf', '`reward` | mean score of the'): READ,
    ('04_ppo_rlhf', '`kl` | $\\sum_t \\log\\pi_\\theta(y_t)'): READ,
    ('04_ppo_rlhf', '`value_loss` | the clipped squared'): READ,
    ('04_ppo_rlhf', '`clipfrac` | share of response'): READ,
    ('04_ppo_rlhf', '`approx_kl` | mean $\\tfrac12(\\log\\rho_t)^2$:'): READ,
    ('04_ppo_rlhf', '`entropy` | mean entropy of the'): READ,
    ('04_ppo_rlhf', 'The curves put the score next'): HOW,
    ('04_ppo_rlhf', 'That happens when the updates are too large'): HOW,
    ('04_ppo_rlhf', "The tiny profile's learning rate"): SETTING,
    ('04_ppo_rlhf', 'The same held-out queries, sampled'): HOW,
    ('04_ppo_rlhf', 'Compared with the run above,'): ASK,
    ('04_ppo_rlhf', '(a) about the same &nbsp; (b)'): QUIZ,
    ('04_ppo_rlhf', 'Write your prediction down now;'): ASK,
    ('04_ppo_rlhf', 'The KL term prices that drift:'): HOW,
    ('04_ppo_rlhf', 'Reward hacking is the general'): REAL,
    ('04_ppo_rlhf', 'Raise `INIT_KL_COEF` to 1.0:'): ASK,
    ('04_ppo_rlhf', 'Lower `LEARNING_RATE` ten-fold:'): ASK,
    ('04_ppo_rlhf', 'Why does the clip fraction rise'): ASK,
    ('04_ppo_rlhf', 'Double `LEARNING_RATE`: does'): ASK,
    ('04_ppo_rlhf', 'TRL 1.x dropped PPO for critic-free'): HOW,
    ('04_ppo_rlhf', "TRL's GRPO and RLOO left-pad"): TRL,
    ('04_ppo_rlhf', 'Compare more than the reward'): READ,
    ('04_ppo_rlhf', 'Before running it, predict: what'): ASK,
    ('04_ppo_rlhf', 'Subtracting a baseline $b$ (for'): DEF,
    ('04_ppo_rlhf', '(GRPO in section 7 keeps the'): HOW,
    ('04_ppo_rlhf', 'The policy gradient is maximum likelihood on its'): DEF,
    ('04_ppo_rlhf', 'In expectation, where does maximising'): QUIZ,
    ('04_ppo_rlhf', '[Lab 02 §2.1](02_reward_modeling.ipynb)'): NAV,
    ('04_ppo_rlhf', 'The full profile keeps reviews'): PROFILE,
    ('04_ppo_rlhf', 'two **fluency proxies**: the'): DEF,
    ('04_ppo_rlhf', '[Lab 05](05_generation_parameters.ipynb) shows'): NAV,
    ('04_ppo_rlhf', "Section 1's update works, but"): HOW,
    ('04_ppo_rlhf', 'Give a number.'): QUIZ,
    ('04_ppo_rlhf', 'The value head is a linear layer'): HOW,
    ('04_ppo_rlhf', '`clipfrac` counts the tokens'): DEF,
    ('04_ppo_rlhf', 'The clip bounds the change of'): HOW,
    ('04_ppo_rlhf', '`PPOConfig` (the `ppo_config`'): HOW,
    ('04_ppo_rlhf', 'step (3); PPO is the update rule'): ORIG,
    ('04_ppo_rlhf', 'A reward function is code too,'): HOW,
    ('04_ppo_rlhf', 'Section 6 shows what happens'): NAV,
    ('04_ppo_rlhf', 'What each says, and what a healthy'): READ,
    ('04_ppo_rlhf', '`kl_coef` | β of the step | moves'): READ,
    ('04_ppo_rlhf', 'Maximise it without restraint'): REAL,
    ('04_ppo_rlhf', '(OPT counts positions from the'): REAL,
    ('04_ppo_rlhf', 'Every token of response $i$ gets'): DEF,
    ('04_ppo_rlhf', '[Lab 05](05_generation_parameters.ipynb) opens'): NAV,
    # 05_generation_parameters
    ('05_generation_parameters', 'You will learn to**'): HEAD,
    ('05_generation_parameters', "read a model's next-token distribution"): LESSON,
    ('05_generation_parameters', 'reshape it with **temperature**'): LESSON,
    ('05_generation_parameters', '`full`: `gpt2` (124M parameters)'): PROFILE,
    ('05_generation_parameters', '`tiny` | any CPU, offline |'): HEADER,  # the figure is regenerated by the benchmarks
    ('05_generation_parameters', '`full` | a GPU, e.g. a Colab'): HEADER,
    ('05_generation_parameters', 'A causal language model maps'): DEF,
    ('05_generation_parameters', 'Below, four greedy steps (append'): NAV,
    ('05_generation_parameters', '$T < 1$ sharpens the distribution'): DEF,
    ('05_generation_parameters', 'What is the entropy of a uniform'): QUIZ,
    ('05_generation_parameters', 'The course advised to "increase'): ORIG,
    ('05_generation_parameters', "[Lab 04](04_ppo_rlhf.ipynb)'s"): HOW,
    ('05_generation_parameters', 'Sampled at another temperature,'): HOW,
    ('05_generation_parameters', "TRL's `GRPOTrainer` and `RLOOTrainer`"): TRL,
    ('05_generation_parameters', 'A GRPO run at $T = 0.7$ is therefore'): TRL,
    ('05_generation_parameters', 'Exploration in PPO comes from'): REAL,
    ('05_generation_parameters', '(a) a high temperature, to explore'): QUIZ,
    ('05_generation_parameters', 'top-p** (nucleus sampling, Holtzman'): DEF,
    ('05_generation_parameters', 'Hint:* sort the probabilities'): ASK,
    ('05_generation_parameters', 'quality proxy**: the mean log-probability'): DEF,
    ('05_generation_parameters', 'Beam search** keeps the `num_beams`'): DEF,
    ('05_generation_parameters', 'To compare fairly we fix the'): HOW,
    ('05_generation_parameters', 'Beam search *usually* finds a'): REAL,
    ('05_generation_parameters', '(a) yes, always: it searches'): QUIZ,
    ('05_generation_parameters', 'The repetition penalty (Keskar'): DEF,
    ('05_generation_parameters', 'Write `apply_repetition_penalty(input_ids,'): ASK,
    ('05_generation_parameters', 'Every token that occurs in a'): ASK,
    ('05_generation_parameters', 'Logits → softmax gives a distribution;'): LESSON,
    ('05_generation_parameters', 'If you took this lab early, as'): NAV,
    ('05_generation_parameters', "In [lab 00's pipeline](00_overview.ipynb)"): COURSE,
    ('05_generation_parameters', '$T > 1$ flattens it (rare tokens'): DEF,
    ('05_generation_parameters', '$T \\to 0$ puts all the mass on'): DEF,
    ('05_generation_parameters', 'Give a number.'): QUIZ,
    ('05_generation_parameters', 'The bias appears only when the'): HOW,
    ('05_generation_parameters', 'top-k** keeps the $k$ most likely'): DEF,
    ('05_generation_parameters', 'Top-k keeps a fixed number of'): LESSON,
    # 06_scaling_up
    ('06_scaling_up', 'A current instruct model is trained'): REAL,
    ('06_scaling_up', 'The `full` profile uses **`Qwen/Qwen2.5-0.5B-Instruct`**:'): PROFILE,
    ('06_scaling_up', 'You will learn to**'): HEAD,
    ('06_scaling_up', '`full`: `Qwen/Qwen2.5-0.5B-Instruct`;'): PROFILE,
    ('06_scaling_up', '`tiny` | any CPU, offline |'): HEADER,  # the figure is regenerated by the benchmarks
    ('06_scaling_up', '`full` | a GPU, e.g. a Colab'): HEADER,
    ('06_scaling_up', 'Leave a value at `None` to use'): NAV,
    ('06_scaling_up', 'The model itself reads one token'): DEF,
    ('06_scaling_up', 'Lab 01 wrote its own format (`###'): HOW,
    ('06_scaling_up', 'Without it the prompt ends after'): HOW,
    ('06_scaling_up', "(a) the assistant's answer &nbsp;"): QUIZ,
    ('06_scaling_up', "The data is lab 01's task: CodeAlpaca"): DATA,
    ('06_scaling_up', 'The template has to say where'): HOW,
    ('06_scaling_up', 'Few Hub models ship these markers;'): REAL,
    ('06_scaling_up', 'We make that swap visible: `training_chat_template`'): HOW,
    ('06_scaling_up', '### 1.6 The model before training,'): HEAD,
    ('06_scaling_up', 'Two measures on the held-out'): HOW,
    ('06_scaling_up', 'the **assistant loss**: mean'): DEF,
    ('06_scaling_up', 'BLEU** of greedy answers generated'): DEF,
    ('06_scaling_up', 'Generation pads on the left,'): HOW,
    ('06_scaling_up', 'The loss applies the output head'): HOW,
    ('06_scaling_up', 'And "greedy" is made explicit:'): SETTING,
    ('06_scaling_up', 'So we pass a complete greedy'): SETTING,
    ('06_scaling_up', '(On a T4 the `full` profile skips'): PROFILE,
    ('06_scaling_up', 'Full fine-tuning learns a new'): DEF,
    ('06_scaling_up', 'LoRA (Hu et al. 2021) keeps $W'): DEF,
    ('06_scaling_up', 'scale:** $\\alpha / r$ keeps the'): DEF,
    ('06_scaling_up', 'merge:** after training, $W +'): DEF,
    ('06_scaling_up', '`Qwen/Qwen2.5-0.5B-Instruct` has'): DEF,
    ('06_scaling_up', 'How many numbers does a rank-8'): QUIZ,
    ('06_scaling_up', '`LoraConfig(target_modules=[...])`'): HOW,
    ('06_scaling_up', 'We adapt **every projection of'): REAL,
    ('06_scaling_up', 'The output head `lm_head` is'): SETTING,
    ('06_scaling_up', 'Everything else is the full fine-tuning'): SETTING,
    ('06_scaling_up', '### 2.5 The learning effect,'): HEAD,
    ('06_scaling_up', 'On real models of 0.5B and more'): REAL,
    ('06_scaling_up', '`merge_and_unload()` writes $W'): HOW,
    ('06_scaling_up', 'A model still wrapped would compute'): HYPO,
    ('06_scaling_up', 'QLoRA** | linear layers in 4-bit'): DEF,
    ('06_scaling_up', 'NF4 (QLoRA, Dettmers et al. 2023)'): DEF,
    ('06_scaling_up', "In the table below the lab's"): HOW,
    ('06_scaling_up', '`labhelpers.memory.parameter_counts`'): HOW,
    ('06_scaling_up', 'A T4 has 15 GB.'): DEF,
    ('06_scaling_up', '(Loading itself briefly holds'): HOW,
    ('06_scaling_up', 'QLoRA loads the frozen base in'): HOW,
    ('06_scaling_up', 'One repair is needed: on a 4-bit'): TRL,
    ('06_scaling_up', 'On a T4, which trains in fp16,'): PROFILE,
    ('06_scaling_up', '## 4. More than one process'): HEAD,
    ('06_scaling_up', 'After the backward pass the processes'): DEF,
    ('06_scaling_up', 'The **global batch** is `per-device'): DEF,
    ('06_scaling_up', "The model's memory per GPU falls"): DEF,    ('06_scaling_up', 'run the same training as a script'): LESSON,
    ('06_scaling_up', 'TRL does this with `SFTConfig(assistant_only_loss=True)`:'): HOW,
    ('06_scaling_up', 'TRL keeps marked copies of the'): TRL,
    ('06_scaling_up', 'Give a number.'): QUIZ,
    ('06_scaling_up', '### 2.3 Which layers get adapters'): HEAD,
    ('06_scaling_up', 'Change `LORA_R` or `LORA_LEARNING_RATE`'): ASK,
    ('06_scaling_up', 'Full fine-tuning keeps fp32 weights'): DEF,
    ('06_scaling_up', '`labhelpers.memory.measure_training_peak`'): HOW,
    ('06_scaling_up', 'In QLoRA a frozen linear-layer'): DEF,
    ('06_scaling_up', "The lab's training, as one file:"): HOW,

}

# (lab stem, distinctive substring) -> what would back it: outcome sentences that nothing backs yet. Listed so that
# the completeness test names only new ones; tests/test_claims.py's strict xfail keeps this list visible until
# the labs' owners back or reword each sentence.
UNBACKED: dict[tuple[str, str], str] = {
    # every outcome sentence of the labs is backed: a sentence the tables flag and nothing backs goes here, with what
    # would back it, until the lab's owner backs it
}


def _keys_by_lab(table: dict) -> dict[str, list]:
    """``{lab: [(key, normalised substring), ...]}`` of a table; the module's own tables computed once."""
    own = next((name for name, t in (("CLAIMS", CLAIMS), ("GENERAL", GENERAL), ("UNBACKED", UNBACKED))
                if t is table), None)
    if own and own in _KEYS and _KEYS[own][0] == len(table):
        return _KEYS[own][1]
    by_lab: dict[str, list] = {}
    for key in table:
        by_lab.setdefault(key[0], []).append((key, normalise(key[1])))
    if own:
        _KEYS[own] = (len(table), by_lab)
    return by_lab


_KEYS: dict[str, tuple[int, dict[str, list]]] = {}


def covering(lab: str, sentence: str, table: dict) -> list[tuple[str, str]]:
    """The keys of ``table`` that cover the sentence: same lab, and the key's substring occurs in it."""
    text = normalise(sentence)
    return [key for key, piece in _keys_by_lab(table).get(lab, []) if piece in text]


def uncovered(nb: dict, lab: str) -> list[Flagged]:
    """The lab's flagged sentences that neither table covers."""
    return [f for f in outcome_sentences(nb, lab)
            if not any(covering(lab, f.sentence, table) for table in (CLAIMS, GENERAL, UNBACKED))]


def listing(stem: str) -> list[str]:
    """What the tables say of each flagged sentence of a lab, one line each: for review, and for reports."""
    lines = []
    for f in outcome_sentences(load(stem), stem):
        if keys := covering(stem, f.sentence, CLAIMS):
            b = CLAIMS[keys[0]]
            what = "; ".join(f"{kind} {', '.join(names)}" for kind, names in
                             (("checks", b.checks), ("results", b.results), ("printed", b.printed)) if names)
            lines.append(f"{stem}\t{f.cell_id}\tBACKED by {what}\t{f.sentence}")
        elif keys := covering(stem, f.sentence, GENERAL):
            lines.append(f"{stem}\t{f.cell_id}\tGENERAL: {GENERAL[keys[0]]}\t{f.sentence}")
        elif keys := covering(stem, f.sentence, UNBACKED):
            lines.append(f"{stem}\t{f.cell_id}\tUNBACKED: {UNBACKED[keys[0]]}\t{f.sentence}")
        else:
            lines.append(f"{stem}\t{f.cell_id}\tNOT IN THE TABLE\t{f.sentence}")
    return lines


if __name__ == "__main__":
    # python tests/claims.py [--all] [lab ...]: the flagged sentences no entry covers (--all: every one, with its entry)
    args = [a for a in sys.argv[1:] if a != "--all"]
    for stem in [s for s in lab_stems() if not args or any(s.startswith(a) for a in args)]:
        if "--all" in sys.argv:
            print("\n".join(listing(stem)))
        else:
            for f in uncovered(load(stem), stem):
                print(f"{f.lab}\t{f.cell_id}\t{f.sentence}")
