"""Self-check questions: each one is a check named ``quiz_<name>`` that the grader scores like any other.

A question's text and its choices stand in the notebook's markdown; the answer cell sets one variable and
calls :func:`check`::

    ANSWER_TIE_LOSS = None  # a number
    ### BEGIN SOLUTION
    ANSWER_TIE_LOSS = 0.693
    ### END SOLUTION
    quiz.check("02_tie_loss", ANSWER_TIE_LOSS)

The right answer and the explanation live here, in :data:`QUESTIONS`, so that the learner does not read them
before answering; the explanation is shown once an answer is given. The student version (``labhelpers
student``) turns the answer lines into ``ANSWER_... = None``: an unanswered question is recorded as a failed
check and the notebook runs on. A question about the lab's own run ("predict before you run") passes the
measured answer as ``correct=`` and the figures the explanation quotes as keyword arguments.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from numbers import Real
from typing import Any

from .records import record_check


@dataclass(frozen=True)
class Question:
    """One self-check question: multiple choice when ``choices`` is set, else a number within ``tolerance``.

    ``answer`` is ``None`` for a question whose right answer the lab measures (``check(..., correct=...)``).
    ``explanation`` may hold ``{placeholders}`` for figures of the run, filled from ``check``'s keywords.
    """

    explanation: str
    answer: str | float | None = None
    choices: str = ""
    tolerance: float = 0.0


QUESTIONS: dict[str, Question] = {
    # ---- lab 00: the course as one pipeline ----
    "00_reward_during_training": Question(
        choices="abcd", answer="c",
        explanation="PPO (lab 04) samples its own answers while it trains, so something must score every "
                    "sample on the spot: a reward model. DPO (lab 03) never samples during training and needs "
                    "no reward model; it reads the preferences directly. SFT (lab 01) copies demonstrations."),
    "00_dpo_models": Question(
        answer=2, tolerance=0,
        explanation="Two: the policy being trained and a frozen reference copy of where it started (usually "
                    "the SFT model). DPO has no reward model at all; the reward is implicit in "
                    "β·log(π/π_ref). Lab 03 passes exactly these two models to DPOTrainer."),
    "00_sft_first": Question(
        choices="abc", answer="b",
        explanation="Preference methods improve answers the model already gives. PPO learns from the "
                    "model's own samples and DPO measures every change against the starting model, so both "
                    "need a model that already answers in the expected format: that is what SFT provides."),
    "00_tiny_profile": Question(
        choices="abc", answer="b",
        explanation="The tiny profile runs the same cells with half-million-parameter models on synthetic "
                    "data. The mechanisms and the effects are real (the checks assert them: losses fall, "
                    "masks match, rewards rise); the texts are toy texts, so judge quality in the full "
                    "profile."),
    # ---- lab 01: instruction tuning ----
    "01_trained_positions": Question(
        answer=8, tolerance=0,
        explanation="Every position up to and including the response template gets -100, so only the "
                    "30 − 22 = 8 answer tokens (the end-of-sequence token included) keep their ids as labels."),
    "01_ignore_index": Question(
        choices="abc", answer="b",
        explanation="A label of -100 is cross_entropy's default ignore_index: the position adds nothing to "
                    "the sum and is not counted in the mean. token_losses in section 4 counts response and "
                    "prompt tokens apart with the same masks."),
    "01_self_instruct": Question(
        choices="abc", answer="b",
        explanation="CodeAlpaca follows Stanford Alpaca's Self-Instruct recipe: an OpenAI model "
                    "(text-davinci-003) wrote the instructions and the answers from a few seed tasks. Nobody "
                    "checked each answer, so some are wrong: a model can copy their mistakes too."),
    "01_predict_prompt_loss": Question(
        choices="abc",
        explanation="This run: prompt loss {masked:.2f} nats/token with masking, {unmasked:.2f} without. "
                    "Only the unmasked run is trained on the prompt tokens, so only it learns to predict them; "
                    "the masked run never receives a gradient from them."),
    # ---- lab 02: reward modeling ----
    "02_tie_loss": Question(
        answer=math.log(2), tolerance=0.01,
        explanation="With r_c = r_r the loss is −log σ(0) = −log ½ = log 2 ≈ 0.693 nats: the dotted line of "
                    "the loss plot. A reward model that cannot tell two answers apart sits there."),
    "02_reward_offset": Question(
        choices="abc", answer="c",
        explanation="The Bradley–Terry loss depends only on r_c − r_r, and the constant cancels there. That "
                    "is why a reward's offset means nothing, and why lab 04 compares rewards, not their level."),
    "02_what_it_reads": Question(
        choices="abc", answer="b",
        explanation="A reward model reads the prompt and the response together, as one text, and returns one "
                    "number read at the last token (num_labels=1). It writes no response: the policy does."),
    "02_inner_eos": Question(
        choices="abc", answer="b",
        explanation="The old rule reads the token before the first pad, and with pad = eos that is the inner "
                    "eos: every word after it is invisible to the reward (the check pad_eos_pitfall_shown)."),
    # ---- lab 03: DPO ----
    "03_models": Question(
        answer=2, tolerance=0,
        explanation="DPOTrainer gets model= (the policy) and ref_model= (its frozen copy): two causal "
                    "language models, no reward model and no encoder. With precompute_ref_log_probs the "
                    "reference even runs only once, before training."),
    "03_loss_at_start": Question(
        answer=math.log(2), tolerance=0.01,
        explanation="At the start π = π_ref, every margin is 0 and the loss is −log σ(0) = log 2 ≈ 0.693. "
                    "Without the log, the quantity −σ(0) would be −0.5: a negative 'loss' that is not a "
                    "negative log-likelihood. This run measured {start_loss:.4f}."),
    "03_z_cancels": Question(
        choices="abc", answer="b",
        explanation="Z(x) sums over every possible answer but depends only on the prompt, so it drops out of "
                    "r(x, y_w) − r(x, y_l), and Bradley–Terry only needs that difference."),
    "03_displacement": Question(
        choices="abc", answer="b",
        explanation="The loss sees only the margin. Both log-probabilities may fall as long as the rejected "
                    "one falls faster; this run moved the chosen answers' summed log-prob by {delta:+.2f}."),
    # ---- lab 04: PPO ----
    "04_own_samples": Question(
        choices="abc", answer="b",
        explanation="Nowhere, in expectation: E[∇ log π(a)] = Σ ∇π(a) = ∇1 = 0, so raising the likelihood of whatever "
                    "the policy itself sampled changes nothing on average (this run's mean over many samples: "
                    "{mle_norm:.4f}, against {pg_norm:.4f} for the reward-weighted update). The reward weights give "
                    "the update its direction."),
    "04_advantage_sign": Question(
        choices="abc", answer="b",
        explanation="The advantage is 0.3 − 0.5 = −0.2 < 0, so the update lowers the log-probability of that "
                    "response, although its reward is positive: the baseline gives rewards their sign."),
    "04_clipped_gradient": Question(
        answer=0.0, tolerance=1e-9,
        explanation="With A > 0 and ρ = 1.5 > 1 + ε the min picks the clipped term (1.2·A), which does not "
                    "depend on ρ: the gradient is 0 and this token stops moving."),
    "04_predict_beta0": Question(
        choices="abc",
        explanation="This run: held-out KL {kl_beta:.2f} nats with β = {beta}, {kl_zero:.2f} with β = 0. "
                    "Nothing prices the drift any more, so the policy goes wherever the classifier pays."),
    "04_sampling": Question(
        choices="abc", answer="b",
        explanation="PPO's ratios and its KL estimate assume that the responses were drawn from π_θ itself. "
                    "A temperature other than 1, top-k or top-p would sample from another distribution and "
                    "bias both; lab 05 shows what each of those settings changes."),
    # ---- lab 05: generation ----
    "05_uniform_entropy": Question(
        answer=math.log(4), tolerance=0.01,
        explanation="H = −Σ ¼·log ¼ = log 4 ≈ 1.386 nats: the largest entropy four tokens can have. "
                    "Temperature → ∞ moves a distribution towards it, temperature → 0 towards 0."),
    "05_top_k_one": Question(
        choices="abc", answer="a",
        explanation="top_k = 1 keeps only the most likely token, so sampling can draw nothing else: it is "
                    "greedy decoding, exactly as temperature → 0 is (the check low_temperature_equals_greedy)."),
    "05_beam_vs_greedy": Question(
        choices="abc", answer="b",
        explanation="Usually, not always. Beam search keeps the best few prefixes at each step; the greedy "
                    "prefix can drop out of the beam and its continuation be lost, so on some prompts greedy's "
                    "sequence is the more likely one. Here beam − greedy = {gap:+.2f} nats."),
    "05_rl_temperature": Question(
        choices="abc", answer="c",
        explanation="During PPO the samples must come from the policy itself (lab 04 samples with "
                    "temperature 1, top_k=0, top_p=1): its probability ratios and KL assume it. A higher "
                    "temperature explores more but trains on a distribution the policy did not produce."),
    # ---- lab 06: scaling up ----
    "06_generation_prompt": Question(
        choices="abc", answer="b",
        explanation="It appends the marker that opens the assistant's turn (<|im_start|>assistant followed by a "
                    "newline for Qwen), so the prompt ends exactly where the trained answer began: the same rule as "
                    "lab 01's prompt ending with '### Response:'."),
    "06_lora_parameters": Question(
        answer=8 * (896 + 896), tolerance=0,
        explanation="A = r × d_in and B = d_out × r: r·(d_in + d_out) = 8 · (896 + 896) = 14,336 numbers, against "
                    "896 · 896 = 802,816 for the full matrix: 1.8%."),
    "06_full_ft_bytes": Question(
        answer=16, tolerance=0,
        explanation="fp32 weight 4 + gradient 4 + AdamW's two moments 4 + 4 = 16 bytes per parameter, before any "
                    "activations; mixed precision computes in 16 bits but keeps and updates these fp32 copies."),
}


def _normalise(name: str, question: Question, given: Any) -> Any:
    """The answer in the form it is compared in, or a ValueError that says what a valid answer looks like."""
    if question.choices:
        letter = str(given).strip().strip("()").strip().lower()
        if not isinstance(given, str) or letter not in question.choices:
            raise ValueError(f"Question {name!r} takes one of the letters {', '.join(question.choices)} "
                             f"(a string such as \"{question.choices[0]}\"), got {given!r}.")
        return letter
    if isinstance(given, bool) or not isinstance(given, Real):
        raise ValueError(f"Question {name!r} takes a number (such as 0.5), got {given!r}.")
    return float(given)


def check(name: str, answer: Any, *, correct: Any = None, **figures: Any) -> bool:
    """Score ``answer`` to question ``name``, record the check ``quiz_<name>``, show the explanation.

    ``answer=None`` (not answered yet) records a failed check without the explanation. ``correct`` overrides
    the stored answer (for a prediction about the lab's own run); ``figures`` fill the explanation's
    placeholders. Returns whether the answer is right.
    """
    if name not in QUESTIONS:
        raise ValueError(f"No self-check question {name!r}; the questions are {', '.join(QUESTIONS)}.")
    question = QUESTIONS[name]
    right = question.answer if correct is None else correct
    if right is None:
        raise ValueError(f"Question {name!r} is about this run: pass the measured answer as correct=.")
    right = _normalise(name, question, right)
    try:
        explanation = question.explanation.format(**figures)
    except KeyError as missing:
        raise ValueError(f"Question {name!r} explains itself with this run's figures: pass {missing} (and the "
                         "others its explanation names) as keyword arguments to quiz.check.") from None
    variable = "ANSWER_" + name.split("_", 1)[1].upper()
    if answer is None:
        record_check(f"quiz_{name}", False,
                     message=f"not answered yet: set {variable} (it is None) and run the cell again")
        return False
    given = _normalise(name, question, answer)
    passed = given == right if question.choices else abs(given - right) <= question.tolerance + 1e-12
    shown = f"({right})" if question.choices else f"{right:.4g}"
    record_check(f"quiz_{name}", passed, value=given, threshold=right,
                 message="right" if passed else f"not quite: the answer is {shown}")
    _show(explanation)
    return passed


def _show(text: str) -> None:
    try:
        from IPython import get_ipython
        from IPython.display import Markdown, display

        if get_ipython() is not None:
            display(Markdown(f"**Why:** {text}"))
            return
    except ImportError:
        pass
    print(f"Why: {text}")
