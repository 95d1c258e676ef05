"""Keep warnings that a learner cannot act on out of the lab notebooks, and let every other warning through.

Each entry of :data:`KNOWN_WARNINGS` names one upstream warning, matched as narrowly as its text allows, and says
why a learner can ignore it. The setup cell of every lab calls :func:`quiet_known_warnings` right after
``import labhelpers``. A warning not listed here still reaches the notebook: it may be about the learner's own code.

What is deliberately *not* here:

* tqdm's ``TqdmWarning: IProgress not found``: its fix is installing ``ipywidgets`` (a runtime dependency of the
  labs), after which progress bars are widgets in JupyterLab and one output per bar in a saved notebook.
* Warnings raised by ``labhelpers`` itself (a response template not found, dropped preference rows): they report
  something about the learner's data.
"""

from __future__ import annotations

import contextlib
import logging
import re
import warnings
from dataclasses import dataclass


@dataclass(frozen=True)
class KnownWarning:
    """One upstream warning that the labs hide, and why."""

    name: str
    reason: str
    message: str
    """Regular expression matched against the start of the message (``warnings.filterwarnings`` semantics)."""
    category: type[Warning] | None = None
    """For a ``warnings.warn`` warning: its category. ``None`` for a message sent to a logger."""
    module: str = ""
    """``warnings.warn``: the module that warns. A logger message: the logger's name."""


KNOWN_WARNINGS: tuple[KnownWarning, ...] = (
    KnownWarning(
        name="trl-gradient-checkpointing-default",
        reason="TRL's configs give the renamed field `gradient_checkpointing` a default of True, so transformers "
               "warns about the old name whenever a TRL config is built without `activation_checkpointing`, "
               "including the default configs that `labhelpers.training.show_settings` compares against. The "
               "labs set `activation_checkpointing` themselves.",
        message=r"`gradient_checkpointing(_kwargs)?` is deprecated",
        category=FutureWarning,
        module=r"transformers\.training_args",
    ),
    KnownWarning(
        name="trl-is-gradient-checkpointing",
        reason="TRL's generation helpers read the deprecated property `model.is_gradient_checkpointing` inside "
               "GRPOTrainer and DPOTrainer; no code of the lab touches it.",
        message=r"`is_gradient_checkpointing` is deprecated",
        category=FutureWarning,
        module=r"transformers\.modeling_utils",
    ),
    KnownWarning(
        name="pad-is-eos-attention-mask",
        reason="GPT-2 has no pad token, so the labs pad with its end-of-text token, and then transformers cannot "
               "tell a sampled end-of-text from padding: while `model.generate` decodes, it feeds one new token "
               "per row without a mask and suspects padding whenever that token is end-of-text (lab 04's PPO "
               "rollouts and TRL's GRPOTrainer). Only the form of the message that admits this is hidden, the one "
               "ending 'You may ignore this warning if your `pad_token_id` (...) is identical to the ...': a model "
               "with a pad token of its own is still warned. The price of matching the text alone: a forward pass "
               "of the learner's own without a mask, on such a model, is not warned either.",
        message=r"We strongly recommend passing in an `attention_mask` since your input_ids may be padded"
                r"(?s:.*)\nYou may ignore this warning if your `pad_token_id` \(",
        module="transformers.modeling_utils",
    ),
)


class _KnownMessageFilter(logging.Filter):
    """Drops the records of one logger whose message starts with a known pattern; every other record passes."""

    def __init__(self, known: list[KnownWarning]):
        super().__init__()
        self.patterns = [re.compile(k.message) for k in known]

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        return not any(pattern.match(text) for pattern in self.patterns)


_installed_filters: dict[str, _KnownMessageFilter] = {}


def quiet_known_warnings() -> tuple[KnownWarning, ...]:
    """Hide the warnings of :data:`KNOWN_WARNINGS` in this process and return them.

    Safe to call more than once (re-running a setup cell adds nothing). Hidden warnings are still raised by
    ``warnings.catch_warnings(record=True)`` blocks and ``pytest.warns``, which install their own filters.
    """
    by_logger: dict[str, list[KnownWarning]] = {}
    for known in KNOWN_WARNINGS:
        if known.category is not None:
            warnings.filterwarnings("ignore", message=known.message, category=known.category, module=known.module)
        else:
            by_logger.setdefault(known.module, []).append(known)
    for logger_name, known in by_logger.items():
        logger = logging.getLogger(logger_name)
        previous = _installed_filters.get(logger_name)
        if previous is not None:
            logger.removeFilter(previous)
        _installed_filters[logger_name] = _KnownMessageFilter(known)
        logger.addFilter(_installed_filters[logger_name])
    return KNOWN_WARNINGS


def quiet_preprocessing_bars() -> None:
    """Hide the progress bars of work that is not a training run or an evaluation, in this process.

    That is every ``datasets`` bar (``map``/``filter``: a trainer's "Adding EOS", "Tokenizing", "Dropping fully
    truncated examples", "Flattening the indices"; 12 of the 14 bars one ``DPOTrainer(...)`` drew) and transformers'
    own bars ("Loading weights", "Writing model shards"). The Trainer's training and evaluation bars, and other
    ``tqdm`` loops (TRL's pass of the reference model over the data), are untouched. Safe to call more than once;
    ``datasets.enable_progress_bars()`` and ``transformers.utils.logging.enable_progress_bar()`` undo it.
    """
    import datasets
    from transformers.utils import logging as transformers_logging

    datasets.disable_progress_bars()
    transformers_logging.disable_progress_bar()


@contextlib.contextmanager
def no_transformers_bars():
    """No "Writing model shards" or "Loading weights" bar inside the block; the setting before it comes back after."""
    from transformers.utils import logging as transformers_logging

    shown = transformers_logging.is_progress_bar_enabled()
    transformers_logging.disable_progress_bar()
    try:
        yield
    finally:
        if shown:
            transformers_logging.enable_progress_bar()
