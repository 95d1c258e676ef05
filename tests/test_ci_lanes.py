"""The CI lanes' helpers (.ci/): Colab's constraints, the lowest pins, the cp313 wheel check, the kernel probe."""

from __future__ import annotations

import importlib.util
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]
CI = ROOT / ".ci"
SHARED_FREEZE = ROOT.parent / "shared" / "colab" / "pip-freeze.gpu.txt"


def load(name: str):
    spec = importlib.util.spec_from_file_location(f"ci_{name}", CI / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


colab_constraints = load("colab_constraints")
lowest_pins = load("lowest_pins")
wheels_cp313 = load("wheels_cp313")

FREEZE = """\
# Do not modify this file directly
accelerate==1.14.0
google-colab @ file:///colabtools/dist/google_colab-1.0.0.tar.gz
nvidia-cublas-cu12==12.8.4.1
cuda-python==12.9.7
cudf-cu12==26.2.1
setuptools==75.2.0
torch==2.11.0+cu128
torchvision==0.26.0+cu128
triton==3.6.0
transformers==5.15.0
some-lib==1.0+local
"""


def test_constraints_keep_what_installs_here_and_list_the_rest_with_the_reason():
    text = colab_constraints.constraints(FREEZE, date="2026-08-19", python="3.13.15")
    lines = text.splitlines()
    active = [line for line in lines if line and not line.startswith("#")]
    assert active == ["accelerate==1.14.0", "transformers==5.15.0"]
    assert "of 2026-08-19 (Python 3.13.15)" in lines[1] and "googlecolab/backend-info" in lines[1]
    dropped = "\n".join(lines[lines.index("# dropped:"):])
    for name, reason in [("google-colab @", "direct reference"), ("nvidia-cublas-cu12", "CUDA"),
                         ("cuda-python", "CUDA"), ("cudf-cu12", "CUDA"), ("setuptools==75.2.0", "installer"),
                         ("torch==2.11.0+cu128", "torch"), ("torchvision", "torch"), ("triton", "torch"),
                         ("some-lib==1.0+local", "local version")]:
        (line,) = [x for x in dropped.splitlines() if name in x]
        assert reason in line, line


def test_the_committed_constraints_are_pip_constraints_with_their_source():
    lines = (CI / "colab-constraints.txt").read_text().splitlines()
    assert "googlecolab/backend-info" in lines[1] and "2026-08-19" in lines[1]
    pins = {}
    for line in lines:
        if line and not line.startswith("#"):
            req = Requirement(line)
            (spec,) = req.specifier
            assert spec.operator == "==" and "+" not in spec.version and req.url is None, line
            pins[req.name.lower()] = spec.version
    assert pins["transformers"] == "5.15.0" and pins["datasets"] == "4.0.0"
    assert not {"torch", "setuptools", "triton"} & set(pins)


@pytest.mark.skipif(not SHARED_FREEZE.exists(), reason="Colab's freeze is not beside this checkout")
def test_the_committed_constraints_are_generated_from_colabs_freeze():
    committed = (CI / "colab-constraints.txt").read_text()
    assert colab_constraints.constraints(SHARED_FREEZE.read_text(), date="2026-08-19", python="3.13.15") == committed


def test_lowest_pins_are_the_lower_bounds_and_the_tools_leave_the_runtime_alone():
    project = {"name": "labhelpers",
               "dependencies": ["torch>=2.11,<3", "ipywidgets>=7.7", "trl>=1.16,<1.17", "platformdirs>=4"],
               "optional-dependencies": {"course": ["ipywidgets>=8.1", "papermill>=2.6"],
                                         "dev": ["labhelpers[course]", "pytest>=8"]}}
    assert lowest_pins.pins(project) == ["torch==2.11", "ipywidgets==7.7", "trl==1.16", "platformdirs==4"]
    assert lowest_pins.tools(project) == ["papermill>=2.6", "pytest>=8"]
    with pytest.raises(ValueError, match="needs exactly one lower bound"):
        lowest_pins.pins({**project, "dependencies": ["numpy<3"]})


def test_the_real_lowest_pins_are_the_leads_and_colabs():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pins = dict(p.split("==") for p in lowest_pins.pins(project))
    assert pins["torch"] == "2.11"  # Colab's torch: the lead's decision
    transformers = next(Requirement(d) for d in project["dependencies"] if d.startswith("transformers"))
    assert transformers.specifier.contains("5.15.0"), "Colab keeps its own transformers"
    ipywidgets = next(Requirement(d) for d in project["dependencies"] if d.startswith("ipywidgets"))
    assert ipywidgets.specifier.contains("7.7.1"), "Colab keeps its own ipywidgets"


def test_the_cp313_check_reads_a_resolution_and_finds_what_is_missing():
    compiled = ("torch==2.14.1\n    # via labhelpers\nTokenizers==0.23.3\nbitsandbytes==0.50.2 ; sys_platform == 'linux'\n"
                "labhelpers[gpu] @ file:///tmp/labhelpers-0.1.0-py3-none-any.whl\n")
    pins = wheels_cp313.resolved(compiled)
    assert pins == {"torch": "2.14.1", "tokenizers": "0.23.3", "bitsandbytes": "0.50.2"}
    assert wheels_cp313.missing_runtime(pins, ["torch>=2.11", "tokenizers>=0.22", "trl>=1.16"]) == ["trl>=1.16"]


def test_the_kernel_probe_refuses_the_checkout(tmp_path):
    probe = load("colab_kernel_probe")
    venv, work = tmp_path / "venv", tmp_path / "work"
    site = venv / "lib" / "python3.11" / "site-packages" / "labhelpers" / "__init__.py"
    good = {"labhelpers": str(site), "executable": str(venv / "bin" / "python"), "cwd": str(work),
            "path": [str(work), str(site.parents[1])]}
    assert probe.problems(good, venv=venv, cwd=work) == []
    bad = {**good, "labhelpers": str(ROOT / "labhelpers" / "__init__.py"), "path": [str(ROOT)],
           "cwd": str(ROOT)}
    found = probe.problems(bad, venv=venv, cwd=work)
    assert len(found) == 3 and "not from" in found[0] and "working folder" in found[1] and "checkout" in found[2]


def test_ci_runs_both_lanes_and_the_wheel_check():
    run = (CI / "run").read_text()
    for step in ("colab_lane.sh", "lowest_lane.sh", "wheels_cp313.py"):
        assert step in run, step
