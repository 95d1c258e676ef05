"""Lab 06's training script under ``accelerate launch``: two CPU processes (gloo) at per-device batch 8 train like
one process at batch 16; a batch that cannot be split stops with one error; every accelerate config file loads; the
script and the config files are package files, in the built wheel and found from a wheel install with no checkout."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from conftest import lab_paths

import labhelpers
from labhelpers import launch

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = launch.script_path()
STEPS = 4


def lab_files() -> dict[str, Path]:
    """Every file the labs open through labhelpers.launch: the scripts and the course's own config files."""
    return {**{f"script {n}": launch.script_path(n) for n in launch.SCRIPTS},
            **{f"config {n}": launch.config_path(n) for n in launch.OWN_CONFIGS}}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The wheel built from a copy of the package's sources (so the build leaves nothing in the checkout)."""
    source, out = tmp_path_factory.mktemp("source"), tmp_path_factory.mktemp("wheel")
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(ROOT / "labhelpers", source / "labhelpers", ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", str(source),
                    "-w", str(out)], check=True, capture_output=True, timeout=300)
    return next(out.glob("labhelpers-*.whl"))


def test_every_file_the_labs_launch_is_a_package_file_listed_in_the_wheel(wheel):
    package = Path(labhelpers.__file__).resolve().parent
    names = set(zipfile.ZipFile(wheel).namelist())
    for what, path in lab_files().items():
        assert path.is_file(), what
        inside = path.resolve().relative_to(package)  # raises for a file outside the installed package
        assert f"labhelpers/{inside.as_posix()}" in names, f"{what} ({inside}) is not in {wheel.name}"


@pytest.fixture(scope="module")
def wheel_venv(wheel, tmp_path_factory) -> Path:
    """A venv holding only the wheel (the course's dependencies reachable, but not its checkout or editable
    install); its folder, with ``bin/python`` and an ``empty`` folder to run from."""
    venv = tmp_path_factory.mktemp("wheel-venv")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    purelib = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                                  check=True, capture_output=True, text=True).stdout.strip())
    # the dependencies, as a plain path entry: .pth files there (the checkout's editable finder) are not run
    deps = [p for p in sys.path if p.endswith("site-packages") and Path(p, "torch").is_dir()]
    (purelib / "course_dependencies.pth").write_text("\n".join(deps) + "\n")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "-q", str(wheel)],
                   check=True, capture_output=True, timeout=300)
    (venv / "empty").mkdir()
    return venv


def _in_wheel_venv(venv: Path, code: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(venv / "bin" / "python"), "-c", code], cwd=venv / "empty", capture_output=True,
                          text=True, timeout=300, env={"PATH": "/usr/bin:/bin", "HOME": str(venv), **env})


def test_a_wheel_install_finds_the_script_and_configs_with_no_checkout(wheel_venv):
    """Run from an empty folder, labhelpers comes from the venv and every lab file resolves inside it."""
    venv = wheel_venv
    probe = ("import json, labhelpers; from labhelpers import launch\n"
             "print(json.dumps({'package': labhelpers.__file__, 'files': {n: str(launch.script_path(n)) for n in "
             "launch.SCRIPTS} | {n: str(launch.config_path(n)) for n in launch.OWN_CONFIGS},"
             " 'processes': launch.load_config('cpu_ddp').num_processes}))")
    done = _in_wheel_venv(venv, probe)
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout)
    assert Path(seen["package"]).is_relative_to(venv), seen["package"]
    assert all(Path(p).is_file() and Path(p).is_relative_to(venv) for p in seen["files"].values()), seen["files"]
    assert seen["processes"] == 2


LIST_LABS = ("import json, labhelpers.course.runner as r\n"
             "try:\n    print(json.dumps([str(p) for p in r.lab_notebooks()]))\n"
             "except FileNotFoundError as err:\n    print(json.dumps(str(err)))")


