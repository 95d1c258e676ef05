"""The tests' own isolation (tests/conftest.py): the run's zoo cache, never the user's, and a record context that
one test cannot leak into the next. The pairs below run in file order: the first test leaks on purpose, without
monkeypatch, and the second one checks that the autouse fixture undid it."""

from __future__ import annotations

import os
from pathlib import Path

from conftest import ROOT, ZOO_CACHE

from labhelpers import records, tiny


def test_the_zoo_is_the_runs_cache_and_not_the_users():
    from platformdirs import user_cache_dir

    assert tiny.cache_dir() == Path(ZOO_CACHE)
    assert Path(ZOO_CACHE).expanduser().resolve() != Path(user_cache_dir("labhelpers")).resolve(), (
        "the tests must not read or build the zoo in the user's own cache: unset LABHELPERS_CACHE (the run then "
        f"uses {ROOT / '.cache' / 'labhelpers'}) or point it at another folder")


def test_a_test_that_moves_the_cache_and_sets_a_context(tmp_path):
    os.environ["LABHELPERS_CACHE"] = str(tmp_path)  # a careless test: no monkeypatch
    records.set_context(lab="99_leaky", profile="full")
    records.record_result("leaked", 1.0)
    assert tiny.cache_dir() == tmp_path


def test_the_next_test_gets_the_runs_cache_and_a_clean_context_back():
    assert tiny.cache_dir() == Path(ZOO_CACHE)
    assert records._context == {"lab": None, "profile": None}
    assert records.recorded() == []
