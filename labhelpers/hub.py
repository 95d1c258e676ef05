"""Where the ``full`` profile's models and datasets come from: the Hugging Face cache, else the Hub.

The rule is huggingface_hub's own. ``HF_HUB_OFFLINE=1`` means "use the cache, never call the network", so a
model or dataset whose files are already in the cache loads offline. Reachability is asked through
huggingface_hub's HTTP session, so ``HTTPS_PROXY`` and ``HF_ENDPOINT`` (with or without a port) work as they do
for ``from_pretrained``.

:func:`locate` answers for one id; :func:`locate_all` collects every missing id of a lab and raises one
:class:`HubUnavailableError` that names them, what was tried, and the two ways out.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

# A causal LM or classifier directory needs these; each tuple is "any one of".
WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin",
                "pytorch_model.bin.index.json")
TOKENIZER_FILES = ("tokenizer.json", "vocab.json", "vocab.txt", "tokenizer.model")

WAYS_OUT = ('Either set PROFILE = "tiny" in the parameters cell (offline, built-in tiny models and data), or '
            "run this lab once with internet access so that the files land in the Hugging Face cache "
            "(after that, HF_HUB_OFFLINE=1 works).")


class HubUnavailableError(RuntimeError):
    """A ``full``-profile model or dataset is neither in the Hugging Face cache nor reachable on the Hub.

    In IPython the traceback is replaced by the message alone: it is the one thing the learner needs.
    """

    def _render_traceback_(self):  # IPython calls this instead of printing a traceback
        return [f"{type(self).__name__}: {line}" if i == 0 else line
                for i, line in enumerate(str(self).splitlines())]


def offline_mode() -> bool:
    """``HF_HUB_OFFLINE`` (or ``TRANSFORMERS_OFFLINE``) as huggingface_hub reads it."""
    from huggingface_hub import constants

    value = os.environ.get("HF_HUB_OFFLINE") or os.environ.get("TRANSFORMERS_OFFLINE") or ""
    return bool(constants.HF_HUB_OFFLINE) or value.strip().upper() in {"1", "ON", "YES", "TRUE"}


@dataclass(frozen=True)
class Location:
    """Where one id was found: ``source`` is ``"cache"`` or ``"hub"``; ``problem`` is set when it wasn't.

    ``offline_only`` says that the id is missing only because ``HF_HUB_OFFLINE`` kept the Hub from being asked:
    the one case in which ``auto`` may choose ``tiny`` on a GPU (the learner asked for the cache alone).
    """

    repo_id: str
    repo_type: str  # "model" or "dataset"
    source: str | None
    problem: str | None = None
    offline_only: bool = False

    @property
    def found(self) -> bool:
        return self.source is not None


def _cached_model_problem(repo_id: str) -> str | None:
    """``None`` when the cache holds a loadable model; else what is missing. Raises LookupError if nothing."""
    from huggingface_hub import try_to_load_from_cache

    def cached(filename: str) -> bool:
        return isinstance(try_to_load_from_cache(repo_id, filename), str)

    if not cached("config.json"):
        raise LookupError(repo_id)
    if not any(cached(f) for f in WEIGHT_FILES):
        return f"the cache holds {repo_id}'s config.json but no weights ({' or '.join(WEIGHT_FILES)})"
    if not any(cached(f) for f in TOKENIZER_FILES):
        return (f"the cache holds {repo_id}'s model but not its tokenizer files (missing tokenizer.json, or "
                "vocab.json with merges.txt); load it once online with AutoTokenizer.from_pretrained")
    return None


def cached_dataset_snapshot(repo_id: str) -> str | None:
    """The folder of a dataset repository's snapshot in the Hugging Face cache, or ``None``."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        return snapshot_download(repo_id, repo_type="dataset", local_files_only=True)
    except (LocalEntryNotFoundError, FileNotFoundError, OSError):
        return None


def _dataset_in_cache(repo_id: str) -> bool:
    if cached_dataset_snapshot(repo_id):
        return True
    import datasets

    # datasets' own cache of a prepared dataset, which load_dataset also reuses offline
    return os.path.isdir(os.path.join(datasets.config.HF_DATASETS_CACHE, repo_id.replace("/", "___")))


# Answers worth asking again: the Hub was busy or slow, not wrong. Waits between the tries, in seconds.
TRANSIENT_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})
RETRY_DELAYS = (1.0, 2.0, 4.0)


