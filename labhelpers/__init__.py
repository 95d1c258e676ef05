"""labhelpers: what the fine-tuning labs share, so that each notebook keeps only its lesson.

    from labhelpers import lab_config, record_result, record_check

* :mod:`labhelpers.config`    profiles (auto/tiny/full), device and dtype, one frozen config per lab
* :mod:`labhelpers.tiny`      the offline tiny model zoo (OPT, GPT-2, gpt2-imdb, a sentiment classifier)
* :mod:`labhelpers.synthetic` seeded synthetic data with the real datasets' schemas
* :mod:`labhelpers.data`      loaders: Hub id, local file or the tiny set, with schema checks
* :mod:`labhelpers.formatting` Alpaca-style prompt formatting (lab 01)
* :mod:`labhelpers.collators` the completion-only collator TRL no longer ships (lab 01)
* :mod:`labhelpers.reward`    pair cleaning, reward scoring and win rate (lab 02)
* :mod:`labhelpers.preferences` preference rows to prompt/chosen/rejected text, answer log-probs (lab 03)
* :mod:`labhelpers.ppo`       LengthSampler and a small PPO trainer with a value head (lab 04)
* :mod:`labhelpers.losses`    Bradley–Terry and DPO losses written from their formulas
* :mod:`labhelpers.training`  every lab's trainer settings (SFT, reward, DPO, PPO, GRPO configs), in one place
* :mod:`labhelpers.records`   result and check records read by the tests and the grader
* :mod:`labhelpers.course.runner`   headless execution of the labs (``labhelpers run``)
* :mod:`labhelpers.quiet`     hides the known upstream warnings a learner cannot act on, each with its reason
* :mod:`labhelpers.course.grading`, :mod:`labhelpers.course.student`  gradebook from executed notebooks, student versions
"""

from .config import LabConfig, lab_config, prepare_lab, resolve_profile
from .quiet import quiet_known_warnings
from .records import record_check, record_result, show_summary

__version__ = "0.1.0"


__all__ = ["LabConfig", "lab_config", "prepare_lab", "resolve_profile", "record_check", "record_result", "show_summary",
           "print_versions", "set_seed", "quiet_known_warnings"]


def print_versions() -> None:
    """One line with the versions the results depend on (the setup cell of every lab prints it)."""
    from .records import versions

    print("  ".join(f"{k} {v}" for k, v in versions().items()))


def set_seed(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA) in one call."""
    from transformers import set_seed as _set_seed

    _set_seed(seed)
