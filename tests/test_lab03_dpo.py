"""Lab 03 (DPO) in the tiny profile: DPO learns the held-out preferences, plain DPO lowers the chosen answers'
likelihood (the pitfall the lab measures), and the SFT term keeps them at least as likely as at the start; the
batched KL estimate scores every sampled answer as an unpadded one-prompt call would; exercise 3.4 is graded on the
KL of a run the learner trains at a larger β, and plausible wrong answers fail it; exercise 3.3 (the answer mask and
the summed log-probs) equals the library and DPOTrainer, and plausible wrong answers fail it."""

from __future__ import annotations

import os
import re

import pytest
import torch
import torch.nn.functional as F
from conftest import failure_of, lab_defaults, results_of
from lab_cells import calls, cell_source, lab_code, model_loads, run_cells

import labhelpers
from labhelpers import training


@pytest.mark.notebook
def test_dpo_lab_learns_preferences_and_the_sft_term_prevents_displacement(executed_lab):
    run = executed_lab("03")
    assert run.error is None, failure_of(run)
    res = results_of(run)
    min_accuracy = lab_defaults("03")["min_pref_accuracy"]
    assert res["pref_accuracy_after"] >= min_accuracy
    assert res["pref_accuracy_dpo_sft"] >= min_accuracy
    # Before training the policy is its own reference, so every implicit reward margin
    # β·(log π/π_ref(chosen) − log π/π_ref(rejected)) is exactly 0 and no pair is won. Not a learning effect: it
    # guards the accuracy itself, which reads 1.0 when ties count as wins and 0.65 (the likelihood ordering below)
    # when the reference is left out of the margin.
    assert res["pref_accuracy_before"] == 0.0 and res["likelihood_accuracy_before"] > 0.0
    # what the untrained policy prefers is what pre-training made likelier; DPO must beat that ordering
    assert res["pref_accuracy_after"] > res["likelihood_accuracy_before"]
    # the quality figure: mean log-prob per token of the held-out chosen answers
    assert res["chosen_logp_dpo_sft"] >= res["chosen_logp_start"]
    assert res["chosen_logp_dpo"] < res["chosen_logp_start"] - 0.5, "plain DPO shows likelihood displacement"
    # generations: the DPO+SFT model writes positive one-line reviews on most prompts, and on no fewer than lab 01's
    # SFT model (tiny, measured: 0.8 -> 1.0 of the 10 distinct held-out prompts; plain DPO 0.0)
    assert res["gen_positive_dpo_sft"] >= max(res["gen_positive_ref"], 0.8) > res["gen_positive_dpo"]
    checks = {r["name"]: r["passed"] for r in run.records if r["kind"] == "check"}
    assert checks["our_loss_matches_dpo_trainer"] and checks["sft_term_keeps_chosen_likely"]
    assert checks["answer_logps_match_library"] and checks["answer_logps_match_dpo_trainer"]


@pytest.mark.notebook
def test_the_outcome_the_text_names_is_the_runs(executed_lab):
    """Section 6 names the tiny run's outcome: lab 01's SFT model is the start, plain DPO degenerates (no review, no
    end-of-text), DPO + SFT writes distinct positive reviews of the requested noun that end, on topic as often as the
    start. The
    checks that back those sentences pass, and the measured shapes say the same with a margin."""
    run = executed_lab("03")
    assert run.error is None, failure_of(run)
    res = results_of(run)
    checks = {r["name"]: r for r in run.records if r["kind"] == "check"}
    for name in ("plain_dpo_degenerates", "dpo_sft_answers_well", "topic_stays_the_start_models"):
        assert checks[name]["passed"], checks[name]
    shape = res["generation_shape"]  # tiny, measured: plain DPO writes code that never ends
    assert shape["dpo"]["stopped"] == 0.0 and shape["dpo"]["length"] == lab_defaults("03")["max_new_tokens"]
    assert shape["dpo_sft"]["stopped"] == 1.0 and shape["ref"]["stopped"] == 1.0 and shape["dpo_sft"]["distinct"] >= 0.8
    assert res["gen_positive_dpo_sft"] == 1.0 and res["gen_positive_dpo"] == 0.0
    # the start is lab 01's model, asked in lab 01's format
    assert lab_defaults("03")["model_name"] == "pipeline:sft" and lab_defaults("03")["prompt_format"] == "instruction"


