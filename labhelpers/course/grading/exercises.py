"""Which library functions are each exercise's reference answer, and which checks each exercise feeds.

An exercise's solution sits between ``### BEGIN SOLUTION`` and ``### END SOLUTION`` inside the function the
learner completes (see :mod:`labhelpers.course.student`). A solution that imports, calls or aliases one of that
exercise's references passes its checks without the learner's work; the grader reports it as
``reference_used`` and those checks earn no points. References are dotted names; a lab may import a reference
for another purpose (lab 03 uses ``dpo_loss`` for its accuracy), so only the exercise's own solution counts.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Exercise:
    references: tuple[str, ...]  # dotted names of the library's own answer
    checks: tuple[str, ...]  # check names (fnmatch patterns) that this exercise's code decides


_FORMATTING = ("labhelpers.formatting.formatting_prompts_func_no_response",
               "labhelpers.formatting.formatting_prompts_func", "labhelpers.formatting.to_prompt_completion")
_TOP_P = ("transformers.TopPLogitsWarper", "transformers.generation.TopPLogitsWarper",
          "transformers.generation.logits_process.TopPLogitsWarper")
_REPETITION_PENALTY = ("transformers.RepetitionPenaltyLogitsProcessor",
                       "transformers.generation.RepetitionPenaltyLogitsProcessor",
                       "transformers.generation.logits_process.RepetitionPenaltyLogitsProcessor")

# lab -> name of the function whose body holds the solution -> its references and checks
EXERCISES: dict[str, dict[str, Exercise]] = {
    "00_overview": {
        "next_token_logprobs_by_hand": Exercise(("labhelpers.sequences.next_token_logprobs",
                                                 "labhelpers.sequences.token_logprobs"),
                                                ("next_token_logprobs_match_model_loss",)),
    },
    "01_instruction_tuning": {
        "formatting_prompts_func_no_response": Exercise(_FORMATTING, ("formatting_matches_reference",)),
        "formatting_prompts_func": Exercise(_FORMATTING, ("formatting_matches_reference",)),
        "mask_by_hand": Exercise(("labhelpers.collators.CompletionOnlyCollator",
                                  "labhelpers.collators.find_template_end"), ("mask_by_hand_matches_collator",)),
        "masked_cross_entropy": Exercise(("torch.nn.functional.cross_entropy", "torch.nn.functional.nll_loss",
                                          "torch.nn.CrossEntropyLoss", "torch.nn.NLLLoss"),
                                         ("masked_ce_matches_library",)),
    },
    "02_reward_modeling": {
        "bt_loss": Exercise(("labhelpers.losses.bradley_terry_loss",),
                            ("bt_loss_matches_library", "bt_loss_matches_trainer")),
        "reward_positions": Exercise(("labhelpers.reward.reward_token_index",),
                                     ("reward_positions_match_library", "reward_positions_give_the_models_reward")),
    },
    "03_dpo": {
        "dpo_loss_from_equation": Exercise(("labhelpers.losses.dpo_loss",), ("dpo_loss_matches_library",)),
        "response_mask": Exercise(("labhelpers.sequences.response_mask", "labhelpers.preferences.completion_logps"),
                                  ("answer_logps_match_*",)),
        "sequence_logps": Exercise(("labhelpers.sequences.sequence_logps", "labhelpers.sequences.next_token_logprobs",
                                    "labhelpers.sequences.token_logprobs", "labhelpers.preferences.completion_logps"),
                                   ("answer_logps_match_*",)),
    },
    "04_ppo_rlhf": {
        "my_gae": Exercise(("labhelpers.ppo.compute_gae",), ("gae_matches_library",)),
        "my_clipped_loss": Exercise(("labhelpers.ppo.clipped_policy_loss",), ("clipped_loss_matches_library",)),
        "group_advantages": Exercise(("trl.trainer.utils.nanstd",), ("group_advantages_match_trl",)),
    },
    "05_generation_parameters": {
        "top_p_keep": Exercise(_TOP_P, ("top_p_*_matches_library", "top_p_*_smallest_set")),
        "apply_repetition_penalty": Exercise(_REPETITION_PENALTY, ("repetition_penalty_matches_library",)),
    },
    "06_scaling_up": {  # the solution is MyLoRALinear.forward
        "forward": Exercise(("labhelpers.lora.LoRALinear", "peft.tuners.lora.Linear"), ("lora_layer_matches_peft",)),
        "my_training_bytes": Exercise(("labhelpers.memory.training_bytes",), ("memory_by_hand_matches_library",)),
    },
}
