"""Records: what the learner sees, and the JSON the tests and the grader read."""

from __future__ import annotations

import json

import nbformat
import numpy as np
import pytest
import torch
from nbclient import NotebookClient

from labhelpers import records


@pytest.fixture(autouse=True)
def private_log(monkeypatch):
    """Each test records into its own log and context, so the session's records stay as they were."""
    monkeypatch.setattr(records, "_log", [])
    monkeypatch.setattr(records, "_context", {"lab": "05_generation_parameters", "profile": "tiny"})


def test_result_and_check_records_outside_a_kernel(capsys):
    records.record_result("bleu_after", 41.23456789, description="greedy")
    records.record_check("gain", False, value=3.0, threshold=20, message="BLEU rises", required=True)
    out = capsys.readouterr().out
    assert "bleu_after = 41.23" in out and "FAIL gain: BLEU rises" in out and "threshold 20" in out
    result, check = records.recorded()
    assert result["kind"] == "result" and result["value"] == 41.2346 and result["lab"] == "05_generation_parameters"
    assert check == {**check, "kind": "check", "passed": False, "required": True, "profile": "tiny",
                     "direction": ">=", "schema": 3}
    assert set(check["versions"]) >= {"torch", "transformers", "trl", "datasets"}
    assert "code" not in check, "outside a kernel there is no input history to digest"


@pytest.mark.parametrize("value,stored", [(2.4e-7, 2.4e-7), (-1234567.89, -1234570.0), (0.1 + 0.2, 0.3),
                                          (3, 3), (np.float32(0.5), 0.5), (torch.tensor(1.5), 1.5)])
def test_numbers_keep_six_significant_figures(value, stored):
    records.record_result("x", value)
    assert records.recorded()[-1]["value"] == stored
    assert type(records.recorded()[-1]["value"]) is type(stored)


def test_arrays_become_lists_and_non_finite_values_null_with_their_text(capsys):
    records.record_result("pair", {"before": torch.tensor(1.5), "after": float("nan"),
                                   "curve": np.array([1.0, np.inf, 2.0])})
    record = records.recorded()[-1]
    assert record["value"] == {"before": 1.5, "after": None, "curve": [1.0, None, 2.0]}
    assert "nan" in record["value_text"] and "inf" in record["value_text"]
    assert json.loads(json.dumps(record, allow_nan=False)) == record, "strict JSON: no NaN or Infinity tokens"
    assert "after=nan" in capsys.readouterr().out, "the learner sees the original value"
    records.record_result("finite", [1.0, 2.0])
    assert "value_text" not in records.recorded()[-1]


@pytest.mark.parametrize("passed,value,threshold,direction", [
    (True, 0.9, 1.0, "<="), (True, 1.1, 1.0, ">="), (True, 1.0, 1.0, "=="),
    (False, 0.9, 1.0, ">="), (False, 1.1, 1.0, "<="), (False, 1.0, 1.0, ">"),
    (True, [1, 2], 1.0, None), (True, 1.0, None, None), (True, True, 1, None),
    (True, "b", "b", "=="), (False, "a", "b", "=="), (True, "a", "b", None), (False, True, True, None),
    (False, 1.0000001, 1.0, ">"),  # equal once stored with 6 figures
])
def test_direction_is_inferred_so_the_outcome_can_be_recomputed(passed, value, threshold, direction):
    records.record_check("c", passed, value=value, threshold=threshold)
    record = records.recorded()[-1]
    assert record["direction"] == direction
    if direction:
        from labhelpers.course.grading.inspection import recomputed_pass

        # a tie under a strict comparison cannot be told from 6 stored figures (the value may have been just
        # above): the grader then keeps what the record says; every other outcome is recomputed exactly
        tie = isinstance(value, float) and records.round_significant(value) == threshold and direction == ">"
        assert recomputed_pass(record) is (None if tie else passed)


def test_explicit_direction_is_kept_and_a_wrong_one_is_refused():
    records.record_check("c", True, value=5, threshold=3, direction=">")
    assert records.recorded()[-1]["direction"] == ">"
    with pytest.raises(ValueError, match="direction must be one of"):
        records.record_check("c", True, value=5, threshold=3, direction="=>")


def test_a_check_record_carries_no_points():
    """Points are the grader's decision (labhelpers/course/points.py): a record neither holds nor takes them."""
    records.record_check("low_temperature_equals_greedy", True, value=1.0, threshold=0.5, required=True)
    assert set(records.recorded()[-1]) == {"schema", "lab", "name", "kind", "profile", "versions", "passed", "value",
                                           "threshold", "direction", "message", "required"}
    records.record_check("not_in_the_table", True, points=3)  # as a notebook made before schema 3 calls it
    assert "points" not in records.recorded()[-1]


def test_a_name_is_required():
    with pytest.raises(ValueError, match="non-empty string name"):
        records.record_result("", 1)


def test_records_travel_through_a_real_kernel_with_code_digests(tmp_path):
    setup = ("from labhelpers import record_result, record_check\n"
             "from labhelpers.records import set_context\n"
             "set_context(lab='05_generation_parameters', profile='tiny')")
    body = ("record_result('x', 1.5)\n"
            "record_check('x_positive', 1.5 > 0, value=1.5, threshold=0, message='x is positive')\n"
            "record_check('x_big', 1.5 > 10, value=1.5, threshold=10, message='x is big')\n"
            "print('still running after a failed check')")
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(setup), nbformat.v4.new_code_cell(body)])
    NotebookClient(nb, timeout=120, kernel_name="python3").execute()
    outputs = nb.cells[1].outputs
    mimes = [o for o in outputs if o.get("output_type") == "display_data"]
    assert all(records.MIME in o["data"] and "text/html" in o["data"] for o in mimes)
    assert "#c00000" in mimes[-1]["data"]["text/html"], "failed checks are shown in red"
    found = records.read_records(nb)
    assert [(r["name"], r["kind"], r.get("passed")) for r in found] == [
        ("x", "result", None), ("x_positive", "check", True), ("x_big", "check", False)]
    assert all(r["code"] == {"count": 2, "cell": records.source_digest(body),
                             "history": [records.source_digest(setup, records.HISTORY_DIGEST_CHARS)]} for r in found)
    path = tmp_path / "executed.ipynb"
    nbformat.write(nb, path)
    assert records.read_records(path) == found
    assert "still running" in "".join(o.get("text", "") for o in outputs)
