"""labhelpers.ppo: GAE, clipping, KL penalty, padding and positions, and the effect of one PPO step."""

from __future__ import annotations

import math
import random
from types import SimpleNamespace

import pytest
import torch

from labhelpers import ppo


def tiny_lm(seed: int = 0, vocab: int = 40):
    """A random 2-layer GPT-2 (a few thousand parameters): fast, and GPT-2 needs explicit position_ids."""
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(seed)
    config = GPT2Config(vocab_size=vocab, n_embd=32, n_layer=2, n_head=2, n_positions=64, resid_pdrop=0.0,
                        embd_pdrop=0.0, attn_pdrop=0.0, bos_token_id=0, eos_token_id=0)
    return GPT2LMHeadModel(config).eval()


class TinyTokenizer:
    """Just what PPOTrainer reads from a tokenizer."""

    pad_token_id = None
    eos_token_id = 0

    def decode(self, ids, skip_special_tokens=False):
        return " ".join(f"t{int(i)}" for i in ids)


# --------------------------------------------------------------------------------------------------
# LengthSampler
# --------------------------------------------------------------------------------------------------
def test_length_sampler_covers_its_range_and_excludes_the_upper_bound():
    sampler = ppo.LengthSampler(2, 8, seed=0)
    draws = {sampler() for _ in range(500)}
    assert draws == set(range(2, 8))
    assert [ppo.LengthSampler(2, 8, seed=1)() for _ in range(20)] == [ppo.LengthSampler(2, 8, seed=1)() for _ in range(20)]
    with pytest.raises(ValueError, match="min_value < max_value"):
        ppo.LengthSampler(5, 5)


# --------------------------------------------------------------------------------------------------
# GAE against a plain reference
# --------------------------------------------------------------------------------------------------
def gae_reference(rewards: list[float], values: list[float], gamma: float, lam: float) -> list[float]:
    """A_t = Σ_l (γλ)^l δ_{t+l}, δ_t = r_t + γ V_{t+1} − V_t, V after the end = 0: written as the sum."""
    n = len(rewards)
    v_next = values[1:] + [0.0]
    deltas = [rewards[t] + gamma * v_next[t] - values[t] for t in range(n)]
    return [sum((gamma * lam) ** (k - t) * deltas[k] for k in range(t, n)) for t in range(n)]


@pytest.mark.parametrize("gamma,lam", [(1.0, 0.95), (0.9, 0.5), (1.0, 1.0), (0.99, 0.0)])
def test_gae_matches_the_sum_formula_on_hand_made_values(gamma, lam):
    # two rows, left-padded: row 0 has a 3-token response, row 1 a 5-token response
    rewards = torch.tensor([[9.0, 9.0, 0.1, -0.2, 1.0], [0.0, 0.5, -0.1, 0.0, 2.0]])
    values = torch.tensor([[7.0, 7.0, 0.3, 0.2, 0.6], [0.1, 0.4, -0.3, 0.8, 1.5]])
    mask = ppo.response_mask([3, 5], 5)
    adv, ret = ppo.compute_gae(rewards, values, mask, gamma, lam)
    for row, n in enumerate([3, 5]):
        want = gae_reference(rewards[row, -n:].tolist(), values[row, -n:].tolist(), gamma, lam)
        assert adv[row, -n:].tolist() == pytest.approx(want, abs=1e-6)
        assert ret[row, -n:].tolist() == pytest.approx([a + v for a, v in zip(want, values[row, -n:].tolist())],
                                                      abs=1e-6)
    # the padding columns (with junk 9.0 / 7.0 in them) neither leak into the response nor get an advantage
    assert adv[0, :2].tolist() == [0.0, 0.0] and ret[0, :2].tolist() == [0.0, 0.0]


def test_gae_with_lambda_one_is_the_return_minus_the_value():
    rewards = torch.tensor([[0.0, 0.0, 1.0]])
    values = torch.tensor([[0.2, 0.5, 0.9]])
    adv, ret = ppo.compute_gae(rewards, values, torch.ones(1, 3, dtype=torch.bool), gamma=1.0, lam=1.0)
    assert adv.tolist()[0] == pytest.approx([0.8, 0.5, 0.1])
    assert ret.tolist()[0] == pytest.approx([1.0, 1.0, 1.0])


