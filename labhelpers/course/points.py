"""Points per check, for every lab, in one place: the grader reads them here and nowhere else.

A check earns points when it tests the learner's own work: an exercise, a training run the learner set up, a
self-check question (checks named ``quiz_*``). A check that only shows the library or a dependency behaving as
documented (softmax sums to 1, greedy decoding is deterministic) is a **demonstration**: 0 points, and the
grader's report lists it apart. Names may be ``fnmatch`` patterns (``top_p_*_matches_library``). A check
that is not listed here is worth :data:`UNLISTED_POINTS`.

Records carry no points: a record is the learner's evidence of what ran, and a number in it could be edited;
the worth of a check is the course's decision, so it stays with the grader.
"""

from __future__ import annotations

from fnmatch import fnmatchcase

DEMONSTRATION = 0
# A check this table does not list (a lab's new check not yet entered, or one a notebook added) counts once.
UNLISTED_POINTS = 1

# Every lab's self-check questions: one point each unless the lab's table lists the quiz by name.
QUIZ_PATTERN = "quiz_*"
QUIZ_POINTS = 1

LAB_POINTS: dict[str, dict[str, float]] = {
    "00_overview": {
        "pipeline_names_every_lab": DEMONSTRATION,  # the course's own figure
    },
    "01_instruction_tuning": {
        "formatting_matches_reference": 2,  # exercise 1.1
        "mask_by_hand_matches_collator": 2,  # exercise 1.2
        "masked_ce_matches_library": 2,  # exercise 1.3
        "validation_loss_falls": 1,
        "masking_ways_agree": DEMONSTRATION,  # two library collators agree
        "loss_decreases": 1,
        "bleu_improves": 1,
        "response_loss_falls": 1,
        "unmasked_run_learns_the_prompts": 1,
    },
    "02_reward_modeling": {
        "clean_pairs_handles_bad_pairs": DEMONSTRATION,
        "pad_eos_pitfall_shown": DEMONSTRATION,
        "reward_read_at_final_eos": 1,  # the learner's pad-token fix
        "preprocess_matches_scoring": 1,
        "trainer_keeps_distinct_pad": DEMONSTRATION,
        "bt_loss_matches_library": 2,  # exercise 2.1
        "bt_loss_matches_trainer": 1,
        "score_matches_batched": DEMONSTRATION,
        "eval_loss_decreases": 1,
        "win_rate_improves": 1,
        "win_rate_after_high": 1,
        "win_rate_is_eval_accuracy": 1,
        "saved_reward_model_reloads": DEMONSTRATION,  # save_model and from_pretrained
    },
    "03_dpo": {
        "optimal_policy_is_a_distribution": 2,  # exercise 3.1
        "optimum_beats_other_policies": 1,
        "optimum_value_is_beta_log_Z": 1,
        "Z_cancels_in_reward_differences": 1,
        "larger_beta_less_reward_less_kl": 1,
        "dpo_loss_matches_library": 2,  # exercise 3.2
        "dpo_loss_of_optimum_is_bradley_terry": 1,
        "dpo_loss_starts_at_log_2": DEMONSTRATION,  # the library's loss at the start
        "log_keeps_the_gradient_of_wrong_pairs": DEMONSTRATION,
        "both_forms_give_the_same_text": DEMONSTRATION,
        "missing_field_error_is_clear": DEMONSTRATION,
        "chat_and_text_sets_load": DEMONSTRATION,
        "our_loss_matches_dpo_trainer": 1,
        "reloaded_model_is_the_trained_one": DEMONSTRATION,
        "dpo_learns_the_preferences": 1,
        "sft_term_keeps_chosen_likely": 1,
        "margin_grows_mostly_by_rejected_fall": 1,
        "likelihood_displacement": 1,
        "reference_kl_is_zero": DEMONSTRATION,  # the sampled KL estimate of a model against itself
        "beta_experiment_direction": 1,  # exercise 3.3, after the learner's reruns
    },
    "04_ppo_rlhf": {
        "reinforce_matches_exact_gradient": 1,
        "reward_sign_sets_update_direction": 1,
        "bandit_sga_finds_best_response": 1,
        "own_samples_likelihood_goes_nowhere": DEMONSTRATION,  # a numerical fact about sampling
        "gae_matches_library": 2,  # exercise 4.1
        "clipped_loss_matches_library": 2,  # exercise 4.2
        "kl_reward_matches_library": 2,  # exercise 4.3
        "ppo_step_by_hand_matches_trainer": 1,  # the step written out, with the learner's exercise 4.3 in it
        "broken_rewards_are_caught": DEMONSTRATION,
        "training_statistics_finite": DEMONSTRATION,
        "reward_improves": 1,
        "kl_stays_bounded": 1,
        "no_kl_drifts_further": 1,
        "no_kl_loses_fluency": 1,
        "no_kl_reward_about_as_high": 1,
        "position_ids_fix_left_padding": DEMONSTRATION,
        "grpo_improves": 1,
        "group_advantages_match_trl": 2,  # exercise 4.4
    },
    "05_generation_parameters": {
        "softmax_is_a_distribution": DEMONSTRATION,
        "entropy_rises_with_temperature": 1,
        "greedy_is_deterministic": DEMONSTRATION,
        "sampling_varies": DEMONSTRATION,
        "low_temperature_equals_greedy": 1,
        "top_k_keeps_exactly_k": DEMONSTRATION,
        "top_p_*_smallest_set": 1,  # exercise 5.1, one per p
        "top_p_*_matches_library": 1,
        "beam_at_least_greedy": 1,
        "repetition_penalty_reduces_repeats": 1,
        "repetition_penalty_matches_library": 2,  # exercise 5.2
        "step_by_step_is_greedy": DEMONSTRATION,
        "temperature_trades_quality_for_diversity": 1,
        "min_new_tokens_respected": DEMONSTRATION,
        "max_new_tokens_respected": DEMONSTRATION,
    },
    "06_scaling_up": {
        "generation_prompt_is_a_prefix": 1,
        "loss_covers_only_assistant_turns": 2,
        "lora_layer_matches_peft": 3,  # the LoRA layer exercise
        "lora_count_matches_formula": DEMONSTRATION,  # peft's count against the formula
        "lora_learns": 2,
        "merged_matches_adapter": DEMONSTRATION,  # peft's merge
        "memory_formula_within_25pct": 1,
        "both_ranks_ran": DEMONSTRATION,
        "same_global_batch": 1,
        "ddp_matches_one_process": 2,
    },
}


