"""The real learner's path: device and dtype by what the GPU has natively, and the Hub as huggingface_hub means it.

Only the hardware's answers are mocked (``is_available``, ``current_device``, ``get_device_properties``,
``get_device_name`` and whether a bf16 tensor can be allocated); torch's own ``is_bf16_supported`` decides.
The Hub is a seeded cache in a temporary folder, or a small HTTP server on 127.0.0.1 reached as ``HF_ENDPOINT``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from labhelpers import hub
from labhelpers.config import HubUnavailableError, lab_config, resolve_device_dtype
from labhelpers.course import cli

GPUS = {"T4": ("Tesla T4", 7, 5), "A100": ("NVIDIA A100-SXM4-40GB", 8, 0)}


@pytest.fixture
def gpu(monkeypatch):
    """``gpu("T4")`` makes torch report that GPU; a bf16 tensor can be allocated on either (as on a real T4)."""

    def install(kind: str):
        name, major, minor = GPUS[kind]
        props = SimpleNamespace(name=name, major=major, minor=minor, total_memory=15 * 2**30)
        monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
        monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
        monkeypatch.setattr(torch.cuda, "get_device_properties", lambda device=None: props)
        monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (major, minor))
        monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: name)
        monkeypatch.setattr(torch.cuda, "_check_bf16_tensor_supported", lambda device: True, raising=False)
        monkeypatch.setattr(torch.version, "hip", None)

    return install


@pytest.fixture
def hf_cache(monkeypatch, tmp_path):
    """An empty Hugging Face hub cache, offline; ``seed(repo_id, files, repo_type)`` puts a snapshot in it."""
    from huggingface_hub import constants

    cache = tmp_path / "hub"
    cache.mkdir()
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "datasets"))
    import datasets

    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "datasets")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("LABS_PROFILE", raising=False)

    def seed(repo_id: str, files: dict[str, bytes], repo_type: str = "model") -> Path:
        folder = cache / f"{repo_type}s--{repo_id.replace('/', '--')}"
        commit = "0" * 40
        snapshot = folder / "snapshots" / commit
        snapshot.mkdir(parents=True)
        (folder / "refs").mkdir()
        (folder / "refs" / "main").write_text(commit)
        for name, content in files.items():
            (snapshot / name).write_bytes(content)
        return snapshot

    seed.root = cache
    return seed


# ------------------------------------------------------------------------------------------------
# Device and dtype
# ------------------------------------------------------------------------------------------------
def test_a_t4_trains_in_fp16_although_torch_counts_emulated_bf16(gpu):
    gpu("T4")
    assert torch.cuda.is_bf16_supported()  # the trap: emulation counts by default
    assert resolve_device_dtype("full") == ("cuda", "float16")


def test_an_a100_trains_in_bf16(gpu):
    gpu("A100")
    assert resolve_device_dtype("full") == ("cuda", "bfloat16")


def test_without_a_gpu_everything_is_fp32_on_the_cpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device_dtype("full") == ("cpu", "float32")
    assert resolve_device_dtype("tiny") == ("cpu", "float32")
    with pytest.raises(ValueError, match="DEVICE='cuda' was asked for, but torch sees no CUDA GPU"):
        resolve_device_dtype("tiny", "cuda")


def test_tiny_stays_on_the_cpu_on_a_gpu_machine_unless_asked(gpu):
    gpu("T4")
    cfg = lab_config("05", "tiny", quiet=True)
    assert (cfg.device, cfg.dtype) == ("cpu", "float32")
    cfg = lab_config("05", "tiny", quiet=True, DEVICE="cuda")
    assert (cfg.device, cfg.dtype) == ("cuda", "float16")


def test_full_on_a_t4_resolves_to_cuda_fp16(gpu, tmp_path):
    gpu("T4")
    cfg = lab_config("05", "full", quiet=True, MODEL_NAME=str(tmp_path))
    assert (cfg.device, cfg.dtype, cfg.fp16, cfg.bf16) == ("cuda", "float16", True, False)


@pytest.mark.parametrize("field", ["LAB", "DTYPE", "PROFILE", "OUTPUT_DIR"])
def test_fields_lab_config_sets_itself_cannot_be_overridden(field):
    with pytest.raises(ValueError, match=f"{field!r} is set by lab_config itself"):
        lab_config("05", "tiny", quiet=True, **{field: "x"})


def test_a_wrong_device_is_a_value_error():
    with pytest.raises(ValueError, match="DEVICE must be 'cpu' or 'cuda'"):
        lab_config("05", "tiny", quiet=True, DEVICE="tpu")


# ------------------------------------------------------------------------------------------------
# The Hub: cache first, HF_HUB_OFFLINE means "cache only"
# ------------------------------------------------------------------------------------------------
MODEL_FILES = {"config.json": b"{}", "model.safetensors": b"", "tokenizer.json": b"{}"}


def test_offline_full_loads_from_a_seeded_cache(hf_cache, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    hf_cache("gpt2", MODEL_FILES)
    with pytest.warns(UserWarning, match="meant for a GPU"):
        cfg = lab_config("05", "full", quiet=True)
    assert cfg.profile == "full" and cfg.model_name == "gpt2"
    assert hub.locate("gpt2").source == "cache"


def test_offline_full_without_the_cache_names_what_is_missing_and_the_ways_out(hf_cache):
    with pytest.raises(HubUnavailableError) as err:
        lab_config("01", "full", quiet=True)
    message = str(err.value)
    assert "model facebook/opt-350m: not in the Hugging Face cache" in message
    assert "dataset sahil2801/CodeAlpaca-20k: not in the Hugging Face cache" in message
    assert "HF_HUB_OFFLINE is set" in message and 'PROFILE = "tiny"' in message
    assert "Traceback" not in "\n".join(err.value._render_traceback_())


def test_a_cached_model_without_its_tokenizer_names_the_missing_file(hf_cache):
    hf_cache("gpt2", {"config.json": b"{}", "model.safetensors": b""})
    location = hub.locate("gpt2")
    assert not location.found and "not its tokenizer files (missing tokenizer.json" in location.problem


def test_a_cached_dataset_is_found_offline(hf_cache):
    hf_cache("stanfordnlp/imdb", {"README.md": b"---\n---\n"}, repo_type="dataset")
    assert hub.locate("stanfordnlp/imdb", "dataset").source == "cache"
    assert not hub.locate("trl-lib/ultrafeedback_binarized", "dataset").found


def test_auto_on_a_gpu_without_hub_or_cache_runs_tiny_and_says_why(hf_cache, gpu):
    gpu("T4")
    cfg = lab_config("05", "auto", quiet=True)
    assert cfg.profile == "tiny" and (cfg.device, cfg.dtype) == ("cpu", "float32")
    assert "found a CUDA GPU (Tesla T4) but cannot get gpt2" in cfg.reason


def test_auto_on_a_gpu_with_the_cache_runs_full(hf_cache, gpu):
    gpu("T4")
    hf_cache("gpt2", MODEL_FILES)
    cfg = lab_config("05", "auto", quiet=True)
    assert (cfg.profile, cfg.device, cfg.dtype) == ("full", "cuda", "float16")


@pytest.mark.parametrize("cached", [False, True])
def test_auto_on_a_gpu_looks_each_hub_id_up_once(hf_cache, gpu, monkeypatch, cached):
    """Choosing the profile and checking the full profile's ids is one lookup (online: one Hub request per id)."""
    gpu("T4")
    if cached:
        hf_cache("gpt2", MODEL_FILES)
    asked = []
    real_locate = hub.locate

    def counting_locate(repo_id, repo_type="model", **options):
        asked.append(repo_id)
        return real_locate(repo_id, repo_type, **options)

    monkeypatch.setattr(hub, "locate", counting_locate)
    cfg = lab_config("05", "auto", quiet=True)
    assert cfg.profile == ("full" if cached else "tiny")
    assert asked == ["gpt2"]


