"""The course as one pipeline: which lab builds which stage, and the figure lab 00 draws.

:data:`STAGES` lists the boxes of the post-training pipeline, each with the lab that builds it (``None`` for
the pre-trained model the course starts from), and :data:`ARROWS` the hand-overs between them.
:func:`draw_pipeline` draws them with matplotlib; every lab's first cell points back to this figure.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Stage:
    key: str
    title: str  # what the box says
    lab: str | None  # the lab notebook (stem) that builds this stage
    x: float  # centre of the box, in figure units (0..12 wide, 0..5 high)
    y: float


STAGES: tuple[Stage, ...] = (
    Stage("pretrained", "pre-trained LM\n(next-token prediction\non web text)", None, 1.3, 3.5),
    Stage("sft", "Lab 01 · SFT\ninstruction tuning\non demonstrations", "01_instruction_tuning", 4.1, 3.5),
    Stage("reward", "Lab 02 · reward model\nBradley–Terry on\npreference pairs", "02_reward_modeling", 7.0, 4.2),
    Stage("ppo", "Lab 04 · RLHF with PPO\npolicy from SFT: sample,\nscore, update, − β·KL", "04_ppo_rlhf",
          10.1, 4.2),
    Stage("dpo", "Lab 03 · DPO\npreference pairs directly:\nno reward model, no sampling", "03_dpo", 8.5, 2.2),
    Stage("scale", "Lab 06 · scaling up\nchat templates, LoRA,\nQLoRA, several GPUs", "06_scaling_up", 4.1, 1.85),
    Stage("decode", "Lab 05 · generation parameters: how any of these models turns its\n"
                    "next-token distribution into text (temperature, top-k, top-p, beams)",
          "05_generation_parameters", 6.0, 0.6),
)

# (from, to, label on the arrow)
ARROWS: tuple[tuple[str, str, str], ...] = (
    ("pretrained", "sft", "starting point"),
    ("sft", "reward", "initialises"),
    ("reward", "ppo", "scores"),
    ("sft", "dpo", "policy and π_ref"),
    ("sft", "scale", "at scale"),
)


def shown_stages() -> list[Stage]:
    """The stages of the labs the course has now (a lab without a config gets no box yet)."""
    from .config import config_labs

    labs = config_labs()
    return [stage for stage in STAGES if stage.lab is None or stage.lab in labs]


def stage_labs() -> list[str]:
    """The lab stems named in the figure, in the order of :data:`STAGES`."""
    return [stage.lab for stage in shown_stages() if stage.lab]


def draw_pipeline(highlight: str | None = None):
    """The pipeline figure (a matplotlib Figure); ``highlight`` (a lab stem) draws that lab's box in colour."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import FancyBboxPatch

    fig, ax = plt.subplots(figsize=(12, 5))
    ax.set(xlim=(-0.1, 12.1), ylim=(0, 5))
    ax.axis("off")
    boxes = {}
    for stage in shown_stages():
        width, height = (11.4, 0.8) if stage.key == "decode" else (2.3, 1.25)
        colour = "#ffd59e" if stage.lab and stage.lab == highlight else ("#dceefb" if stage.lab else "#eeeeee")
        ax.add_patch(FancyBboxPatch((stage.x - width / 2, stage.y - height / 2), width, height,
                                    boxstyle="round,pad=0.05", facecolor=colour, edgecolor="#335"))
        ax.text(stage.x, stage.y, stage.title, ha="center", va="center", fontsize=9)
        boxes[stage.key] = (stage.x, stage.y, width, height)
    for start, end, label in ARROWS:
        if start not in boxes or end not in boxes:
            continue
        (x0, y0, w0, h0), (x1, y1, w1, h1) = boxes[start], boxes[end]
        if abs(x0 - x1) < 1e-9:  # one box below the other
            tail, head = (x0, y0 - h0 / 2), (x1, y1 + h1 / 2)
        else:
            tail, head = (x0 + w0 / 2, y0), (x1 - w1 / 2, y1)
        ax.annotate("", xy=head, xytext=tail, arrowprops={"arrowstyle": "->", "color": "#335", "lw": 1.4})
        if label:
            beside = (0.1, 0.0, "left") if tail[0] == head[0] else (0.0, 0.12, "center")
            ax.text((tail[0] + head[0]) / 2 + beside[0], (tail[1] + head[1]) / 2 + beside[1], label, ha=beside[2],
                    fontsize=8, color="#335", style="italic")
    ax.set_title("The post-training pipeline: which lab builds which stage", fontsize=11)
    fig.tight_layout()
    return fig