def test_gae_handles_right_padding_too():
    # a span followed by masked columns: the last real token must see V_next = 0
    rewards = torch.tensor([[0.5, 1.0, 5.0, 5.0]])
    values = torch.tensor([[0.1, 0.2, 3.0, 3.0]])
    mask = torch.tensor([[True, True, False, False]])
    adv, _ = ppo.compute_gae(rewards, values, mask, gamma=0.9, lam=0.8)
    assert adv[0, :2].tolist() == pytest.approx(gae_reference([0.5, 1.0], [0.1, 0.2], 0.9, 0.8))


# --------------------------------------------------------------------------------------------------
# Clipping
# --------------------------------------------------------------------------------------------------
def _policy_loss_and_grad(ratio: float, advantage: float, eps: float = 0.2):
    logprob = torch.tensor([[math.log(ratio)]], requires_grad=True)
    loss, clipfrac = ppo.clipped_policy_loss(logprob, torch.zeros(1, 1), torch.tensor([[advantage]]),
                                             torch.ones(1, 1, dtype=torch.bool), eps)
    loss.backward()
    return loss.item(), logprob.grad.item(), clipfrac.item()


@pytest.mark.parametrize("ratio,advantage,clipped", [
    (1.5, 1.0, True),    # already pushed up past 1+ε: no more push
    (0.5, 1.0, False),   # moved the wrong way: the unclipped (larger) loss keeps pulling it back
    (0.5, -1.0, True),   # pushed down past 1−ε: no more push
    (1.5, -1.0, False),  # moved the wrong way: keep the gradient
    (1.1, 1.0, False),   # inside the trust region: plain ratio × advantage
])
def test_clipped_policy_loss_stops_the_gradient_only_past_the_clip_in_the_advantage_direction(ratio, advantage,
                                                                                             clipped):
    loss, grad, clipfrac = _policy_loss_and_grad(ratio, advantage)
    if clipped:
        bound = 1.2 if advantage > 0 else 0.8
        assert loss == pytest.approx(-advantage * bound)
        assert grad == 0.0 and clipfrac == 1.0
    else:
        assert loss == pytest.approx(-advantage * ratio)
        # d(−A·ρ)/d log π = −A·ρ
        assert grad == pytest.approx(-advantage * ratio) and clipfrac == 0.0


def test_clipped_value_loss_takes_the_worse_of_clipped_and_unclipped():
    old = torch.tensor([[0.0, 0.0]])
    new = torch.tensor([[1.0, 0.1]])
    returns = torch.tensor([[2.0, 0.0]])
    loss, clipfrac = ppo.clipped_value_loss(new, old, returns, torch.ones(1, 2, dtype=torch.bool), 0.2)
    # token 0: unclipped (1−2)² = 1, clipped (0.2−2)² = 3.24 -> 3.24; token 1: both 0.01
    assert loss.item() == pytest.approx(0.5 * (3.24 + 0.01) / 2)
    assert clipfrac.item() == pytest.approx(0.5)


# --------------------------------------------------------------------------------------------------
# KL penalty and controllers
# --------------------------------------------------------------------------------------------------
def test_kl_penalty_per_token_with_the_score_on_the_last_response_token():
    logprobs = torch.tensor([[-9.0, -1.0, -2.0, -0.5], [-1.0, -1.5, -0.2, -0.1]])
    ref = torch.tensor([[-9.0, -1.5, -1.0, -0.5], [-2.0, -1.0, -0.2, -0.4]])
    mask = ppo.response_mask([3, 4], 4)
    rewards, kl = ppo.kl_penalized_rewards(torch.tensor([1.0, -2.0]), logprobs, ref, mask, kl_coef=0.1)
    torch.testing.assert_close(kl, torch.tensor([[0.0, 0.5, -1.0, 0.0], [1.0, -0.5, 0.0, 0.3]]))
    torch.testing.assert_close(rewards, torch.tensor([[0.0, -0.05, 0.1, 1.0], [-0.1, 0.05, 0.0, -0.03 - 2.0]]))
    # summed over a response: score − β·KL
    assert rewards.sum(1).tolist() == pytest.approx([1.0 - 0.1 * -0.5, -2.0 - 0.1 * 0.8])
    no_penalty, _ = ppo.kl_penalized_rewards(torch.tensor([1.0, -2.0]), logprobs, ref, mask, kl_coef=0.0)
    torch.testing.assert_close(no_penalty, torch.tensor([[0, 0, 0, 1.0], [0, 0, 0, -2.0]]))


