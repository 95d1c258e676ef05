"""Finding submissions, naming them (lab and submission id) and reading them as notebooks.

* **Lab** a notebook *claims*: notebook metadata ``labhelpers.lab``; else a lab stem inside the file name
  (``alice_01_instruction_tuning.ipynb``, any case, ``-``/``_``/space/``.`` alike); else a parent folder
  named after a lab. Without a claim, the lab is the one its records name.
* **Submission id**: metadata ``labhelpers.submission_id``; else the file stem without the lab stem, without
  browser/OS duplicate suffixes (`` (1)``, ``-1``, `` copy``) and version words next to the lab name
  (``final``, ``v2``, ...); else the nearest parent folder that is not a lab. Ids ignore case and
  surrounding separators. Every such renaming is reported.
* **Reading**: a file whose JSON ends early is *cut off* wherever the cut falls (in a string, a number, a
  literal, between tokens, inside a multi-byte character), in UTF-8, UTF-16 or UTF-32; other broken JSON is
  *damaged*.
"""

from __future__ import annotations

import codecs
import json
import re
from dataclasses import dataclass
from pathlib import Path

from labhelpers.config import lab_names, resolve_lab

_SEPARATORS = re.compile(r"[\s._\-]+")
# Suffixes that browsers and file managers add to a second download or a copy, at the end of a stem.
_DUPLICATE_SUFFIXES = (re.compile(r"\s*\(\d+\)$"), re.compile(r"[\s_\-]*-?\s*copy(\s*\(?\d+\)?)?$", re.I),
                       re.compile(r"-\d{1,2}$"), re.compile(r"\s+\d{1,2}$"))
_VERSION_WORD = re.compile(r"^(final|finished|done|v\d+|version\d*|rev\d+|draft|submission|submitted|new|fixed|"
                           r"updated|latest)$")
_LITERALS = ("true", "false", "null", "NaN", "Infinity", "-Infinity")


def normalise(name: str) -> str:
    """Lower case with every run of separators as one ``_``, and no separators at the ends."""
    return _SEPARATORS.sub("_", name.lower()).strip("_")


def find_notebooks(paths, exclude: Path | None = None) -> list[Path]:
    """Notebook files named by ``paths`` (files as given; folders searched recursively for ``*.ipynb``).

    Checkpoint folders, hidden folders and anything under ``exclude`` (the grader's own output) are skipped.
    A path that does not exist raises ``FileNotFoundError``.
    """
    exclude = exclude.resolve() if exclude else None
    found: dict[Path, None] = {}
    for raw in paths:
        path = Path(raw)
        if not path.exists():
            raise FileNotFoundError(f"{path} does not exist; give executed .ipynb files or folders of them.")
        if path.is_file():
            found[path] = None
            continue
        for nb in sorted(path.rglob("*.ipynb")):
            parts = nb.relative_to(path).parts
            if any(p.startswith(".") or p == "__pycache__" for p in parts[:-1]):
                continue
            if exclude and (exclude == nb.resolve() or exclude in nb.resolve().parents):
                continue
            if nb.is_file():
                found[nb] = None
    return list(found)


def lab_in(name: str) -> str | None:
    """The lab stem that occurs in ``name``, compared normalised (the longest one if several do)."""
    flat = f"_{normalise(name)}_"
    hits = [lab for lab in lab_names() if f"_{normalise(lab)}_" in flat]
    return max(hits, key=len) if hits else None


def _is_lab_folder(name: str) -> bool:
    """Whether a folder is named after a lab (and nothing else), so that it names no submission."""
    lab = lab_in(name)
    return bool(lab) and normalise(name) == normalise(lab)


def claimed_lab(path: Path, meta: dict) -> str | None:
    value = meta.get("lab")
    if isinstance(value, str) and value.strip():
        try:
            return resolve_lab(value.strip())
        except ValueError:
            return value.strip()
    in_name = lab_in(_strip_duplicate_suffix(path.stem)[0])
    if in_name:
        return in_name
    for parent in path.parent.resolve().parts[::-1]:
        if _is_lab_folder(parent):
            return lab_in(parent)
    return None


@dataclass(frozen=True)
class Submission:
    """One file handed in, and whose it is: what the naming rules (see the module) make of its name and metadata.

    A rerun grades an executed copy under the submission's name, so the copy is inspected with this object
    rather than named again from its own temporary path.
    """

    path: Path
    submission_id: str
    lab: str | None  # the lab it claims; None: the records decide
    renamed: tuple[str, ...] = ()  # what the id dropped from the file name, in words


def identify(path: Path, meta: dict) -> Submission:
    """The submission that the file at ``path`` with notebook metadata ``meta`` (``labhelpers`` part) is."""
    ident, renamed = submission_id(path, meta)
    return Submission(path, ident, claimed_lab(path, meta), tuple(renamed))


def _strip_duplicate_suffix(stem: str) -> tuple[str, list[str]]:
    dropped = []
    changed = True
    while changed:
        changed = False
        for pattern in _DUPLICATE_SUFFIXES:
            m = pattern.search(stem)
            if m and m.start() > 0:
                dropped.append(repr(m.group(0).strip()))
                stem = stem[: m.start()]
                changed = True
    return stem, dropped


