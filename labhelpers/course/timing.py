"""Wall-clock timing that means what it says on a GPU: wait for the device before reading the clock.

CUDA runs asynchronously: a clock read right after a kernel launch measures the launch, not the work. The PPO
trainer's phase times and the benchmarks' step times all read the clock through :func:`sync` first.
"""

from __future__ import annotations

import time

import torch
from transformers import TrainerCallback


def sync(device: torch.device | str | None = None) -> None:
    """Wait until the CUDA device (the current one when ``None``) has finished its queued work; no-op on a CPU."""
    if device is not None and torch.device(device).type != "cuda":
        return
    if torch.cuda.is_available():
        torch.cuda.synchronize(device)


class StepTimer(TrainerCallback):
    """Keeps the seconds of each optimizer step in ``.times`` (add it to a ``Trainer`` with ``add_callback``).

    A step is timed from ``on_step_begin`` to ``on_step_end``: forward, backward and the update; the batch is
    fetched before it and the logging comes after it.
    """

    def __init__(self):
        self.times: list[float] = []

    def on_step_begin(self, args, state, control, **kwargs):
        sync()
        self.started = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        sync()
        self.times.append(time.perf_counter() - self.started)