@pytest.mark.parametrize("how", ["parameter", "environment"])
def test_full_asked_for_on_a_gpu_without_the_models_stops_instead_of_falling_back(hf_cache, gpu, monkeypatch, how):
    gpu("T4")
    if how == "environment":
        monkeypatch.setenv("LABS_PROFILE", "full")
    with pytest.raises(HubUnavailableError, match="gpt2"):
        lab_config("05", "full" if how == "parameter" else "auto", quiet=True)


def test_labhelpers_run_lets_each_lab_resolve_auto(monkeypatch, tmp_path, gpu, hf_cache):
    """README command 1 on a CUDA machine without the Hub: the labs get PROFILE='auto', which runs tiny."""
    gpu("T4")
    seen = []

    def fake_execute(nb, out, parameters, timeout, **limits):
        seen.append(parameters["PROFILE"])
        return SimpleNamespace(lab=nb.stem, status="passed", seconds=0.0, checks_passed=0, checks_total=0,
                               error=None, records=[])

    monkeypatch.setattr("labhelpers.course.runner.execute_lab", fake_execute)
    monkeypatch.setattr("labhelpers.course.runner.write_summary", lambda runs, out: out / "summary.json")
    assert cli.main(["run", "05", "--out", str(tmp_path / "runs")]) == 0
    assert seen == ["auto"]
    assert lab_config("05", seen[0], quiet=True).profile == "tiny"


