"""Every graded exercise of the course fails a plausible wrong answer, and passes its own solution.

For each exercise cell (a code cell whose ``### BEGIN SOLUTION`` block the student version turns into a TODO; quiz
cells are tested in ``test_quiz.py``) the table :data:`CASES` gives a wrong body that a learner could well write,
and the check cells that grade it. The test runs the lab's own cells in this process (``lab_cells.run_cells``):
the cells the exercise needs (a prefix of the lab that trains nothing, or small stand-ins for a trained model),
then the exercise cell with the wrong body instead of the solution, then its check cells, and asserts that a record
of the exercise's checks says *failed*; with the lab's own body the same records say *passed*.

``test_every_graded_exercise_has_a_wrong_answer_case`` keeps the table complete: a new exercise cell in any lab
fails it until it gets a case here.

| lab | exercise cell | what the wrong body does |
|---|---|---|
| 00 | ``e00a0004`` | log-probs of the tokens at their own position (no shift by one) |
| 00 | ``e00a0007`` | greedy loop that does not stop after end-of-text |
| 01 | ``db600fa9`` | always writes the ``### Input:`` block, even for an empty input |
| 01 | ``7d53d117`` | masks up to the template but leaves padding trained |
| 01 | ``36d5b218`` | no shift: position t scored against token t |
| 02 | ``8f40117b`` | adds the margin instead of subtracting it |
| 02 | ``e02b0002`` | counts non-pad tokens (wrong with left padding and inner eos) |
| 03 | ``0d04999b`` | forgets to divide by Z; or leaves π_ref out (a distribution, so only the optimum's checks catch it) |
| 03 | ``0c1bd458`` | forgets β in the implicit rewards |
| 03 | ``a7d3c5e1-2`` | answer mask that leaves the padding in; log-probs read without the shift by one |
| 03 | ``4cecc545`` | trains the second run at the lab's β, not at ``LARGER_BETA`` |
| 04 | ``6cfeb5c7`` | TD error without the next value (no bootstrap) |
| 04 | ``3abae4a1`` | clipped term only, without the min |
| 04 | ``d3c89150`` | KL not masked: padding leaks into the rewards |
| 04 | ``c6805202`` | population std (unbiased=False) instead of TRL's sample std |
| 05 | ``9f639415`` | keeps tokens while the mass *including* them is below p (one token short) |
| 05 | ``27949cff`` | divides every seen logit by the penalty, negative ones too |
| 06 | ``25d70bc3`` | forgets the alpha / r scaling |
| 06 | ``e06c0002`` | LoRA without the frozen base's bytes |
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from fnmatch import fnmatchcase
from types import SimpleNamespace

import pytest
import torch
from conftest import LABS, lab_stems
from lab_cells import cell_source

from labhelpers import records
from labhelpers.course.student import BEGIN, END, exercise_cells


@dataclass(frozen=True)
class Case:
    stem: str
    exercise: str  # id of the exercise's code cell
    checks: tuple[str, ...]  # ids of the cells after it that grade it (empty: the exercise cell records itself)
    records: tuple[str, ...]  # check names (fnmatch patterns): all pass with the solution, one fails when wrong
    wrong: str  # a plausible wrong body for the solution block number `block`
    block: int = 0
    context: str = ""  # the namespace it runs in: a key of CONTEXTS (default: the lab's stem)


CASES = [
    Case("00_overview", "e00a0004", ("e00a0005",), ("next_token_logprobs_match_model_loss",),
         "return logits.log_softmax(dim=-1).gather(-1, input_ids.unsqueeze(-1)).squeeze(-1)"),
    Case("00_overview", "e00a0007", ("e00a0008",), ("greedy_loop_matches_generate",),
         "for _ in range(max_new_tokens):\n"
         "    next_id = model(input_ids=input_ids).logits[:, -1].argmax(dim=-1, keepdim=True)\n"
         "    input_ids = torch.cat([input_ids, next_id], dim=1)\n"
         "return input_ids"),
    Case("01_instruction_tuning", "db600fa9", ("b96b3b32",), ("formatting_matches_reference",),
         "return (f\"### Instruction:\\n{example['instruction']}\\n\\n### Input:\\n{example['input']}\\n\\n\"\n"
         "        f\"{RESPONSE_TEMPLATE}\\n\")"),
    Case("01_instruction_tuning", "7d53d117", ("7d53d117-2",), ("mask_by_hand_matches_collator",),
         "labels = input_ids.clone()\n"
         "n = len(template_ids)\n"
         "for b, row in enumerate(input_ids.tolist()):\n"
         "    ends = [i + n for i in range(len(row) - n + 1) if row[i:i + n] == template_ids]\n"
         "    labels[b, : ends[-1] if ends else len(row)] = -100\n"
         "return labels"),
    Case("01_instruction_tuning", "36d5b218", (), ("masked_ce_matches_library",),
         "kept = labels != -100\n"
         "picked = logits.log_softmax(dim=-1).gather(-1, labels.clamp(min=0).unsqueeze(-1)).squeeze(-1)\n"
         "return -(picked * kept).sum() / kept.sum()"),
    Case("02_reward_modeling", "8f40117b", ("8f40117b-2",), ("bt_loss_matches_library",),
         "diff = rewards_chosen - rewards_rejected\n"
         "if margin is not None:\n"
         "    diff = diff + margin\n"
         "return -F.logsigmoid(diff).mean()"),
    Case("02_reward_modeling", "e02b0002", ("e02b0003", "e02b0004"),
         ("reward_positions_match_library", "reward_positions_give_the_models_reward"),
         "return (input_ids != pad_token_id).sum(dim=1) - 1"),
    Case("03_dpo", "0d04999b", ("0d04999b-check",), ("optimal_policy_is_a_distribution",),
         "weights = pi_ref * np.exp(r / beta)\n"
         "return weights, weights.sum()"),
    Case("03_dpo", "0d04999b", ("0d04999b-check", "48bf370b-1", "48bf370b-3"),
         ("optimal_policy_is_a_distribution", "optimum_beats_other_policies", "optimum_value_is_beta_log_Z"),
         "weights = np.exp(r / beta)\n"
         "return weights / weights.sum(), weights.sum()"),
    Case("03_dpo", "0c1bd458", ("0c1bd458-2",), ("dpo_loss_matches_library",),
         "chosen_rewards = policy_chosen_logps - ref_chosen_logps\n"
         "rejected_rewards = policy_rejected_logps - ref_rejected_logps\n"
         "losses = -F.logsigmoid(chosen_rewards - rejected_rewards)"),
    Case("03_dpo", "a7d3c5e1-2", ("a7d3c5e1-3",), ("answer_logps_match_library",),
         "columns = torch.arange(input_ids.shape[1], device=input_ids.device)\n"
         "return (columns[None, :] >= prompt_lengths[:, None]).long()"),
    Case("03_dpo", "a7d3c5e1-2", ("a7d3c5e1-3",), ("answer_logps_match_library",),
         "token_logps = F.log_softmax(logits.float(), dim=-1).gather(-1, input_ids[:, :, None]).squeeze(-1)\n"
         "return (token_logps * mask).sum(-1)", block=1),
    Case("03_dpo", "4cecc545", ("4cecc545-check",), ("beta_experiment_direction",),
         "beta_policy = AutoModelForCausalLM.from_pretrained(cfg.model_name, dtype=torch.float32).to(cfg.device)\n"
         "beta_trainer = DPOTrainer(model=beta_policy, ref_model=ref_model, args=dpo_args('dpo-larger-beta', ['sigmoid']),\n"
         "                          train_dataset=train_ds, eval_dataset=eval_ds, processing_class=tokenizer)\n"
         "training.train(beta_trainer)\n"
         "kl_larger_beta, _ = sampled_kl_and_length(beta_trainer.model.eval(), heldout_prompts)",
         context="03_dpo_beta_run"),
    Case("04_ppo_rlhf", "6cfeb5c7", ("703cfea6",), ("gae_matches_library",),
         "advantages = [0.0] * len(rewards)\n"
         "next_advantage = 0.0\n"
         "for t in reversed(range(len(rewards))):\n"
         "    delta = rewards[t] - values[t]\n"
         "    next_advantage = delta + gamma * lam * next_advantage\n"
         "    advantages[t] = next_advantage"),
    Case("04_ppo_rlhf", "3abae4a1", ("8f48297d", "8f48297d-2"), ("clipped_loss_matches_library",),
         "return -torch.clamp(ratio, 1 - eps, 1 + eps) * advantage"),
    Case("04_ppo_rlhf", "d3c89150", ("a69035a6",), ("kl_reward_matches_library",),
         "kl = logprobs - ref_logprobs\n"
         "rewards = -beta * kl\n"
         "rewards[:, -1] += scores"),
    Case("04_ppo_rlhf", "c6805202", ("ba1c6564",), ("group_advantages_match_trl",),
         "groups = rewards.view(-1, group_size)\n"
         "centred = groups - groups.mean(dim=1, keepdim=True)\n"
         "return (centred / (groups.std(dim=1, keepdim=True, unbiased=False) + 1e-4)).flatten()"),
    Case("05_generation_parameters", "9f639415", ("5c8424f7",), ("top_p_*_smallest_set", "top_p_*_matches_library"),
         "sorted_probs, order = torch.sort(probs, descending=True)\n"
         "keep_sorted = torch.cumsum(sorted_probs, dim=0) < p\n"
         "mask = torch.zeros_like(probs, dtype=torch.bool)\n"
         "mask[order[keep_sorted]] = True\n"
         "return mask"),
    Case("05_generation_parameters", "27949cff", ("27949cff-2",), ("repetition_penalty_matches_library",),
         "seen = scores.gather(1, input_ids) / penalty\n"
         "return scores.scatter(1, input_ids, seen)"),
    Case("06_scaling_up", "25d70bc3", ("59dec03f", "59dec03f-2"), ("lora_layer_matches_peft",),
         "return self.base(x) + x @ self.A.T @ self.B.T"),
    Case("06_scaling_up", "e06c0002", ("e06c0003",), ("memory_by_hand_matches_library",),
         "per_trained = 4 + 4 + 4 + 4\n"
         "if method == 'full':\n"
         "    return counts.total * per_trained\n"
         "if method == 'lora':\n"
         "    return counts.lora * per_trained\n"
         "return counts.quantized * NF4_BYTES + (counts.total - counts.quantized) * 2 + counts.lora * per_trained"),
]


def with_body(source: str, body: str, block: int = 0) -> str:
    """``source`` with the body of its ``block``-th solution block replaced by ``body``, indented like the marker."""
    lines, out, seen, inside = source.split("\n"), [], -1, False
    for line in lines:
        if line.strip() == BEGIN:
            seen += 1
            inside = seen == block
            out.append(line)
            if inside:
                indent = line[: len(line) - len(line.lstrip())]
                out += [indent + part if part else part for part in body.split("\n")]
            continue
        if line.strip() == END:
            inside = False
        if not inside:
            out.append(line)
    assert seen >= block, f"no solution block {block}"
    return "\n".join(out)


def test_with_body_replaces_only_the_chosen_block():
    source = f"def f():\n    {BEGIN}\n    return 1\n    {END}\n\ndef g():\n    {BEGIN}\n    return 2\n    {END}"
    assert with_body(source, "return 3", block=1) == source.replace("return 2", "return 3")
    assert with_body(source, "x = 0\nreturn x") == source.replace("return 1", "x = 0\n    return x")


# --------------------------------------------------------------------------------------------------
# The namespaces the exercises run in
# --------------------------------------------------------------------------------------------------
def _code_ids(stem: str) -> list[str]:
    nb = json.loads((LABS / f"{stem}.ipynb").read_text(encoding="utf-8"))
    return [c["id"] for c in nb["cells"] if c["cell_type"] == "code"]


def _run_lab_cells(stem: str, ids: list[str], namespace: dict) -> dict:
    """Run the cells in this process, quietly (no figure window), keeping this process's thread count."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from IPython.display import display

    namespace.setdefault("display", display)  # a kernel's builtin, which some cells use without importing it
    threads = torch.get_num_threads()
    try:
        for cell_id in ids:
            exec(compile(cell_source(stem, cell_id), f"<{stem} cell {cell_id}>", "exec"), namespace)
    finally:
        torch.set_num_threads(threads)
        plt.close("all")
    return namespace


