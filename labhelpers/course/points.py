"""The course's checks, for every lab, in one place: what each is worth and how it is decided.

The grader reads this table and nowhere else. Each entry declares a check's **points** and the comparison that
passes it: a **direction** (``<``, ``<=``, ``>``, ``>=``, ``==``) and a **threshold**, either the number the lab
always uses or :data:`MEASURED` (a figure of the same run, such as the loss before training, which the record
carries), with an optional **slack** for checks that allow a tolerance (``|value - threshold| < 1e-6``).
Checks that have no number to compare are :data:`FLAG` (a pass/fail only a rerun verifies); self-check
questions (``quiz_*``) are decided by :func:`labhelpers.quiz.is_right` from the recorded answer.

A record is evidence of what ran; the course decides what it means. A record that says *passed* although the
declared comparison fails on its own value, or that carries another threshold than the declared one, is
``check_inconsistent`` and scored from its value: a cell that redefines ``record_check`` cannot turn a wrong
answer into a pass by recording its own direction. (A record that says *failed* stays failed: several checks
also test a condition that is not in their value.)

A check earns points when it tests the learner's own work: an exercise, a training run the learner set up, a
self-check question. A check that only shows the library or a dependency behaving as documented is a
**demonstration**: 0 points, listed apart. Names may be ``fnmatch`` patterns (``top_p_*_matches_library``). A
check this table does not list earns :data:`UNLISTED_POINTS` (nothing): a notebook cannot add points to itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from fnmatch import fnmatchcase

DEMONSTRATION = 0
UNLISTED_POINTS = 0

MEASURED = "measured"  # the threshold is a figure of the same run, carried by the record
FLAG = "flag"  # a pass/fail with no number to compare
QUIZ = "quiz"  # decided by labhelpers.quiz.is_right from the recorded answer

QUIZ_PATTERN = "quiz_*"
QUIZ_POINTS = 1


@dataclass(frozen=True)
class Check:
    """One check as the course declares it (see the module)."""

    points: float
    direction: str  # one of labhelpers.records.DIRECTIONS, FLAG or QUIZ
    threshold: float | str = MEASURED
    slack: float = 0.0  # how far past the threshold a value still passes (a tolerance)

    @property
    def fixed_threshold(self) -> float | None:
        return None if isinstance(self.threshold, str) else float(self.threshold)


def lt(points, threshold=MEASURED, slack=0.0):
    return Check(points, "<", threshold, slack)


def le(points, threshold=MEASURED, slack=0.0):
    return Check(points, "<=", threshold, slack)


def gt(points, threshold=MEASURED, slack=0.0):
    return Check(points, ">", threshold, slack)


def ge(points, threshold=MEASURED, slack=0.0):
    return Check(points, ">=", threshold, slack)


def eq(points, threshold=MEASURED, slack=0.0):
    return Check(points, "==", threshold, slack)


def flag(points):
    return Check(points, FLAG)


D = DEMONSTRATION
LOG_2 = 0.6931471805599453

LAB_CHECKS: dict[str, dict[str, Check]] = {
    "00_overview": {
        "pipeline_names_every_lab": ge(D),  # the course's own figure
        "next_token_logprobs_match_model_loss": lt(2, 1e-5),  # exercise 0.1
        "greedy_loop_matches_generate": eq(2),  # exercise 0.2: prompts that match, of all prompts
    },
    "01_instruction_tuning": {
        "formatting_matches_reference": eq(2),  # exercise 1.1: rows that match, of all rows
        "mask_by_hand_matches_collator": eq(2),  # exercise 1.2: labels that match, of all labels
        "masked_ce_matches_library": lt(2, 1e-5),  # exercise 1.3
        "validation_loss_falls": lt(1),
        "masking_ways_agree": eq(D),  # two library collators agree
        "loss_decreases": lt(1, 1.0),  # last / first training loss
        "bleu_improves": ge(1),
        "exact_match_rises_on_generalising_tasks": ge(1),  # held-out right share, function/loop/review kinds
        "code_passes_tests_rises": ge(1),  # held-out code answers passing their tests (labhelpers.execution)
        "response_loss_falls": lt(1),
        "unmasked_run_learns_the_prompts": gt(1, 0.0),
    },
    "02_reward_modeling": {
        "clean_pairs_handles_bad_pairs": eq(D, 3),
        "pad_eos_pitfall_shown": gt(D, 0),  # texts misread under the rule that misreads fewest
        "reward_read_at_final_eos": lt(1, 1e-4),  # the learner's pad-token fix
        "preprocess_matches_scoring": flag(1),
        "trainer_keeps_distinct_pad": flag(D),
        "bt_loss_matches_library": le(2, 1e-6),  # exercise 2.1
        "bt_loss_matches_trainer": lt(1, 1e-6),
        "reward_positions_match_library": eq(2),  # exercise 2.2: rows that match, of all rows
        "reward_positions_give_the_models_reward": lt(1, 1e-4),  # exercise 2.2 against the model's own reading
        "score_matches_batched": lt(D, 1e-4),
        "eval_loss_decreases": lt(1),
        "win_rate_improves": ge(1, 0.15),
        "win_rate_after_high": ge(1, 0.65),
        "win_rate_is_eval_accuracy": lt(1, 1e-6),
        "saved_reward_model_reloads": lt(D, 1e-4),  # save_model and from_pretrained
    },
    "03_dpo": {
        "optimal_policy_is_a_distribution": eq(2, 1.0, slack=1e-9),  # exercise 3.1
        "optimum_beats_other_policies": gt(1, 0.0),
        "optimum_value_is_beta_log_Z": eq(1, slack=1e-9),
        "Z_cancels_in_reward_differences": lt(1, 1e-9),
        "larger_beta_less_reward_less_kl": flag(1),
        "dpo_loss_matches_library": lt(2, 1e-6),  # exercise 3.2
        "dpo_loss_of_optimum_is_bradley_terry": eq(1, slack=1e-9),
        "answer_logps_match_library": lt(2, 1e-5),  # exercise 3.3: the answer mask and summed log-probs
        "answer_logps_match_dpo_trainer": lt(1),  # exercise 3.3 on DPOTrainer's batch; tolerance by precision
        "dpo_loss_starts_at_log_2": eq(D, LOG_2, slack=1e-6),  # the library's loss at the start
        "log_keeps_the_gradient_of_wrong_pairs": gt(D, 100.0),
        "both_forms_give_the_same_text": flag(D),
        "missing_field_error_is_clear": flag(D),
        "chat_and_text_sets_load": flag(D),
        "our_loss_matches_dpo_trainer": lt(1),  # the tolerance depends on the precision
        "reloaded_model_is_the_trained_one": eq(D, 0.0),
        "dpo_learns_the_preferences": ge(1),
        "sft_term_keeps_chosen_likely": ge(1),
        "margin_grows_mostly_by_rejected_fall": gt(1),
        "likelihood_displacement": lt(1, 0.0),
        "reference_kl_is_zero": lt(D, 1e-4),  # the sampled KL estimate of a model against itself
        "plain_dpo_degenerates": flag(D),  # tiny: the failure section 6 names, so the text matches the run
        "dpo_sft_answers_well": flag(D),  # tiny: distinct, positive, on-topic reviews that end
        "topic_stays_the_start_models": le(D, 0.2),  # tiny: on-topic share within 0.2 of the SFT model's
        "dpo_sft_narrows_the_words": lt(D),  # tiny: fewer different adjectives than the start model's
        "beta_experiment_direction": lt(1),  # exercise 3.4: log-ratio margin at the larger beta below this run's
    },
    "04_ppo_rlhf": {
        "reinforce_matches_exact_gradient": lt(1, 0.1),
        "reward_sign_sets_update_direction": flag(1),
        "bandit_sga_finds_best_response": gt(1, 0.9),
        "own_samples_likelihood_goes_nowhere": lt(D),  # a numerical fact about sampling
        "gae_matches_library": lt(2, 1e-5),  # exercise 4.1
        "clipped_loss_matches_library": lt(2, 1e-6),  # exercise 4.2
        "kl_reward_matches_library": lt(2, 1e-6),  # exercise 4.3
        "ppo_step_by_hand_matches_trainer": lt(1, 1e-3),  # the step written out, with exercise 4.3 in it
        "broken_rewards_are_caught": flag(D),
        "training_statistics_finite": flag(D),
        "objective_rises": gt(1),  # score − β·KL, last quarter of the steps over the first (cfg.min_objective_gain)
        "reward_improves": ge(1),
        "kl_stays_bounded": lt(1),
        "no_kl_drifts_further": gt(1),
        "no_kl_loses_fluency": lt(1),
        "no_kl_reward_about_as_high": ge(1),
        "reward_hacking_named": flag(D),  # with lab 02's reward: beta = 0 convinces the independent classifier less
        "position_ids_fix_left_padding": flag(D),
        "grpo_improves": ge(1),
        "group_advantages_match_trl": le(2, 1e-6, slack=1e-5),  # exercise 4.4 (allclose: atol and rtol)
    },
    "05_generation_parameters": {
        "softmax_is_a_distribution": eq(D, 1.0, slack=1e-4),
        "entropy_rises_with_temperature": flag(1),
        "greedy_is_deterministic": flag(D),
        "sampling_varies": flag(D),
        "low_temperature_equals_greedy": flag(1),
        "top_k_keeps_exactly_k": eq(D),
        "top_p_*_smallest_set": ge(1, slack=1e-6),  # exercise 5.1, one per p (the threshold is p)
        "top_p_*_matches_library": flag(1),
        "beam_at_least_greedy": ge(1, 0.0, slack=1e-4),
        "repetition_penalty_reduces_repeats": flag(1),
        "repetition_penalty_matches_library": lt(2, 1e-6),  # exercise 5.2
        "step_by_step_is_greedy": flag(D),
        "temperature_trades_quality_for_diversity": flag(1),
        "min_new_tokens_respected": ge(D),
        "max_new_tokens_respected": le(D, 7.0),
    },
    "06_scaling_up": {
        "generation_prompt_is_a_prefix": flag(1),
        "loss_covers_only_assistant_turns": eq(2),
        "lora_layer_matches_peft": lt(3, 1e-4),  # the LoRA layer exercise
        "lora_count_matches_formula": eq(D),  # peft's count against the formula
        "lora_learns": ge(2),
        "merged_matches_adapter": lt(D),  # peft's merge; the tolerance depends on the precision
        "memory_formula_within_25pct": le(1, 0.25),
        "memory_by_hand_matches_library": eq(2),  # exercise 6.2: cases that match, of all cases
        "both_ranks_ran": eq(D, 2.0),
        "same_global_batch": eq(1),
        "ddp_matches_one_process": lt(2, 1e-3),
    },
}
QUIZ_CHECK = Check(QUIZ_POINTS, QUIZ)


def declared(lab: str | None, name: str) -> Check | None:
    """How the course declares check ``name`` of ``lab``, or None when it does not list it."""
    table = LAB_CHECKS.get(lab or "", {})
    found = table.get(name)
    if found is None:
        found = next((check for pattern, check in table.items() if fnmatchcase(name, pattern)), None)
    if found is None and fnmatchcase(name, QUIZ_PATTERN):
        found = QUIZ_CHECK
    return found


def listed_points(lab: str | None, name: str) -> float | None:
    """The points this table gives check ``name`` of ``lab``, or None when it does not list it."""
    check = declared(lab, name)
    return None if check is None else check.points


def check_points(lab: str | None, name: str) -> float:
    """What check ``name`` of ``lab`` is worth: the table's points, else :data:`UNLISTED_POINTS`."""
    listed = listed_points(lab, name)
    return float(UNLISTED_POINTS if listed is None else listed)


