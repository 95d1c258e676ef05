"""labhelpers.losses.dpo_loss, fed with labhelpers.preferences.completion_logps, equals what TRL's DPOTrainer
computes on the same pairs: the loss and the rewards/chosen, rewards/rejected it logs (to 1e-5), per pair and
per batch, with the reference model run in every step and with precomputed reference log-probs."""

from __future__ import annotations

import math

import datasets
import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer
from trl import DPOConfig, DPOTrainer

from labhelpers.losses import dpo_loss
from labhelpers.preferences import completion_logps, to_text_preferences
from labhelpers.synthetic import preferences
from labhelpers.tiny import zoo_path

BETA = 0.3          # not TRL's default, so that a beta that does not reach the loss would show
MAX_LENGTH = 26     # the tiny prompts are 16 tokens: the two long answers below get cut
TOL = 1e-5


def pairs() -> datasets.Dataset:
    rows = preferences(6, seed=3, style="text")
    rows.append({"prompt": "Human: Write one line about the plot.\n\nAssistant:",
                 "chosen": " the plot was moving and funny . the cast was superb and charming .", "rejected": " no ."})
    rows.append({"prompt": "Human: Hi\n\nAssistant:", "chosen": " hello .",
                 "rejected": " the film was dull and weak . the script was poor and silly . the end ."})
    return to_text_preferences(datasets.Dataset.from_list(rows))


@pytest.fixture(scope="module")
def models():
    torch.set_num_threads(1)
    path = zoo_path("tiny-gpt2")
    tokenizer = AutoTokenizer.from_pretrained(path)
    tokenizer.pad_token = tokenizer.eos_token
    ref = AutoModelForCausalLM.from_pretrained(path).eval()
    policy = AutoModelForCausalLM.from_pretrained(path)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():  # a policy that differs from the reference, so that the rewards are not all 0
        for p in policy.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=g))
    return policy, ref, tokenizer


def make_trainer(models, tmp_path, precompute: bool) -> DPOTrainer:
    policy, ref, tokenizer = models
    args = DPOConfig(output_dir=str(tmp_path), beta=BETA, max_length=MAX_LENGTH, precompute_ref_log_probs=precompute,
                     per_device_train_batch_size=8, per_device_eval_batch_size=8, gradient_checkpointing=False,
                     use_cpu=True, bf16=False, fp16=False, report_to="none", disable_tqdm=True)
    return DPOTrainer(model=policy, ref_model=ref, args=args, train_dataset=pairs(), processing_class=tokenizer)


def ours(models, ds):
    policy, ref, tokenizer = models
    logps = {}
    for name, model in (("policy", policy), ("ref", ref)):
        for side in ("chosen", "rejected"):
            logps[name, side], _ = completion_logps(model, tokenizer, list(ds["prompt"]), list(ds[side]),
                                                    max_length=MAX_LENGTH)
    return dpo_loss(logps["policy", "chosen"], logps["policy", "rejected"], logps["ref", "chosen"],
                    logps["ref", "rejected"], BETA), logps


