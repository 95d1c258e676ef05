"""The quiet learner's view: the known upstream warnings are hidden, each for a reason; every other one still shows."""

from __future__ import annotations

import logging
import warnings

import pytest
from conftest import lab_stems

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


def shown(emit, quiet: bool, logger_name: str = "transformers.modeling_utils") -> list[str]:
    """Messages of ``logger_name`` that reach its handlers while ``emit()`` runs, with or without the quiet filters
    (without: the installed filters are lifted for the call and put back after)."""
    logger = logging.getLogger(logger_name)
    if quiet:
        quiet_known_warnings()
    lifted = [] if quiet else list(logger.filters)
    seen: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: seen.append(record.getMessage())
    # another test may have lowered transformers' verbosity (set_verbosity_error): log at the default level here,
    # and keep transformers' own handler from printing what this test reads
    saved = logger.level, logger.disabled, logger.propagate
    logger.setLevel(logging.WARNING)
    logger.disabled, logger.propagate = False, False
    for lifted_filter in lifted:
        logger.removeFilter(lifted_filter)
    logger.addHandler(handler)
    try:
        emit()
    finally:
        logger.removeHandler(handler)
        for lifted_filter in lifted:
            logger.addFilter(lifted_filter)
        logger.setLevel(saved[0])
        logger.disabled, logger.propagate = saved[1:]
    return seen


SUSPICION = ("We strongly recommend passing in an `attention_mask` since your input_ids may be padded. See "
             "https://huggingface.co/docs/transformers/troubleshooting#incorrect-output-when-padding-tokens-arent-masked.")
PAD_IS_EOS = (SUSPICION + "\nYou may ignore this warning if your `pad_token_id` (2) is identical to the `bos_token_id` "
              "(2), `eos_token_id` (2), or the `sep_token_id` (None), and your input is not padded.")


def test_only_the_pad_is_eos_attention_mask_message_is_hidden_and_the_loggers_other_messages_show():
    logger = logging.getLogger("transformers.modeling_utils")
    other = "Some weights of GPT2LMHeadModel were not initialized from the model checkpoint"

    def emit():
        for message in (PAD_IS_EOS, SUSPICION, other):
            logger.warning(message)

    assert shown(emit, quiet=False) == [PAD_IS_EOS, SUSPICION, other]
    # a pad token of the model's own makes the suspicion worth reading: only the pad-is-eos form goes
    assert shown(emit, quiet=True) == [SUSPICION, other]
    # the same text sent to another logger is not transformers' padding check
    assert shown(lambda: logging.getLogger("labhelpers.elsewhere").warning(PAD_IS_EOS), quiet=True,
                 logger_name="labhelpers.elsewhere") == [PAD_IS_EOS]


def test_transformers_own_padding_check_is_hidden_when_the_pad_is_end_of_text():
    """The installed transformers' own words, from an unmasked forward pass whose last token is the pad id."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    def unmasked_forward(pad_token_id: int):
        model = GPT2LMHeadModel(GPT2Config(vocab_size=16, n_embd=8, n_layer=1, n_head=1, n_positions=8,
                                           bos_token_id=1, eos_token_id=1, pad_token_id=pad_token_id))

        def run():
            logging.Logger.warning_once.cache_clear()  # transformers says it once per process and message
            model(input_ids=torch.tensor([[3, 4, pad_token_id]]))
        return run

    said = shown(unmasked_forward(pad_token_id=1), quiet=False)
    assert len(said) == 1 and said[0].startswith(SUSPICION), \
        "transformers' padding check says something else now: update the entry in KNOWN_WARNINGS"
    assert shown(unmasked_forward(pad_token_id=1), quiet=True) == []
    own_pad = shown(unmasked_forward(pad_token_id=0), quiet=True)
    assert len(own_pad) == 1 and own_pad[0].startswith(SUSPICION)


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
@pytest.mark.parametrize("lab", lab_stems())
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
@pytest.mark.parametrize("lab", lab_stems())
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