def test_transformers_loads_a_model_from_the_seeded_cache_offline(tmp_path):
    """The cache layout the checks read is the one from_pretrained reads (fresh process, HF_HOME set)."""
    from labhelpers.tiny import zoo_path

    code = f"""
import shutil, pathlib
from huggingface_hub import constants
snap = pathlib.Path(constants.HF_HUB_CACHE) / "models--gpt2" / "snapshots" / ("0" * 40)
shutil.copytree({str(zoo_path('tiny-gpt2'))!r}, snap)
(snap.parents[1] / "refs").mkdir()
(snap.parents[1] / "refs" / "main").write_text("0" * 40)
from labhelpers import hub
from transformers import AutoModelForCausalLM, AutoTokenizer
model = AutoModelForCausalLM.from_pretrained("gpt2")
tok = AutoTokenizer.from_pretrained("gpt2")
print(hub.locate("gpt2").source, type(model).__name__, len(tok) > 0)
"""
    env = {**os.environ, "HF_HOME": str(tmp_path / "hf"), "HF_HUB_OFFLINE": "1"}
    env.pop("HF_HUB_CACHE", None)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split()[-3:] == ["cache", "GPT2LMHeadModel", "True"]


# ------------------------------------------------------------------------------------------------
# Online: asked through huggingface_hub's session, so HF_ENDPOINT with a port works
# ------------------------------------------------------------------------------------------------
class _FakeHub(BaseHTTPRequestHandler):
    known = {"/api/models/gpt2", "/api/datasets/stanfordnlp/imdb"}

    def do_GET(self):  # noqa: N802 (the http.server API)
        path = self.path.split("?")[0].removesuffix("/revision/main")
        if path in self.known:
            body = json.dumps({"id": path.split("/", 3)[-1], "sha": "0" * 40, "siblings": []}).encode()
            self.send_response(200)
        else:
            body = b'{"error": "Repository not found"}'
            self.send_response(404)
            self.send_header("X-Error-Code", "RepoNotFound")
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_HEAD = do_GET

    def log_message(self, *args):
        pass


@pytest.fixture
def fake_hub(monkeypatch, hf_cache):
    from huggingface_hub import constants

    server = ThreadingHTTPServer(("127.0.0.1", 0), _FakeHub)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "ENDPOINT", f"http://127.0.0.1:{server.server_port}")
    yield server
    server.shutdown()


def test_online_ids_are_found_on_the_hub_through_hf_endpoint_with_a_port(fake_hub):
    assert hub.locate("gpt2").source == "hub"
    assert hub.locate("stanfordnlp/imdb", "dataset").source == "hub"


def test_an_unknown_model_id_says_the_hub_and_the_cache_were_tried(fake_hub, tmp_path):
    with pytest.raises(HubUnavailableError) as err:
        lab_config("05", "full", quiet=True, MODEL_NAME="nobody/no-such-model")
    message = str(err.value)
    assert "nobody/no-such-model: not in the Hugging Face cache; the Hub" in message
    assert "has no model named 'nobody/no-such-model'" in message


def test_an_unreachable_hub_is_said_so(hf_cache, monkeypatch):
    import socket

    from huggingface_hub import constants

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "ENDPOINT", f"http://127.0.0.1:{port}")
    monkeypatch.setattr(hub, "RETRY_DELAYS", (0.0, 0.0, 0.0))  # a refused connection is asked again at once here
    location = hub.locate("gpt2", timeout=2)
    assert not location.found and f"the Hub (http://127.0.0.1:{port}) cannot be reached" in location.problem


