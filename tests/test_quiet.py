"""The quiet learner's view: the known upstream warnings are hidden, each for a reason; every other one still shows."""

from __future__ import annotations

import logging
import warnings

import pytest
from conftest import LABS

from labhelpers.quiet import KNOWN_WARNINGS, quiet_known_warnings


def warnings_raised(action, quiet: bool) -> list[str]:
    """Messages of the warnings that ``action()`` shows, with or without the quiet filters (restored after)."""
    with warnings.catch_warnings():
        warnings.simplefilter("default")
        if quiet:
            quiet_known_warnings()
        with warnings.catch_warnings(record=True) as caught:
            action()
    return [str(w.message) for w in caught]


def build_trl_config(tmp_path):
    from trl import RewardConfig

    # what `labhelpers.training.show_settings` does to find a lab's changes: a TRL config with its defaults
    return lambda: RewardConfig(output_dir=str(tmp_path), use_cpu=True, bf16=False, report_to="none")


def _renamed_checkpointing() -> bool:
    """transformers >= 5.23 renamed gradient_checkpointing and warns about the old name; before, nothing warns."""
    from transformers import TrainingArguments

    from labhelpers.training import checkpointing_field

    return checkpointing_field(TrainingArguments) == "activation_checkpointing"


old_name_only = pytest.mark.skipif(not _renamed_checkpointing(),
                                   reason="this transformers predates the rename (5.23): there is no warning to hide")


@old_name_only
def test_trl_gradient_checkpointing_default_is_hidden(tmp_path):
    def deprecated(messages):
        return [m for m in messages if "`gradient_checkpointing` is deprecated" in m]

    assert deprecated(warnings_raised(build_trl_config(tmp_path), quiet=False)), \
        "TRL no longer triggers this warning: drop its entry from KNOWN_WARNINGS"
    assert deprecated(warnings_raised(build_trl_config(tmp_path), quiet=True)) == []


@old_name_only
def test_is_gradient_checkpointing_read_by_trl_is_hidden():
    from transformers import GPT2Config, GPT2LMHeadModel

    model = GPT2LMHeadModel(GPT2Config(vocab_size=16, n_embd=8, n_layer=1, n_head=1, n_positions=8))

    def read_property():
        assert model.is_gradient_checkpointing is False

    assert any("is_gradient_checkpointing" in m for m in warnings_raised(read_property, quiet=False))
    assert warnings_raised(read_property, quiet=True) == []


def test_other_warnings_still_reach_the_learner():
    def other_warnings():
        # same category and module as a hidden one, another message: about the learner's own arguments
        warnings.warn_explicit("`evaluation_strategy` is deprecated", FutureWarning, "training_args.py", 1,
                               module="transformers.training_args")
        warnings.warn("a warning from the learner's own code", UserWarning, stacklevel=1)

    assert warnings_raised(other_warnings, quiet=True) == ["`evaluation_strategy` is deprecated",
                                                           "a warning from the learner's own code"]


def logged(message: str, caller_module: str, tokens_per_row: int) -> list[str]:
    """Messages that reach transformers.modeling_utils' handlers when transformers' padding check logs ``message``
    for ``tokens_per_row`` tokens, called from code of ``caller_module``."""
    import torch

    logger = logging.getLogger("transformers.modeling_utils")
    seen: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: seen.append(record.getMessage())
    logger.addHandler(handler)
    # another test may have lowered transformers' verbosity (set_verbosity_error): log at the default level here
    level, disabled = logger.level, logger.disabled
    logger.setLevel(logging.WARNING)
    logger.disabled = False
    caller = ("def warn_if_padding_and_no_attention_mask(input_ids):\n"  # the name of transformers' check
              "    logger.warning(message)\n"
              "warn_if_padding_and_no_attention_mask(input_ids)\n")
    try:
        exec(compile(caller, "<caller>", "exec"), {"__name__": caller_module, "logger": logger, "message": message,
                                                   "input_ids": torch.zeros(4, tokens_per_row, dtype=torch.long)})
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
        logger.disabled = disabled
    return seen


def test_attention_mask_message_is_hidden_only_for_generates_one_token_steps():
    quiet_known_warnings()
    message = ("We strongly recommend passing in an `attention_mask` since your input_ids may be padded. See "
               "https://huggingface.co/docs/transformers/troubleshooting")
    assert logged(message, "transformers.generation.utils", tokens_per_row=1) == []
    # a whole padded prompt, or the learner's own forward pass without a mask: still warned
    assert logged(message, "transformers.generation.utils", tokens_per_row=6) == [message]
    assert logged(message, "__main__", tokens_per_row=1) == [message]
    assert logged("Some other message", "transformers.generation.utils", tokens_per_row=1) == ["Some other message"]


def test_calling_twice_installs_each_filter_once():
    with warnings.catch_warnings():
        quiet_known_warnings()
        quiet_known_warnings()
        for known in KNOWN_WARNINGS:
            if known.category is not None:
                same = [f for f in warnings.filters if f[1] is not None and f[1].pattern == known.message]
                assert len(same) == 1, known.name
    for known in KNOWN_WARNINGS:
        if known.category is None:
            assert len(logging.getLogger(known.module).filters) == 1, known.name


def test_every_known_warning_says_why():
    names = [k.name for k in KNOWN_WARNINGS]
    assert len(names) == len(set(names))
    for known in KNOWN_WARNINGS:
        assert len(known.reason.split()) >= 8, f"{known.name}: say why a learner cannot act on it"
        assert known.module, f"{known.name}: name the module or logger, so that only that source is hidden"


@pytest.mark.notebook
@pytest.mark.parametrize("lab", sorted(p.stem for p in LABS.glob("[0-9][0-9]_*.ipynb")))
def test_executed_lab_has_no_warning_on_stderr(lab, executed_lab):
    import nbformat

    run = executed_lab(lab)
    notebook = nbformat.read(run.output, as_version=4)
    noisy = [(index, output["text"][:300]) for index, cell in enumerate(notebook.cells) if cell.cell_type == "code"
             for output in cell.get("outputs", [])
             if output.get("output_type") == "stream" and output.get("name") == "stderr"
             and "warning" in output["text"].lower()]
    assert noisy == [], f"{lab}: warnings on stderr (cell index, text): {noisy}"


@pytest.mark.notebook
@pytest.mark.parametrize("lab", sorted(p.stem for p in LABS.glob("[0-9][0-9]_*.ipynb")))
def test_executed_lab_saves_each_progress_bar_as_one_output(lab, executed_lab):
    """With ipywidgets a bar is one widget output (its text form: one line); without, tqdm writes every update."""
    import re

    import nbformat

    notebook = nbformat.read(executed_lab(lab).output, as_version=4)
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]
    text_bars = [o["text"][:200] for o in outputs if o.get("output_type") == "stream" and re.search(r"\d+%\|", o["text"])]
    assert text_bars == [], f"{lab}: progress bars written as text updates: {text_bars}"
    for output in outputs:
        if "application/vnd.jupyter.widget-view+json" in output.get("data", {}):
            assert "\n" not in output["data"].get("text/plain", "").strip()
