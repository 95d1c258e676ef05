"""The full-profile rehearsal: stand-ins, the seeded Hugging Face cache, and `labhelpers rehearse` on a lab."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from labhelpers import data
from labhelpers.config import CONFIG_CLASSES, config_labs, full_profile_hub_ids, profile_values
from labhelpers.course.rehearsal import (
    DATASET_STANDINS,
    MODEL_STANDINS,
    RehearsalError,
    check_standins,
    rehearsal_parameters,
    seed_hub_cache,
)
from labhelpers.course.rehearsal import standins as standins_module
from labhelpers.course.runner import lab_notebooks

# The loader each full-profile dataset id goes through in its lab, and the columns that loader requires.
LOADERS = {
    "sahil2801/CodeAlpaca-20k": (data.load_code_alpaca, data.CODE_ALPACA_COLUMNS, "train"),
    "Dahoas/synthetic-instruct-gptj-pairwise": (data.load_pairwise, data.PAIRWISE_COLUMNS, "train"),
    "trl-lib/ultrafeedback_binarized": (data.load_preferences, data.PREFERENCE_COLUMNS, "train"),
    "stanfordnlp/imdb": (data.load_imdb, data.IMDB_COLUMNS, "train"),
}


@pytest.fixture()
def offline_hub(tmp_path, monkeypatch):
    """A fresh HF_HOME, offline, as the rehearsal runs a lab; yields its hub cache folder."""
    import datasets
    import huggingface_hub.constants as hub_constants

    home = tmp_path / "hf"
    monkeypatch.setenv("HF_HOME", str(home))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    # both libraries read these once at import time
    monkeypatch.setattr(hub_constants, "HF_HUB_CACHE", str(home / "hub"))
    monkeypatch.setattr(hub_constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", home / "datasets")
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    return home / "hub"


def test_every_full_profile_id_has_a_standin():
    for lab in config_labs():
        ids = full_profile_hub_ids(profile_values(lab, "full"))
        assert check_standins(lab) == ids
        for repo_id, kind in ids.items():
            assert repo_id in (MODEL_STANDINS if kind == "model" else DATASET_STANDINS), (lab, repo_id)


def test_an_id_without_standin_is_named(monkeypatch):
    profiles = CONFIG_CLASSES["05_generation_parameters"].PROFILES
    monkeypatch.setitem(profiles, "full", {**profiles["full"], "model_name": "someone/unknown-model"})
    with pytest.raises(RehearsalError, match=r"model 'someone/unknown-model'.*MODEL_STANDINS"):
        check_standins("05_generation_parameters")


def test_shrunk_parameters_are_only_the_labs_own():
    for nb in lab_notebooks():
        params = rehearsal_parameters(nb)
        assert params["PROFILE"] == "full"
        source = next(c for c in json.loads(nb.read_text())["cells"] if "parameters" in c["metadata"].get("tags", []))
        declared = "".join(source["source"])
        for name in params:
            assert f"\n{name} =" in "\n" + declared, (nb.stem, name)
    assert rehearsal_parameters(Path("labs/05_generation_parameters.ipynb")) == {"PROFILE": "full", "MAX_NEW_TOKENS": 8}


def test_tokenizers_have_the_real_sizes_and_special_ids():
    gpt2 = standins_module.build_gpt2_tokenizer()
    assert (len(gpt2), gpt2.eos_token_id, gpt2.bos_token_id, gpt2.pad_token_id) == (50257, 50256, 50256, None)
    # GPT-2's real BPE: these are the ids gpt2 gives this text
    assert gpt2("Hello world, the film was great")["input_ids"] == [15496, 995, 11, 262, 2646, 373, 1049]
    opt = standins_module.build_opt_tokenizer()
    assert (len(opt), opt.pad_token_id, opt.bos_token_id, opt.eos_token_id, opt.unk_token_id) == (50265, 1, 2, 2, 3)
    assert opt("the film")["input_ids"][0] == 2  # OPT puts </s> before every text
    bert = standins_module.build_bert_uncased_tokenizer()
    ids = bert("The FILM was great")["input_ids"]
    assert (len(bert), bert.pad_token_id, bert.unk_token_id, bert.mask_token_id) == (30522, 0, 100, 103)
    assert ids[0] == 101 and ids[-1] == 102 and ids == bert("the film was great")["input_ids"]


def test_model_standins_have_the_real_shapes():
    """The configs alone (no weights): parameter counts of the real checkpoints."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForSequenceClassification

    expected = {"facebook/opt-350m": 331_196_416, "gpt2": 124_439_808, "lvwerra/gpt2-imdb": 124_439_808,
                "lvwerra/distilbert-imdb": 66_955_010, "Qwen/Qwen2.5-0.5B-Instruct": 494_032_768}
    for repo_id, row in MODEL_STANDINS.items():
        config = AutoConfig.for_model(row.model_type, **row.config)
        auto = AutoModelForCausalLM if row.head == "causal-lm" else AutoModelForSequenceClassification
        with torch.device("meta"):
            model = auto.from_config(config)
        assert sum(p.numel() for p in model.parameters()) == expected[repo_id], repo_id
    assert MODEL_STANDINS["lvwerra/distilbert-imdb"].config["id2label"] == {0: "NEGATIVE", 1: "POSITIVE"}