@pytest.mark.notebook
def test_a_lab_in_full_without_hub_or_cache_stops_in_its_config_cell_with_one_message(tmp_path, monkeypatch):
    """Executed for real: the first error is the config cell's, its traceback is the message, no cell runs after."""
    import nbformat
    from conftest import LABS

    from labhelpers.course.runner import execute_lab

    monkeypatch.setenv("HF_HOME", str(tmp_path / "empty-hf-home"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    out = tmp_path / "05.ipynb"
    run = execute_lab(LABS / "05_generation_parameters.ipynb", out, parameters={"PROFILE": "full"}, timeout=300)
    assert run.status == "error" and 'PROFILE = "tiny"' in (run.error or "")
    nb = nbformat.read(str(out), as_version=4)
    errors = [(i, o) for i, c in enumerate(nb.cells) if c.cell_type == "code" for o in c.get("outputs", [])
              if o.output_type == "error"]
    assert len(errors) == 1
    index, error = errors[0]
    assert error.ename == "HubUnavailableError"
    assert "lab_config(" in nb.cells[index].source
    shown = "\n".join(error.traceback)
    assert "model gpt2: not in the Hugging Face cache" in shown and 'PROFILE = "tiny"' in shown
    assert "Traceback" not in shown and "File " not in shown  # the message alone, no stack
    later = [c for c in nb.cells[index + 1:] if c.cell_type == "code"]
    assert all(c.get("execution_count") is None for c in later)


# ------------------------------------------------------------------------------------------------
# A busy or failing Hub: asked again with backoff, and on a GPU never a silent tiny
# ------------------------------------------------------------------------------------------------
class _BusyHub(_FakeHub):
    """Answers each request with the next status of ``statuses`` (then 200), counting the requests."""

    statuses: list[int] = []
    requests = 0

    def do_GET(self):  # noqa: N802
        type(self).requests += 1
        if type(self).statuses:
            status = type(self).statuses.pop(0)
            body = b'{"error": "busy"}'
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        super().do_GET()

    do_HEAD = do_GET


@pytest.fixture
def busy_hub(monkeypatch, hf_cache):
    """``busy_hub([429, 503])``: a Hub that answers those statuses first; no waiting between the tries."""
    from huggingface_hub import constants

    monkeypatch.setattr(hub, "RETRY_DELAYS", (0.0, 0.0, 0.0))
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    servers = []

    def start(statuses):
        handler = type("Busy", (_BusyHub,), {"statuses": list(statuses), "requests": 0})
        server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        monkeypatch.setattr(constants, "ENDPOINT", f"http://127.0.0.1:{server.server_port}")
        servers.append(server)
        return handler

    yield start
    for server in servers:
        server.shutdown()


def test_a_busy_hub_is_asked_again_until_it_answers(busy_hub):
    handler = busy_hub([429, 503])
    assert hub.locate("gpt2").source == "hub"
    assert handler.requests == 3


def test_a_hub_still_busy_after_the_retries_is_named_with_its_status(busy_hub):
    handler = busy_hub([503] * 10)
    location = hub.locate("gpt2")
    assert not location.found and not location.offline_only
    assert "cannot be reached (HTTP 503, 4 tries" in location.problem
    assert handler.requests == len(hub.RETRY_DELAYS) + 1


def test_an_unknown_id_is_not_asked_again(busy_hub):
    handler = busy_hub([])
    assert "has no model named 'nobody/none'" in hub.locate("nobody/none").problem
    assert handler.requests == 1


@pytest.mark.parametrize("statuses", [[429] * 10, [500] * 10, []], ids=["429", "5xx", "404"])
def test_auto_on_a_gpu_stops_on_a_hub_error_instead_of_running_tiny(busy_hub, gpu, statuses):
    gpu("T4")
    busy_hub(statuses)
    model = "gpt2" if statuses else "nobody/none"
    with pytest.raises(HubUnavailableError, match=model):
        lab_config("05", "auto", quiet=True, MODEL_NAME=model)


def test_labs_gpu_autocast_runs_an_a100_as_a_t4(gpu, monkeypatch):
    """The prepared GPU command's fp16 on a bf16-native GPU; a wrong value is named, never ignored."""
    gpu("A100")
    assert resolve_device_dtype("full") == ("cuda", "bfloat16")
    monkeypatch.setenv("LABS_GPU_AUTOCAST", "fp16")
    assert resolve_device_dtype("full") == ("cuda", "float16")
    assert resolve_device_dtype("tiny") == ("cpu", "float32")  # the CPU keeps float32
    monkeypatch.setenv("LABS_GPU_AUTOCAST", "fp8")
    with pytest.raises(ValueError, match="LABS_GPU_AUTOCAST='fp8'.*'fp16' or 'bf16'"):
        resolve_device_dtype("full")
