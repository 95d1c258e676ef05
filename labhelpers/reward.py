"""Reward-model helpers for Lab 02: the text format, cleaning pairs, scoring, win rate, where the reward is read.

The lab writes the lesson (the preprocessing, the loss, the trainer call, one ``score`` function) in the
notebook; this module keeps the parts that would distract and that the tests check:

* :func:`format_text` / :func:`encode` -- how a prompt and a response become one token sequence (the same in
  training, scoring and cleaning, so a length limit or a score means the same thing everywhere);
* :func:`clean_pairs` -- drop pairs that cannot teach a preference (identical, empty, over-long), counted;
* :func:`reward_scores` / :func:`pair_rewards` / :func:`win_rate` -- batched scoring with right padding;
* :func:`reward_token_index` / :func:`reward_at_positions` -- which token a sequence classifier reads the
  reward from, under today's rule and under the rule of older ``transformers`` releases;
* :func:`plot_reward_training` / :func:`plot_margins` -- the lab's figures.

Shapes: ``B`` is a batch of sequences, ``T`` their padded length, ``N`` a number of texts or pairs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import torch

from .formatting import DIALOGUE_TEMPLATE, dialogue_text
from .sequences import right_pad

TEMPLATE = DIALOGUE_TEMPLATE  # "Human: {prompt}\n\nAssistant: {response}"


def format_text(prompt: str, response: str) -> str:
    """The text a reward model reads for one response: the prompt, then the response (see :data:`TEMPLATE`)."""
    return dialogue_text(prompt, response)


def encode(tokenizer, prompt: str, response: str, format_fn: Callable[[str, str], str] = format_text, *,
           verbose: bool = True) -> list[int]:
    """Token ids of ``format_fn(prompt, response)`` followed by one end-of-text token.

    The reward is read from the last token, so ending every text with the same marker gives the model one
    fixed place that has seen the whole text (``RewardTrainer`` appends it to text datasets too). ``verbose=False``
    spares transformers' warning that a text is longer than the model takes, for a caller that measures lengths.
    """
    if tokenizer.eos_token_id is None:
        raise ValueError("The tokenizer has no eos token; set tokenizer.eos_token before encoding texts.")
    return list(tokenizer(format_fn(prompt, response), verbose=verbose)["input_ids"]) + [tokenizer.eos_token_id]


# --------------------------------------------------------------------------------------------------
# Cleaning
# --------------------------------------------------------------------------------------------------
@dataclass
class CleaningReport:
    """What :func:`clean_pairs` did. Each dropped pair is counted once, under the first reason that applies."""

    pairs_in: int
    empty: int  # chosen or rejected empty (or only whitespace, or None)
    identical: int  # chosen == rejected after stripping whitespace: no preference to learn
    too_long: int  # prompt + response + eos longer than max_length tokens, for chosen or rejected
    special_tokens_removed: int  # texts that contained the eos/pad token as text (removed from the text)
    pairs_out: int
    max_length: int | None

    @property
    def dropped(self) -> int:
        return self.pairs_in - self.pairs_out

    def as_dict(self) -> dict:
        return asdict(self)

    def __str__(self) -> str:
        limit = f"{self.max_length} tokens" if self.max_length is not None else "no limit"
        return (f"clean_pairs: {self.pairs_in} pairs in, {self.pairs_out} kept, {self.dropped} dropped "
                f"({self.empty} with an empty chosen or rejected answer, {self.identical} with identical "
                f"chosen and rejected answers, {self.too_long} longer than max_length={limit}; over-long "
                f"pairs are dropped, not truncated, because truncation cuts the end of the answer where the "
                f"reward is read). End-of-text/pad tokens written inside the text were removed from "
                f"{self.special_tokens_removed} texts.")


def _as_text(value) -> str:
    return "" if value is None else str(value)


def clean_pairs(ds, tokenizer, max_length: int | None, *,
                format_fn: Callable[[str, str], str] = format_text, quiet: bool = False):
    """Drop preference pairs that would crash or mislead reward-model training; return ``(ds, report)``.

    ``ds`` is a ``datasets.Dataset`` with ``prompt``, ``chosen`` and ``rejected`` columns (other columns are
    kept). A pair is **dropped** (and counted in the :class:`CleaningReport`) when

    * ``chosen`` or ``rejected`` is empty, whitespace or missing -- there is nothing to score;
    * ``chosen`` and ``rejected`` are the same text -- the Bradley–Terry loss of a tie is a constant
      ``log 2`` that teaches nothing;
    * ``encode(prompt, response)`` of either answer is longer than ``max_length`` tokens -- ``RewardTrainer``
      would silently filter it out; truncating instead would cut the answer's end, where the reward is read.

    Occurrences of the tokenizer's eos or pad token *written as text* inside a prompt or answer are removed
    (counted), because a sequence classifier that looks for pad tokens may read the reward there.

    Raises ``ValueError`` when a column is missing or when no pair survives. Prints the report unless
    ``quiet``.
    """
    from .data import PAIRWISE_COLUMNS, check_columns

    check_columns(ds, PAIRWISE_COLUMNS, what="pairwise preference dataset")
    if max_length is not None and max_length < 2:
        raise ValueError(f"max_length must be at least 2 tokens (one for the text, one for eos), got {max_length}.")
    specials = sorted({t for t in (tokenizer.eos_token, tokenizer.pad_token) if t}, key=len, reverse=True)

    def normalise(row):
        out, touched = {}, 0
        for column in PAIRWISE_COLUMNS:
            text = _as_text(row[column])
            for token in specials:
                if token in text:
                    text = text.replace(token, "")
                    touched += 1
            out[column] = text
        out["_special"] = touched
        return out

    ds = ds.map(normalise, desc="Normalising pairs")

    def reason(row) -> str:
        chosen, rejected = row["chosen"].strip(), row["rejected"].strip()
        if not chosen or not rejected:
            return "empty"
        if chosen == rejected:
            return "identical"
        if max_length is not None:
            # measured only: a pair over max_length is dropped and counted, so transformers' warning that a text
            # is longer than the model takes would tell the learner nothing the report does not
            longest = max(len(encode(tokenizer, row["prompt"], row[c], format_fn, verbose=False))
                          for c in ("chosen", "rejected"))
            if longest > max_length:
                return "too_long"
        return ""

    ds = ds.map(lambda row: {"_drop": reason(row)}, desc="Checking pairs")
    reasons = list(ds["_drop"])
    report = CleaningReport(pairs_in=len(reasons), empty=reasons.count("empty"),
                            identical=reasons.count("identical"), too_long=reasons.count("too_long"),
                            special_tokens_removed=int(sum(ds["_special"])),
                            pairs_out=reasons.count(""), max_length=max_length)
    ds = ds.filter(lambda row: row["_drop"] == "").remove_columns(["_drop", "_special"])
    if report.pairs_out == 0:
        raise ValueError(f"No preference pair is left after cleaning. {report} Check the dataset's columns and "
                         f"contents, or raise max_length.")
    if not quiet:
        print(report)
    return ds, report


# --------------------------------------------------------------------------------------------------
# Where a sequence classifier reads the reward
# --------------------------------------------------------------------------------------------------
READ_RULES = ("last_non_pad", "before_first_pad")


def reward_token_index(input_ids: torch.Tensor, pad_token_id: int, rule: str = "last_non_pad") -> torch.Tensor:
    """Position of the token whose hidden state a ``*ForSequenceClassification`` decoder turns into the reward.

    ``input_ids``: ``(B, T)``. Returns a ``(B,)`` long tensor.

    * ``"last_non_pad"`` -- the rightmost token that is not ``pad_token_id`` (``transformers`` since
      PR #35911, early 2025, so every 5.x release);
    * ``"before_first_pad"`` -- the token just before the *first* ``pad_token_id`` (the releases before
      that, which the original course ran). When pad equals eos, an eos inside a text cuts the text there.

    A row without any pad token is read at its last position under both rules, and so is a left-padded row
    under ``"before_first_pad"`` (its first pad is at position 0, and ``-1`` wraps around).
    """
    if rule not in READ_RULES:
        raise ValueError(f"Unknown rule {rule!r}; choose one of {READ_RULES}.")
    is_pad = input_ids == pad_token_id
    positions = torch.arange(input_ids.shape[-1], device=input_ids.device)
    if rule == "last_non_pad":
        return (positions * (~is_pad)).argmax(-1)
    # as old transformers did: argmax finds the first pad (0 when there is none), and the modulo turns the
    # resulting -1 into the last position, for rows without padding and for left-padded rows alike
    return (is_pad.int().argmax(-1) - 1) % input_ids.shape[-1]


def reward_at_positions(model, input_ids: torch.Tensor, attention_mask: torch.Tensor | None,
                        positions: torch.Tensor) -> torch.Tensor:
    """Apply the model's reward head to the hidden state at ``positions``: returns ``(B,)`` rewards.

    Lets the lab compute what a sequence classifier *would* return under another reading rule. Works for
    models whose head is ``model.score`` on top of ``model.base_model`` (GPT-2, OPT, Llama, ...).
    """
    hidden = model.base_model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state  # (B, T, H)
    picked = hidden[torch.arange(hidden.shape[0], device=hidden.device), positions.to(hidden.device)]
    return model.score(picked).squeeze(-1)


# --------------------------------------------------------------------------------------------------
# Scoring and win rate
# --------------------------------------------------------------------------------------------------
def check_pad_setup(model, tokenizer) -> None:
    """Raise a clear ``ValueError`` unless tokenizer and model agree on a pad token distinct from eos."""
    pad_id = tokenizer.pad_token_id
    if pad_id is None:
        raise ValueError("The tokenizer has no pad token. Add one (tokenizer.add_special_tokens({'pad_token': "
                         "'<pad>'}) and model.resize_token_embeddings(len(tokenizer))) before scoring batches.")
    if pad_id == tokenizer.eos_token_id:
        raise ValueError("The pad token is the eos token, so the eos that ends every scored text would be "
                         "skipped as padding. Give the tokenizer a distinct pad token (see Lab 02, section 2).")
    if model.config.pad_token_id != pad_id:
        raise ValueError(f"model.config.pad_token_id is {model.config.pad_token_id} but the tokenizer pads with "
                         f"{pad_id}; set model.config.pad_token_id = tokenizer.pad_token_id, or the model "
                         "reads the reward at the wrong token.")


def _device(model) -> torch.device:
    return next(model.parameters()).device


@torch.no_grad()
def reward_scores(model, tokenizer, prompts: Sequence[str], responses: Sequence[str], *, batch_size: int = 32,
                  format_fn: Callable[[str, str], str] = format_text, progress: bool = False) -> torch.Tensor:
    """Rewards of ``N`` (prompt, response) pairs, scored in right-padded batches: returns ``(N,)`` on the CPU.

    Each text is :func:`encode`-d as in training. The model is put in eval mode and restored afterwards.
    """
    if len(prompts) != len(responses):
        raise ValueError(f"Got {len(prompts)} prompts but {len(responses)} responses; they must pair up.")
    check_pad_setup(model, tokenizer)
    ids = [encode(tokenizer, p, r, format_fn) for p, r in zip(prompts, responses)]
    device, was_training = _device(model), model.training
    model.eval()
    out = []
    starts = range(0, len(ids), batch_size)
    if progress:
        from tqdm.auto import tqdm

        starts = tqdm(starts, desc="Scoring", unit="batch")
    try:
        for start in starts:
            input_ids, attention_mask = right_pad(ids[start:start + batch_size], tokenizer.pad_token_id, device=device)
            logits = model(input_ids=input_ids, attention_mask=attention_mask).logits
            out.append(logits[:, 0].float().cpu())
    finally:
        model.train(was_training)
    return torch.cat(out) if out else torch.empty(0)


def pair_rewards(model, tokenizer, ds, *, batch_size: int = 32, **kwargs) -> tuple[torch.Tensor, torch.Tensor]:
    """Rewards of the chosen and the rejected answer of every pair in ``ds``: two ``(N,)`` tensors."""
    prompts = list(ds["prompt"])
    chosen = reward_scores(model, tokenizer, prompts, list(ds["chosen"]), batch_size=batch_size, **kwargs)
    rejected = reward_scores(model, tokenizer, prompts, list(ds["rejected"]), batch_size=batch_size, **kwargs)
    return chosen, rejected


def win_rate(rewards_chosen: torch.Tensor, rewards_rejected: torch.Tensor) -> float:
    """Fraction of pairs whose chosen answer gets a strictly higher reward (a tie counts as a loss)."""
    if rewards_chosen.shape != rewards_rejected.shape or rewards_chosen.ndim != 1:
        raise ValueError(f"Expected two (N,) tensors, got {tuple(rewards_chosen.shape)} and "
                         f"{tuple(rewards_rejected.shape)}.")
    if rewards_chosen.numel() == 0:
        raise ValueError("The win rate of zero pairs is undefined; the evaluation set is empty.")
    return (rewards_chosen > rewards_rejected).float().mean().item()


# --------------------------------------------------------------------------------------------------
# Figures
# --------------------------------------------------------------------------------------------------
def training_curves(log_history: list[dict]) -> dict[str, tuple[list[int], list[float]]]:
    """``{"loss": (steps, values), "accuracy": ..., "eval_loss": ..., "eval_accuracy": ...}`` from a trainer."""
    curves: dict[str, tuple[list[int], list[float]]] = {}
    for key in ("loss", "accuracy", "eval_loss", "eval_accuracy"):
        points = [(h["step"], h[key]) for h in log_history if key in h and "train_runtime" not in h]
        curves[key] = ([s for s, _ in points], [v for _, v in points])
    return curves


def plot_reward_training(log_history: list[dict]):
    """Training and evaluation loss and accuracy against the step; returns the figure."""
    import matplotlib.pyplot as plt

    curves = training_curves(log_history)
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.6))
    for ax, metric in zip(axes, ("loss", "accuracy")):
        ax.plot(*curves[metric], label=f"train {metric}")
        ax.plot(*curves[f"eval_{metric}"], "o-", label=f"eval {metric}")
        ax.set_xlabel("step")
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
        ax.legend()
    axes[0].axhline(0.6931, color="grey", ls=":", lw=1)  # log 2: the loss of a model that cannot tell
    axes[1].axhline(0.5, color="grey", ls=":", lw=1)
    axes[0].set_title("Bradley–Terry loss")
    axes[1].set_title("accuracy (chosen scores higher)")
    fig.tight_layout()
    return fig


def plot_margins(margins_before: torch.Tensor, margins_after: torch.Tensor):
    """Histograms of ``r_chosen − r_rejected`` on held-out pairs before and after training; returns the figure."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 3.6))
    for ax, margins, title in zip(axes, (margins_before, margins_after), ("before training", "after training")):
        values = margins.detach().float().cpu().numpy()
        ax.hist(values, bins=30, color="tab:blue" if title.startswith("before") else "tab:green")
        ax.axvline(0, color="black", lw=1)
        ax.set_title(f"{title}: {(values > 0).mean():.0%} of margins > 0")
        ax.set_xlabel("reward margin  r(chosen) − r(rejected)")
        ax.set_ylabel("pairs")
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------------------------------
# A sentiment classifier as the reward (lab 04 and its GPU benchmark)
# --------------------------------------------------------------------------------------------------
# How lab 04 calls the sentiment pipeline: every label's score (top_k=None), as probabilities (softmax), 16 texts
# per forward pass.
SENTIMENT_KWARGS = {"top_k": None, "function_to_apply": "softmax", "batch_size": 16}


def positive_rewards(pipe_outputs, label: str = "POSITIVE") -> list[float]:
    """P(``label``) of each text from a text-classification pipeline's outputs (called with ``top_k=None``).

    The pipeline sorts each text's ``[{"label", "score"}, ...]`` by score, so the reward is found by its label,
    never by its position. A label the classifier does not have raises ``ValueError`` naming the labels it has.
    """
    rewards = []
    for scores in pipe_outputs:
        if isinstance(scores, dict):  # one label per text: the pipeline was called without top_k=None
            scores = [scores]
        found = [d["score"] for d in scores if d["label"] == label]
        if not found:
            raise ValueError(f"No {label!r} score among the classifier's outputs {scores}; call the pipeline with "
                             f"**SENTIMENT_KWARGS (top_k=None gives every label), or pass label= one of "
                             f"{sorted(d['label'] for d in scores)}.")
        rewards.append(float(found[0]))
    return rewards


# (prompt, better response, worse response) triples for lab 02's score() demonstration, per profile: plain
# English for gpt2 in `full`, the tiny set's own phrasing in `tiny` (the tiny model has never seen anything else).
SCORE_EXAMPLES = {
    "full": (
        ("What is the boiling point of water at sea level?",
         "Water boils at 100 degrees Celsius, or 212 degrees Fahrenheit, at sea level.",
         "Water covers most of the planet, and people have always lived near rivers and lakes."),
        ("How can I learn Python?",
         "Work through the official tutorial, then write small programs of your own every day.",
         "Pythons are large snakes that live in Africa, Asia and Australia."),
        ("Give me a tip for sleeping better.",
         "Go to bed at the same time every night and keep screens out of the bedroom.",
         "I had a strange dream last night about a train made of glass."),
    ),
    "tiny": (
        ("Write one line about the plot.", "the plot was charming .", "The answer is c b a ."),
        ("Say something bad about the cast.", "the cast was dull .", "the cast was superb ."),
        ("Reverse the letters. q z x", "The answer is x z q .", "the film was great ."),
    ),
}


# --------------------------------------------------------------------------------------------------
# The saved reward model: lab 02 writes it, lab 04 can score its rollouts with it
# --------------------------------------------------------------------------------------------------
REWARD_MODEL_LAB = "02_reward_modeling"


def saved_reward_model_dir(profile: str, root: str = "") -> str:
    """The folder where lab 02 saves its trained reward model for ``profile`` (``tiny`` or ``full``).

    It sits under lab 02's output folder (``outputs/02_reward_modeling``, relative to the folder the labs run
    in), one folder per profile, so a tiny run never overwrites or stands in for the full model.
    """
    import os

    if profile not in ("tiny", "full"):
        raise ValueError(f"profile must be 'tiny' or 'full' (a resolved profile, e.g. cfg.profile), got {profile!r}.")
    return os.path.join(root, "outputs", REWARD_MODEL_LAB, f"reward-model-{profile}")


def load_saved_reward_model(profile: str, device="cpu", root: str = ""):
    """Lab 02's saved reward model and its tokenizer, in eval mode; one clear error when lab 02 has not run."""
    import os

    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    folder = saved_reward_model_dir(profile, root)
    if not os.path.isfile(os.path.join(folder, "config.json")):
        raise FileNotFoundError(
            f"No reward model from lab 02 at {os.path.abspath(folder)}. Run labs/02_reward_modeling.ipynb first "
            f"(profile {profile!r}, in the same folder as this lab; it saves the model there), or set "
            "REWARD_SOURCE = \"classifier\" to score with the sentiment classifier.")
    # float32 whatever the device: the scores are compared with lab 02's, and autocast does the half precision
    model = AutoModelForSequenceClassification.from_pretrained(folder, dtype=torch.float32).to(device).eval()
    return model, AutoTokenizer.from_pretrained(folder)