@pytest.mark.parametrize("repo_id", sorted(DATASET_STANDINS))
def test_dataset_standin_loads_through_the_labs_loader_offline(repo_id, offline_hub):
    """Seeded into the cache, each stand-in loads offline through the lab's own loader, with the real splits and
    column types, and with every column that loader requires (so stand-in and loader cannot drift apart)."""
    import datasets

    standin = DATASET_STANDINS[repo_id]
    seed_hub_cache(offline_hub, {repo_id: "dataset"})
    loader, required, split = LOADERS[repo_id]
    assert split in standin.files
    assert set(required) <= set(standin.features)
    loaded = loader(repo_id, n=10)
    assert len(loaded) == 10 and set(required) <= set(loaded.column_names)
    for name in standin.files:
        ds = data.load_hub_dataset(repo_id, split=name)
        assert ds.features == datasets.Features.from_dict(standin.features), (repo_id, name)
        assert len(ds) == standin.rows_per_split


def test_datasets_alone_cannot_read_the_hub_cache_offline(offline_hub):
    """Why labhelpers.data loads the snapshot itself: datasets 5 offline reads only its own prepared cache."""
    import datasets

    seed_hub_cache(offline_hub, {"stanfordnlp/imdb": "dataset"})
    with pytest.raises(ConnectionError):
        datasets.load_dataset("stanfordnlp/imdb", split="train")
    assert data.load_hub_dataset("stanfordnlp/imdb", split="test").features["label"].names == ["neg", "pos"]


def test_imdb_standin_reviews_survive_lab_04s_length_filter():
    rows = DATASET_STANDINS["stanfordnlp/imdb"].rows("train", 64, 0)
    assert min(len(r["text"]) for r in rows) > profile_values("04_ppo_rlhf", "full")["min_review_chars"]
    assert sorted({r["label"] for r in rows}) == [0, 1]


def test_seeded_cache_has_huggingface_hubs_layout(offline_hub):
    from huggingface_hub import try_to_load_from_cache

    snapshot = seed_hub_cache(offline_hub, {"trl-lib/ultrafeedback_binarized": "dataset"})[
        "trl-lib/ultrafeedback_binarized"]
    repo = offline_hub / "datasets--trl-lib--ultrafeedback_binarized"
    assert (repo / "refs" / "main").read_text() == snapshot.name and len(snapshot.name) == 40
    readme = try_to_load_from_cache("trl-lib/ultrafeedback_binarized", "README.md", repo_type="dataset")
    assert readme == str(snapshot / "README.md")
    assert (snapshot / "README.md").resolve().parent.name.startswith("trl-lib--ultrafeedback_binarized-")


