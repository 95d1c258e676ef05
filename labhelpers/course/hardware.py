"""Each lab's hardware figures (time per profile, GPU memory), in one place, each marked measured or estimated.

The notebook headers and the README's hardware table are rendered from :data:`HARDWARE` here and written by
:mod:`labhelpers.course.generated`; nothing a lab runs reads them (a lab does not import the course's tools).

**Measured** figures name the machine and the command. **Estimates** say how they were made. The T4 minutes
come from :func:`t4_minutes`: training FLOPs (6·N per token for a trained model, 2·N for a frozen one's
forward pass, every sequence filled to ``max_length``, so an upper bound on tokens) divided by an achieved fp16
throughput of 5–15 TFLOP/s (8–23 % of the T4's 65 TFLOP/s tensor-core peak, the usual range for batches this
small), plus each lab's generation and evaluation time, plus three minutes to download and load the models.
"""

from __future__ import annotations

from dataclasses import dataclass

T4_EFFECTIVE_TFLOPS = (15.0, 5.0)  # optimistic, pessimistic achieved fp16 throughput on a T4
SETUP_MINUTES = 3.0

PARAMETERS = {  # counted from the real configs (the rehearsal's stand-ins are built at these sizes)
    "facebook/opt-350m": 331e6, "gpt2": 124e6, "lvwerra/gpt2-imdb": 124e6, "lvwerra/distilbert-imdb": 67e6,
    "Qwen/Qwen2.5-0.5B-Instruct": 494e6,
}


@dataclass(frozen=True)
class Figure:
    """One number with its unit, whether it was measured, and how it was obtained."""

    low: float
    high: float
    unit: str
    measured: bool
    how: str

    def text(self) -> str:
        value = f"{self.low:g}" if self.low == self.high else f"{self.low:g}–{self.high:g}"
        return f"{value} {self.unit} ({'measured' if self.measured else 'estimate'})"


@dataclass(frozen=True)
class Workload:
    """What a lab's full profile computes, for the T4 estimate."""

    trained_tokens: float  # tokens through forward+backward of a trained model, all runs together
    frozen_tokens: float  # tokens through a frozen model's forward pass (references, reward models)
    model: str
    other_minutes: float  # generation and evaluation, estimated separately (see each lab)


def t4_minutes(work: Workload) -> tuple[float, float]:
    """(optimistic, pessimistic) minutes on a T4 in fp16, from :class:`Workload`."""
    flops = PARAMETERS[work.model] * (6 * work.trained_tokens + 2 * work.frozen_tokens)
    fast, slow = (flops / (tflops * 1e12) / 60 + work.other_minutes + SETUP_MINUTES for tflops in T4_EFFECTIVE_TFLOPS)
    return round(fast), round(slow)


# The full profiles' work, from the labs' full values (labhelpers.config.profile_values): steps × batch × max_length × sequences per example.
WORKLOADS = {
    # two SFT runs (masked, unmasked) of 400 steps × 8 × 512; BLEU generation 3 × 100 prompts × 128 tokens
    "01_instruction_tuning": Workload(2 * 400 * 8 * 512, 0, "facebook/opt-350m", other_minutes=2),
    # 500 steps × 8 pairs × 2 answers × 512; 5 evaluations of 400 pairs; scoring before/after
    "02_reward_modeling": Workload(500 * 8 * 2 * 512, 7 * 400 * 2 * 512, "gpt2", other_minutes=1),
    # three DPO runs (β, β + SFT, exercise 3.4's larger β) of 250 steps × 8 pairs × 2 × 512; the reference's
    # precomputed pass for each; 3 models × 200 generations, and exercise 3.4's model measured twice
    "03_dpo": Workload(3 * 250 * 8 * 2 * 512, 3 * 2000 * 2 * 512, "gpt2", other_minutes=4),
    # two PPO runs of 120 steps × 64 rollouts × 24 tokens × 4 epochs, GRPO 150 steps; generation of 16 tokens a step
    "04_ppo_rlhf": Workload(2 * 120 * 64 * 24 * 4 + 150 * 32 * 20, 2 * 120 * 64 * 24 * 2, "lvwerra/gpt2-imdb",
                            other_minutes=6),
    # inference only: a few hundred short generations
    "05_generation_parameters": Workload(0, 0, "gpt2", other_minutes=1),
    # LoRA and QLoRA runs of 300 steps × 8 × 512 (backward through the frozen base still costs about 4·N, counted
    # as 6·N: an upper bound); two launched runs of 20 steps; BLEU generation 2 × 100 prompts × 128 tokens
    "06_scaling_up": Workload(2 * 300 * 8 * 512 + 2 * 20 * 16 * 512, 0, "Qwen/Qwen2.5-0.5B-Instruct",
                              other_minutes=4),
}

