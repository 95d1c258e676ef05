"""PPO for causal language models (RLHF), small enough to read in one sitting.

TRL used to ship ``PPOTrainer``, ``AutoModelForCausalLMWithValueHead`` and ``trl.core.LengthSampler``;
TRL 1.x removed them. This file is a compact, tested replacement with the same ideas and a similar
``step(queries, responses, rewards)`` call, written to be read top to bottom:

1. :class:`LengthSampler`            random query lengths (the course cuts reviews to 2-8 tokens)
2-3. padding, positions, log-probs   from :mod:`labhelpers.sequences`: left-padded batches with explicit
     and masked statistics           ``position_ids``, log-probs and entropy of the tokens a model produced
4. :func:`kl_penalized_rewards`      per-token reward ``-β·KL_t``, plus the score on the last token
5. :func:`compute_gae`               generalised advantage estimation (Schulman et al., 2016)
6. :func:`clipped_policy_loss`,      PPO's clipped surrogate objectives (Schulman et al., 2017)
   :func:`clipped_value_loss`
7. KL controllers                    a fixed ``β``, or one adapted towards a KL target (Ziegler et al., 2019)
8. :func:`generate_responses`,       sample responses in a left-padded batch; log-probs of given responses
   :func:`response_logprobs`
9. :class:`PPOConfig`, :class:`PPOTrainer`   the loop: rollout statistics, then several minibatch epochs

Shapes used in the docstrings: ``B`` sequences in a batch, ``T`` tokens in the padded sequence
``query + response``, and ``T-1`` "actions": column ``t`` of a ``(B, T-1)`` tensor is about token
``t+1``, predicted from tokens ``0..t``. Batches are *left*-padded, so every response ends in the last
column and a response of ``n`` tokens fills the last ``n`` columns of the response mask.
"""

from __future__ import annotations

import copy
import math
import random
from dataclasses import dataclass

import torch
import torch.nn as nn

from .sequences import (
    entropy_from_logits,
    left_pad,
    masked_mean,
    masked_whiten,
    next_token_logprobs,
    pad_id_for,
    position_ids_from_mask,
)


# --------------------------------------------------------------------------------------------------
# 1. Query lengths
# --------------------------------------------------------------------------------------------------
class LengthSampler:
    """Draw an integer uniformly from ``[min_value, max_value)`` -- the upper bound is excluded, as in
    the ``trl.core.LengthSampler`` the course used (``LengthSampler(2, 8)`` gives 2..7).

    ``seed`` makes the draws reproducible on their own; without it, Python's global ``random`` is used
    (which ``labhelpers.set_seed`` seeds).
    """

    def __init__(self, min_value: int, max_value: int, seed: int | None = None):
        if not (isinstance(min_value, int) and isinstance(max_value, int)) or min_value < 1 or max_value <= min_value:
            raise ValueError(f"LengthSampler needs integers 1 <= min_value < max_value, got "
                             f"min_value={min_value!r}, max_value={max_value!r} (max_value is excluded).")
        self.values = list(range(min_value, max_value))
        self._rng = random.Random(seed) if seed is not None else random

    def __call__(self) -> int:
        return self._rng.choice(self.values)

    def __repr__(self) -> str:
        return f"LengthSampler({self.values[0]}, {self.values[-1] + 1})"


# --------------------------------------------------------------------------------------------------
# 2-3. Padding, positions, log-probabilities, entropy and masked statistics: labhelpers.sequences
# --------------------------------------------------------------------------------------------------
def response_mask(response_lengths: list[int], width: int) -> torch.Tensor:
    """``(B, width)`` bool mask that is true in the last ``n_i`` columns of row ``i``.

    With left padding the response of row ``i`` fills the last ``n_i`` of the ``T-1`` action columns.
    """
    cols = torch.arange(width).unsqueeze(0)
    return cols >= width - torch.tensor(response_lengths).unsqueeze(1)