@pytest.mark.notebook
def test_kl_and_length_beside_accuracy_and_the_open_exercise_is_recorded(executed_lab):
    run = executed_lab("03")
    assert run.error is None, failure_of(run)
    res = results_of(run)
    checks = {r["name"]: r for r in run.records if r["kind"] == "check"}
    table = res["kl_and_length"]
    assert set(table) == {"reference", "DPO", "DPO + SFT"}
    assert abs(table["reference"]["kl"]) < 1e-4 and checks["reference_kl_is_zero"]["passed"]
    # both trained models moved away from the reference by more than a nat per answer
    assert table["DPO"]["kl"] > 1.0 and table["DPO + SFT"]["kl"] > 1.0, table
    max_new_tokens = lab_defaults("03")["max_new_tokens"]
    assert all(0 < row["length"] <= max_new_tokens for row in table.values()), table
    assert table["DPO"]["pref_accuracy"] == res["pref_accuracy_after"]
    # exercise 3.4: the learner's run at the larger β moved less on the pairs; the check compares the two margins
    row = res["beta_experiment_run"]
    assert row["beta"] == lab_defaults("03")["beta"]
    # tiny, from lab 01's SFT model: held-out log-ratio margin 29.0 at beta 0.5 against 78.3 at 0.1
    assert row["larger_beta"] == 5 * row["beta"] and 0 < row["margin_larger_beta"] < 0.8 * row["margin_dpo"], row
    check = checks["beta_experiment_direction"]
    assert check["passed"] and check["direction"] == "<"
    assert (check["value"], check["threshold"]) == (pytest.approx(row["margin_larger_beta"], abs=1e-3),
                                                    pytest.approx(row["margin_dpo"], abs=1e-3))


EXERCISE_3_4 = "4cecc545"


def _with_body(source: str, body: str) -> str:
    """The exercise cell with ``body`` between its solution markers (what the grader transplants)."""
    head, rest = source.split("### BEGIN SOLUTION\n")
    tail = rest.split("### END SOLUTION")[1]
    return f"{head}### BEGIN SOLUTION\n{body}\n### END SOLUTION{tail}"