def test_adaptive_kl_controller_moves_towards_the_target_and_fixed_does_not():
    adaptive = ppo.AdaptiveKLController(0.2, target=6.0, horizon=1000)
    adaptive.update(current_kl=12.0, n_samples=100)  # error clipped to +0.2
    assert adaptive.value == pytest.approx(0.2 * (1 + 0.2 * 0.1))
    adaptive.update(current_kl=3.0, n_samples=100)  # error −0.5 clipped to −0.2
    assert adaptive.value == pytest.approx(0.2 * 1.02 * 0.98)
    fixed = ppo.FixedKLController(0.2)
    fixed.update(100.0, 100)
    assert fixed.value == 0.2


# --------------------------------------------------------------------------------------------------
# Padding and positions
# --------------------------------------------------------------------------------------------------
def test_left_padded_batch_gives_the_same_logits_as_each_sequence_alone():
    model = tiny_lm()
    seqs = [torch.tensor([5, 6, 7, 8, 9, 10]), torch.tensor([11, 12]), torch.tensor([3, 4, 5, 6])]
    input_ids, attention_mask = ppo.left_pad(seqs, 0)
    assert attention_mask.tolist()[1] == [0, 0, 0, 0, 1, 1]
    position_ids = ppo.position_ids_from_mask(attention_mask)
    assert position_ids.tolist()[1][-2:] == [0, 1] and position_ids.tolist()[0] == list(range(6))
    with torch.no_grad():
        batched = model(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids).logits
        naive = model(input_ids=input_ids, attention_mask=attention_mask).logits  # GPT-2 numbers the columns
        for i, seq in enumerate(seqs):
            alone = model(input_ids=seq.unsqueeze(0)).logits[0]
            torch.testing.assert_close(batched[i, -len(seq):], alone, atol=1e-5, rtol=1e-5)
            if len(seq) < input_ids.shape[1]:  # the point of position_ids: without them the logits differ
                assert not torch.allclose(naive[i, -len(seq):], alone, atol=1e-3)


def test_trainer_log_probs_of_a_padded_batch_match_unpadded_ones():
    model = tiny_lm()
    trainer = ppo.PPOTrainer(ppo.PPOConfig(show_progress=False), model, TinyTokenizer())
    queries = [torch.tensor([3, 4, 5, 6, 7]), torch.tensor([8])]
    responses = [torch.tensor([9, 10]), torch.tensor([11, 12, 13])]
    logprobs, mask = ppo.response_logprobs(model, queries, responses, pad_id=0)
    for i, (q, r) in enumerate(zip(queries, responses)):
        alone, _ = ppo.response_logprobs(model, [q], [r], pad_id=0)
        assert logprobs[i][mask[i]].tolist() == pytest.approx(alone[0, -len(r):].tolist(), abs=1e-5)
        ids = torch.cat([q, r]).unsqueeze(0)
        in_response = ppo.response_mask([len(r)], ids.shape[1] - 1)
        lp, values, entropy = trainer.batch_forward(model, ids, torch.ones_like(ids), with_values=True,
                                                    entropy_mask=in_response)
        assert lp[0, -len(r):].tolist() == pytest.approx(alone[0, -len(r):].tolist(), abs=1e-5)
        assert values.shape == entropy.shape == (1, ids.shape[1] - 1)
        # the entropy is computed on the response tokens only, and there it is the full distribution's
        logits = model(input_ids=ids).logits[0, :-1]
        want = -(logits.softmax(-1) * logits.log_softmax(-1)).sum(-1)
        assert entropy[0, -len(r):].tolist() == pytest.approx(want[-len(r):].tolist(), abs=1e-5)
        assert entropy[0, :-len(r)].abs().sum() == 0