def is_demonstration(points: float) -> bool:
    return points == DEMONSTRATION


def describe(check: Check) -> str:
    """The declared comparison in words for the README: ``< 1e-05``, ``>= measured``, ``pass/fail``."""
    if check.direction == FLAG:
        return "pass/fail"
    if check.direction == QUIZ:
        return "the right answer"
    threshold = "the run's own figure" if check.fixed_threshold is None else f"{check.fixed_threshold:g}"
    slack = f" ± {check.slack:g}" if check.slack else ""
    return f"{check.direction} {threshold}{slack}"


def points_table() -> str:
    """The README's table of the course's checks: one row per lab, scored checks and demonstrations."""
    lines = ["| lab | scored checks (points; what passes) | demonstrations (0 points) | total |", "|---|---|---|---|"]
    for lab, table in LAB_CHECKS.items():
        scored = [f"`{n}` ({c.points:g}; {describe(c)})" for n, c in table.items() if not is_demonstration(c.points)]
        shown = [f"`{n}`" for n, c in table.items() if is_demonstration(c.points)]
        total = sum(c.points for c in table.values())
        lines.append(f"| {lab} | {', '.join(scored)} | {', '.join(shown) or '—'} | {total:g} + quizzes |")
    lines.append(f"\nEvery `{QUIZ_PATTERN}` check (a self-check question) earns {QUIZ_POINTS:g} point, decided from "
                 "the recorded answer; a `*` pattern counts once per check it matches (lab 05 checks four values of "
                 "p); a check the table does not list earns nothing. \"The run's own figure\" is a threshold the "
                 "run measures (the loss before training, say), which the record carries.")
    return "\n".join(lines)