def test_exercise_3_4_is_graded_on_the_learners_run_and_plausible_wrong_answers_fail(monkeypatch):
    """The lab's own training and scoring cells, in this process on the tiny models; then exercise 3.4's cell with
    the solution, with a run trained at the same β (same seed and data: the same model, the same margin), and with a
    margin typed in and the run left untrained. Only the solution passes."""
    from labhelpers import records

    cfg = labhelpers.lab_config("03", "tiny", quiet=True)
    labhelpers.prepare_lab(cfg)
    ns = run_cells("03_dpo", ["d467fd86", "d467fd86-2", "9e54bb53", "a666d882", "3993e653", "43aa7814", "3d504a98",
                              "c356a92f", "b6ae8ce1"],
                   {"labhelpers": labhelpers, "PROFILE": "tiny", "os": os, **dict.fromkeys(
                       ("DEVICE", "MODEL_NAME", "DATASET", "MAX_STEPS", "BETA", "SFT_WEIGHT", "N_TRAIN", "N_TEST",
                        "BATCH_SIZE", "MAX_LENGTH", "MAX_NEW_TOKENS", "PROMPT_FORMAT"))})
    ns["dpo_chosen"], ns["dpo_rejected"], _ = ns["heldout_logps"](ns["trainer"].model.eval())
    margin_section_4 = ((ns["dpo_chosen"] - ns["ref_chosen"]) - (ns["dpo_rejected"] - ns["ref_rejected"])).mean().item()
    ns.update(pref_accuracy_after=1.0, chosen_logp_dpo=0.0, pref_accuracy_dpo_sft=1.0, chosen_logp_dpo_sft=0.0)
    source = cell_source("03_dpo", EXERCISE_3_4)
    check_source = cell_source("03_dpo", EXERCISE_3_4 + "-check")  # the course's lines after the exercise
    solution = source.split("### BEGIN SOLUTION\n")[1].split("### END SOLUTION")[0].rstrip("\n")
    bodies = {"solution": solution,
              "same beta": solution.replace("beta=LARGER_BETA", "beta=cfg.beta"),
              "untrained, margin typed": solution.replace("training.train(beta_trainer)", "margin_typed = 0.0").replace(
                  "margin_larger_beta = ((beta_chosen - ref_chosen) - (beta_rejected - ref_rejected)).mean().item()",
                  "margin_larger_beta = margin_typed")}
    assert "training.train" not in bodies["untrained, margin typed"] and "margin_typed" in bodies["untrained, margin typed"]
    assert bodies["same beta"] != solution
    outcome = {}
    for name, body in bodies.items():
        monkeypatch.setattr(records, "_log", [])
        ns["sft_trainer"] = None  # the cell frees the DPO + SFT trainer first
        exec(compile(_with_body(source, body), f"<exercise 3.4: {name}>", "exec"), ns)
        exec(compile(check_source, f"<exercise 3.4's check: {name}>", "exec"), ns)
        [check] = [r for r in records._log if r["name"] == "beta_experiment_direction"]
        outcome[name] = (check["passed"], check["value"], check["threshold"])
    # the direction, by a margin (tiny, from lab 01's SFT model: 29.0 against 78.3 nats)
    assert outcome["solution"][0] and outcome["solution"][1] < 0.95 * margin_section_4, outcome
    assert not outcome["same beta"][0] and outcome["same beta"][1] == pytest.approx(margin_section_4, abs=1e-3), outcome
    # the untrained policy is the reference itself (margin 0, below the threshold): only the check of the run fails it
    passed, value, threshold = outcome["untrained, margin typed"]
    assert not passed and value < threshold, outcome


