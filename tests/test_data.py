"""Loaders: the tiny sets, local files of every supported format, and clear schema errors."""

from __future__ import annotations

import json

import pytest

from labhelpers import data, synthetic
from labhelpers.config import HubUnavailableError


def test_tiny_sets_have_the_real_schemas():
    assert data.load_code_alpaca("tiny", n=50).column_names == ["instruction", "input", "output"]
    assert set(data.load_pairwise("tiny", n=20).column_names) >= {"prompt", "chosen", "rejected"}
    imdb = data.load_imdb("tiny", n=100)
    assert set(imdb.column_names) >= {"text", "label"} and set(imdb["label"]) == {0, 1}
    assert set(data.load_preferences("tiny", n=20).column_names) >= {"chosen", "rejected"}


def test_tiny_code_alpaca_is_seeded_and_about_half_with_input():
    a, b = synthetic.code_alpaca(400, seed=3), synthetic.code_alpaca(400, seed=3)
    assert a == b and a != synthetic.code_alpaca(400, seed=4)
    with_input = sum(bool(r["input"]) for r in a) / len(a)
    assert 0.35 < with_input < 0.65


def test_subset_is_seeded_and_sized():
    one = data.load_imdb("tiny", n=30, seed=1)["text"]
    assert len(one) == 30 and one == data.load_imdb("tiny", n=30, seed=1)["text"]


ROWS = [{"instruction": "Reverse the letters.", "input": "a b", "output": "b a"},
        {"instruction": "Write a loop.", "input": "", "output": "for i in range(3): pass"}]


@pytest.mark.parametrize("kind", ["json-list", "jsonl", "json-lines", "csv", "parquet"])
def test_local_files_of_every_format(tmp_path, kind):
    import pandas as pd

    if kind == "json-list":
        path = tmp_path / "rows.json"
        path.write_text(json.dumps(ROWS))
    elif kind in {"jsonl", "json-lines"}:
        path = tmp_path / ("rows.jsonl" if kind == "jsonl" else "rows.json")
        path.write_text("\n".join(json.dumps(r) for r in ROWS))
    elif kind == "csv":
        path = tmp_path / "rows.csv"
        pd.DataFrame(ROWS).to_csv(path, index=False)
    else:
        path = tmp_path / "rows.parquet"
        pd.DataFrame(ROWS).to_parquet(path)
    ds = data.load_code_alpaca(str(path))
    assert len(ds) == 2 and ds[0]["output"] == "b a"
    assert ds[1]["input"] == "", "an empty input stays an empty string (csv would give None)"


def test_wrong_columns_name_expected_and_found(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps([{"question": "q", "answer": "a"}]))
    with pytest.raises(data.DatasetSchemaError) as err:
        data.load_code_alpaca(str(path))
    msg = str(err.value)
    assert "['instruction', 'input', 'output']" in msg and "['question', 'answer']" in msg
    assert isinstance(err.value, ValueError)


def test_missing_file_and_unknown_suffix(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        data.load_pairwise(str(tmp_path / "nope.jsonl"))
    odd = tmp_path / "rows.txt"
    odd.write_text("hello")
    with pytest.raises(ValueError, match="use one of .csv, .json, .jsonl, .parquet"):
        data.load_pairwise(str(odd))


def test_hub_id_offline_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(HubUnavailableError, match="(?s)stanfordnlp/imdb.*HF_HUB_OFFLINE.*PROFILE = \"tiny\""):
        data.load_imdb("stanfordnlp/imdb")


def test_synthetic_reviews_carry_their_sentiment():
    rows = synthetic.imdb_reviews(200, seed=0)
    for row in rows[:50]:
        words = set(row["text"].split())
        own = synthetic.POSITIVE_WORDS if row["label"] else synthetic.NEGATIVE_WORDS
        other = synthetic.NEGATIVE_WORDS if row["label"] else synthetic.POSITIVE_WORDS
        assert words & set(own) and not words & set(other)
