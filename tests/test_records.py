"""Records: what the learner sees, and the JSON the tests and the grader read."""

from __future__ import annotations

import json
import math

import nbformat
import pytest
from nbclient import NotebookClient

from labhelpers import records


def test_result_and_check_records_outside_a_kernel(capsys):
    records.set_context(lab="05_generation_parameters", profile="tiny")
    before = len(records.recorded())
    records.record_result("bleu_after", 41.23456789, description="greedy")
    records.record_check("gain", False, value=3.0, threshold=20, message="BLEU rises", points=2, required=True)
    out = capsys.readouterr().out
    assert "bleu_after = 41.23" in out and "FAIL gain: BLEU rises" in out and "threshold 20" in out
    result, check = records.recorded()[before:]
    assert result["kind"] == "result" and result["value"] == 41.234568 and result["lab"] == "05_generation_parameters"
    assert check == {**check, "kind": "check", "passed": False, "points": 2, "required": True, "profile": "tiny"}
    assert set(check["versions"]) >= {"torch", "transformers", "trl", "datasets"}


def test_values_become_json():
    import torch

    records.record_result("pair", {"before": torch.tensor(1.5), "after": float("nan")})
    assert records.recorded()[-1]["value"] == {"before": 1.5, "after": None}
    assert not math.isnan(json.loads(json.dumps(records.recorded()[-1]))["value"]["before"] - 1.5)


def test_a_name_is_required():
    with pytest.raises(ValueError, match="non-empty string name"):
        records.record_result("", 1)


def test_records_travel_through_a_real_kernel_and_back(tmp_path):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        "from labhelpers import record_result, record_check\n"
        "from labhelpers.records import set_context\n"
        "set_context(lab='05_generation_parameters', profile='tiny')\n"
        "record_result('x', 1.5)\n"
        "record_check('x_positive', 1.5 > 0, value=1.5, threshold=0, message='x is positive')\n"
        "record_check('x_big', 1.5 > 10, value=1.5, threshold=10, message='x is big')\n"
        "print('still running after a failed check')")])
    NotebookClient(nb, timeout=120, kernel_name="python3").execute()
    outputs = nb.cells[0].outputs
    mimes = [o for o in outputs if o.get("output_type") == "display_data"]
    assert all(records.MIME in o["data"] and "text/html" in o["data"] for o in mimes)
    assert "#c00000" in mimes[-1]["data"]["text/html"], "failed checks are shown in red"
    found = records.read_records(nb)
    assert [(r["name"], r["kind"], r.get("passed")) for r in found] == [
        ("x", "result", None), ("x_positive", "check", True), ("x_big", "check", False)]
    path = tmp_path / "executed.ipynb"
    nbformat.write(nb, path)
    assert records.read_records(path) == found
    assert "still running" in "".join(o.get("text", "") for o in outputs)