def test_the_benchmarks_phase_timer_times_each_phase_and_changes_no_result(monkeypatch):
    """The trainer keeps no clock; the benchmarks time its phases from outside (``course.timing.PPOPhaseTimer``).

    On a clock that only the reference model's passes (100 s each) and the optimiser's steps (1 s each) advance, the
    scoring phase takes 100 s and the epochs one second per minibatch step: a swapped or double-counted phase shows,
    whatever the machine's speed. The wrapped trainer computes exactly what an unwrapped one does."""
    from labhelpers.course import timing

    clock = SimpleNamespace(now=0.0)
    monkeypatch.setattr(timing, "_now", lambda device=None: clock.now)
    config = ppo.PPOConfig(mini_batch_size=2, ppo_epochs=3, show_progress=False, seed=0)
    plain, timed = (ppo.PPOTrainer(config, tiny_lm(seed=1), TinyTokenizer()) for _ in range(2))
    timer = timing.PPOPhaseTimer(timed)
    real_forward, real_step = timed.ref_model.forward, timed.optimizer.step

    def forward_and_tick(*args, **kwargs):
        clock.now += 100.0
        return real_forward(*args, **kwargs)

    def step_and_tick(*args, **kwargs):
        clock.now += 1.0
        return real_step(*args, **kwargs)

    monkeypatch.setattr(timed.ref_model, "forward", forward_and_tick)
    monkeypatch.setattr(timed.optimizer, "step", step_and_tick)
    queries = [torch.tensor([5, 6, 7])] * 4
    batch = (queries, [torch.tensor([20, 21]), torch.tensor([30, 31])] * 2, [1.0, -1.0] * 2)
    for _ in range(2):
        assert timed.step(*batch) == plain.step(*batch)
    minibatch_steps = config.ppo_epochs * (len(queries) // config.mini_batch_size)
    assert timer.forward == [100.0, 100.0]
    assert timer.optimise == [float(minibatch_steps)] * 2
    assert all(torch.equal(a, b) for a, b in zip(timed.model.parameters(), plain.model.parameters()))
    assert not [key for key in plain.history[0] if key.startswith("time")], "the learner's trainer keeps no clock"


def test_generate_stops_each_response_after_its_first_eos():
    model = tiny_lm(seed=3)
    trainer = ppo.PPOTrainer(ppo.PPOConfig(show_progress=False), model, TinyTokenizer())
    torch.manual_seed(0)
    queries = [torch.tensor([1, 2, 3]), torch.tensor([4])] * 8
    responses = trainer.generate(queries, do_sample=True, top_k=0, top_p=1.0, max_new_tokens=6)
    assert len(responses) == 16 and all(1 <= len(r) <= 6 for r in responses)
    for r in responses:
        assert (r == 0).sum() <= 1 and (r[-1] == 0 or len(r) == 6)


# --------------------------------------------------------------------------------------------------
# One PPO step: positive reward -> more likely, negative -> less likely
# --------------------------------------------------------------------------------------------------
def test_a_ppo_step_raises_a_rewarded_response_and_lowers_a_punished_one():
    random.seed(0)
    model = tiny_lm(seed=1)
    tok = TinyTokenizer()
    config = ppo.PPOConfig(learning_rate=3e-3, mini_batch_size=4, ppo_epochs=4, init_kl_coef=0.05,
                           show_progress=False, seed=0)
    trainer = ppo.PPOTrainer(config, model, tok)
    query = torch.tensor([5, 6, 7])
    good, bad = torch.tensor([20, 21, 22, 23]), torch.tensor([30, 31, 32, 33])
    queries = [query] * 8
    responses = [good, bad] * 4
    rewards = [1.0, -1.0] * 4

    def logp(resp):
        lp, mask = ppo.response_logprobs(model, [query], [resp], pad_id=0)
        return lp[mask].sum().item()

    good_before, bad_before = logp(good), logp(bad)
    stats = trainer.step(queries, responses, rewards)
    assert logp(good) > good_before + 0.1
    assert logp(bad) < bad_before - 0.1
    # the reference model is frozen and unchanged
    ref_lp, mask = ppo.response_logprobs(trainer.ref_model, [query], [good], pad_id=0)
    assert ref_lp[mask].sum().item() == pytest.approx(good_before, abs=1e-5)
    assert stats["reward"] == pytest.approx(0.0)
    for key in ("reward", "kl", "kl_coef", "entropy", "clipfrac", "value_loss", "policy_loss"):
        assert math.isfinite(stats[key]), key
    assert 0.0 <= stats["clipfrac"] <= 1.0 and stats["entropy"] > 0
    assert trainer.history == [stats] and trainer.step_count == 1


def test_the_kl_statistic_is_the_summed_log_ratio_to_the_reference_once_the_policy_has_moved():
    model = tiny_lm(seed=1)
    config = ppo.PPOConfig(learning_rate=3e-3, mini_batch_size=4, init_kl_coef=0.05, show_progress=False)
    trainer = ppo.PPOTrainer(config, model, TinyTokenizer())
    queries, responses = [torch.tensor([5, 6, 7]), torch.tensor([8, 9])] * 4, [torch.tensor([20, 21, 22])] * 8
    trainer.step(queries, responses, [1.0, -1.0] * 4)
    logprobs, mask = ppo.response_logprobs(model, queries, responses, pad_id=0)
    ref_logprobs, _ = ppo.response_logprobs(trainer.ref_model, queries, responses, pad_id=0)
    want = torch.where(mask, logprobs - ref_logprobs, 0.0).sum(1).mean().item()
    second = trainer.step(queries, responses, [1.0, -1.0] * 4)
    assert abs(want) > 1e-3, "the first step moved the policy away from the reference"
    assert second["kl"] == pytest.approx(want, rel=1e-4, abs=1e-6)
    assert second["non_score_reward"] == pytest.approx(-second["kl_coef"] * want, rel=1e-4, abs=1e-6)


def test_weight_decay_reaches_only_the_policys_matrices():
    model = tiny_lm()
    trainer = ppo.PPOTrainer(ppo.PPOConfig(weight_decay=0.1, show_progress=False), model, TinyTokenizer())
    decayed, plain = trainer.optimizer.param_groups
    assert decayed["weight_decay"] == 0.1 and plain["weight_decay"] == 0.0
    assert all(p.ndim == 2 for p in decayed["params"])
    layer_norm = model.transformer.ln_f
    head = trainer.value_head.linear
    for vector in (layer_norm.weight, layer_norm.bias, head.weight, head.bias, model.transformer.h[0].attn.c_attn.bias):
        assert any(vector is p for p in plain["params"]) and not any(vector is p for p in decayed["params"])
    assert any(model.transformer.h[0].attn.c_attn.weight is p for p in decayed["params"])
    n_trained = sum(p.numel() for p in model.parameters()) + sum(p.numel() for p in trainer.value_head.parameters())
    assert sum(p.numel() for g in (decayed, plain) for p in g["params"]) == n_trained, "every parameter is trained"
    assert ppo.PPOConfig().weight_decay == 0.0, "the course's TRL optimised with plain Adam"


def test_kl_penalty_holds_the_policy_closer_to_the_reference():
    """Same rollouts and rewards, a few steps: with a large β both responses move much less."""
    query, good, bad = torch.tensor([5, 6, 7]), torch.tensor([20, 21, 22]), torch.tensor([30, 31, 32])
    drift = {}
    for beta in (0.0, 2.0):
        model = tiny_lm(seed=1)
        trainer = ppo.PPOTrainer(ppo.PPOConfig(learning_rate=3e-3, mini_batch_size=4, init_kl_coef=beta,
                                               adaptive_kl=False, show_progress=False), model, TinyTokenizer())
        for _ in range(3):
            trainer.step([query] * 8, [good, bad] * 4, [1.0, -1.0] * 4)
        drift[beta] = 0.0
        for resp in (good, bad):
            lp, mask = ppo.response_logprobs(model, [query], [resp], pad_id=0)
            ref, _ = ppo.response_logprobs(trainer.ref_model, [query], [resp], pad_id=0)
            drift[beta] += (lp - ref)[mask].sum().abs().item()
    assert drift[0.0] > 1.0 and drift[2.0] < 0.7 * drift[0.0], drift


# --------------------------------------------------------------------------------------------------
# Bad rewards are caught with a message that names the step
# --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("rewards,match", [
    ([1.0, float("nan")], r"PPO step 1\).*not finite.*reward 1 = nan"),
    ([1.0, float("inf")], r"PPO step 1\).*not finite"),
    ([1.0], r"PPO step 1\).*returned 1 rewards for 2 responses"),
    ([1.0, 2.0, 3.0], r"returned 3 rewards for 2 responses"),
    ([[{"label": "POSITIVE", "score": 1.0}], [{"label": "POSITIVE", "score": 1.0}]], r"single number"),
])
def test_bad_rewards_raise_a_clear_error_naming_the_step(rewards, match):
    model = tiny_lm()
    trainer = ppo.PPOTrainer(ppo.PPOConfig(show_progress=False), model, TinyTokenizer())
    before = [p.clone() for p in model.parameters()]
    with pytest.raises(ppo.RewardError, match=match):
        trainer.step([torch.tensor([1, 2])] * 2, [torch.tensor([3]), torch.tensor([4, 5])], rewards)
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters())), "no update on bad rewards"
    assert trainer.step_count == 0