def _without_lab(tokens: list[str], lab: str) -> tuple[list[str], list[str]]:
    """``tokens`` less the lab's own and the version words beside it (``final``, ``v2``); and those words."""
    lab_tokens = normalise(lab).split("_")
    at = next(i for i in range(len(tokens)) if tokens[i:i + len(lab_tokens)] == lab_tokens)
    before, after = tokens[:at], tokens[at + len(lab_tokens):]
    dropped = []
    while before and _VERSION_WORD.match(before[-1]):
        dropped.append(repr(before.pop()))
    while after and _VERSION_WORD.match(after[0]):
        dropped.append(repr(after.pop(0)))
    return before + after, dropped


def _folder_id(path: Path) -> str:
    """The id of a file whose name is only its lab: the nearest folder that is not a lab's, else the stem."""
    for parent in path.parent.resolve().parts[::-1]:
        if parent not in ("", "/") and not _is_lab_folder(parent):
            return normalise(parent) or parent
    return normalise(path.stem) or path.stem


def _renaming(path: Path, ident: str, lab: str | None, dropped: list[str]) -> list[str]:
    """The sentence telling the instructor how the file name became ``ident``; none when nothing was changed."""
    naive = path.stem.replace(lab, "").strip(" _-.") if lab and lab in path.stem else path.stem
    if dropped:
        note = "dropped " + ", ".join(dropped)
    elif ident != naive and naive:
        note = "case and separators ignored"
    else:
        return []
    return [f"`{path.name}` is submission `{ident}` ({note})"]


def submission_id(path: Path, meta: dict) -> tuple[str, list[str]]:
    """The submission id of a file (see the module) and the renamings that led to it."""
    value = meta.get("submission_id")
    if value is not None and str(value).strip():
        return normalise(str(value)) or str(value).strip(), []
    stem, dropped = _strip_duplicate_suffix(path.stem)
    lab = lab_in(stem)
    tokens = normalise(stem).split("_")
    if lab:
        tokens, around_lab = _without_lab(tokens, lab)
        dropped += around_lab
    ident = "_".join(t for t in tokens if t) or _folder_id(path)
    return ident, _renaming(path, ident, lab, dropped)


# --------------------------------------------------------------------------------------------------
# Reading a file as a notebook
# --------------------------------------------------------------------------------------------------
def _decode(raw: bytes) -> tuple[str, bool]:
    """(the text, whether the bytes end inside a character); raises UnicodeDecodeError for other bad bytes."""
    encoding = json.detect_encoding(raw)
    if encoding == "utf-8" and raw.startswith(codecs.BOM_UTF8):
        encoding = "utf-8-sig"
    decoder = codecs.getincrementaldecoder(encoding)(errors="strict")
    text = decoder.decode(raw, final=False)
    pending = decoder.getstate()[0]
    return text, bool(pending)


def is_cut_off(text: str, err: json.JSONDecodeError) -> bool:
    """Whether ``text`` is the start of some valid JSON that ends early (``err.pos`` counts characters)."""
    if err.msg.startswith("Unterminated string"):  # the decoder reached the end inside a string
        return True
    rest = text[err.pos:].strip()
    if not rest:  # between tokens: after a value, a comma, a colon or an opening bracket
        return True
    if err.msg.startswith("Invalid \\uXXXX escape") and len(text) - err.pos <= 6:
        return True
    if any(lit.startswith(rest) for lit in _LITERALS):  # tru, nul, -Inf, ...
        return True
    # a number cut after its digits' point or exponent: the decoder stopped at "." or "e"
    return bool(err.pos and text[err.pos - 1].isdigit() and re.fullmatch(r"(\.\d*)?([eE][+-]?\d*)?", rest))


_RESUBMIT = ("Download the notebook again from Jupyter or Colab (File > Download .ipynb) and submit that file.")


def load(path: Path) -> tuple[dict | None, str | None]:
    """The parsed notebook, or None and a sentence saying why it is not one."""
    try:
        raw = path.read_bytes()
    except OSError as err:
        return None, f"The file could not be read ({err.strerror})."
    if not raw.strip(b" \t\r\n\x00\xef\xbb\xbf\xfe\xff"):
        return None, "The file is empty (0 bytes of content): the upload or the save did not work."
    try:
        text, ends_inside_a_character = _decode(raw)
    except (UnicodeDecodeError, LookupError):
        return None, "The file is not text (not UTF-8, UTF-16 or UTF-32), so it is not a Jupyter notebook."
    try:
        nb = json.loads(text)
    except json.JSONDecodeError as err:
        if ends_inside_a_character or is_cut_off(text, err):
            what = "it stops in the middle of the notebook: the file is cut off (an interrupted upload or save)"
        else:
            what = f"{err.msg} at line {err.lineno}, column {err.colno}: it was damaged or edited by hand"
        return None, f"The file is not valid JSON ({what}). {_RESUBMIT}"
    if not isinstance(nb, dict) or not isinstance(nb.get("cells"), list):
        if isinstance(nb, dict) and "worksheets" in nb:
            return None, "This is an old (nbformat 3) notebook; open and save it in a current Jupyter first."
        return None, "The file is valid JSON but not a Jupyter notebook (it has no list of cells)."
    return nb, None
