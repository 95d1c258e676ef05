"""The benchmark suite's measuring code: batches that hold the same tokens, honest time splits, targets."""

from __future__ import annotations

import json

import pytest
from conftest import ROOT, lab_paths, load_benchmark

bench_labs = load_benchmark("bench_labs")
bench_sft = load_benchmark("bench_sft")
suite = load_benchmark("run")


@pytest.fixture(scope="module")
def examples():
    return [[1, 2, 3], [4, 5, 6, 7, 8, 9], [10, 11], [12, 13, 14, 15], [16], [17, 18, 19, 20, 21]]


@pytest.mark.parametrize("strategy", bench_sft.STRATEGIES)
def test_every_batching_strategy_trains_on_exactly_the_same_tokens(strategy, examples):
    batches = bench_sft.make_batches(strategy, examples, batch_size=2, max_length=8, pad_id=0)
    assert bench_sft.non_pad_tokens(batches) == sum(map(len, examples))
    if strategy in ("padding_free", "packed_bfd"):
        seen = sorted(int(t) for b in batches for t in b["input_ids"].flatten())
        assert seen == sorted(t for e in examples for t in e)  # flattened: no padding at all
        for b in batches:  # each sequence restarts its positions, and its first token is never a target
            starts = b["position_ids"][0] == 0
            assert (b["labels"][0][starts] == -100).all()
            assert int(starts.sum()) == int((b["labels"][0] == -100).sum())
    else:
        for b in batches:
            assert ((b["attention_mask"] == 0) == (b["labels"] == -100)).all()
            if strategy == "max_length":
                assert b["input_ids"].shape[1] == 8


def test_length_grouping_puts_similar_lengths_together():
    # transformers sorts within "megabatches" of up to 50 batches, fewer for a small set: give it 100 batches
    examples = [[1] * n for n in [2, 30, 3, 31, 2, 29, 3, 30] * 100]
    grouped = bench_sft.make_batches("group_by_length", examples, 8, 64, 0)
    plain = bench_sft.make_batches("longest", examples, 8, 64, 0)
    cells = lambda batches: sum(b["input_ids"].numel() for b in batches)  # noqa: E731
    assert cells(grouped) < 0.75 * cells(plain)


def test_flattened_batches_keep_gpt2_sequences_apart_but_not_opt():
    """The finding behind lab 01's batching: without FlashAttention, OPT lets packed sequences see each other.

    An architecture's property, so the zoo's shapes with seeded random weights show it, with nothing to train."""
    import torch
    from transformers import AutoModelForCausalLM

    from labhelpers import tiny

    errors = {}
    for name in ("tiny-gpt2", "tiny-opt"):
        recipe = tiny.RECIPES[name]
        tokenizer = tiny.build_tokenizer(recipe.architecture)
        examples = bench_sft.tokenised_examples(tokenizer, 64, n=8)
        torch.manual_seed(0)
        model = AutoModelForCausalLM.from_config(tiny._model_config(recipe, tokenizer)).eval()
        pad = tokenizer.eos_token_id
        errors[name] = {s: bench_sft.max_logit_error(model, s, examples, 64, pad) for s in ("longest", "padding_free")}
    assert errors["tiny-gpt2"]["longest"] < 1e-4 and errors["tiny-gpt2"]["padding_free"] < 1e-4
    assert errors["tiny-opt"]["longest"] < 1e-4
    assert errors["tiny-opt"]["padding_free"] > 0.1


def test_lab_time_is_split_at_section_one(tmp_path):
    def cell(kind, source, seconds=None):
        c = {"cell_type": kind, "source": source, "metadata": {}}
        if seconds is not None:
            c["metadata"]["papermill"] = {"duration": seconds}
        return c

    nb = {"cells": [cell("markdown", "# Lab"), cell("code", "import torch", 4.0), cell("code", "cfg = 1", 1.0),
                    cell("markdown", "## 1. The data"), cell("code", "train()", 20.0),
                    cell("markdown", "## 10. More"), cell("code", "x", 2.5)]}
    path = tmp_path / "lab.ipynb"
    path.write_text(json.dumps(nb))
    assert bench_labs.split_times(path, wall_s=30.0) == {"kernel_s": 2.5, "setup_s": 5.0, "lab_s": 22.5}