_TINY_HOW = "median of 3 headless runs on a 2-core CPU, kernel start included (python benchmarks/run.py)"
_H200_HOW = ("peak torch.cuda.max_memory_allocated on an NVIDIA H200 at the lab's full-profile shapes (batch, "
             "sequences filled to max_length, fp16 autocast as on a T4), random-weight models of the real sizes, "
             "with hand-written training steps, not the lab's trainers (benchmarks/gpu_full_profile.py, "
             "an earlier version)")
# Labs 01 and 03 train causal LMs: the earlier hand-written step materialised the full-vocabulary logits of every
# position, which the lab's trainers do not, so its measured peak is an upper bound on the lab's, not the lab's.
_H200_LOGITS_HOW = ("an upper bound, not the lab's own peak: measured on an NVIDIA H200 at the lab's full-profile "
                    "shapes in fp16 autocast with an earlier hand-written training step that materialised the "
                    "full-vocabulary logits of every position, which the lab's TRL trainer does not "
                    "(benchmarks/gpu_full_profile.py measures the trainer itself, not yet run on a GPU)")
T4_METHOD = ("training FLOPs (6·N per trained token, 2·N per frozen forward token, sequences filled to max_length) "
             "at an achieved 5–15 TFLOP/s in fp16, plus generation and evaluation, plus 3 min to download and load "
             "(labhelpers.course.hardware.t4_minutes)")


def _t4(lab: str) -> Figure:
    low, high = t4_minutes(WORKLOADS[lab])
    return Figure(low, high, "min", False, T4_METHOD)


@dataclass(frozen=True)
class LabHardware:
    tiny_time: Figure
    full_time: Figure
    full_gpu_memory: Figure


HARDWARE: dict[str, LabHardware] = {
    "01_instruction_tuning": LabHardware(Figure(29.3, 29.3, "s", True, _TINY_HOW), _t4("01_instruction_tuning"),
                                         Figure(9.9, 9.9, "GiB", False, _H200_LOGITS_HOW)),
    "02_reward_modeling": LabHardware(Figure(14.8, 14.8, "s", True, _TINY_HOW), _t4("02_reward_modeling"),
                                      Figure(8.3, 8.3, "GiB", True, _H200_HOW)),
    "03_dpo": LabHardware(Figure(18.2, 18.2, "s", True, _TINY_HOW), _t4("03_dpo"),
                          Figure(13.1, 13.1, "GiB", False, _H200_LOGITS_HOW)),
    "04_ppo_rlhf": LabHardware(Figure(30.1, 30.1, "s", True, _TINY_HOW), _t4("04_ppo_rlhf"),
                               Figure(4.5, 4.5, "GiB", True, _H200_HOW + "; the PPO part only")),
    "05_generation_parameters": LabHardware(
        Figure(8.6, 8.6, "s", True, _TINY_HOW), _t4("05_generation_parameters"),
        Figure(1, 1, "GiB", False, "gpt2's 124M fp32 weights (0.5 GB) plus the CUDA context and activations")),
    "06_scaling_up": LabHardware(
        Figure(53.2, 53.2, "s", True, _TINY_HOW + "; the two launched runs included"),
        _t4("06_scaling_up"),
        Figure(6, 6, "GiB", False, "QLoRA: a 4-bit base (0.5 byte per parameter), fp16 LoRA weights with their "
                                   "gradients and AdamW states, and activations of 8 × 512 tokens; not yet measured "
                                   "(benchmarks/gpu_t4.sh measures it on a GPU)")),
}


def header_table(lab: str) -> str:
    """The notebook header's hardware table (the text between its markers)."""
    hw = HARDWARE[lab]
    return "\n".join([
        "| profile | hardware | time | memory |",
        "|---|---|---|---|",
        f"| `tiny` | any CPU, offline | {hw.tiny_time.text()} on a 2-core CPU | < 1 GB RAM |",
        f"| `full` | a GPU, e.g. a Colab T4 (15 GB) | {hw.full_time.text()} on a T4 | {hw.full_gpu_memory.text()} of GPU |",
        "",
        "How each figure was obtained: `labhelpers/course/hardware.py`.",
    ])


def readme_table() -> str:
    """The README's hardware table with its numbered notes (the text between its markers)."""
    lines = ["| lab | tiny, 2-core CPU | full: time on a T4 | full: peak GPU memory |", "|---|---|---|---|"]
    notes: list[str] = []
    for lab, hw in HARDWARE.items():
        marks = []
        for figure in (hw.tiny_time, hw.full_time, hw.full_gpu_memory):
            if figure.how not in notes:
                notes.append(figure.how)
            marks.append(f"{figure.text()} [{notes.index(figure.how) + 1}]")
        lines.append(f"| {lab[:2]} | " + " | ".join(marks) + " |")
    lines.append("")
    lines += [f"{i}. {how}." for i, how in enumerate(notes, 1)]
    return "\n".join(lines)