def _prefix(stem: str, stop: str, skip: tuple[str, ...] = ()) -> list[str]:
    """The code cells of the lab before cell ``stop``, less ``skip``."""
    ids = _code_ids(stem)
    return [i for i in ids[: ids.index(stop)] if i not in skip]


def _context_light_prefix(stem: str):
    """The lab's cells up to the last check of its exercises here: for labs 00, 01, 02, 03 (its first two exercises)
    and 05 that prefix trains nothing, and it runs each exercise once with the lab's own solution."""
    ids = _code_ids(stem)
    last = max(ids.index(c.checks[-1] if c.checks else c.exercise) for c in CASES if c.stem == stem and not c.context)
    return _run_lab_cells(stem, ids[: last + 1], {"__name__": "__main__"})


def _context_04():
    # the bandit part of lab 04 and its imports; the exercises need no model (PPO's run comes later)
    return _run_lab_cells("04_ppo_rlhf", _prefix("04_ppo_rlhf", "7039b9be"), {"__name__": "__main__"})


def _context_06():
    # the setup, then the LoRA sizes of part 2 (the full fine-tuning run of section 1.6 is skipped)
    ns = _run_lab_cells("06_scaling_up", _prefix("06_scaling_up", "d5c50911"), {"__name__": "__main__"})
    ns["lora_base_bytes"] = 4.0  # what part 2's LoRA run reads from its float32 model
    return _run_lab_cells("06_scaling_up", ["bc6f3bd9", "7bfda84a"], ns)


