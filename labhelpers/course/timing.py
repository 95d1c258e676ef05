"""Wall-clock timing that means what it says on a GPU: wait for the device before reading the clock.

CUDA runs asynchronously: a clock read right after a kernel launch measures the launch, not the work. Every clock
read here goes through :func:`sync` first. The trainers keep no clocks of their own: what a learner reads in
``labhelpers.ppo`` stays free of benchmarking, and :class:`PPOPhaseTimer` times its phases from outside.
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


def _now(device=None) -> float:
    sync(device)
    return time.perf_counter()


class PPOPhaseTimer:
    """Splits each ``labhelpers.ppo.PPOTrainer.step`` into its two phases, timed from outside the trainer.

    ``timer = PPOPhaseTimer(trainer)`` wraps that trainer's ``step`` and ``batch_forward``; after each step,
    ``timer.forward[-1]`` holds the seconds of the no-grad passes over the rollouts (old log-probs and values,
    the reference's log-probs, and the rewards and advantages computed from them) and ``timer.optimise[-1]`` those
    of the minibatch epochs and the bookkeeping after them. The epochs are the only passes with gradients on, so
    the first such ``batch_forward`` of a step marks where the first phase ends. The steps compute what they
    would compute unwrapped: only the clock is read in between.
    """

    def __init__(self, trainer):
        self.forward: list[float] = []
        self.optimise: list[float] = []
        self._marks: list[float] = []
        step, batch_forward, device = trainer.step, trainer.batch_forward, trainer.device

        def timed_batch_forward(*args, **kwargs):
            if not self._marks or (len(self._marks) == 1 and torch.is_grad_enabled()):
                self._marks.append(_now(device))
            return batch_forward(*args, **kwargs)

        def timed_step(*args, **kwargs):
            self._marks = []
            stats = step(*args, **kwargs)
            started, epochs = self._marks
            self.forward.append(epochs - started)
            self.optimise.append(_now(device) - epochs)
            return stats

        # instance attributes shadow the methods, and the trainer's own step calls self.batch_forward
        trainer.step, trainer.batch_forward = timed_step, timed_batch_forward
