"""labhelpers: what the fine-tuning labs share, so that each notebook keeps only its lesson.

Every lab begins with ``import labhelpers``, whose top level is the labs' common calls: the setup cell's
``quiet_known_warnings`` and ``print_versions``; ``lab_config`` and ``prepare_lab`` (lab 00: ``resolve_profile``);
``record_result``, ``record_check`` and ``show_summary``. Beyond it, each lab imports these modules of the package:

======  ===================================================================================================
lab     modules
======  ===================================================================================================
00      ``pipeline``, ``quiz``, ``config``, ``records``
01      ``training``, ``quiz``, ``formatting``, ``collators``, ``data``, ``display``
02      ``training``, ``quiz``, ``reward``, ``data``, ``losses``
03      ``training``, ``quiz``, ``data``, ``display``, ``losses``, ``preferences``, ``synthetic``, ``sequences``
04      ``training``, ``quiz``, ``data``, ``display``, ``reward``, ``ppo``, ``sequences``
05      ``training``, ``quiz``
06      ``training``, ``quiz``, ``launch``, ``memory``, ``chat``, ``data``, ``lora``, ``scripts.sft_lora``
======  ===================================================================================================

* :mod:`~labhelpers.config`, :mod:`~labhelpers.lab_configs`  profiles (auto, tiny, full), device and dtype,
  one frozen config per lab; :mod:`~labhelpers.pipeline` which lab builds which stage (lab 00's figure)
* :mod:`~labhelpers.training`  every lab's trainer settings (SFT, reward, DPO, PPO, GRPO), in one place
* :mod:`~labhelpers.data`, :mod:`~labhelpers.synthetic`  loaders with the real datasets' schemas, and the
  seeded synthetic data of the ``tiny`` profile
* :mod:`~labhelpers.formatting`, :mod:`~labhelpers.collators`  Alpaca prompts and completion-only collation (01)
* :mod:`~labhelpers.reward`, :mod:`~labhelpers.losses`  reward scoring and win rate (02), Bradley–Terry and DPO
  losses from their formulas (02, 03)
* :mod:`~labhelpers.preferences`, :mod:`~labhelpers.sequences`  preference rows as text (03); padding,
  positions, log-probs and masked statistics (03, 04)
* :mod:`~labhelpers.ppo`  LengthSampler and a small PPO trainer with a value head (04)
* :mod:`~labhelpers.chat`, :mod:`~labhelpers.lora`, :mod:`~labhelpers.memory`, :mod:`~labhelpers.launch`  chat
  data, LoRA written out, training memory, ``accelerate launch`` of ``scripts/sft_lora.py`` (06)
* :mod:`~labhelpers.quiz`, :mod:`~labhelpers.records`, :mod:`~labhelpers.display`  self-checks, result and
  check records, and what the labs show without teaching it
* behind the calls: :mod:`~labhelpers.tiny` and :mod:`~labhelpers.zoo_cache` (the tiny zoo, built on first
  use), :mod:`~labhelpers.hub` (the ``full`` profile's downloads), :mod:`~labhelpers.quiet`,
  :mod:`~labhelpers.versions` and :mod:`~labhelpers.doctor`

:mod:`labhelpers.course` holds the course's tools (the runner, the grader, the rehearsal, student versions,
the benchmarks' timing): they are for instructors and CI, not for the labs, and nothing above imports them.
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
