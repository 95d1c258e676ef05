"""The versions CI tested the labs with: what ``labhelpers doctor`` compares the installed ones against.

Three sets, one per CI lane that installs the runtime (``.ci/run``):

* :data:`LOWEST`: every runtime dependency's lower bound in ``pyproject.toml``, which ``.ci/lowest_lane.sh``
  installs exactly (``tests/test_versions.py`` keeps the two equal);
* :data:`COLAB`: Colab's preinstalled versions that the setup cell's ``pip install`` keeps, which
  ``.ci/colab_lane.sh`` installs from ``.ci/colab-constraints.txt`` (Colab's published freeze) and checks
  against this table after the install. Not here: what Colab lacks (trl, sacrebleu) and what the install moves
  (datasets 4.0.0, below TRL's >=4.7; huggingface_hub 1.27.0, below the newest datasets' >=1.31);
* :data:`NEWEST`: what the main CI run installed (the newest each requirement admits, torch pinned), on the
  date below. After a green CI run, copy in what ``labhelpers doctor`` in CI's venv notes as newer than tested.
"""

from __future__ import annotations

from packaging.utils import canonicalize_name

# pyproject.toml's lower bounds (.ci/lowest_lane.sh)
LOWEST = {
    "torch": "2.11",
    "transformers": "5.2",
    "trl": "1.16",
    "datasets": "4.7",
    "accelerate": "1.10.1",
    "peft": "0.18",
    "huggingface_hub": "1.3",
    "tokenizers": "0.22.1",
    "sacrebleu": "2.4",
    "matplotlib": "3.8.4",
    "pandas": "2.2.2",
    "nbformat": "5.10",
    "tqdm": "4.66.3",
    "ipywidgets": "7.6",
    "filelock": "3.12",
    "platformdirs": "4",
}

# Colab's GPU runtime of 2026-08-19 (googlecolab/backend-info), the versions the setup cell keeps (.ci/colab_lane.sh)
COLAB = {
    "transformers": "5.15.0",
    "accelerate": "1.14.0",
    "peft": "0.20.0",
    "tokenizers": "0.22.2",
    "matplotlib": "3.10.0",
    "pandas": "2.2.3",
    "nbformat": "5.11.1",
    "tqdm": "4.67.3",
    "ipywidgets": "7.7.1",
    "filelock": "3.32.3",
    "platformdirs": "4.11.3",
}

# The main CI run's venv (.ci/run: torch==2.13.0, then the newest of everything else), refreshed on the date below
NEWEST_DATE = "2026-12-03"
NEWEST = {
    "torch": "2.13.0",
    "transformers": "5.24.0",
    "trl": "1.16.0",
    "datasets": "5.2.0",
    "accelerate": "1.16.0",
    "peft": "0.21.2",
    "huggingface_hub": "2.4.0",
    "tokenizers": "0.23.3",
    "sacrebleu": "2.6.0",
    "matplotlib": "3.11.2",
    "pandas": "3.1.1",
    "nbformat": "5.11.1",
    "tqdm": "4.70.1",
    "ipywidgets": "8.1.9",
    "filelock": "4.3.1",
    "platformdirs": "4.14.9",
}

SETS = (("lowest lane", LOWEST), ("Colab lane", COLAB), ("main CI", NEWEST))


def tested_versions(name: str) -> list[tuple[str, str]]:
    """``(where, version)`` for each lane that tested distribution ``name``."""
    key = canonicalize_name(name)
    out = []
    for where, table in SETS:
        for pkg, version in table.items():
            if canonicalize_name(pkg) == key:
                out.append((where, version))
    return out
