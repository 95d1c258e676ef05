"""Installing a built model folder into a cache so that readers only ever see complete folders.

The tiny zoo (:mod:`labhelpers.tiny`) keeps one folder per zoo model, named by a hash of its recipe. This module
is how such a folder gets there and how a reader decides to trust it:

* a folder counts only when it is **complete**: its ``recipe.json`` carries the expected key and recipe, and
  the weights, config and tokenizer files are beside it;
* building happens under a **file lock** per folder (:func:`folder_lock`, which the rehearsal's stand-ins use
  too), so two processes never build the same model at once; the one that waited finds the other's folder;
* a folder that exists but is not complete (an interrupted copy, a card of another recipe) is **moved aside**,
  kept for a look, and rebuilt;
* the model is saved into a temporary folder and **renamed** into place, which is atomic on one file system;
* building may seed every random number generator; the caller's **random state is given back** afterwards.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path

CARD = "recipe.json"
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")


def is_complete(path: Path, expected: dict) -> bool:
    """True when ``path`` has a card whose entries include ``expected``, and the weights, config and tokenizer."""
    try:
        card = json.loads((path / CARD).read_text())
    except (OSError, ValueError):
        return False
    expected = json.loads(json.dumps(expected))  # compare as JSON reads it back: tuples become lists
    same = all(card.get(k) == v for k, v in expected.items())
    files = (path / "config.json").is_file() and (path / "tokenizer.json").is_file()
    return same and files and any((path / w).is_file() for w in WEIGHT_FILES)


def folder_lock(path: Path):
    """The file lock of one cache folder (a ``.<name>.lock`` file beside it): hold it to build that folder."""
    from filelock import FileLock

    path.parent.mkdir(parents=True, exist_ok=True)
    return FileLock(str(path.parent / f".{path.name}.lock"))


def install(path: Path, expected: dict, build: Callable[[], tuple]) -> Path:
    """Make ``path`` a complete folder, calling ``build()`` -> ``(model, tokenizer, card)`` only if needed.

    ``expected`` holds the card entries that identify the folder (its key and recipe); ``card`` must include
    them. Returns ``path``; raises ``RuntimeError`` when the folder is still not complete after a build.
    """
    if is_complete(path, expected):
        return path
    with folder_lock(path):
        if is_complete(path, expected):  # another process built it while this one waited
            return path
        if path.exists():
            aside = path.parent / f".incomplete-{path.name}-{os.getpid()}-{time.time_ns()}"
            os.rename(path, aside)
            warnings.warn(f"The zoo folder {path} was incomplete (no valid {CARD}, weights or tokenizer); moved "
                          f"it to {aside} and rebuilding.", stacklevel=3)
        model, tokenizer, card = _keeping_random_state(build)
        _save(path, model, tokenizer, card)
    if not is_complete(path, expected):
        raise RuntimeError(f"Built {path.name} into {path}, but the folder is not complete afterwards; check that "
                           "the cache folder is writable and has free space, or set LABHELPERS_CACHE elsewhere.")
    return path


def _keeping_random_state(build: Callable[[], tuple]) -> tuple:
    import numpy as np
    import torch

    python_state, numpy_state = random.getstate(), np.random.get_state()
    try:
        with torch.random.fork_rng():
            return build()
    finally:
        random.setstate(python_state)
        np.random.set_state(numpy_state)


def _save(path: Path, model, tokenizer, card: dict) -> None:
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}-", dir=path.parent))
    try:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        (tmp / CARD).write_text(json.dumps(card, indent=2))
        os.rename(tmp, path)  # atomic: a reader sees no folder or a complete one
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
