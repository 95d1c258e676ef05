"""Chat SFT with LoRA and the assistant-only loss, on one process or several (lab 06, part 4).

The same script runs on one CPU, one GPU, several GPUs or several machines; only the launch command changes. It
ships inside the package (``labhelpers/scripts/sft_lora.py``), so it runs as a module, or as the file that
``labhelpers.launch.script_path()`` names:

    python -m labhelpers.scripts.sft_lora                                        # one process
    config() { python -c "from labhelpers import launch; print(launch.config_path('$1'))"; }
    accelerate launch --config_file "$(config cpu_ddp)" -m labhelpers.scripts.sft_lora    # DDP, 2 CPU processes
    accelerate launch --config_file "$(config single_gpu)" -m labhelpers.scripts.sft_lora --profile full
    accelerate launch --config_file "$(config multi_gpu)" --num_processes 4 -m labhelpers.scripts.sft_lora --profile full

With no arguments it trains the tiny profile offline. Any setting below can be changed on the command line
(``--max_steps 20``). ``GLOBAL_BATCH_SIZE`` is the batch of one optimizer step over all processes: each process
gets ``GLOBAL_BATCH_SIZE / processes`` examples, so the same settings give the same training on any number of
processes. Rank 0 writes ``<output_dir>/result.json`` (the per-step losses and the batch sizes) and every rank
writes ``<output_dir>/rank<r>.json`` (how many steps and examples it saw).
"""

import argparse
import json
import os
from pathlib import Path

# ---------------------------------------------------------------- config
SETTINGS = {
    "profile": "tiny",  # "tiny": the zoo's tiny Qwen2 and synthetic data; "full": the real model and data
    "model_name": None,  # None: the profile's model (ScalingUpConfig.PROFILES in labhelpers/lab_configs.py)
    "dataset": None,  # None: the profile's dataset; else "tiny", a Hub id or a CodeAlpaca-format file
    "n_train": None,  # conversations to train on (None: the profile's)
    "global_batch_size": None,  # examples per optimizer step, summed over all processes (None: the profile's, 16)
    "max_steps": None,  # None: the profile's script_steps
    "lora_learning_rate": None,  # None: the profile's
    "lora_r": None,  # None: the profile's rank
    "max_length": None,
    "seed": 42,
    "output_dir": "outputs/06_scaling_up/script",
}


def parse_settings() -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    for name, default in SETTINGS.items():
        kind = type(default) if default is not None else str
        parser.add_argument(f"--{name}", type=kind, default=default)
    settings = vars(parser.parse_args())
    for name in ("n_train", "lora_r", "max_length", "global_batch_size", "max_steps"):  # given as text
        if isinstance(settings[name], str):
            settings[name] = int(settings[name])
    if isinstance(settings["lora_learning_rate"], str):
        settings["lora_learning_rate"] = float(settings["lora_learning_rate"])
    return settings


def per_device_batch(global_batch_size: int, world_size: int) -> int:
    """Examples per process and step; the global batch must split evenly over the processes."""
    if global_batch_size < world_size or global_batch_size % world_size:
        raise SystemExit(
            f"GLOBAL_BATCH_SIZE={global_batch_size} cannot be split over {world_size} processes: the per-device "
            f"batch would be {global_batch_size / world_size:g} examples. Launch with a number of processes that "
            f"divides {global_batch_size} (at most {global_batch_size}), or change --global_batch_size.")
    return global_batch_size // world_size


def main() -> None:
    settings = parse_settings()
    # accelerate launch sets these for every process it starts; a plain `python` run is one process, rank 0
    world_size, rank = int(os.environ.get("WORLD_SIZE", 1)), int(os.environ.get("RANK", 0))

    import labhelpers  # light: the lab's settings, before the slow imports below

    cfg = labhelpers.lab_config("06", settings["profile"], quiet=True, MODEL_NAME=settings["model_name"],
                                DATASET=settings["dataset"], N_TRAIN=settings["n_train"],
                                LORA_LEARNING_RATE=settings["lora_learning_rate"], LORA_R=settings["lora_r"],
                                MAX_LENGTH=settings["max_length"], SEED=settings["seed"],
                                GLOBAL_BATCH_SIZE=settings["global_batch_size"])
    batch = per_device_batch(cfg.global_batch_size, world_size)  # fail fast, before loading anything
    labhelpers.prepare_lab(cfg)  # builds the tiny model if missing (one rank builds, the others wait), seeds
    if rank == 0:
        print(cfg.table())
    max_steps = settings["max_steps"] or cfg.script_steps

    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTTrainer

    from labhelpers import training
    from labhelpers.chat import to_conversations, training_chat_template
    from labhelpers.data import load_code_alpaca
    from labhelpers.lora import check_target_modules

    tokenizer = AutoTokenizer.from_pretrained(cfg.model_name)
    tokenizer.chat_template = training_chat_template(tokenizer)
    records = load_code_alpaca(cfg.dataset, n=cfg.n_train, seed=cfg.seed)
    train = Dataset.from_list(to_conversations(records, cfg.system_prompt, seed=cfg.seed))

    # the frozen base at the compute dtype on a GPU (peft keeps the adapters in fp32), fp32 on a CPU; explicit,
    # since transformers 5 otherwise loads the checkpoint's own dtype (bf16 for Qwen2.5)
    model = AutoModelForCausalLM.from_pretrained(cfg.model_name,
                                                 dtype=torch.float32 if cfg.use_cpu else cfg.torch_dtype)
    check_target_modules(model, cfg.lora_target_modules)
    lora = LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=0.0,
                      target_modules=list(cfg.lora_target_modules), task_type="CAUSAL_LM")
    # lab 06's SFTConfig (labhelpers.training.chat_sft_args: assistant-only loss, precision from the hardware, the
    # checkpointing switch under the name the installed transformers knows), with this run's steps and batch
    args = training.chat_sft_args(
        cfg, output_dir=settings["output_dir"], max_steps=max_steps, per_device_train_batch_size=batch,
        learning_rate=cfg.lora_learning_rate, logging_steps=1,
        ddp_find_unused_parameters=False,  # every adapter gets a gradient on every step
    )
    trainer = SFTTrainer(model=model, args=args, train_dataset=train, processing_class=tokenizer, peft_config=lora)
    training.train(trainer)  # trainer.train(), the model unwrapped, a clear error on a non-finite loss

    out = Path(settings["output_dir"])
    out.mkdir(parents=True, exist_ok=True)
    import torch.distributed as dist

    backend = dist.get_backend() if dist.is_initialized() else None  # gloo on CPUs, nccl on GPUs
    (out / f"rank{rank}.json").write_text(json.dumps(
        {"rank": rank, "world_size": world_size, "backend": backend, "steps": trainer.state.global_step,
         "per_device_batch": batch, "device": str(trainer.args.device)}))
    print(f"rank {rank} of {world_size}: {trainer.state.global_step} steps of {batch} examples each")
    if trainer.is_world_process_zero():
        losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
        (out / "result.json").write_text(json.dumps({
            "world_size": world_size, "per_device_batch": batch,
            "global_batch": batch * world_size * args.gradient_accumulation_steps,
            "losses": losses, "model_name": cfg.model_name, "profile": cfg.profile}))


if __name__ == "__main__":
    main()
