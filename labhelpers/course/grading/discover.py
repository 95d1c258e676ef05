"""Finding submissions, naming them (lab and submission id) and reading them as notebooks.

* **Lab** a notebook *claims*: notebook metadata ``labhelpers.lab``; else a lab stem inside the file name
  (``alice_01_instruction_tuning.ipynb``, any case, ``-``/``_``/space/``.`` alike); else a parent folder
  named after a lab. Without a claim, the lab is the one its records name.
* **Submission id**, in this order (every name is NFC-normalised first, so the same accented name saved on
  macOS and on Windows is one id; every renaming is reported in the notebook's ``renamed`` notes):

  1. the instructor's ``--roster`` CSV (:class:`Roster`: columns ``file`` and ``submission_id``; ``file`` is a
     file or folder path relative to the graded folder, or a bare file or folder name; the most specific
     match wins);
  2. a Canvas bulk download, ``<sortable name>[_late]_<user id>_<attachment id>_<original name>``: the
     sortable name (a late resubmission is the same student; :func:`canvas_name`);
  3. the file stem, less Colab's ``Copy of`` prefix, browser/OS duplicate suffixes (`` (1)``, ``-1``,
     `` copy``), the lab stem and version words next to it (``final``, ``v2``, ...); ids ignore case and
     surrounding separators;
  4. when the stem is **generic** (``Untitled``, ``Untitled1``, ``Untitled-2``, ``Untitled (3)``, the lab's
     name alone, version words alone), the nearest parent folder that is not a lab's: ``alice/Untitled.ipynb``
     is ``alice``;
  5. only when the names give nothing usable (no such folder): notebook metadata ``labhelpers.submission_id``.

  A metadata id is never trusted: one that disagrees with the roster or the names is reported naming both
  ids, and cannot make a classmate's file a ``duplicate``.
* **Reading**: a file whose JSON ends early is *cut off* wherever the cut falls (in a string, a number, a
  literal, between tokens, inside a multi-byte character), in UTF-8, UTF-16 or UTF-32; other broken JSON is
  *damaged*; a dangling symbolic link or a file that cannot be read is found and said so (an ``invalid_file``
  row, never a missing one).
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import os
import re
import unicodedata
from dataclasses import dataclass, replace
from pathlib import Path

from labhelpers.config import lab_names, resolve_lab

_SEPARATORS = re.compile(r"[\s._\-]+")
# Suffixes that browsers and file managers add to a second download or a copy, at the end of a stem.
_DUPLICATE_SUFFIXES = (re.compile(r"\s*\(\d+\)$"), re.compile(r"[\s_\-]*-?\s*copy(\s*\(?\d+\)?)?$", re.I),
                       re.compile(r"-\d{1,2}$"), re.compile(r"\s+\d{1,2}$"))
_VERSION_WORD = re.compile(r"^(final|finished|done|v\d+|version\d*|rev\d+|draft|submission|submitted|new|fixed|"
                           r"updated|latest)$")
_COPY_OF = re.compile(r"^\s*(copy[\s_]+of[\s_]+)+", re.I)  # Colab's "File > Save a copy in Drive", any number of times
_UNTITLED = re.compile(r"^untitled\d*$")  # Jupyter's and Colab's name for a new notebook, after the suffixes go
# Canvas's bulk download: <sortable name>[_late]_<user id>_<attachment id>_<original file name>
_CANVAS = re.compile(r"^(?P<student>[^\W_]+)(?P<late>_late)?_(?P<user>\d{3,})_(?P<attachment>\d{3,})_(?P<original>.+)$")
_LITERALS = ("true", "false", "null", "NaN", "Infinity", "-Infinity")


def nfc(text: str) -> str:
    """``text`` in Unicode's composed form (macOS saves names decomposed, Windows and Linux composed)."""
    return unicodedata.normalize("NFC", text)


def normalise(name: str) -> str:
    """NFC, lower case, every run of separators as one ``_``, and no separators at the ends."""
    return _SEPARATORS.sub("_", nfc(name).lower()).strip("_")


def find_notebooks(paths, exclude: Path | None = None) -> list[Path]:
    """Notebook files named by ``paths`` (files as given; folders searched recursively for ``*.ipynb``).

    Checkpoint folders, hidden folders and anything under ``exclude`` (the grader's own output) are skipped.
    A symbolic link named ``*.ipynb`` is kept even when it points nowhere: reading it says what is wrong.
    A path that does not exist raises ``FileNotFoundError``.
    """
    exclude = exclude.resolve() if exclude else None
    found: dict[Path, None] = {}
    for raw in paths:
        path = Path(raw)
        if not path.exists() and not path.is_symlink():
            raise FileNotFoundError(f"{path} does not exist; give executed .ipynb files or folders of them.")
        if not path.is_dir():
            found[path] = None
            continue
        for nb in sorted(path.rglob("*.ipynb")):
            parts = nb.relative_to(path).parts
            if any(p.startswith(".") or p == "__pycache__" for p in parts[:-1]):
                continue
            if exclude and (exclude == nb.resolve() or exclude in nb.resolve().parents):
                continue
            if nb.is_file() or nb.is_symlink():
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
    in_name = lab_in(_strip_duplicate_suffix(nfc(path.stem))[0])
    if in_name:
        return in_name
    for parent in path.parent.resolve().parts[::-1]:
        if _is_lab_folder(parent):
            return lab_in(parent)
    return None


