"""Held-out rows are held out: no test or eval row of a lab's tiny data appears among its training rows.

Each case loads the data as the lab loads it (its tiny profile's dataset, sizes and seed) and splits it as the
lab splits it; a row is the whole record a lab trains or evaluates on.
"""

from __future__ import annotations

import json

import pytest

from labhelpers import data
from labhelpers.lab_configs import profile_values

LAB_NAMES = {"01": "01_instruction_tuning", "02": "02_reward_modeling", "03": "03_dpo", "04": "04_ppo_rlhf",
             "06": "06_scaling_up"}


def _tiny(lab: str) -> dict:
    return profile_values(LAB_NAMES[lab], "tiny")


def _key(row: dict) -> str:
    return json.dumps(row, sort_keys=True)


def _code_alpaca_split(lab: str):
    cfg = _tiny(lab)
    records = data.load_code_alpaca(cfg["dataset"], n=cfg["n_train"] + cfg["n_test"], seed=cfg["seed"])
    n_test = max(1, min(cfg["n_test"], round(len(records) * cfg["n_test"] / (cfg["n_train"] + cfg["n_test"]))))
    split = records.train_test_split(test_size=n_test, seed=cfg["seed"])
    return list(split["train"]), list(split["test"])


def _prompt(row: dict) -> str:  # what the model is asked: the same question in training gives the answer away
    return json.dumps([row["instruction"], row["input"]])


def _pairwise_split():
    cfg = _tiny("02")
    pairs = data.load_pairwise(cfg["dataset"], n=cfg["n_train"] + cfg["n_test"], seed=cfg["seed"])
    split = pairs.train_test_split(test_size=min(cfg["n_test"], len(pairs) // 5), seed=cfg["seed"])
    return list(split["train"]), list(split["test"])


def _preferences_split():
    cfg = _tiny("03")
    raw = data.load_preferences(cfg["dataset"], n=cfg["n_train"] + cfg["n_test"], seed=cfg["seed"])
    split = raw.train_test_split(test_size=cfg["n_test"], seed=cfg["seed"])
    return list(split["train"]), list(split["test"])


def _imdb_split():  # lab 04's full profile; tiny asks lab 01's review requests (_request_split)
    cfg = {"dataset": "tiny", "n_train": 512, "n_test": 64, "seed": 42, "min_review_chars": 0}  # full's code, tiny data
    reviews = data.load_imdb(cfg["dataset"], n=cfg["n_train"] + cfg["n_test"], seed=cfg["seed"])
    texts = [t for t in reviews["text"] if len(t) > cfg["min_review_chars"]]
    return [{"text": t} for t in texts[: -cfg["n_test"]]], [{"text": t} for t in texts[-cfg["n_test"]:]]


def _request_split():
    from labhelpers.ppo import review_request_split

    cfg = _tiny("04")
    assert cfg["query_source"] == "requests"
    train, test = review_request_split(cfg["seed"], cfg["test_nouns"])
    return [{"request": r} for r in train], [{"request": r} for r in test]


SPLITS = {
    "01 code alpaca": lambda: _code_alpaca_split("01"),
    "06 code alpaca": lambda: _code_alpaca_split("06"),
    "02 pairwise preferences": _pairwise_split,
    "03 preferences": _preferences_split,
    "04 review openings": _imdb_split,
    "04 review requests": _request_split,
}


# Lab 02's pairs are drawn independently, so an identical pair can land on both sides (1 of its 100 held-out pairs
# at the tiny profile's seed). Its data belong to lab 02's owners; strict, so the mark must go once it is fixed.
LEAKS_KNOWN: dict[str, str] = {}  # a split known to leak, marked strict xfail until its data is fixed


@pytest.mark.parametrize("name", [pytest.param(name, marks=pytest.mark.xfail(strict=True, reason=LEAKS_KNOWN[name]))
                                  if name in LEAKS_KNOWN else name for name in SPLITS])
def test_no_held_out_row_is_a_training_row(name):
    train, test = SPLITS[name]()
    assert train and test
    seen = {_key(r) for r in train}
    leaked = [r for r in test if _key(r) in seen]
    assert not leaked, f"{name}: {len(leaked)} of {len(test)} held-out rows are training rows, e.g. {leaked[0]}"


@pytest.mark.parametrize("lab", ["01", "06"])
def test_no_held_out_code_alpaca_question_is_asked_in_training(lab):
    """Stricter for the instruction labs: not even the question (instruction and input) is seen in training."""
    train, test = _code_alpaca_split(lab)
    seen = {_prompt(r) for r in train}
    leaked = [r for r in test if _prompt(r) in seen]
    assert not leaked, f"lab {lab}: {len(leaked)} of {len(test)} held-out questions are asked in training"