@pytest.mark.notebook  # starts Jupyter kernels for seconds each (the fast lane skips it)
def test_a_lab_run_reports_the_kernels_peak_memory_from_the_runner(tmp_path):
    """bench_labs takes peak memory and CPU time from the runner (no process of its own): a kernel that fills
    200 MiB in the lab's section 1 reports at least that."""
    import nbformat

    cells = [nbformat.v4.new_markdown_cell("# Lab"), nbformat.v4.new_code_cell("import numpy as np"),
             nbformat.v4.new_markdown_cell("## 1. Work"), nbformat.v4.new_code_cell("block = np.ones(200 * 2**20 // 8)")]
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, str(tmp_path / "91_probe.ipynb"))
    row = bench_labs.run_once(tmp_path / "91_probe.ipynb")
    assert row["peak_rss_mib"] >= 200 and row["cpu_s"] > 0, row
    assert row["status"] == "no checks" and row["lab_s"] > 0 and row["wall_s"] >= row["setup_s"] + row["lab_s"], row


def test_targets_flag_a_slow_lab_and_a_small_speedup():
    results = {"labs": {"total_wall_s": 310.0, "total_limit_s": 300, "labs": {
        "01_x": {"wall_s": 95.0, "limit_s": 90, "status": ["passed 6/6"]},
        "04_y": {"wall_s": 100.0, "limit_s": 120, "status": ["checks failed 5/6"]}}},
        "sft": {"models": {"m": {"strategies": {"padding_free": {"speedup_vs_max_length": 1.2},
                                                "packed_bfd": {"speedup_vs_max_length": 1.6}}}}},
        "grading": {"notebooks": 100, "median_s": 2.0}}
    met = {name: ok for name, ok, _ in suite.targets(results)}
    assert met == {"01_x ≤ 90 s": False, "04_y ≤ 120 s": True, "all labs ≤ 300 s": False,
                   "every lab passes all its checks": False,
                   "m: padding-free or packed ≥ 1.5× naive padding": True,
                   "grading 100 notebooks ≤ 5 s": True}


def test_the_readme_block_shows_the_stored_figures_todays_limits_and_names_an_unmeasured_lab(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))  # the suite imports its parts by name, as a script does
    stored = json.loads((ROOT / "benchmarks" / "results" / "tiny.json").read_text())
    # every lab in labs/ gets a row (a stored one, or a copy of the first), then one is left out
    first = next(iter(stored["labs"]["labs"].values()))
    complete = {path.stem: stored["labs"]["labs"].get(path.stem, first) for path in lab_paths()}
    dropped = "03_dpo"
    kept = {lab: row for lab, row in complete.items() if lab != dropped}
    stored["labs"]["labs"] = kept
    stored["labs"]["total_limit_s"] = 1  # a limit from an older run: the block shows today's instead
    results = tmp_path / "tiny.json"
    results.write_text(json.dumps(stored))

    block = suite.readme_block(results)
    assert f"**Not measured: {dropped}.**" in block
    assert f"| {dropped} |" not in block, "an unmeasured lab got a row of figures"
    for lab, row in kept.items():
        assert f"| {lab} | {row['wall_s']:.1f} s |" in block
        if lab in bench_labs.LIMITS_S:
            assert f"| {lab} ≤ {bench_labs.LIMITS_S[lab]} s | yes | {row['wall_s']:.1f} s |" in block
    total = f"{stored['labs']['total_wall_s']:.1f} s"
    assert f"| all labs ≤ {bench_labs.TOTAL_LIMIT_S} s | not known | {total} without {dropped} |" in block
    assert f"{dropped}: not measured |" in block

    stored["labs"]["labs"] = complete
    results.write_text(json.dumps(stored))
    assert "Not measured" not in suite.readme_block(results) and "not known" not in suite.readme_block(results)