def test_full_size_passes_only_the_profile():
    assert rehearsal_parameters(Path("labs/04_ppo_rlhf.ipynb"), full_size=True) == {"PROFILE": "full"}


def test_gpu_startup_file_reports_without_a_gpu(tmp_path):
    """The kernel start-up file of --gpu-memory-gib: harmless on a CPU, and it writes its report at exit."""
    import subprocess
    import sys

    from labhelpers.course.rehearsal.runner import write_gpu_startup

    startup = write_gpu_startup(tmp_path / "ipython", 14.75, tmp_path / "gpu.json")
    assert startup.parent == tmp_path / "ipython" / "profile_default" / "startup"
    code = f"import torch; torch.cuda.is_available = lambda: False; exec(open({str(startup)!r}).read())"
    subprocess.run([sys.executable, "-c", code], check=True)
    assert json.loads((tmp_path / "gpu.json").read_text()) == {"cuda": False, "cap_gib": 14.75}


@pytest.mark.notebook
def test_rehearse_05_runs_the_full_profile_with_gpt2(tmp_path):
    """Acceptance: `labhelpers rehearse 05 --out DIR` executes lab 05's full profile without a cell error."""
    from labhelpers.course.cli import main
    from labhelpers.records import read_records

    assert main(["rehearse", "05", "--out", str(tmp_path)]) == 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    (lab,) = summary["labs"]
    assert lab["status"] != "error" and lab["error"] is None, lab
    assert lab["profile"] == "full" and lab["hub_ids"] == {"gpt2": "model"}
    assert lab["seconds"] > 0 and lab["peak_rss_mib"] > 500  # gpt2's fp32 weights alone are 475 MiB
    records = read_records(tmp_path / "05_generation_parameters.ipynb")
    assert records and {r["profile"] for r in records} == {"full"}
    nb = json.loads((tmp_path / "05_generation_parameters.ipynb").read_text())
    outputs = [o for c in nb["cells"] for o in c.get("outputs", [])]
    assert not [o for o in outputs if o["output_type"] == "error"]
    config_table = next("".join(o["text"]) for o in outputs if "model_name" in "".join(o.get("text", "")))
    assert re.search(r"model_name\s+gpt2\n", config_table) and "profile 'full'" in config_table


# ---- the half-precision rehearsal ---------------------------------------------------------------------------------
def _recorded_check_names(notebook: Path) -> set[str]:
    source = "".join("".join(c["source"]) for c in json.loads(notebook.read_text())["cells"] if c["cell_type"] == "code")
    return set(re.findall(r'record_check\(\s*"([a-z0-9_]+)"', source))


def test_half_precision_table_names_checks_and_parameters_the_labs_have():
    from labhelpers.course.rehearsal.half_precision import HALF_PRECISION_LABS
    from labhelpers.course.rehearsal.runner import parameter_names

    assert {"02_reward_modeling", "06_scaling_up"} <= set(HALF_PRECISION_LABS)
    assert "saved_reward_model_reloads" in HALF_PRECISION_LABS["02_reward_modeling"].checks
    assert "merged_matches_adapter" in HALF_PRECISION_LABS["06_scaling_up"].checks
    notebooks = {nb.stem: nb for nb in lab_notebooks()}
    for stem, row in HALF_PRECISION_LABS.items():
        assert row.checks and set(row.checks) <= _recorded_check_names(notebooks[stem]), stem
        assert set(row.parameters) <= set(parameter_names(notebooks[stem])), stem