def _context_03_beta_run():
    """Stand-ins for lab 03's trained models: a trainer that records its β and steps, and a KL to the reference and
    a held-out log-ratio margin that fall as β grows (what the exercise's check expects of a real run)."""
    cfg = SimpleNamespace(beta=0.1, model_name="tiny", device="cpu", sft_weight=1.0)

    class Model:
        beta = None

        def to(self, device):
            return self

        def eval(self):
            return self

    class Trainer:
        def __init__(self, model, args, **kwargs):
            self.model, self.args = model, args
            self.state = SimpleNamespace(global_step=0, max_steps=args.max_steps)

    def train(trainer):
        trainer.model.beta = trainer.args.beta
        trainer.state.global_step = trainer.state.max_steps

    def dpo_args(run_name, loss_type, loss_weights=None, **changes):
        return SimpleNamespace(beta=changes.get("beta", cfg.beta), max_steps=40)

    return {"__name__": "__main__", "gc": __import__("gc"), "torch": torch, "cfg": cfg, "sft_trainer": object(),
            "beyond_accuracy": {"DPO": (0.9, 2.0, 12.0)},
            "AutoModelForCausalLM": SimpleNamespace(from_pretrained=lambda *a, **k: Model()),
            "DPOTrainer": Trainer, "dpo_args": dpo_args, "training": SimpleNamespace(train=train),
            "sampled_kl_and_length": lambda model, prompts: (0.2 / model.beta, 10.0),
            # the held-out log-ratio margin: 2.0 nats at the lab's beta (section 5's run), 0.2 / beta after a run
            "dpo_chosen": torch.full((4,), -1.0), "dpo_rejected": torch.full((4,), -3.0),
            "ref_chosen": torch.zeros(4), "ref_rejected": torch.zeros(4),
            "heldout_logps": lambda model: (torch.full((4,), -1.0), torch.full((4,), -1.0 - 0.2 / model.beta), None),
            "ref_model": Model(), "train_ds": [], "eval_ds": [], "tokenizer": None, "heldout_prompts": ["p"],
            "pref_accuracy_after": 0.9, "chosen_logp_dpo": -1.0, "pref_accuracy_dpo_sft": 0.8,
            "chosen_logp_dpo_sft": -0.5, "record_check": records.record_check, "record_result": records.record_result}