def _transient_reason(err: Exception) -> str | None:
    """Why a failed request may succeed if asked again (``"HTTP 429"``, ``"a timeout"``), or ``None``."""
    response = getattr(err, "response", None)
    status = getattr(response, "status_code", None)
    if status is not None:
        return f"HTTP {status}" if status in TRANSIENT_STATUS else None
    if isinstance(err, TimeoutError) or "timeout" in type(err).__name__.lower():
        return "a timeout"
    if isinstance(err, (ConnectionError, OSError)) or "connect" in type(err).__name__.lower():
        return f"no connection ({type(err).__name__})"
    return None


def _ask_hub(repo_id: str, repo_type: str, timeout: float) -> str | None:
    """``None`` when the Hub has the repo; else why not (unknown id, gated, or unreachable after retries).

    Busy or unreachable answers (429, 5xx, timeouts, refused connections) are asked again after each of
    :data:`RETRY_DELAYS`; an unknown or gated id is an answer, and is not.
    """
    import time

    from huggingface_hub import HfApi, constants
    from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError

    api = HfApi()
    info = api.dataset_info if repo_type == "dataset" else api.model_info
    waits, tries = iter(RETRY_DELAYS), 0
    while True:
        tries += 1
        try:
            info(repo_id, timeout=timeout)
            return None
        except GatedRepoError:
            return f"{repo_id} is gated on the Hub: accept its licence on its page and log in with `hf auth login`"
        except RepositoryNotFoundError:
            return f"the Hub ({constants.ENDPOINT}) has no {repo_type} named {repo_id!r}: check the spelling"
        except Exception as err:  # network errors come as several requests/httpx/OS types
            reason = _transient_reason(err)
            if reason is None:
                status = getattr(getattr(err, "response", None), "status_code", None)
                return f"the Hub ({constants.ENDPOINT}) answered {f'HTTP {status}' if status else type(err).__name__}"
            delay = next(waits, None)
            if delay is None:
                return (f"the Hub ({constants.ENDPOINT}) cannot be reached ({reason}, {tries} tries over "
                        f"{sum(RETRY_DELAYS):g} s): try again in a few minutes")
            time.sleep(delay)


def locate(repo_id: str, repo_type: str = "model", *, timeout: float = 5.0) -> Location:
    """Find one model or dataset: in the Hugging Face cache first, then (unless offline) on the Hub."""
    if repo_type not in {"model", "dataset"}:
        raise ValueError(f"repo_type must be 'model' or 'dataset', not {repo_type!r}")
    if repo_type == "model":
        try:
            problem = _cached_model_problem(repo_id)
        except LookupError:
            problem = "not in the Hugging Face cache"
        else:
            if problem is None:
                return Location(repo_id, repo_type, "cache")
    else:
        if _dataset_in_cache(repo_id):
            return Location(repo_id, repo_type, "cache")
        problem = "not in the Hugging Face cache"
    if offline_mode():
        return Location(repo_id, repo_type, None, f"{problem}, and HF_HUB_OFFLINE is set so the Hub was not asked",
                        offline_only=True)
    why_not = _ask_hub(repo_id, repo_type, timeout)
    if why_not is None:
        return Location(repo_id, repo_type, "hub")
    return Location(repo_id, repo_type, None, f"{problem}; {why_not}")


def locate_all(ids: dict[str, str], *, timeout: float = 5.0) -> list[Location]:
    """Locate each ``{repo_id: repo_type}``; the ones not found come back with their ``problem``."""
    return [locate(repo_id, repo_type, timeout=timeout) for repo_id, repo_type in ids.items()]


def unavailable_message(lab: str, missing: list[Location]) -> str:
    lines = [f"Lab {lab}'s 'full' profile needs {len(missing)} thing(s) it cannot find:"]
    lines += [f"  - {loc.repo_type} {loc.repo_id}: {loc.problem}" for loc in missing]
    lines.append(WAYS_OUT)
    return "\n".join(lines)


def require(repo_id: str, repo_type: str = "model") -> Location:
    """:func:`locate`, raising :class:`HubUnavailableError` when the id can be had from neither place."""
    location = locate(repo_id, repo_type)
    if not location.found:
        raise HubUnavailableError(f"The {repo_type} {repo_id!r} cannot be loaded: {location.problem}.\n{WAYS_OUT}")
    return location