PROBE = [
    "import copy, torch\n"
    "from datasets import Dataset\n"
    "from transformers import GPT2Config, GPT2LMHeadModel, Trainer, TrainingArguments\n"
    "from labhelpers import record_check, training\n"
    "from labhelpers.config import resolve_device_dtype\n"
    "device, dtype = resolve_device_dtype('tiny')\n"
    "record_check('ran_in_bf16', dtype == 'bfloat16', value=dtype)",
    "torch.manual_seed(0)\n"
    "model = GPT2LMHeadModel(GPT2Config(n_layer=2, n_embd=64, n_head=4, vocab_size=96, n_positions=32, resid_pdrop=0.0,\n"
    "                                  embd_pdrop=0.0, attn_pdrop=0.0))\n"
    "fresh = copy.deepcopy(model).eval()\n"
    "ids = torch.randint(0, 96, (8, 12))\n"
    "data = Dataset.from_dict({'input_ids': ids.tolist(), 'labels': ids.tolist()})\n"
    "args = TrainingArguments('out', max_steps=1, per_device_train_batch_size=4, learning_rate=0.0, use_cpu=True,\n"
    "                         bf16=dtype == 'bfloat16', report_to='none', save_strategy='no', disable_tqdm=True)\n"
    "training.train(Trainer(model=model, args=args, train_dataset=data))\n"
    "with torch.no_grad():\n"
    "    gap = (model.eval()(input_ids=ids).logits - fresh(input_ids=ids).logits).abs().max().item()\n"
    "record_check('trained_matches_fp32_copy', gap <= 1e-6, value=gap, threshold=1e-6)",
]
# An IPython start-up file that turns the unwrap of training.train off: the code before the fix.
NO_UNWRAP = "import labhelpers.training as t\nt.unwrap_mixed_precision = lambda model: 0\n"


@pytest.mark.notebook
def test_half_precision_rehearsal_fails_without_the_unwrap_and_passes_with_it(tmp_path, monkeypatch):
    """A probe notebook trains at lr = 0 in the rehearsal's environment and compares with a float32 copy: the
    rehearsal fails on its named check while accelerate's wrapper stays on (the old code), and passes with it off."""
    import nbformat

    from labhelpers.course.rehearsal import half_precision
    from labhelpers.course.rehearsal.half_precision import HalfPrecisionLab, rehearse_half_precision

    notebook = tmp_path / "91_probe.ipynb"
    kernel = {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
              "language_info": {"name": "python"}}
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in PROBE], metadata=kernel),
                   str(notebook))
    monkeypatch.setitem(half_precision.HALF_PRECISION_LABS, "91_probe",
                        HalfPrecisionLab(checks=("ran_in_bf16", "trained_matches_fp32_copy")))
    startup = tmp_path / "ipython" / "profile_default" / "startup" / "00-no-unwrap.py"
    startup.parent.mkdir(parents=True)
    startup.write_text(NO_UNWRAP)
    monkeypatch.setenv("IPYTHONDIR", str(tmp_path / "ipython"))
    before = rehearse_half_precision(notebook, tmp_path / "before")
    assert before.status == "checks failed", before
    assert before.named_checks["ran_in_bf16"]["passed"]
    assert not before.named_checks["trained_matches_fp32_copy"]["passed"]
    assert 1e-4 < before.named_checks["trained_matches_fp32_copy"]["value"] < 0.1  # bf16 rounding left on

    monkeypatch.delenv("IPYTHONDIR")
    after = rehearse_half_precision(notebook, tmp_path / "after")
    assert after.status == "passed" and after.named_checks["trained_matches_fp32_copy"]["value"] == 0.0, after


def _ran(records, status="checks failed"):
    """A stand-in for the runner's execution of a lab that recorded ``records``."""
    from labhelpers.course.runner import LabRun

    return lambda notebook, *a, **k: LabRun(lab=notebook.stem, status=status, seconds=1.0, output="", records=records,
                                            peak_rss_mib=1.0, cpu_seconds=1.0)