@pytest.mark.parametrize("precompute", [False, True], ids=["ref-model-each-step", "precomputed-ref"])
def test_dpo_loss_equals_dpo_trainer_per_pair_and_per_batch(models, tmp_path, precompute):
    trainer = make_trainer(models, tmp_path, precompute)
    ds = pairs()
    prepared = trainer.train_dataset
    assert list(prepared["prompt"]) == list(ds["prompt"]), "the trainer kept every pair, in order"
    (losses, chosen_rewards, rejected_rewards), logps = ours(models, ds)
    assert chosen_rewards.abs().max() > 0.1 and (losses - math.log(2)).abs().max() > 0.01, "a non-trivial case"

    if precompute:  # the trainer's reference log-probs are ours, pair by pair
        torch.testing.assert_close(torch.tensor(prepared["ref_chosen_logps"]), logps["ref", "chosen"], atol=TOL, rtol=0)
        torch.testing.assert_close(torch.tensor(prepared["ref_rejected_logps"]), logps["ref", "rejected"],
                                   atol=TOL, rtol=0)

    trainer.model.eval()  # metrics then go to trainer._metrics["eval"]
    metrics = trainer._metrics["eval"]
    for i in range(len(ds)):  # one pair per batch: the trainer's loss and logged rewards are that pair's
        batch = trainer._prepare_inputs(trainer.data_collator([prepared[i]]))
        with torch.no_grad():
            loss = trainer.compute_loss(trainer.model, batch).item()
        assert loss == pytest.approx(losses[i].item(), abs=TOL)
        assert metrics["rewards/chosen"][-1] == pytest.approx(chosen_rewards[i].item(), abs=TOL)
        assert metrics["rewards/rejected"][-1] == pytest.approx(rejected_rewards[i].item(), abs=TOL)
        assert metrics["logps/chosen"][-1] == pytest.approx(logps["policy", "chosen"][i].item(), abs=1e-4)

    batch = trainer._prepare_inputs(trainer.data_collator([prepared[i] for i in range(len(ds))]))
    with torch.no_grad():
        loss = trainer.compute_loss(trainer.model, batch).item()
    assert loss == pytest.approx(losses.mean().item(), abs=TOL)
    assert metrics["rewards/chosen"][-1] == pytest.approx(chosen_rewards.mean().item(), abs=TOL)
    assert metrics["rewards/rejected"][-1] == pytest.approx(rejected_rewards.mean().item(), abs=TOL)
    assert metrics["rewards/margins"][-1] == pytest.approx((chosen_rewards - rejected_rewards).mean().item(), abs=TOL)
    assert metrics["rewards/accuracies"][-1] == pytest.approx((chosen_rewards > rejected_rewards).float().mean().item())


def test_dpo_loss_equals_dpo_trainer_evaluate(models, tmp_path):
    """The public route: DPOTrainer.evaluate logs the mean loss and rewards of the batch."""
    trainer = make_trainer(models, tmp_path, precompute=True)
    ds = pairs()
    (losses, chosen_rewards, rejected_rewards), _ = ours(models, ds)
    trainer.evaluate(eval_dataset=ds, metric_key_prefix="check")
    logged = trainer.state.log_history[-1]
    assert logged["check_loss"] == pytest.approx(losses.mean().item(), abs=TOL)
    assert logged["eval_rewards/chosen"] == pytest.approx(chosen_rewards.mean().item(), abs=TOL)
    assert logged["eval_rewards/rejected"] == pytest.approx(rejected_rewards.mean().item(), abs=TOL)


def test_dpo_loss_formula_and_gradient():
    """−log σ(β[(π_w − ref_w) − (π_l − ref_l)]) by hand, and its gradient −β·σ(−margin) on the chosen log-prob."""
    pc = torch.tensor([-3.0, -10.0, -1.0], requires_grad=True)
    pr, rc, rr = torch.tensor([-4.0, -2.0, -1.0]), torch.tensor([-3.5, -9.0, -1.0]), torch.tensor([-3.0, -3.0, -1.0])
    losses, cr, rj = dpo_loss(pc, pr, rc, rr, beta=0.5)
    margin = 0.5 * ((pc - rc) - (pr - rr))
    torch.testing.assert_close(losses, torch.log1p(torch.exp(-margin)))
    torch.testing.assert_close(cr, 0.5 * (pc - rc).detach())
    torch.testing.assert_close(rj, 0.5 * (pr - rr))
    assert not cr.requires_grad and not rj.requires_grad
    assert losses[2].item() == pytest.approx(math.log(2)), "equal log-ratios: no preference yet"
    losses.sum().backward()
    torch.testing.assert_close(pc.grad, -0.5 * torch.sigmoid(-margin.detach()))
