"""Preference losses written from their formulas (the labs derive them; the tests compare them with TRL).

Shapes: ``B`` is the batch size. Every input is a float tensor of shape ``(B,)``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def bradley_terry_loss(rewards_chosen: torch.Tensor, rewards_rejected: torch.Tensor,
                       margin: torch.Tensor | None = None) -> torch.Tensor:
    """Mean Bradley–Terry loss of a reward model: ``-log σ(r_c − r_r − margin)``.

    Under the Bradley–Terry model ``P(chosen ≻ rejected) = σ(r_c − r_r)``; the loss is the negative
    log-likelihood of the human preferences. An optional per-pair ``margin`` (shape ``(B,)``) asks the
    model to separate strongly preferred pairs further (Llama 2's reward models do this).

    Returns a scalar tensor.
    """
    diff = rewards_chosen - rewards_rejected
    if margin is not None:
        diff = diff - margin
    # logsigmoid is the numerically stable form of log(sigmoid(x)) for large |x|
    return -F.logsigmoid(diff).mean()


def dpo_loss(policy_chosen_logps: torch.Tensor, policy_rejected_logps: torch.Tensor,
             ref_chosen_logps: torch.Tensor, ref_rejected_logps: torch.Tensor,
             beta: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-example sigmoid DPO loss (Rafailov et al., 2023, eq. 7) and the implicit rewards.

    Inputs are summed log-probabilities of whole responses, ``log π(y|x)``, each of shape ``(B,)``.

    * implicit reward of a response: ``r̂(x, y) = β · (log π(y|x) − log π_ref(y|x))``
    * loss: ``−log σ(r̂(x, y_w) − r̂(x, y_l))``

    Returns ``(losses, chosen_rewards, rejected_rewards)``, each of shape ``(B,)``; rewards are detached,
    as they are only logged.
    """
    chosen_logratios = policy_chosen_logps - ref_chosen_logps
    rejected_logratios = policy_rejected_logps - ref_rejected_logps
    losses = -F.logsigmoid(beta * (chosen_logratios - rejected_logratios))
    chosen_rewards = beta * chosen_logratios.detach()
    rejected_rewards = beta * rejected_logratios.detach()
    return losses, chosen_rewards, rejected_rewards
