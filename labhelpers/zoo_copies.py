"""The zoo's copies of the pipeline's hand-overs: lab 01's SFT model and lab 02's reward model.

A lab that starts from an earlier lab's model (``"pipeline:sft"``, ``"pipeline:reward"``, see
:mod:`labhelpers.stages`) and runs where that lab has not saved it takes the zoo's copy instead. Each copy is the
earlier lab's own tiny run, done here: its config values, its data and split, its trainer config from
:mod:`labhelpers.training`, its seed, thread count and evaluations (each evaluation draws from torch's generator,
which orders the later batches). On the same machine and versions the copy equals the lab's saved model bit for
bit, so a later lab's checks hold from either start.

========================  ===================================================================================
zoo name                  the run it copies
========================  ===================================================================================
``tiny-sft``              lab 01's SFT run on ``tiny-opt`` (``SFTTrainer``, completion-only loss)
``tiny-reward``           lab 02's ``RewardTrainer`` run on ``tiny-sft`` (one output, the lab's cleaned pairs)
========================  ===================================================================================

:mod:`labhelpers.tiny` keys, caches and locks them like every zoo model; the key covers the lab's tiny values,
its training and held-out rows and TRL's version.
"""

from __future__ import annotations

import contextlib
import tempfile
import time
from dataclasses import asdict

# corpus name -> (the part of a lab's split it is); the training rows name the copy's recipe
CORPORA = {"lab01-sft": "train", "lab01-sft-test": "test", "lab02-reward": "train", "lab02-reward-test": "test"}


def rows(corpus: str) -> list[dict]:
    """The rows a copy trains (or evaluates) on: a lab's training (or held-out) split."""
    split = _lab01_split() if corpus.startswith("lab01") else _lab02_split()
    return split[CORPORA[corpus]]


def recipe_payload(corpus: str) -> dict:
    """What a copy's cache key covers besides the recipe and the training rows."""
    return {"sft": _sft_recipe()} if corpus == "lab01-sft" else {"reward": _reward_recipe()}


def build(recipe, path, started: float) -> tuple:
    """``(model, tokenizer, card)`` of the copy ``recipe`` names, for :func:`labhelpers.tiny.zoo_path`."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from .tiny import _versions_key, zoo_path

    tokenizer = AutoTokenizer.from_pretrained(zoo_path(recipe.init_from))
    if recipe.corpus == "lab01-sft":
        model = AutoModelForCausalLM.from_pretrained(zoo_path(recipe.init_from)).float()
        losses, extra = _train_sft(model, tokenizer), {"sft": _sft_recipe()}
        note = "lab 01's tiny SFT run on lab 01's training rows"
    else:
        model, losses, accuracy = _train_reward(tokenizer)
        extra = {"reward": _reward_recipe(), "eval_accuracy": accuracy}
        note = "lab 02's tiny reward-model run on the zoo's SFT copy"
    model.config.name_or_path = str(path)
    card = {"recipe": asdict(recipe), "key": path.name.rsplit("-", 1)[-1], "versions": _versions_key(), **extra,
            "parameters": sum(p.numel() for p in model.parameters()), "first_loss": losses[0],
            "final_loss": losses[-1], "build_seconds": round(time.perf_counter() - started, 2),
            "note": f"{note}, built offline by labhelpers from synthetic, seeded data; not a real checkpoint."}
    return model, tokenizer, card


# --------------------------------------------------------------------------------------------------
# The zoo's copy of lab 01's SFT model
# --------------------------------------------------------------------------------------------------
SFT_LAB = "01_instruction_tuning"


def _lab01_config():
    from .config import lab_config

    return lab_config(SFT_LAB, "tiny", quiet=True, check_environment=False)


def _sft_recipe() -> dict:
    """What the SFT copy depends on besides its rows: lab 01's tiny values and the TRL that trains them."""
    from importlib.metadata import version

    from .lab_configs import profile_values

    return {"lab01_tiny": profile_values(SFT_LAB, "tiny"), "trl": version("trl"), "evaluations": "as lab 01's",
            "test_rows": _digest_of("lab01-sft-test")}


@contextlib.contextmanager
def _quietly():
    """No datasets bars and no transformers notices: the build runs inside a lab's setup cell, which says it."""
    import datasets
    from transformers.utils import logging as transformers_logging

    bars, verbosity = datasets.is_progress_bar_enabled(), transformers_logging.get_verbosity()
    datasets.disable_progress_bars()
    transformers_logging.set_verbosity_error()
    try:
        yield
    finally:
        transformers_logging.set_verbosity(verbosity)
        if bars:
            datasets.enable_progress_bars()


def _lab01_split() -> dict[str, list[dict]]:
    """Lab 01's training and test rows in TRL's prompt/completion form: the lab's data and split (section 1.2)."""
    from . import data, formatting

    cfg = _lab01_config()
    with _quietly():
        rows = data.load_code_alpaca(cfg.dataset, n=cfg.n_train + cfg.n_test, seed=cfg.seed)
    n_test = max(1, min(cfg.n_test, round(len(rows) * cfg.n_test / (cfg.n_train + cfg.n_test))))
    split = rows.train_test_split(test_size=n_test, seed=cfg.seed)
    return {part: [formatting.to_prompt_completion(row, cfg.response_template) for row in split[part]]
            for part in ("train", "test")}