def test_batched_kl_estimate_scores_each_sampled_answer_as_an_unpadded_call_would():
    """sampled_kl_and_length samples a batch of prompts at once (left padding) and scores the answers in the padded
    batch. Its KL and length must be what scoring each captured prompt + answer on its own gives (the lab's one-at-
    a-time estimator before issue 22): padding, positions and the end of each answer handled."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    cfg = labhelpers.lab_config("03", "tiny", quiet=True)
    labhelpers.prepare_lab(cfg)
    tokenizer = AutoTokenizer.from_pretrained(cfg.model_name)
    tokenizer.pad_token = tokenizer.pad_token or tokenizer.eos_token
    ref_model = AutoModelForCausalLM.from_pretrained(cfg.model_name, dtype=torch.float32).eval()
    policy = AutoModelForCausalLM.from_pretrained(cfg.model_name, dtype=torch.float32).eval()
    torch.manual_seed(1)
    with torch.no_grad():  # a policy that moved away from the reference
        for parameter in policy.parameters():
            parameter.add_(0.05 * torch.randn_like(parameter))
    lab = run_cells("03_dpo", ["dd6adfc4", "dd6adfc4-2"],
                    {"torch": torch, "cfg": cfg, "tokenizer": tokenizer, "ref_model": ref_model, "training": training})
    calls, generate = [], policy.generate

    def recording_generate(**kwargs):
        out = generate(**kwargs)
        calls.append((kwargs["input_ids"], kwargs["attention_mask"], out))
        return out

    policy.generate = recording_generate
    prompts = ["Review the cake.", "Write a review of the film that we saw at the cinema yesterday evening.", "a",
               "Tell me about the soup.", "Describe the hotel, its rooms and its staff in one line.", "the", "ok ."]
    kl, length = lab["sampled_kl_and_length"](policy, prompts, seed=3, batch_size=3)
    assert len(calls) == 3, "one generate call per batch of prompts"
    kls, lengths, padded, ended = [], [], False, False
    with torch.no_grad():
        for input_ids, mask, out in calls:
            padded |= bool((mask == 0).any())
            for row in range(len(input_ids)):
                prompt = input_ids[row][mask[row] == 1]
                answer = out[row, input_ids.shape[1]:]
                stops = (answer == tokenizer.eos_token_id).nonzero()
                if len(stops):
                    answer, ended = answer[: int(stops[0]) + 1], True
                full = torch.cat([prompt, answer])[None]
                logps = [F.log_softmax(m(full).logits[0, len(prompt) - 1:-1], dim=-1).gather(-1, answer[:, None]).sum()
                         for m in (policy, ref_model)]
                kls.append((logps[0] - logps[1]).item())
                lengths.append(len(answer))
    assert padded and ended, "the prompts must need padding and some answer must end early"
    assert kl == pytest.approx(sum(kls) / len(kls), abs=1e-4) and abs(kl) > 0.1
    assert length == sum(lengths) / len(lengths)
    assert lab["sampled_kl_and_length"](ref_model, prompts, batch_size=3)[0] == pytest.approx(0, abs=1e-6)


def test_models_load_in_float32_train_through_training_train_and_decode_with_explicit_configs():
    """Defect 13: transformers 5 loads a checkpoint in its own dtype, so every model of the lab says float32 (the
    trainer's mixed precision computes in 16 bits on top of fp32 weights); every run goes through training.train;
    every generate call passes a complete GenerationConfig (greedy, or the model's own distribution)."""
    code = lab_code("03_dpo")
    loads = model_loads(code)
    assert len(loads) == 6 and all("dtype=torch.float32" in call for call in loads), loads
    assert not re.search(r"\w*trainer\w*\.train\(\)", code) and code.count("training.train(") == 3
    generates = calls(code, ".generate(")
    assert generates and all("generation_config=" in call and "do_sample" not in call for call in generates)


EXERCISE_3_3 = "a7d3c5e1-2"  # response_mask and sequence_logps
_SETUP_3_3 = ["d467fd86", "d467fd86-2", "9e54bb53", "a666d882", "3993e653", "43aa7814"]
_WRONG_3_3 = {  # plausible mistakes, each in one of the two functions
    "log-probs not shifted by one": ("sequence_logps", """\
    token_logps = F.log_softmax(logits.float(), dim=-1).gather(-1, input_ids[:, :, None]).squeeze(-1)
    return (token_logps * mask).sum(-1)"""),
    "logits shifted, mask not": ("sequence_logps", """\
    token_logps = F.log_softmax(logits[:, :-1].float(), dim=-1).gather(-1, input_ids[:, 1:, None]).squeeze(-1)
    return (token_logps * mask[:, :-1]).sum(-1)"""),
    "mask includes the prompt": ("response_mask", """\
    return attention_mask.long()"""),
    "mask includes the padding": ("response_mask", """\
    columns = torch.arange(input_ids.shape[1], device=input_ids.device)
    return (columns[None, :] >= prompt_lengths[:, None]).long()"""),
}


def _replace_solution(source: str, func: str, body: str) -> str:
    """``source`` with the solution of ``def func(`` (the first BEGIN/END SOLUTION block after it) replaced."""
    at = source.index(f"def {func}(")
    begin = source.index("### BEGIN SOLUTION\n", at) + len("### BEGIN SOLUTION\n")
    end = source.index("    ### END SOLUTION", begin)
    return source[:begin] + body + "\n" + source[end:]


def test_exercise_3_3_mask_and_logps_equal_the_library_and_dpo_trainer_and_plausible_wrong_answers_fail(monkeypatch):
    """Exercise 3.3's cells on the tiny models, with the solution and with each plausible wrong answer: the solution
    passes both checks (the library's mask and log-probs, and DPOTrainer's reference log-probs of its own batch);
    every wrong answer fails the first, and each that the trainer's unpadded batch can show fails the second."""
    from labhelpers import records

    cfg = labhelpers.lab_config("03", "tiny", quiet=True)
    labhelpers.prepare_lab(cfg)
    ns = run_cells("03_dpo", _SETUP_3_3 + ["c356a92f"],
                   {"labhelpers": labhelpers, "PROFILE": "tiny", "os": os, **dict.fromkeys(
                       ("DEVICE", "MODEL_NAME", "DATASET", "MAX_STEPS", "BETA", "SFT_WEIGHT", "N_TRAIN", "N_TEST",
                        "BATCH_SIZE", "MAX_LENGTH", "MAX_NEW_TOKENS", "PROMPT_FORMAT"))})
    source = cell_source("03_dpo", EXERCISE_3_3)
    checks = [cell_source("03_dpo", "a7d3c5e1-3"), cell_source("03_dpo", "c356a92f-2")]
    variants = {"solution": source, **{name: _replace_solution(source, func, body)
                                       for name, (func, body) in _WRONG_3_3.items()}}
    outcome = {}
    for name, code in variants.items():
        assert name == "solution" or code != source
        monkeypatch.setattr(records, "_log", [])
        for i, cell in enumerate([code, *checks]):
            exec(compile(cell, f"<exercise 3.3 {i}: {name}>", "exec"), ns)
        outcome[name] = {r["name"]: (r["passed"], r["value"]) for r in records._log if r["kind"] == "check"}
    assert set(outcome["solution"]) == {"answer_logps_match_library", "answer_logps_match_dpo_trainer"}
    assert all(passed for passed, _ in outcome["solution"].values()), outcome["solution"]
    for name in _WRONG_3_3:
        assert not outcome[name]["answer_logps_match_library"][0], (name, outcome[name])
    # the library's batch pads its shorter rows, so a mask that keeps the padding changes the sums; the trainer's
    # batch of one-line answers has no padding, so there only the other mistakes show
    assert outcome["mask includes the padding"]["answer_logps_match_library"][1] > 1e-3
    for name in ("log-probs not shifted by one", "logits shifted, mask not", "mask includes the prompt"):
        assert not outcome[name]["answer_logps_match_dpo_trainer"][0], (name, outcome[name])


def test_response_mask_and_sequence_logps_by_hand():
    """The library's reference: a prompt of 2 and 1 tokens, answers of 2 and 3 tokens, one row padded; the log-probs
    of a model whose logits are known, summed by hand."""
    from labhelpers.sequences import response_mask, sequence_logps

    ids = torch.tensor([[5, 6, 7, 8, 0], [5, 9, 9, 7, 1]])
    attention = torch.tensor([[1, 1, 1, 1, 0], [1, 1, 1, 1, 1]])
    mask = response_mask(ids, torch.tensor([2, 2]), attention)
    assert mask.tolist() == [[0, 0, 1, 1, 0], [0, 0, 1, 1, 1]] and mask.dtype == torch.long
    logits = torch.randn(2, 5, 10, generator=torch.Generator().manual_seed(0))
    logp = F.log_softmax(logits, -1)
    expected = [logp[0, 1, 7] + logp[0, 2, 8], logp[1, 1, 9] + logp[1, 2, 7] + logp[1, 3, 1]]
    assert torch.allclose(sequence_logps(logits, ids, mask), torch.stack(expected), atol=1e-6)


def test_instruction_prompts_are_lab_01s_and_the_answer_tokens_follow_the_prompts():
    """PROMPT_FORMAT="instruction": a chat row and a plain-text row become lab 01's Alpaca prompt, and with the SFT
    model's tokenizer the tokens of prompt + answer start with the tokens of the prompt (no merge at the seam), so
    DPOTrainer finds the whole answer; a multi-turn prompt has no instruction form and says so."""
    from transformers import AutoTokenizer

    from labhelpers.formatting import formatting_prompts_func_no_response, to_prompt_completion
    from labhelpers.preferences import PreferenceRowError, process_row
    from labhelpers.synthetic import preferences

    row = preferences(1, seed=3)[0]
    out = process_row(row, prompt_format="instruction")
    request = row["chosen"][0]["content"]
    assert out["prompt"] == formatting_prompts_func_no_response({"instruction": request, "input": ""})
    assert out["prompt"].endswith("### Response:\n") and out["chosen"] == row["chosen"][1]["content"]
    assert process_row({"prompt": request, "chosen": out["chosen"], "rejected": out["rejected"]},
                       prompt_format="instruction") == out
    assert process_row(row)["prompt"].startswith("Human: ")  # the default is unchanged
    cfg = labhelpers.lab_config("03", "tiny", quiet=True)
    labhelpers.prepare_lab(cfg)
    tokenizer = AutoTokenizer.from_pretrained(cfg.model_name)
    prompt_ids = tokenizer(out["prompt"])["input_ids"]
    assert tokenizer(out["prompt"] + out["chosen"])["input_ids"][:len(prompt_ids)] == prompt_ids
    # the very tokens lab 01 trained its SFT model on, for the same request and answer
    lab01 = to_prompt_completion({"instruction": request, "input": "", "output": out["chosen"]})
    assert tokenizer(lab01["prompt"] + lab01["completion"])["input_ids"] == \
        tokenizer(out["prompt"] + out["chosen"])["input_ids"]
    two_turns = {"chosen": [*row["chosen"][:1], {"role": "assistant", "content": "a"}, *row["chosen"]],
                 "rejected": [*row["chosen"][:1], {"role": "assistant", "content": "a"}, *row["rejected"]]}
    with pytest.raises(PreferenceRowError, match="one user request"):
        process_row(two_turns, prompt_format="instruction")
    with pytest.raises(ValueError, match='PROMPT_FORMAT must be "instruction" or "dialogue"'):
        labhelpers.lab_config("03", "tiny", quiet=True, PROMPT_FORMAT="chat")


def test_the_outcome_checks_fail_on_runs_the_text_does_not_describe(monkeypatch):
    """Section 6's outcome checks, run on the measured shapes of this run's three models and on runs that did not
    happen: plain DPO whose answers are reviews (or end, which the text leaves to the printed figure); DPO + SFT that does not end, gives one answer, is less
    positive than its start or goes off topic; DPO + SFT on topic where its start is not. Each fails exactly the
    checks it contradicts."""
    from labhelpers import records

    cfg = labhelpers.lab_config("03", "tiny", quiet=True)
    source = cell_source("03_dpo", "c0af7657-6")
    measured = {  # labhelpers run 03, tiny, this commit's lab
        "ref": {"distinct": 1.0, "stopped": 1.0, "well_formed": 1.0, "positive": 0.8, "on_topic": 1.0},
        "dpo": {"distinct": 0.7, "stopped": 0.0, "well_formed": 0.0, "positive": 0.0, "on_topic": 0.0},
        "dpo_sft": {"distinct": 1.0, "stopped": 1.0, "well_formed": 1.0, "positive": 1.0, "on_topic": 1.0}}
    other_runs = {"measured": ({}, set()),
                  "plain DPO ends after a broken line": ({"dpo": {"stopped": 1.0}}, set()),
                  "plain DPO writes reviews": ({"dpo": {"well_formed": 0.9}}, {"plain_dpo_degenerates"}),
                  "DPO + SFT never ends": ({"dpo_sft": {"stopped": 0.0}}, {"dpo_sft_answers_well"}),
                  "DPO + SFT one answer": ({"dpo_sft": {"distinct": 0.1}}, {"dpo_sft_answers_well"}),
                  "DPO + SFT less positive than the start": ({"dpo_sft": {"positive": 0.8}, "ref": {"positive": 0.9}},
                                                             {"dpo_sft_answers_well"}),
                  "DPO + SFT off topic": ({"dpo_sft": {"on_topic": 0.5}},
                                          {"dpo_sft_answers_well", "topic_stays_the_start_models"}),
                  "DPO + SFT on topic, the start not": ({"ref": {"on_topic": 0.1}}, {"topic_stays_the_start_models"})}
    for name, (changes, failing) in other_runs.items():
        runs = {model: {**values, **changes.get(model, {})} for model, values in measured.items()}
        shape = {model: {k: v[k] for k in ("distinct", "stopped")} for model, v in runs.items()}
        judged = {model: {k: v[k] for k in ("well_formed", "positive", "on_topic")} for model, v in runs.items()}
        monkeypatch.setattr(records, "_log", [])
        exec(compile(source, f"<section 6 outcome: {name}>", "exec"),
             {"cfg": cfg, "shape": shape, "judged": judged, "record_check": records.record_check})
        failed = {r["name"] for r in records._log if not r["passed"]}
        assert len(records._log) == 3 and failed == failing, (name, failed)
