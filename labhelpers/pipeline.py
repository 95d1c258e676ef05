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


# --------------------------------------------------------------------------------------------------
# The course as a table: what each lab adds, and the order to take the labs in
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LabRole:
    title: str  # the lab's short name, as lab 00's table shows it
    adds: str  # what the lab adds to the pipeline
    idea: str  # the idea to take away
    after: str | None = None  # a lab this one may follow at any point (None: it is taken in its numbered place)


LAB_ROLES: dict[str, LabRole] = {
    "01_instruction_tuning": LabRole(
        "Instruction tuning", "a model that answers in a fixed prompt format",
        "train on the answer only (instruction masking): labels `-100` on the prompt"),
    "02_reward_modeling": LabRole(
        "Reward modeling", "a scalar score for any prompt + answer",
        r"the Bradley–Terry loss $-\log\sigma(r_c - r_r)$ sees only reward differences"),
    "03_dpo": LabRole(
        "DPO", "preference tuning without a reward model",
        r"the optimum of $\mathbb{E}[r] - \beta\,\mathrm{KL}$ turns the reward into "
        r"$\beta\log\frac{\pi}{\pi_{\text{ref}}}$"),
    "04_ppo_rlhf": LabRole(
        "RLHF with PPO", "preference tuning by sampling and scoring",
        "policy gradients with a KL penalty per token; without it, reward hacking"),
    "05_generation_parameters": LabRole(
        "Generation parameters", "control over how any model writes",
        "temperature, top-k, top-p and beams reshape or search the same distribution", after="01_instruction_tuning"),
    "06_scaling_up": LabRole(
        "Scaling up", "SFT at scale: chat templates, LoRA, QLoRA, several GPUs",
        "LoRA trains $r(d_\\text{in}+d_\\text{out})$ numbers per layer on a frozen (even 4-bit) base; bytes "
        "per parameter decide what fits"),
}


def course_labs() -> list[str]:
    """Every lab of the installed course but the overview, in numbered order (from ``config.lab_names()``)."""
    from .config import OVERVIEW_LAB, lab_names

    return [name for name in lab_names() if name != OVERVIEW_LAB]


def lab_role(stem: str) -> LabRole:
    """The lab's row of the course table; a lab with no entry in :data:`LAB_ROLES` still gets one, from its name."""
    return LAB_ROLES.get(stem) or LabRole(stem.split("_", 1)[1].replace("_", " ").capitalize(), "see the lab", "")


def _number(stem: str) -> str:
    return stem.split("_", 1)[0]


def course_order() -> str:
    """The order to take the labs in, e.g. ``01 → 02 → 03 → 04 → 06, with 05 at any point after 01``."""
    labs = course_labs()
    line = " → ".join(f"**{_number(s)}**" for s in labs if lab_role(s).after is None)
    flexible = [f"**{_number(s)}** at any point after {_number(lab_role(s).after)}" for s in labs if lab_role(s).after]
    return line + (", with " + " and ".join(flexible) if flexible else "")


def course_table(here: str | None = None) -> str:
    """Markdown: a row for every lab of the course (what it adds, the idea to take away), then the order.

    ``here`` (a lab stem) marks that lab's row. Lab 00 and every closing that lists the course print this, so a
    new lab appears in them by existing in the package."""
    rows = ["| lab | adds to the pipeline | the idea to take away |", "|---|---|---|"]
    for stem in course_labs():
        role = lab_role(stem)
        name = f"[{_number(stem)} {role.title}]({stem}.ipynb)"
        rows.append(f"| {'**you are here:** ' if stem == here else ''}{name} | {role.adds} | {role.idea} |")
    return "\n".join(rows) + f"\n\nThe order to take them: {course_order()}."


def show_course(here: str | None = None) -> None:
    """Display :func:`course_table` (rendered Markdown in a notebook, plain text elsewhere); returns nothing."""
    from IPython import get_ipython
    from IPython.display import Markdown, display

    if get_ipython() is None:  # a script: the Markdown source reads well enough
        print(course_table(here))
    else:
        display(Markdown(course_table(here)))