def test_a_missing_or_failed_named_check_fails_the_half_precision_rehearsal(tmp_path, monkeypatch):
    from labhelpers.course.rehearsal import half_precision, runner

    notebook = Path("labs/02_reward_modeling.ipynb")
    ok = [{"kind": "check", "name": n, "passed": True, "value": 0.0, "threshold": 1e-4}
          for n in half_precision.HALF_PRECISION_LABS["02_reward_modeling"].checks]
    other_failed = [{"kind": "check", "name": "win_rate_improves", "passed": False}]
    monkeypatch.setattr(runner, "_execute", _ran(ok + other_failed))
    result = half_precision.rehearse_half_precision(notebook, tmp_path)
    assert result.status == "passed" and result.failed_checks == ["win_rate_improves"]  # not a named check
    assert result.parameters == {"PROFILE": "tiny", "MAX_STEPS": 20}
    monkeypatch.setattr(runner, "_execute", _ran(ok[:1]))
    result = half_precision.rehearse_half_precision(notebook, tmp_path)
    missing = half_precision.HALF_PRECISION_LABS["02_reward_modeling"].checks[1]
    assert result.status == "checks failed" and result.named_checks[missing]["missing"]
    monkeypatch.setattr(runner, "_execute", _ran(ok, status="error"))
    assert half_precision.rehearse_half_precision(notebook, tmp_path).status == "error"


def test_half_precision_runs_in_tiny_with_the_autocast_variable(tmp_path, monkeypatch):
    from labhelpers.course.rehearsal import half_precision, runner

    seen = {}

    def child(notebook, out_path, parameters, env, cwd, timeout):
        seen.update(env=env, parameters=parameters)
        return _ran([], status="passed")(notebook)

    monkeypatch.setenv("LABS_PROFILE", "full")
    monkeypatch.setattr(runner, "_execute", child)
    half_precision.rehearse_half_precision(Path("labs/01_instruction_tuning.ipynb"), tmp_path)
    assert {k: seen["env"][k] for k in ("LABS_PROFILE", "LABS_CPU_AUTOCAST", "HF_HUB_OFFLINE")} == {
        "LABS_PROFILE": "tiny", "LABS_CPU_AUTOCAST": "bf16", "HF_HUB_OFFLINE": "1"}
    assert seen["parameters"] == {"PROFILE": "tiny"}  # a lab without a row: no shortened parameters
    assert half_precision.half_precision_labs() == list(half_precision.HALF_PRECISION_LABS)
    assert half_precision.half_precision_labs(["4"]) == ["04_ppo_rlhf"]


@pytest.mark.notebook  # starts Jupyter kernels for seconds each (the fast lane skips it)
def test_rehearse_lab_reports_the_kernels_memory_from_the_one_runner(tmp_path):
    """A lab without Hub ids, rehearsed for real: it runs offline in the rehearsal's own HF_HOME, and its peak RSS
    and CPU time are the kernel's, as the runner measured them (the kernel filled 200 MiB)."""
    import nbformat

    from labhelpers.course.rehearsal import rehearse_lab

    notebook = tmp_path / "91_probe.ipynb"
    cells = [nbformat.v4.new_code_cell('PROFILE = "tiny"', metadata={"tags": ["parameters"]}),
             nbformat.v4.new_code_cell(
                 "import os\nimport numpy as np\nfrom labhelpers import record_check\n"
                 "block = np.ones(200 * 2**20 // 8)\n"
                 "record_check('offline_in_its_own_home', os.environ['HF_HUB_OFFLINE'] == '1' and "
                 "'rehearse-91_probe-' in os.environ['HF_HOME'] and PROFILE == 'full', message=os.environ['HF_HOME'])")]
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, str(notebook))
    result = rehearse_lab(notebook, tmp_path / "out")
    assert result.status == "passed" and result.error is None, result
    assert result.hub_ids == {} and result.parameters == {"PROFILE": "full"}
    assert result.peak_rss_mib >= 200 and result.cpu_seconds > 0 and result.seconds > 0, result