@dataclass(frozen=True)
class CanvasName:
    """What a Canvas bulk-download file name says: whose file it is and which upload."""

    student: str  # the sortable name, normalised: the submission id
    late: bool
    user: str
    attachment: int  # Canvas numbers uploads in order: the highest is the newest
    original: str  # the file name the student uploaded (with Canvas's -1, -2 for a resubmission)


def canvas_name(file_name: str) -> CanvasName | None:
    """The parts of a Canvas bulk-download name (``smithjane_late_40123_912345_01_lab.ipynb``), else None."""
    m = _CANVAS.match(nfc(file_name))
    if not m:
        return None
    return CanvasName(normalise(m["student"]), bool(m["late"]), m["user"], int(m["attachment"]), m["original"])


@dataclass(frozen=True)
class Submission:
    """One file handed in, and whose it is: what the naming rules (see the module) make of its name and metadata.

    A rerun grades an executed copy under the submission's name, so the copy is inspected with this object
    rather than named again from its own temporary path.
    """

    path: Path
    submission_id: str
    lab: str | None  # the lab it claims; None: the records decide
    renamed: tuple[str, ...] = ()  # how the id was reached, in words, when it is not the file name as is
    metadata_id: str | None = None  # the id the notebook's metadata claims (never trusted on its own)


def _claimed_id(meta: dict) -> str | None:
    """The submission id the notebook's metadata claims, NFC, or None."""
    value = meta.get("submission_id")
    return nfc(str(value)).strip() if value is not None and str(value).strip() else None


def identify(path: Path, meta: dict) -> Submission:
    """The submission that the file at ``path`` with notebook metadata ``meta`` (``labhelpers`` part) is."""
    ident, renamed = submission_id(path, meta)
    return Submission(path, ident, claimed_lab(path, meta), tuple(renamed), _claimed_id(meta))


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


def _folder_id(path: Path) -> str | None:
    """The nearest parent folder that is not a lab's, normalised; None when there is none."""
    for parent in path.parent.resolve().parts[::-1]:
        if parent not in ("", "/") and not _is_lab_folder(parent) and normalise(parent):
            return normalise(parent)
    return None


def _stem_id(stem: str) -> tuple[str | None, list[str]]:
    """The id a (non-Canvas) file stem gives, None when it is generic; and what was dropped from it, in words."""
    copy_of = _COPY_OF.match(stem)
    dropped = [repr(copy_of.group(0).strip())] if copy_of else []
    stem, suffixes = _strip_duplicate_suffix(stem[copy_of.end():] if copy_of else stem)
    dropped += suffixes
    lab = lab_in(stem)
    tokens = normalise(stem).split("_")
    if lab:
        tokens, around_lab = _without_lab(tokens, lab)
        dropped += around_lab
    tokens = [t for t in tokens if t]
    if not tokens or _UNTITLED.match("".join(tokens)) or all(_VERSION_WORD.match(t) for t in tokens):
        return None, dropped
    return "_".join(tokens), dropped


def _note(path: Path, ident: str, why: str) -> str:
    return f"`{path.name}` is submission `{ident}` ({why})"


def _metadata_note(path: Path, ident: str, claimed: str | None) -> list[str]:
    """The note for a metadata id that disagrees with ``ident``; none when it agrees or there is none."""
    if claimed is None or normalise(claimed) == normalise(ident):
        return []
    return [f"`{path.name}`: its notebook metadata claims submission id `{claimed}`, but it is submission "
            f"`{ident}` (ids come from the roster or the file and folder names; a metadata id is not trusted)"]


def submission_id(path: Path, meta: dict) -> tuple[str, list[str]]:
    """The submission id of a file from its names (see the module) and the notes that say how it was reached."""
    claimed = _claimed_id(meta)
    canvas = canvas_name(path.name)
    if canvas:
        late = "late, " if canvas.late else ""
        ident = canvas.student
        notes = [_note(path, ident, f"a Canvas download: {late}user {canvas.user}, upload {canvas.attachment}")]
        return ident, notes + _metadata_note(path, ident, claimed)
    ident, dropped = _stem_id(nfc(path.stem))
    if ident is None:
        folder = _folder_id(path)
        if folder is not None:
            why = f"the name `{path.stem}` is generic, so the folder decides"
            return folder, [_note(path, folder, why)] + _metadata_note(path, folder, claimed)
        if claimed is not None and normalise(claimed):
            return normalise(claimed), [_note(path, normalise(claimed), "from the notebook's metadata: neither "
                                              "the file nor a folder names it")]
        ident = normalise(path.stem) or "unknown"
        return ident, [_note(path, ident, "a generic name, and no folder names it")]
    naive = nfc(path.stem)
    lab = lab_in(naive)
    naive = naive.replace(lab, "").strip(" _-.") if lab and lab in naive else naive
    notes = []
    if dropped:
        notes = [_note(path, ident, "dropped " + ", ".join(dropped))]
    elif ident != naive and naive:
        notes = [_note(path, ident, "case and separators ignored")]
    return ident, notes + _metadata_note(path, ident, claimed)