# --------------------------------------------------------------------------------------------------
# 4. The reward of each token: a KL penalty, plus the reward model's score at the end
# --------------------------------------------------------------------------------------------------
def kl_penalized_rewards(scores: torch.Tensor, logprobs: torch.Tensor, ref_logprobs: torch.Tensor,
                         mask: torch.Tensor, kl_coef: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-token rewards for RLHF.

    ``r_t = -β · (log π(y_t) − log π_ref(y_t))`` on every response token, and the last response token
    also gets the reward model's score. Summed over a response this is ``score − β · KL``: the sampled
    estimate of the KL divergence between the policy and the frozen reference on that response.

    ``scores``: ``(B,)``; ``logprobs``, ``ref_logprobs``, ``mask``: ``(B, T-1)``.
    Returns ``(rewards, kl)``, both ``(B, T-1)`` and zero outside the mask.
    """
    mask = mask.bool()
    kl = torch.where(mask, logprobs - ref_logprobs, torch.zeros_like(logprobs))
    rewards = -kl_coef * kl
    # with left padding each response ends in the last column; a generic mask also works: find its last 1
    last = mask.shape[1] - 1 - mask.flip(1).long().argmax(1)
    rewards[torch.arange(len(scores), device=rewards.device), last] += scores.to(rewards.dtype)
    return rewards, kl


# --------------------------------------------------------------------------------------------------
# 5. Generalised advantage estimation
# --------------------------------------------------------------------------------------------------
def compute_gae(rewards: torch.Tensor, values: torch.Tensor, mask: torch.Tensor, gamma: float = 1.0,
                lam: float = 0.95) -> tuple[torch.Tensor, torch.Tensor]:
    """Advantages ``A_t`` and returns ``R_t = A_t + V_t`` by generalised advantage estimation.

    ``δ_t = r_t + γ V_{t+1} − V_t`` (``V`` after the last response token is 0: the episode ends),
    ``A_t = δ_t + γλ A_{t+1} = Σ_l (γλ)^l δ_{t+l}``. ``λ = 1`` gives the Monte-Carlo return minus
    ``V_t`` (high variance); ``λ = 0`` gives the one-step TD error (biased by the value estimate).

    ``rewards``, ``values``, ``mask``: ``(B, N)``; the mask marks one contiguous span per row.
    Returns ``(advantages, returns)``, both ``(B, N)`` and zero outside the mask.
    """
    mask = mask.bool()
    zero = torch.zeros_like(values[:, 0])
    advantages = torch.zeros_like(values)
    next_advantage, next_value = zero, zero  # beyond the last column the episode has ended
    for t in reversed(range(values.shape[1])):
        delta = rewards[:, t] + gamma * next_value - values[:, t]
        advantage = delta + gamma * lam * next_advantage
        # outside the span: 0, so that a token just before a masked column sees the end of its episode
        advantages[:, t] = torch.where(mask[:, t], advantage, zero)
        next_advantage = advantages[:, t]
        next_value = torch.where(mask[:, t], values[:, t], zero)
    returns = torch.where(mask, advantages + values, torch.zeros_like(values))
    return advantages, returns


# --------------------------------------------------------------------------------------------------
# 6. The clipped objectives
# --------------------------------------------------------------------------------------------------
def clipped_policy_loss(logprobs: torch.Tensor, old_logprobs: torch.Tensor, advantages: torch.Tensor,
                        mask: torch.Tensor, cliprange: float = 0.2) -> tuple[torch.Tensor, torch.Tensor]:
    """PPO's clipped surrogate loss (to minimise) and the fraction of tokens where the clip is active.

    ``ρ_t = π(y_t) / π_old(y_t)``; loss ``= mean_t max(−A_t ρ_t, −A_t clip(ρ_t, 1−ε, 1+ε))``.
    Once a token's probability has moved more than ``ε`` in the direction its advantage asks for, the
    clipped term wins, its gradient is zero, and the update stops pushing that token further.

    All inputs ``(B, N)``; returns two scalar tensors.
    """
    ratio = torch.exp(logprobs - old_logprobs)
    unclipped = -advantages * ratio
    clipped = -advantages * torch.clamp(ratio, 1.0 - cliprange, 1.0 + cliprange)
    loss = masked_mean(torch.maximum(unclipped, clipped), mask)
    clipfrac = masked_mean((clipped > unclipped).float(), mask)
    return loss, clipfrac


def clipped_value_loss(values: torch.Tensor, old_values: torch.Tensor, returns: torch.Tensor,
                       mask: torch.Tensor, cliprange_value: float = 0.2) -> tuple[torch.Tensor, torch.Tensor]:
    """Clipped value loss ``½ mean_t max((V_t − R_t)², (V_old,t + clip(V_t − V_old,t, ±ε_v) − R_t)²)``.

    All inputs ``(B, N)``; returns the loss and the fraction of tokens where the clipped term won.
    """
    clipped_values = old_values + torch.clamp(values - old_values, -cliprange_value, cliprange_value)
    loss_unclipped = (values - returns) ** 2
    loss_clipped = (clipped_values - returns) ** 2
    loss = 0.5 * masked_mean(torch.maximum(loss_unclipped, loss_clipped), mask)
    clipfrac = masked_mean((loss_clipped > loss_unclipped).float(), mask)
    return loss, clipfrac


# --------------------------------------------------------------------------------------------------
# 7. The KL coefficient β: fixed, or adapted towards a target KL
# --------------------------------------------------------------------------------------------------
class FixedKLController:
    """``β`` stays at its initial value."""

    def __init__(self, kl_coef: float):
        self.value = float(kl_coef)

    def update(self, current_kl: float, n_samples: int) -> None:
        pass


class AdaptiveKLController:
    """Ziegler et al. (2019): raise ``β`` when the KL is above ``target``, lower it when below.

    ``β ← β · (1 + clip(KL / target − 1, −0.2, 0.2) · n_samples / horizon)``.
    """

    def __init__(self, init_kl_coef: float, target: float, horizon: int):
        self.value, self.target, self.horizon = float(init_kl_coef), float(target), int(horizon)

    def update(self, current_kl: float, n_samples: int) -> None:
        error = max(-0.2, min(0.2, current_kl / self.target - 1.0))
        self.value *= 1.0 + error * n_samples / self.horizon


# --------------------------------------------------------------------------------------------------
# 8. Any causal LM: sample responses, and how likely a model finds given responses
# --------------------------------------------------------------------------------------------------
@torch.no_grad()
def generate_responses(model, tokenizer, queries: list[torch.Tensor], **generation_kwargs) -> list[torch.Tensor]:
    """Sample one response per query (1-D token tensors in, 1-D token tensors out) in one left-padded batch.

    Each response stops after its first end-of-sequence token (kept: ending is an action too).
    """
    pad_id = pad_id_for(tokenizer)
    device = next(model.parameters()).device
    input_ids, attention_mask = left_pad(queries, pad_id)
    generation_kwargs.setdefault("pad_token_id", pad_id)
    out = model.generate(input_ids=input_ids.to(device), attention_mask=attention_mask.to(device),
                         position_ids=position_ids_from_mask(attention_mask).to(device), **generation_kwargs)
    responses = []
    for row in out[:, input_ids.shape[1]:].cpu():
        ends = (row == tokenizer.eos_token_id).nonzero()
        responses.append(row[: int(ends[0]) + 1] if len(ends) else row)
    return responses


@torch.no_grad()
def response_logprobs(model, queries: list[torch.Tensor], responses: list[torch.Tensor],
                      pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-token ``log p(y_t | query, y_<t)`` of each response under ``model``.

    Returns ``(logprobs, mask)``, both ``(B, T-1)``; the mask marks the response tokens. Used to measure
    the KL to the reference and fluency (the reference model's log-prob of the policy's responses).
    """
    device = next(model.parameters()).device
    input_ids, attention_mask = left_pad([torch.cat([q.cpu(), r.cpu()]) for q, r in zip(queries, responses)], pad_id)
    input_ids, attention_mask = input_ids.to(device), attention_mask.to(device)
    logits = model(input_ids=input_ids, attention_mask=attention_mask,
                   position_ids=position_ids_from_mask(attention_mask)).logits
    mask = response_mask([len(r) for r in responses], input_ids.shape[1] - 1).to(device)
    return next_token_logprobs(logits, input_ids), mask


# --------------------------------------------------------------------------------------------------
# 9. Config and trainer
# --------------------------------------------------------------------------------------------------
@dataclass
class PPOConfig:
    """Settings of :class:`PPOTrainer`.

    The course ran TRL 0.x, whose ``PPOConfig`` and ``PPOTrainer`` this class follows. Its defaults are kept
    (``ppo_epochs``, ``init_kl_coef``, the adaptive KL target and horizon, ``gamma``, ``lam``, both clip ranges,
    ``vf_coef``, and no weight decay: TRL optimised with plain ``Adam``) except where this list says why not:

    * ``mini_batch_size`` 16, not TRL's 1: one rollout per gradient step means ``4·B`` optimizer steps per
      PPO step, each on one noisy sample, which on a CPU is most of a lab's time.
    * ``max_grad_norm`` 1.0, not TRL's ``None``: a guard against one minibatch with a large advantage moving
      the policy far at the tiny profile's large learning rate. ``None`` gives TRL's behaviour.
    * ``kl_target`` is what TRL called ``target`` (6 nats), the adaptive controller's aim. TRL's ``target_kl``
      was something else: with ``early_stopping=True`` it ended a step's epochs once the KL passed
      ``1.5 · target_kl``. This trainer has no early stopping, so it has no field of that name.
    * the batch size is not a setting: a step trains on as many rollouts as it is given.
    """

    learning_rate: float = 1.41e-5
    """Learning rate of the policy and its value head (the course's value)."""
    mini_batch_size: int = 16
    """Rollouts per gradient step; a batch of ``B`` rollouts gives ``ceil(B / mini_batch_size)`` steps per epoch."""
    ppo_epochs: int = 4
    """Passes over each batch of rollouts. More reuse of the samples, but the policy drifts from the one
    that generated them (the clipping keeps that in check)."""
    init_kl_coef: float = 0.2
    """β: weight of the per-token KL penalty to the reference model. 0 turns the penalty off."""
    adaptive_kl: bool = True
    """Adapt β towards ``kl_target`` (True) or keep it fixed (False)."""
    kl_target: float = 6.0
    """The KL (nats per response) the adaptive controller aims for (TRL's ``target``)."""
    kl_horizon: int = 10000
    """How slowly the adaptive controller moves β (in samples)."""
    gamma: float = 1.0
    """Discount of future rewards within a response."""
    lam: float = 0.95
    """GAE λ: trades the bias of the value estimate (0) against the variance of the returns (1)."""
    cliprange: float = 0.2
    """ε of the clipped policy objective."""
    cliprange_value: float = 0.2
    """ε_v of the clipped value loss."""
    vf_coef: float = 0.1
    """Weight of the value loss in the total loss."""
    whiten_advantages: bool = True
    """Normalise the advantages of each batch to mean 0 and variance 1 (steadier step sizes)."""
    max_grad_norm: float | None = 1.0
    """Clip the gradient norm to this value (None: no clipping, as in TRL)."""
    weight_decay: float = 0.0
    """AdamW's decoupled weight decay, applied only to the policy's weight matrices and embeddings; never to
    biases, normalisation layers or the value head, whose scale is what they learn. 0 is TRL's plain Adam."""
    total_steps: int | None = None
    """Number of :meth:`PPOTrainer.step` calls planned; sets the length of the progress bar."""
    show_progress: bool = True
    """Show a progress bar (``tqdm.auto``) with the mean reward and KL of each step."""
    seed: int = 0
    """Seed of the minibatch shuffling."""

    def __post_init__(self):
        for name in ("learning_rate", "mini_batch_size", "ppo_epochs", "kl_target", "kl_horizon", "cliprange",
                     "cliprange_value"):
            if not getattr(self, name) > 0:
                raise ValueError(f"PPOConfig.{name} must be > 0, got {getattr(self, name)!r}.")
        for name in ("init_kl_coef", "weight_decay"):
            if getattr(self, name) < 0:
                raise ValueError(f"PPOConfig.{name} must be >= 0, got {getattr(self, name)!r}.")


def optimizer_groups(model: nn.Module, value_head: nn.Module, weight_decay: float) -> list[dict]:
    """AdamW parameter groups: weight decay on the policy's matrices (``ndim >= 2``), none on the rest.

    Biases and the gains of normalisation layers are vectors (``ndim == 1``); decaying them pulls a layer's
    scale and offset towards 0 rather than regularising what it computes. The value head is trained from
    scratch during PPO and predicts returns on the reward's scale, so it is never decayed either.
    """
    policy = [p for p in model.parameters() if p.requires_grad]
    return [{"params": [p for p in policy if p.ndim >= 2], "weight_decay": weight_decay},
            {"params": [p for p in policy if p.ndim < 2] + list(value_head.parameters()), "weight_decay": 0.0}]


class ValueHead(nn.Module):
    """A linear layer from the policy's last hidden state to a scalar value: ``(B, N, H) -> (B, N)``."""

    def __init__(self, hidden_size: int):
        super().__init__()
        self.linear = nn.Linear(hidden_size, 1)
        # start near V = 0 so the first advantages are just the (whitened) rewards
        nn.init.normal_(self.linear.weight, std=1.0 / math.sqrt(hidden_size) * 0.1)
        nn.init.zeros_(self.linear.bias)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.linear(hidden_states.float()).squeeze(-1)


class RewardError(ValueError):
    """The rewards handed to :meth:`PPOTrainer.step` do not fit the batch (wrong length, NaN, inf)."""


class PPOTrainer:
    """PPO with a value head and a KL penalty to a frozen reference model, for causal LMs.

    ``trainer = PPOTrainer(config, model, tokenizer, ref_model=None)``; then per batch of rollouts::

        responses = trainer.generate(queries, **generation_kwargs)   # lists of 1-D token tensors
        stats = trainer.step(queries, responses, rewards)            # rewards: one number per response

    ``ref_model=None`` freezes a copy of ``model`` as the reference. The value head lives on
    ``trainer.value_head``; ``trainer.history`` keeps the statistics of every step.
    """

    def __init__(self, config: PPOConfig, model, tokenizer, ref_model=None):
        self.config = config
        self.model = model
        self.tokenizer = tokenizer
        self.device = next(model.parameters()).device
        # dropout would make the "old" log-probs of a batch differ from the new ones before any update
        self.model.eval()
        self.ref_model = copy.deepcopy(model) if ref_model is None else ref_model
        self.ref_model.eval().requires_grad_(False)
        self.value_head = ValueHead(model.config.hidden_size).to(self.device)
        self.optimizer = torch.optim.AdamW(optimizer_groups(model, self.value_head, config.weight_decay),
                                           lr=config.learning_rate)
        if config.adaptive_kl and config.init_kl_coef > 0:
            self.kl_ctl = AdaptiveKLController(config.init_kl_coef, config.kl_target, config.kl_horizon)
        else:
            self.kl_ctl = FixedKLController(config.init_kl_coef)
        self.pad_id = pad_id_for(tokenizer)
        self.step_count = 0
        self.history: list[dict] = []
        self._generator = torch.Generator().manual_seed(config.seed)
        self._bar = None

    # ---- rollouts ------------------------------------------------------------------------------
    def generate(self, queries: list[torch.Tensor], **generation_kwargs) -> list[torch.Tensor]:
        """Sample one response per query with the policy (see :func:`generate_responses`)."""
        return generate_responses(self.model, self.tokenizer, queries, **generation_kwargs)

    def batch_forward(self, model, input_ids: torch.Tensor, attention_mask: torch.Tensor, with_values: bool = False,
                      entropy_mask: torch.Tensor | None = None
                      ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        """Log-probs of the tokens in ``input_ids`` under ``model``, with values and entropies.

        ``input_ids``, ``attention_mask``: ``(B, T)`` left-padded. Returns ``(logprobs, values, entropy)``,
        each ``(B, T-1)``; ``values`` is None unless ``with_values`` (value head on the last hidden state).
        ``entropy`` is None unless an ``entropy_mask`` ``(B, T-1)`` says where it is wanted (the response
        tokens): it is computed there only, and is 0 elsewhere, since the entropy of the distribution that
        predicts a query token or a pad says nothing about the policy.
        """
        out = model(input_ids=input_ids, attention_mask=attention_mask,
                    position_ids=position_ids_from_mask(attention_mask), output_hidden_states=with_values)
        logits = out.logits[:, :-1]
        logprobs = next_token_logprobs(out.logits, input_ids)
        values = self.value_head(out.hidden_states[-1][:, :-1]) if with_values else None
        entropy = None
        if entropy_mask is not None:
            entropy_mask = entropy_mask.bool()
            entropy = torch.zeros(logprobs.shape, device=logprobs.device)
            entropy[entropy_mask] = entropy_from_logits(logits.detach()[entropy_mask])
        return logprobs, values, entropy

    # ---- one PPO step --------------------------------------------------------------------------
    def _check_inputs(self, queries, responses, rewards) -> torch.Tensor:
        where = f"PPOTrainer.step (PPO step {self.step_count + 1})"
        if not isinstance(queries, (list, tuple)) or not isinstance(responses, (list, tuple)):
            raise TypeError(f"{where}: queries and responses must be lists of 1-D token tensors, got "
                            f"{type(queries).__name__} and {type(responses).__name__}.")
        if len(queries) != len(responses) or not queries:
            raise ValueError(f"{where}: got {len(queries)} queries and {len(responses)} responses; "
                             "pass one response per query (and at least one).")
        for i, r in enumerate(responses):
            if r.ndim != 1 or len(r) == 0:
                raise ValueError(f"{where}: response {i} must be a non-empty 1-D token tensor, got shape "
                                 f"{tuple(r.shape)}.")
        if isinstance(rewards, torch.Tensor):
            rewards = list(rewards.reshape(-1)) if rewards.ndim <= 1 else rewards
        if not isinstance(rewards, (list, tuple)):
            raise RewardError(f"{where}: rewards must be a list with one number per response, got "
                              f"{type(rewards).__name__}.")
        if len(rewards) != len(responses):
            raise RewardError(f"{where}: the reward function returned {len(rewards)} rewards for "
                              f"{len(responses)} responses; it must return exactly one number per response "
                              "(check how pipe_outputs is turned into rewards).")
        try:
            scores = torch.tensor([float(r) for r in rewards], dtype=torch.float32)
        except (TypeError, ValueError) as err:
            raise RewardError(f"{where}: every reward must be a single number ({err}).") from err
        bad = [i for i, s in enumerate(scores.tolist()) if not math.isfinite(s)]
        if bad:
            i = bad[0]
            text = self.tokenizer.decode(responses[i], skip_special_tokens=True)
            raise RewardError(f"{where}: {len(bad)} reward(s) are not finite numbers, e.g. reward {i} = "
                              f"{scores[i].item()} for the response {text!r}. Fix the reward function "
                              "before training on it (a NaN reward would make every weight NaN).")
        return scores

    def step(self, queries: list[torch.Tensor], responses: list[torch.Tensor], rewards) -> dict:
        """One PPO step on a batch of rollouts; returns its statistics (also appended to ``history``).

        ``queries``, ``responses``: ``B`` 1-D token tensors each; ``rewards``: ``B`` numbers (a list of
        floats or 0-d tensors, or a ``(B,)`` tensor), the reward model's score of each response.
        """
        cfg = self.config
        scores = self._check_inputs(queries, responses, rewards).to(self.device)
        batch = len(queries)
        input_ids, attention_mask = left_pad([torch.cat([q.cpu(), r.cpu()]) for q, r in zip(queries, responses)],
                                             self.pad_id)
        input_ids, attention_mask = input_ids.to(self.device), attention_mask.to(self.device)
        mask = response_mask([len(r) for r in responses], input_ids.shape[1] - 1).to(self.device)

        # (a) score the rollouts as they were generated: old log-probs, values, reference log-probs
        with torch.no_grad():
            old_logprobs, old_values, _ = self.batch_forward(self.model, input_ids, attention_mask, with_values=True)
            ref_logprobs, _, _ = self.batch_forward(self.ref_model, input_ids, attention_mask)
            kl_coef = self.kl_ctl.value
            token_rewards, kl = kl_penalized_rewards(scores, old_logprobs, ref_logprobs, mask, kl_coef)
            advantages, returns = compute_gae(token_rewards, old_values, mask, cfg.gamma, cfg.lam)
            if cfg.whiten_advantages:
                advantages = masked_whiten(advantages, mask)

        # (b) several epochs of minibatch updates on the same rollouts
        logs: dict[str, list[float]] = {k: [] for k in ("policy_loss", "value_loss", "clipfrac", "value_clipfrac",
                                                        "approx_kl", "entropy")}
        for epoch in range(cfg.ppo_epochs):
            order = torch.randperm(batch, generator=self._generator).to(self.device)
            for start in range(0, batch, cfg.mini_batch_size):
                idx = order[start:start + cfg.mini_batch_size]
                m = mask[idx]
                logprobs, values, entropy = self.batch_forward(self.model, input_ids[idx], attention_mask[idx],
                                                               with_values=True, entropy_mask=m)
                pg_loss, clipfrac = clipped_policy_loss(logprobs, old_logprobs[idx], advantages[idx], m, cfg.cliprange)
                vf_loss, vf_clipfrac = clipped_value_loss(values, old_values[idx], returns[idx], m,
                                                          cfg.cliprange_value)
                loss = pg_loss + cfg.vf_coef * vf_loss
                self._check_finite(loss, pg_loss, vf_loss, epoch, start)
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                if cfg.max_grad_norm is not None:
                    torch.nn.utils.clip_grad_norm_(list(self.model.parameters()) + list(self.value_head.parameters()),
                                                   cfg.max_grad_norm)
                self.optimizer.step()
                with torch.no_grad():
                    logs["policy_loss"].append(pg_loss.item())
                    logs["value_loss"].append(vf_loss.item())
                    logs["clipfrac"].append(clipfrac.item())
                    logs["value_clipfrac"].append(vf_clipfrac.item())
                    # 0.5·(log ρ)² is a low-variance estimate of KL(π_old ‖ π) over the minibatch
                    logs["approx_kl"].append(masked_mean(0.5 * (logprobs - old_logprobs[idx]) ** 2, m).item())
                    logs["entropy"].append(masked_mean(entropy, m).item())

        # (c) adapt β to the KL the rollouts showed, and log
        mean_kl = kl.sum(1).mean().item()
        self.kl_ctl.update(mean_kl, batch)
        self.step_count += 1
        stats = {
            "step": self.step_count,
            "reward": scores.mean().item(),
            "reward_std": scores.std().item() if batch > 1 else 0.0,
            "kl": mean_kl,
            "kl_coef": kl_coef,
            "non_score_reward": (-kl_coef * kl.sum(1)).mean().item(),
            "response_length": float(sum(len(r) for r in responses)) / batch,
            "return_mean": masked_mean(returns, mask).item(),
            **{k: sum(v) / len(v) for k, v in logs.items()},
        }
        self.history.append(stats)
        self._progress(stats)
        return stats

    def _check_finite(self, loss, pg_loss, vf_loss, epoch: int, start: int) -> None:
        """Stop before a NaN or infinite loss reaches the weights, naming where it happened and what to do."""
        if bool(torch.isfinite(loss)):
            return
        from .training import NonFiniteLossError

        cfg = self.config
        dtype = next(self.model.parameters()).dtype
        raise NonFiniteLossError(
            f"PPOTrainer.step (PPO step {self.step_count + 1}, epoch {epoch + 1} of {cfg.ppo_epochs}, minibatch "
            f"{start // cfg.mini_batch_size + 1}): the loss is {loss.item()} (policy loss {pg_loss.item()}, value "
            f"loss {vf_loss.item()}); this minibatch changed no weight. "
            + ("The policy's weights are in " + str(dtype).removeprefix("torch.") + ": load it in float32 (PPO's "
               "probability ratios need the precision) and run again. " if dtype != torch.float32 else "")
            + f"Lower the learning rate (now {cfg.learning_rate:g}) or the KL coefficient, and check the rewards "
              "for outliers.")

    def _progress(self, stats: dict) -> None:
        if not self.config.show_progress:
            return
        if self._bar is None:
            from tqdm.auto import tqdm

            self._bar = tqdm(total=self.config.total_steps, desc="PPO steps")
        self._bar.set_postfix(reward=f"{stats['reward']:.3f}", kl=f"{stats['kl']:.3f}", refresh=False)
        self._bar.update(1)
        if self.config.total_steps is not None and self.step_count >= self.config.total_steps:
            self._bar.close()


def review_request_split(seed: int, n_test_nouns: int) -> tuple[list[str], list[str]]:
    """Lab 04's tiny queries: lab 01's review request (``synthetic.review_request``) for every film noun, split so
    that the held-out requests name ``n_test_nouns`` nouns the training requests never name (seeded shuffle)."""
    from .synthetic import FILM_NOUNS, review_request

    if not 0 < n_test_nouns < len(FILM_NOUNS):
        raise ValueError(f"n_test_nouns must be between 1 and {len(FILM_NOUNS) - 1}, got {n_test_nouns}.")
    nouns = random.Random(seed).sample(FILM_NOUNS, len(FILM_NOUNS))
    return [review_request(n) for n in nouns[n_test_nouns:]], [review_request(n) for n in nouns[:n_test_nouns]]
