"""The Bradley–Terry loss of labhelpers equals the loss TRL's RewardTrainer computes on the same batch and model."""

from __future__ import annotations

import math

import datasets
import pytest
import torch

from labhelpers import reward
from labhelpers.losses import bradley_terry_loss
from labhelpers.synthetic import pairwise


def _trainer(model, tokenizer, rows, tmp_path):
    from trl import RewardConfig, RewardTrainer

    train = datasets.Dataset.from_list(rows)
    args = RewardConfig(output_dir=str(tmp_path), per_device_train_batch_size=4, max_steps=1, report_to="none",
                        use_cpu=True, bf16=False, fp16=False, save_strategy="no", max_length=128)
    return RewardTrainer(model=model, args=args, train_dataset=train, processing_class=tokenizer)


def test_hand_computed_values():
    # -log σ(1 - 0) = log(1 + e^-1); with a margin of 1 the difference is 0 and the loss is log 2
    assert math.isclose(bradley_terry_loss(torch.tensor([1.0]), torch.tensor([0.0])).item(), math.log1p(math.exp(-1)),
                        rel_tol=1e-6)
    assert math.isclose(bradley_terry_loss(torch.tensor([1.0]), torch.tensor([0.0]), torch.tensor([1.0])).item(),
                        math.log(2), rel_tol=1e-6)
    # stable for large differences, where log(sigmoid(x)) underflows to -inf
    big = bradley_terry_loss(torch.tensor([0.0]), torch.tensor([200.0]))
    assert torch.isfinite(big) and math.isclose(big.item(), 200.0, rel_tol=1e-6)


def test_mean_over_the_batch_and_swapping_increases_loss():
    rc, rr = torch.tensor([2.0, -1.0, 0.5]), torch.tensor([0.0, 1.0, 0.5])
    per_pair = [math.log1p(math.exp(-(c - r))) for c, r in zip(rc.tolist(), rr.tolist())]
    assert math.isclose(bradley_terry_loss(rc, rr).item(), sum(per_pair) / 3, rel_tol=1e-6)
    good, bad = torch.tensor([3.0, 2.0]), torch.tensor([0.0, -1.0])
    assert bradley_terry_loss(good, bad) < bradley_terry_loss(bad, good)


@pytest.mark.parametrize("with_margin", [False, True])
def test_equals_reward_trainer_compute_loss(model, tokenizer, tmp_path, with_margin):
    pairs = pairwise(8, seed=3)
    rows = [{"chosen_ids": reward.encode(tokenizer, p["prompt"], p["chosen"]),
             "rejected_ids": reward.encode(tokenizer, p["prompt"], p["rejected"])} for p in pairs]
    margins = [0.25 * i for i in range(len(rows))]
    if with_margin:
        rows = [{**row, "margin": m} for row, m in zip(rows, margins)]
    trainer = _trainer(model, tokenizer, rows, tmp_path)
    batch = trainer.data_collator([trainer.train_dataset[i] for i in range(len(rows))])
    assert ("margin" in batch) == with_margin
    with torch.no_grad():
        trl_loss = trainer.compute_loss(model, dict(batch)).item()

        # rewards of the same model on the same collated batch (chosen stacked on top of rejected)
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits.squeeze(-1)
        rewards_chosen, rewards_rejected = logits.chunk(2)
        ours = bradley_terry_loss(rewards_chosen, rewards_rejected, batch.get("margin")).item()

        # and rewards computed independently, one text at a time, from the raw pairs
        rc = reward.reward_scores(model, tokenizer, [p["prompt"] for p in pairs], [p["chosen"] for p in pairs],
                                  batch_size=1)
        rr = reward.reward_scores(model, tokenizer, [p["prompt"] for p in pairs], [p["rejected"] for p in pairs],
                                  batch_size=1)
        independent = bradley_terry_loss(rc, rr, torch.tensor(margins) if with_margin else None).item()

    assert abs(trl_loss - ours) < 1e-6, (trl_loss, ours)
    assert abs(trl_loss - independent) < 1e-6, (trl_loss, independent)
    # the comparison is not trivial: the rewards differ, and the margin changes the loss
    assert (rewards_chosen - rewards_rejected).abs().max() > 0.1
    no_margin = bradley_terry_loss(rewards_chosen, rewards_rejected).item()
    assert (abs(trl_loss - no_margin) > 1e-3) == with_margin