def test_a_wheel_install_has_no_labs_folder_and_says_to_set_labs_dir(wheel_venv):
    """The course's tools installed from the wheel: no labs beside the package, so listing them names LABS_DIR;
    with LABS_DIR set they are found there."""
    done = _in_wheel_venv(wheel_venv, LIST_LABS)
    assert done.returncode == 0, done.stderr
    said = json.loads(done.stdout)
    assert isinstance(said, str) and "an installed package has none" in said and "set LABS_DIR" in said, said
    done = _in_wheel_venv(wheel_venv, LIST_LABS, LABS_DIR=str(ROOT / "labs"))
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == [str(p) for p in lab_paths()]  # as the checkout lists them


@pytest.mark.parametrize("name, distributed_type, processes", [
    ("cpu_ddp", "MULTI_GPU", 2), ("single_gpu", "NO", 1), ("multi_gpu", "MULTI_GPU", 8), ("fsdp", "FSDP", 8),
    ("zero3", "DEEPSPEED", 8)])
def test_every_accelerate_config_loads_with_accelerate(name, distributed_type, processes):
    config = launch.load_config(name)  # accelerate's own loader: unknown keys or bad values raise
    assert str(config.distributed_type).rsplit(".", 1)[-1] == distributed_type
    assert config.num_processes == processes and config.num_machines == 1
    if name in launch.TRL_CONFIGS:
        assert "trl" in launch.config_path(name).parts and "accelerate_configs" in launch.config_path(name).parts
    if name == "zero3":
        assert config.deepspeed_config["zero_stage"] == 3
    if name == "cpu_ddp":
        assert not config.use_cpu, "use_cpu would select accelerate's one-process launcher"
    with pytest.raises(ValueError, match="Unknown accelerate config 'ddp'"):
        launch.config_path("ddp")


@pytest.mark.notebook  # child processes for long (the fast lane skips it)
def test_two_processes_at_batch_8_train_like_one_process_at_batch_16(tmp_path):
    args = {"profile": "tiny", "max_steps": STEPS}
    two = launch.start_launch(launch.launch_command(SCRIPT, config="cpu_ddp", num_processes=2,
                                                    script_args={**args, "output_dir": tmp_path / "two"}),
                              tmp_path / "two")
    one = launch.start_launch(launch.launch_command(SCRIPT, config="cpu_ddp", num_processes=1,
                                                    script_args={**args, "output_dir": tmp_path / "one"}),
                              tmp_path / "one")
    two, one = launch.wait_launch(two, timeout=540), launch.wait_launch(one, timeout=540)
    assert [(r["rank"], r["world_size"], r["backend"], r["steps"]) for r in two["ranks"]] == [
        (0, 2, "gloo", STEPS), (1, 2, "gloo", STEPS)], "both ranks ran every step, over gloo"
    assert [r["per_device_batch"] for r in two["ranks"]] == [8, 8] and one["ranks"][0]["per_device_batch"] == 16
    assert two["global_batch"] == one["global_batch"] == 16
    assert len(two["losses"]) == len(one["losses"]) == STEPS
    for a, b in zip(one["losses"], two["losses"]):
        assert abs(a - b) <= 1e-3 * abs(a), (one["losses"], two["losses"])
    assert two["losses"][-1] < two["losses"][0], "it trains"


@pytest.mark.notebook  # child processes for long (the fast lane skips it)
def test_more_processes_than_the_batch_allows_stops_naming_the_per_device_batch():
    command = launch.launch_command(SCRIPT, config="cpu_ddp", num_processes=3)
    done = subprocess.run(command, capture_output=True, text=True, env=launch.launch_env(), timeout=300)
    assert done.returncode != 0
    assert "cannot be split over 3 processes: the per-device batch would be 5.33333 examples" in done.stderr
    # a plain run told it is one of 32 processes (the variables accelerate launch sets) stops the same way
    env = {**launch.launch_env(), "WORLD_SIZE": "32", "RANK": "0"}
    done = subprocess.run([sys.executable, str(SCRIPT)], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.strip().startswith("GLOBAL_BATCH_SIZE=16 cannot be split over 32 processes: the per-device "
                                          "batch would be 0.5 examples."), done.stderr
