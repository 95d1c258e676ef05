"""Lab 06's training script under ``accelerate launch``: two CPU processes (gloo) at per-device batch 8 train like
one process at batch 16; a batch that cannot be split stops with one error; every accelerate config file loads."""

from __future__ import annotations

import subprocess
import sys

import pytest

from labhelpers import launch

SCRIPT = launch.LABS / "scripts" / "sft_lora.py"
STEPS = 4


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
    done = subprocess.run(command, capture_output=True, text=True, env=launch.launch_env(), cwd=launch.LABS.parent,
                          timeout=300)
    assert done.returncode != 0
    assert "cannot be split over 3 processes: the per-device batch would be 5.33333 examples" in done.stderr
    # a plain run told it is one of 32 processes (the variables accelerate launch sets) stops the same way
    env = {**launch.launch_env(), "WORLD_SIZE": "32", "RANK": "0"}
    done = subprocess.run([sys.executable, str(SCRIPT)], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.strip().startswith("GLOBAL_BATCH_SIZE=16 cannot be split over 32 processes: the per-device "
                                          "batch would be 0.5 examples."), done.stderr
