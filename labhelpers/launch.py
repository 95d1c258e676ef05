"""Launching lab 06's training script with ``accelerate launch``, and the accelerate config files.

    script_path()                                     # labhelpers/scripts/sft_lora.py, inside the installed package
    config_path("cpu_ddp")                            # labhelpers/accelerate_configs/cpu_ddp.yaml
    config_path("fsdp")                               # TRL's own fsdp2.yaml, where TRL installed it
    command = launch_command(script_path(), config="cpu_ddp", script_args={"max_steps": 12})
    result = run_launch(command, output_dir)          # the script's result.json and every rank's rank<r>.json

The script and the course's config files are package data: they are found through ``importlib.resources``
wherever ``labhelpers`` is installed (a wheel on Colab, an editable checkout), never through a checkout's
``labs/`` folder. The launch runs ``python -m accelerate.commands.launch`` with the notebook's own interpreter
(so the same environment, not whatever ``accelerate`` is first on ``PATH``), offline, with one thread per
process.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import subprocess
import sys
import time
from importlib.resources import as_file, files
from pathlib import Path

SCRIPTS = {"sft_lora": "sft_lora.py"}  # in labhelpers/scripts/
# The course's own files (in labhelpers/accelerate_configs/): TRL's have no CPU variant and ask for bf16, which a
# T4 cannot run.
OWN_CONFIGS = {"cpu_ddp": "cpu_ddp.yaml", "single_gpu": "single_gpu.yaml"}
# TRL's files (installed with it, in trl/accelerate_configs/): referenced, not copied. They ask for bf16 and
# 8 processes; the script's SFTConfig sets fp16/bf16 from the hardware, and --num_processes overrides the count.
TRL_CONFIGS = {"multi_gpu": "multi_gpu.yaml", "fsdp": "fsdp2.yaml", "zero3": "zero3.yaml"}

_EXTRACTED = contextlib.ExitStack()  # copies of package files from a zipped install, removed at exit
atexit.register(_EXTRACTED.close)


def package_file(*parts: str) -> Path:
    """A file shipped inside ``labhelpers`` (``package_file("scripts", "sft_lora.py")``), as a real path.

    A normal install (wheel or editable) has the file on disk; from a zipped install it is copied to a temporary
    file that lives as long as this process, since ``accelerate launch`` needs a path.
    """
    resource = files("labhelpers").joinpath(*parts)
    if not resource.is_file():
        raise FileNotFoundError(f"labhelpers has no file {'/'.join(parts)}: the installed package is incomplete "
                                "(reinstall it; a checkout needs `pip install -e .`).")
    if isinstance(resource, Path):
        return resource
    return Path(_EXTRACTED.enter_context(as_file(resource)))


def script_path(name: str = "sft_lora") -> Path:
    """The training script ``name`` (one of :data:`SCRIPTS`), a file of the installed package."""
    if name not in SCRIPTS:
        raise ValueError(f"Unknown script {name!r}; choose one of {', '.join(SCRIPTS)}.")
    return package_file("scripts", SCRIPTS[name])


def config_path(name: str) -> Path:
    """The accelerate config file for ``name`` (one of :data:`OWN_CONFIGS` and :data:`TRL_CONFIGS`)."""
    if name in OWN_CONFIGS:
        return package_file("accelerate_configs", OWN_CONFIGS[name])
    if name in TRL_CONFIGS:
        import trl

        return Path(trl.__file__).parent / "accelerate_configs" / TRL_CONFIGS[name]
    raise ValueError(f"Unknown accelerate config {name!r}; choose one of {', '.join([*OWN_CONFIGS, *TRL_CONFIGS])}.")


def load_config(name_or_path: str | Path):
    """Load a config file the way ``accelerate launch --config_file`` does (raises on unknown keys)."""
    from accelerate.commands.config.config_args import load_config_from_file

    path = Path(name_or_path)
    if not path.suffix:
        path = config_path(str(name_or_path))
    return load_config_from_file(str(path))


def launch_command(script: str | Path, *, config: str | None = "cpu_ddp", num_processes: int | None = None,
                   script_args: dict | None = None) -> list[str]:
    """The argv of ``accelerate launch [--config_file F] [--num_processes N] script --key value ...``."""
    command = [sys.executable, "-m", "accelerate.commands.launch"]
    if config is not None:
        command += ["--config_file", str(config_path(config))]
    if num_processes is not None:
        command += ["--num_processes", str(num_processes)]
    command.append(str(script))
    for key, value in (script_args or {}).items():
        command += [f"--{key}", str(value)]
    return command


def launch_env(cpu_only: bool = False) -> dict[str, str]:
    """The environment of a launched run: offline, one thread per process, no tokenizer threads.

    ``cpu_only`` hides the GPUs, so that processes on a machine with fewer GPUs than processes run on the CPU.
    """
    env = dict(os.environ)
    env.update(HF_HUB_OFFLINE=env.get("HF_HUB_OFFLINE", "1"), OMP_NUM_THREADS="1", MKL_NUM_THREADS="1",
               TOKENIZERS_PARALLELISM="false", PYTHONUNBUFFERED="1")
    if cpu_only:
        env["CUDA_VISIBLE_DEVICES"] = ""
    return env


class LaunchError(RuntimeError):
    """A launched run exited with an error; the message holds the end of its output."""


def start_launch(command: list[str], output_dir: str | Path, cpu_only: bool = False) -> subprocess.Popen:
    """Start a launch in the background; its output goes to ``output_dir/launch.log``.

    The script must write its results into the same ``output_dir``; results of an earlier run there are removed.
    """
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    for stale in output_dir.glob("*.json"):
        stale.unlink()
    log = open(output_dir / "launch.log", "w")  # noqa: SIM115 - closed by wait_launch
    # in the caller's folder, so relative paths in the command mean what they mean to the caller; nothing of a
    # checkout is needed (the script and configs are package files)
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=launch_env(cpu_only))
    process.log, process.output_dir, process.started = log, output_dir, time.perf_counter()
    return process


def wait_launch(process: subprocess.Popen, timeout: float = 600) -> dict:
    """Wait for a launch; return its ``result.json`` with ``ranks`` (every ``rank<r>.json``) and ``seconds``."""
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        raise
    finally:
        process.log.close()
    seconds = time.perf_counter() - process.started
    if process.returncode != 0:
        output = Path(process.log.name).read_text()
        lines = [line for line in output.splitlines() if line.strip() and "it/s]" not in line]
        raise LaunchError(f"The launched run exited with code {process.returncode}:\n" + "\n".join(lines[-15:]))
    result = json.loads((process.output_dir / "result.json").read_text())
    ranks = sorted((json.loads(p.read_text()) for p in process.output_dir.glob("rank*.json")),
                   key=lambda r: r["rank"])
    return {**result, "ranks": ranks, "seconds": seconds}


def run_launch(command: list[str], output_dir: str | Path, timeout: float = 600) -> dict:
    """Run a launch to the end (see :func:`start_launch` and :func:`wait_launch`)."""
    return wait_launch(start_launch(command, output_dir), timeout)