def _train_sft(model, tokenizer) -> list[float]:
    """Lab 01's tiny SFT run on ``model`` (``tiny-opt``): the lab's ``SFTConfig``, seed and thread count."""
    import datasets
    import torch
    from transformers.trainer_callback import PrinterCallback
    from trl import SFTTrainer

    from . import training

    cfg = _lab01_config()
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(cfg.cpu_threads or threads)  # lab 01's threads: the same arithmetic as the lab
        with _quietly(), tempfile.TemporaryDirectory() as out:
            # lab 01's main run evaluates on its test rows every tenth of the run and at the start; each evaluation
            # draws from torch's generator, which orders the later batches, so the copy evaluates alike (its
            # figures are not used) and trains on the batches lab 01 trains on
            args = training.sft_args(cfg, completion_only_loss=True, output_dir=out, disable_tqdm=True,
                                     eval_strategy="steps", eval_steps=max(1, cfg.max_steps // 10),
                                     eval_on_start=True)
            rows = _lab01_split()
            trainer = SFTTrainer(model=model, args=args, processing_class=tokenizer,
                                 train_dataset=datasets.Dataset.from_list(rows["train"]),
                                 eval_dataset=datasets.Dataset.from_list(rows["test"]))
            trainer.remove_callback(PrinterCallback)
            training.train(trainer)
            losses = [e["loss"] for e in trainer.state.log_history if "loss" in e]
    finally:
        torch.set_num_threads(threads)
    return losses


# --------------------------------------------------------------------------------------------------
# The zoo's copy of lab 02's reward model
# --------------------------------------------------------------------------------------------------
REWARD_LAB = "02_reward_modeling"


def _lab02_config():
    from .config import lab_config

    # lab 02 starts from "pipeline:sft", which may name a model saved in this folder: the copy starts from the
    # zoo's SFT copy, so that it depends on the recipes alone
    cfg = lab_config(REWARD_LAB, "tiny", quiet=True, check_environment=False)
    from .tiny import zoo_path

    return cfg.replace(model_name=str(zoo_path("tiny-sft", build=False)))


def _reward_recipe() -> dict:
    from importlib.metadata import version

    from .lab_configs import profile_values

    return {"lab02_tiny": profile_values(REWARD_LAB, "tiny"), "trl": version("trl"),
            "test_rows": _digest_of("lab02-reward-test")}


def _lab02_split() -> dict[str, list[dict]]:
    """Lab 02's training and held-out pairs, cleaned as section 1.2 cleans them (with the SFT copy's tokenizer)."""
    from . import data, reward

    cfg = _lab02_config()
    from .tiny import build_tokenizer

    tokenizer = build_tokenizer("opt")  # tiny-sft's, which is tiny-opt's: no model needs building to read it
    with _quietly():
        pairs = data.load_pairwise(cfg.dataset, n=cfg.n_train + cfg.n_test, seed=cfg.seed)
        split = pairs.train_test_split(test_size=min(cfg.n_test, len(pairs) // 5), seed=cfg.seed)
        return {part: list(reward.clean_pairs(split[part], tokenizer, cfg.max_length, quiet=True)[0])
                for part in ("train", "test")}


def _train_reward(tokenizer):
    """Lab 02's tiny run: tiny-sft with a one-output head, its RewardConfig, seed, threads and evaluations."""
    import datasets
    import torch
    from transformers import AutoModelForSequenceClassification, set_seed
    from transformers.trainer_callback import PrinterCallback
    from trl import RewardTrainer

    from . import reward, training

    cfg = _lab02_config()
    rows = _lab02_split()

    def encoded(part):
        return datasets.Dataset.from_list([
            {"chosen_ids": reward.encode(tokenizer, r["prompt"], r["chosen"]),
             "rejected_ids": reward.encode(tokenizer, r["prompt"], r["rejected"])} for r in rows[part]])

    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(cfg.cpu_threads or threads)
        with _quietly(), tempfile.TemporaryDirectory() as out:
            set_seed(cfg.seed)  # the head's initialisation, as after lab 02's prepare_lab
            model = AutoModelForSequenceClassification.from_pretrained(cfg.model_name, num_labels=1,
                                                                       dtype=torch.float32)
            model.config.pad_token_id = tokenizer.pad_token_id
            trainer = RewardTrainer(model=model, args=training.reward_args(cfg, output_dir=out, disable_tqdm=True),
                                    train_dataset=encoded("train"), eval_dataset=encoded("test"),
                                    processing_class=tokenizer)
            trainer.remove_callback(PrinterCallback)
            training.train(trainer)
            history = trainer.state.log_history
    finally:
        torch.set_num_threads(threads)
    evals = [e for e in history if "eval_accuracy" in e]
    return model, [e["loss"] for e in history if "loss" in e], evals[-1]["eval_accuracy"]


def _digest_of(corpus: str) -> str:
    from .tiny import _corpus_digest

    return _corpus_digest(corpus, 0)