def test_the_error_names_the_step_it_happened_in():
    model = tiny_lm()
    trainer = ppo.PPOTrainer(ppo.PPOConfig(show_progress=False), model, TinyTokenizer())
    queries, responses = [torch.tensor([1, 2])] * 2, [torch.tensor([3]), torch.tensor([4, 5])]
    trainer.step(queries, responses, torch.tensor([0.5, -0.5]))  # a (B,) tensor is fine
    with pytest.raises(ppo.RewardError, match=r"PPO step 2\)"):
        trainer.step(queries, responses, [0.5, float("nan")])


def test_mismatched_queries_and_empty_responses_are_rejected():
    trainer = ppo.PPOTrainer(ppo.PPOConfig(show_progress=False), tiny_lm(), TinyTokenizer())
    with pytest.raises(ValueError, match="2 queries and 1 responses"):
        trainer.step([torch.tensor([1])] * 2, [torch.tensor([2])], [1.0])
    with pytest.raises(ValueError, match="response 0 must be a non-empty"):
        trainer.step([torch.tensor([1])], [torch.tensor([], dtype=torch.long)], [1.0])


def test_config_rejects_nonsense():
    with pytest.raises(ValueError, match="mini_batch_size"):
        ppo.PPOConfig(mini_batch_size=0)
    with pytest.raises(ValueError, match="init_kl_coef"):
        ppo.PPOConfig(init_kl_coef=-1.0)
    with pytest.raises(ValueError, match="weight_decay"):
        ppo.PPOConfig(weight_decay=-0.1)
    with pytest.raises(ValueError, match="kl_target"):
        ppo.PPOConfig(kl_target=0.0)
    with pytest.raises(TypeError, match="target_kl"):  # renamed: TRL used that name for early stopping
        ppo.PPOConfig(target_kl=6.0)


def test_review_request_split_holds_out_whole_nouns_seeded():
    from labhelpers.synthetic import FILM_NOUNS, review_request

    train, test = ppo.review_request_split(42, 3)
    assert len(test) == 3 and len(train) == len(FILM_NOUNS) - 3
    assert sorted(train + test) == sorted(review_request(n) for n in FILM_NOUNS)
    nouns = lambda requests: {r.split("the ")[-1].rstrip(".") for r in requests}  # noqa: E731
    assert not nouns(train) & nouns(test), "a held-out noun is never named by a training request"
    assert ppo.review_request_split(42, 3) == (train, test) and ppo.review_request_split(0, 3) != (train, test)
    with pytest.raises(ValueError, match="n_test_nouns"):
        ppo.review_request_split(42, 0)