def listed_points(lab: str | None, name: str) -> float | None:
    """The points this table gives check ``name`` of ``lab``, or None when it does not list it."""
    table = LAB_POINTS.get(lab or "", {})
    if name in table:
        return table[name]
    for pattern, points in table.items():
        if fnmatchcase(name, pattern):
            return points
    if fnmatchcase(name, QUIZ_PATTERN):
        return QUIZ_POINTS
    return None


def check_points(lab: str | None, name: str) -> float:
    """What check ``name`` of ``lab`` is worth: the table's points, else :data:`UNLISTED_POINTS`."""
    listed = listed_points(lab, name)
    return float(UNLISTED_POINTS if listed is None else listed)


def is_demonstration(points: float) -> bool:
    return points == DEMONSTRATION


def points_table() -> str:
    """The README's table of points: one row per lab, its scored checks and its demonstrations."""
    lines = ["| lab | scored checks (points) | demonstrations (0 points) | total |", "|---|---|---|---|"]
    for lab, table in LAB_POINTS.items():
        scored = [f"`{n}` ({p:g})" for n, p in table.items() if not is_demonstration(p)]
        shown = [f"`{n}`" for n, p in table.items() if is_demonstration(p)]
        total = sum(table.values())
        lines.append(f"| {lab} | {', '.join(scored)} | {', '.join(shown) or '—'} | {total:g} + quizzes |")
    lines.append(f"\nEvery `{QUIZ_PATTERN}` check (a self-check question) earns {QUIZ_POINTS:g} point unless the "
                 "lab lists it; a `*` pattern counts once per check it matches (lab 05 checks four values of p).")
    return "\n".join(lines)