CONTEXTS = {
    "00_overview": lambda: _context_light_prefix("00_overview"),
    "01_instruction_tuning": lambda: _context_light_prefix("01_instruction_tuning"),
    "02_reward_modeling": lambda: _context_light_prefix("02_reward_modeling"),
    "03_dpo": lambda: _context_light_prefix("03_dpo"),
    "03_dpo_beta_run": _context_03_beta_run,
    "04_ppo_rlhf": _context_04,
    "05_generation_parameters": lambda: _context_light_prefix("05_generation_parameters"),
    "06_scaling_up": _context_06,
}


@pytest.fixture(scope="module")
def contexts():
    built: dict[str, dict] = {}

    def get(name: str) -> dict:
        if name not in built:
            built[name] = CONTEXTS[name]()
        return built[name]

    return get


def _outcomes(case: Case, body: str | None, namespace: dict) -> dict[str, list[bool]]:
    """Run the exercise cell (with ``body`` instead of its solution, or as it is) and its checks; the outcome of
    every record of the case's checks, by name."""
    records._log.clear()
    source = cell_source(case.stem, case.exercise)
    if body is not None:
        source = with_body(source, body, case.block)
    ns = dict(namespace)
    threads = torch.get_num_threads()
    try:
        exec(compile(source, f"<{case.stem} cell {case.exercise}>", "exec"), ns)
        _run_lab_cells(case.stem, list(case.checks), ns)
    finally:
        torch.set_num_threads(threads)
    found: dict[str, list[bool]] = {}
    for record in records.recorded():
        if record["kind"] == "check" and any(fnmatchcase(record["name"], p) for p in case.records):
            found.setdefault(record["name"], []).append(bool(record["passed"]))
    return found


