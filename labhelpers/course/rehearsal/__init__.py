"""The full-profile rehearsal: every lab's ``full`` cells, executed offline on a CPU against real-size stand-ins.

``labhelpers rehearse [LAB ...] --out DIR`` (see :mod:`labhelpers.course.rehearsal.runner`). The stand-ins are registered
under the real Hub ids (:mod:`labhelpers.course.rehearsal.standins`: one table row per model or dataset) and laid out as a
Hugging Face cache in a temporary ``HF_HOME`` (:mod:`labhelpers.course.rehearsal.cache`), so each lab loads them through
the same ``from_pretrained`` and dataset loaders, under ``HF_HUB_OFFLINE=1``, that a learner's cached run uses.
"""

from labhelpers.course.rehearsal.cache import build_standin, seed_hub_cache
from labhelpers.course.rehearsal.runner import (
           SHRUNK,
           Rehearsal,
           check_standins,
           hub_ids,
           rehearsal_parameters,
           rehearse_lab,
           write_summary,
)
from labhelpers.course.rehearsal.standins import (
           DATASET_STANDINS,
           MODEL_STANDINS,
           DatasetStandIn,
           ModelStandIn,
           RehearsalError,
)

__all__ = ["DATASET_STANDINS", "MODEL_STANDINS", "SHRUNK", "DatasetStandIn", "ModelStandIn", "Rehearsal",
           "RehearsalError", "build_standin", "check_standins", "hub_ids", "rehearsal_parameters", "rehearse_lab",
           "seed_hub_cache", "write_summary"]