# --------------------------------------------------------------------------------------------------
# The instructor's roster
# --------------------------------------------------------------------------------------------------
class RosterError(ValueError):
    """A ``--roster`` that cannot be used: one message naming the row and the fix."""


def _roster_key(text: str) -> str:
    """A roster's ``file`` cell as compared: NFC, ``/`` separators, no ``./`` in front or ``/`` behind, any case."""
    key = nfc(text).strip().replace("\\", "/")
    while key.startswith("./"):
        key = key[2:]
    return key.strip("/").casefold()


@dataclass(frozen=True)
class Roster:
    """The instructor's map from files or folders to submission ids (``--roster``); it wins over every name."""

    entries: dict[str, tuple[str, str]]  # key (see _roster_key) -> (id, where it was given: "row 3")
    source: str = "the roster"

    @classmethod
    def of(cls, roster: Roster | dict | str | Path | None) -> Roster | None:
        """A roster from a CSV path, a ``{file: id}`` dict or a Roster; None stays None."""
        if roster is None or isinstance(roster, Roster):
            return roster
        if isinstance(roster, dict):
            return cls._from_rows("the roster", [(f"entry {k!r}", str(k), str(v)) for k, v in roster.items()])
        return cls.read(Path(roster))

    @classmethod
    def read(cls, path: Path) -> Roster:
        where = f"--roster {path}"
        fix = "Give a CSV file whose first row is `file,submission_id`."
        try:
            text = path.read_bytes().decode("utf-8-sig")
        except OSError as err:
            raise RosterError(f"{where} cannot be read ({err.strerror}). {fix}") from None
        except UnicodeDecodeError:
            raise RosterError(f"{where} is not UTF-8 text. Save it as 'CSV UTF-8'. {fix}") from None
        reader = csv.DictReader(io.StringIO(text))
        header = [h for h in reader.fieldnames or []]
        columns = {(h or "").strip().lower(): h for h in header}
        missing = [c for c in ("file", "submission_id") if c not in columns]
        if missing:
            raise RosterError(f"{where}, row 1 (the header) lacks the column{'s' if len(missing) > 1 else ''} "
                              f"{' and '.join(missing)} (it has {', '.join(map(repr, header)) or 'nothing'}). {fix}")
        rows = []
        for row in reader:
            rows.append((f"row {reader.line_num}", (row.get(columns["file"]) or "").strip(),
                         (row.get(columns["submission_id"]) or "").strip()))
        return cls._from_rows(where, rows)

    @classmethod
    def _from_rows(cls, where: str, rows: list[tuple[str, str, str]]) -> Roster:
        entries: dict[str, tuple[str, str]] = {}
        for at, file, ident in rows:
            if not file and not ident:
                continue  # a blank line
            if not file or not ident:
                raise RosterError(f"{where}, {at}: the {'file' if not file else 'submission_id'} is empty. "
                                  "Give every row both a file (or folder) and the submission id it belongs to.")
            key = _roster_key(file)
            if key in entries:
                raise RosterError(f"{where}, {at}: {file!r} is already mapped by {entries[key][1]}. Keep one row "
                                  "per file or folder.")
            entries[key] = (nfc(ident), at)
        return cls(entries, where)

    def _candidates(self, path: Path, roots: list[Path]) -> list[str]:
        """Keys that would name ``path``, most specific first: its path relative to the graded folder, its bare
        name, then the same for each folder above it."""
        absolute = Path(os.path.abspath(path))
        parts = absolute.parts[1:]  # under no graded folder: every folder above it may name it
        for root in roots:
            base = Path(os.path.abspath(root))
            if base.is_dir() and absolute.is_relative_to(base):
                parts = absolute.relative_to(base).parts
                break
        keys = []
        for n in range(len(parts), 0, -1):
            keys += [_roster_key("/".join(parts[:n])), _roster_key(parts[n - 1])]
        return keys

    def identify(self, sub: Submission, roots) -> Submission:
        """``sub`` under the id the roster gives its file or folder; unchanged when the roster does not name it."""
        for key in self._candidates(sub.path, [Path(r) for r in roots]):
            if key in self.entries:
                ident, at = self.entries[key]
                note = _note(sub.path, ident, f"{self.source}, {at}")
                return replace(sub, submission_id=ident,
                               renamed=(note, *_metadata_note(sub.path, ident, sub.metadata_id)))
        return sub


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
    if path.is_symlink() and not path.exists():
        return None, (f"The file is a symbolic link to {os.readlink(path)}, which does not exist: the notebook "
                      "itself was never handed in. Submit the .ipynb file, not a link to it.")
    try:
        raw = path.read_bytes()
    except IsADirectoryError:
        return None, "This is a folder whose name ends in .ipynb, not a notebook file. Submit the .ipynb file itself."
    except OSError as err:
        return None, (f"The file could not be read ({err.strerror or type(err).__name__}): the grader cannot open "
                      "it. Check its permissions, or submit the file again.")
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