@pytest.mark.parametrize("case", CASES, ids=[f"{c.stem[:2]}-{c.exercise}-{c.block}" for c in CASES])
def test_the_solution_passes_and_a_plausible_wrong_answer_fails(case, contexts):
    namespace = contexts(case.context or case.stem)
    right = _outcomes(case, None, namespace)
    for pattern in case.records:
        assert any(fnmatchcase(name, pattern) for name in right), f"no record {pattern} after the solution"
    assert all(all(outcomes) for outcomes in right.values()), f"the lab's own solution fails: {right}"

    wrong = _outcomes(case, case.wrong, namespace)
    assert wrong, "the wrong answer recorded none of the exercise's checks"
    assert not all(all(outcomes) for outcomes in wrong.values()), f"a wrong answer passes every check: {wrong}"


def test_every_graded_exercise_has_a_wrong_answer_case():
    covered = {(c.stem, c.exercise) for c in CASES}
    graded = set()
    for stem in lab_stems():
        nb = json.loads((LABS / f"{stem}.ipynb").read_text(encoding="utf-8"))
        graded |= {(stem, nb["cells"][i]["id"]) for i in exercise_cells(nb)}
    assert graded - covered == set(), "exercise cells without a wrong answer in CASES"
    assert covered - graded == set(), "CASES names cells that are no exercise (moved or renamed?)"


def test_every_lab_has_at_least_two_graded_exercises():
    for stem in lab_stems():
        nb = json.loads((LABS / f"{stem}.ipynb").read_text(encoding="utf-8"))
        assert len(exercise_cells(nb)) >= 2, f"{stem} has {len(exercise_cells(nb))} graded exercise(s)"
