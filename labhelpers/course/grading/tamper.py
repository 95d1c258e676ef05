"""Cells that change how results are recorded: found by reading the code, before anything trusts a record.

A record is only evidence if the course's ``record_check``, ``record_result`` and ``quiz.check`` made it. A
cell that rebinds one of them, changes a ``labhelpers`` module, or writes a record output by hand can make
any record it likes, and the records then agree with themselves. The grader reads every code cell's syntax
tree and reports, per cell:

* a name imported from ``labhelpers``, or ``record_check`` / ``record_result`` even before they are
  imported, bound again (assignment, ``def``, ``class``, ``import ... as``, loop or ``with`` target, also
  inside a function): ``compute_gae = my_gae`` would make a check against the library pass by itself;
* an attribute, item or ``del`` on a ``labhelpers`` module or a name it was copied to
  (``records.record_check = ...``, ``r = records; r.record_check = ...``, ``quiz.QUESTIONS[...] = ...``), and
  any use of a private name of one (``records._log``, ``records.__dict__``);
* ``setattr``, ``delattr``, ``getattr``, ``vars`` on a ``labhelpers`` module, and changes to ``sys.modules``;
* code the grader cannot read: ``exec``, ``eval``, ``compile``, ``__import__``, ``importlib.import_module``,
  ``importlib.reload``, and IPython's ``run_cell``/``run_line_magic``/``run_cell_magic``/``user_ns``;
* the record MIME type written out (``application/vnd.labhelpers.record+json``): a record made by hand;
* ``%run``, ``%load``, ``%%writefile``, and shell lines (``!``, ``%%bash``, ``%%sh``) that name labhelpers
  other than ``pip install``.

This is a reading of the code, not a proof: code can hide from it (a string decoded at run time and handed to
something this list does not name). ``--rerun`` runs the course's own cells with only the learner's solution
bodies in them, and the same reading covers those bodies.
"""

from __future__ import annotations

import ast
import functools
import re
from dataclasses import dataclass

PACKAGE = "labhelpers"
# The labs call these by name: a cell that defines its own replaces what every later check records with.
RECORD_FUNCTIONS = frozenset({"record_check", "record_result"})
UNREADABLE_CALLS = frozenset({"exec", "eval", "compile", "__import__"})
REFLECTION_CALLS = frozenset({"setattr", "delattr", "getattr", "vars"})
IPYTHON_RUNNERS = frozenset({"run_cell", "run_line_magic", "run_cell_magic", "user_ns", "ex", "ev", "run_code"})
IMPORTLIB_LOADERS = frozenset({"import_module", "reload"})
SYS_MODULES_CHANGES = frozenset({"pop", "update", "setdefault", "clear", "__setitem__", "popitem"})
RECORD_MIME_HINT = re.compile(r"vnd\.labhelpers|labhelpers\.record\+json")
MAGIC_LINES = re.compile(r"^\s*(%run|%load|%%writefile|%%file)\b")
SHELL_LINE = re.compile(r"^\s*(!|%%bash|%%sh|%%script|%sx|%system)")


@dataclass(frozen=True)
class Finding:
    cell: int  # 0-based index in the notebook
    what: str  # in words, naming the code


def _code(source: str) -> str:
    """The cell's Python with IPython magics and shell lines blanked (line numbers kept)."""
    return "\n".join("" if line.lstrip().startswith(("%", "!")) else line for line in source.split("\n"))


@functools.lru_cache(maxsize=8192)
def _tree(source: str) -> ast.Module | None:
    try:
        return ast.parse(_code(source))
    except SyntaxError:
        return None


def _imported_from_labhelpers(tree: ast.Module) -> tuple[set[str], set[str]]:
    """(names bound to a labhelpers module, names bound to an object imported from one)."""
    modules, objects = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == PACKAGE:
                    modules.add(alias.asname or alias.name.split(".")[0])
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == PACKAGE:
            for alias in node.names:
                name = alias.asname or alias.name
                # `from labhelpers import quiz` binds a module; a lower-case name of a package is one too
                (modules if node.module == PACKAGE else objects).add(name)
    return modules, objects


def _base_name(node: ast.AST) -> str | None:
    while isinstance(node, (ast.Attribute, ast.Subscript)):
        node = node.value
    return node.id if isinstance(node, ast.Name) else None


def _bound_names(node: ast.AST) -> list[str]:
    """Plain names a statement binds (targets of assignments, loops, with, def, class, import)."""
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return [node.name]
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        return [a.asname or a.name.split(".")[0] for a in node.names]
    targets = []
    if isinstance(node, ast.Assign):
        targets = node.targets
    elif isinstance(node, (ast.AugAssign, ast.AnnAssign, ast.For, ast.AsyncFor)):
        targets = [node.target]
    elif isinstance(node, (ast.With, ast.AsyncWith)):
        targets = [item.optional_vars for item in node.items if item.optional_vars is not None]
    elif isinstance(node, ast.NamedExpr):
        targets = [node.target]
    return [name for target in targets for name in _target_names(target)]


def _target_names(target: ast.AST) -> list[str]:
    """The plain names a target binds: ``a``, ``a, b``, ``*rest``; not the base of ``a.b`` or ``a[i]``."""
    if isinstance(target, ast.Name):
        return [target.id]
    if isinstance(target, ast.Starred):
        return _target_names(target.value)
    if isinstance(target, (ast.Tuple, ast.List)):
        return [name for element in target.elts for name in _target_names(element)]
    return []


def _changed_objects(node: ast.AST) -> list[ast.AST]:
    """Attribute and item targets that a statement assigns to or deletes."""
    if isinstance(node, ast.Assign):
        targets = node.targets
    elif isinstance(node, (ast.AugAssign, ast.AnnAssign)):
        targets = [node.target]
    elif isinstance(node, ast.Delete):
        targets = node.targets
    else:
        return []
    return [t for target in targets for t in _target_objects(target)]


def _target_objects(target: ast.AST) -> list[ast.AST]:
    if isinstance(target, (ast.Attribute, ast.Subscript)):
        return [target]
    if isinstance(target, ast.Starred):
        return _target_objects(target.value)
    if isinstance(target, (ast.Tuple, ast.List)):
        return [t for element in target.elts for t in _target_objects(element)]
    return []


def _call_name(node: ast.Call) -> str | None:
    func = node.func
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return None


# What one cell does, whatever came before it (cached: a class of 300 shares most cells). Each event is
# (kind, name, words): "bind" a plain name (words: "" when an import from labhelpers binds it), "alias" a name
# copied from another, "change"/"private"/"reflect" something whose base is ``name``, "always" a finding.
Event = tuple[str, str, str]


@functools.lru_cache(maxsize=8192)
def _facts(source: str) -> tuple[frozenset[str], frozenset[str], tuple[Event, ...]]:
    events: list[Event] = []
    for line in source.split("\n"):
        if MAGIC_LINES.match(line):
            events.append(("always", "", f"runs other code with `{line.strip()[:60]}`"))
        elif SHELL_LINE.match(line) and PACKAGE in line and "pip install" not in line:
            events.append(("always", "", f"touches labhelpers from the shell: `{line.strip()[:60]}`"))
    tree = _tree(source)
    if tree is None:
        return frozenset(), frozenset(), tuple(events)
    modules, objects = _imported_from_labhelpers(tree)
    for node in ast.walk(tree):
        events += _node_events(node)
    return frozenset(modules), frozenset(objects), tuple(events)


def _node_events(node: ast.AST) -> list[Event]:
    events: list[Event] = []
    from_labhelpers = isinstance(node, (ast.Import, ast.ImportFrom)) and _imports_labhelpers(node)
    events += [("bind", name, "" if from_labhelpers else "x") for name in _bound_names(node)]
    if isinstance(node, ast.Assign) and isinstance(node.value, (ast.Name, ast.Attribute)):
        base = _base_name(node.value)
        events += [("alias", base, name) for t in node.targets for name in _target_names(t) if base]
    for target in _changed_objects(node):
        if isinstance(target, ast.Subscript) and _is_sys_modules(target.value):
            events.append(("always", "", "changes `sys.modules`"))
        elif _base_name(target):
            events.append(("change", _base_name(target), f"changes `{ast.unparse(target)[:60]}` inside labhelpers"))
    if isinstance(node, ast.Attribute) and node.attr.startswith("_") and _base_name(node):
        events.append(("private", _base_name(node), f"uses `{ast.unparse(node)[:60]}`, a private part of labhelpers"))
    if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == PACKAGE:
        events += [("always", "", f"imports `{a.name}`, a private part of labhelpers") for a in node.names
                   if a.name.startswith("_")]
    if isinstance(node, ast.Call):
        events += _call_events(node)
    if isinstance(node, ast.Constant) and isinstance(node.value, str) and RECORD_MIME_HINT.search(node.value):
        events.append(("always", "", "writes the record MIME type itself (a record made by hand)"))
    return events


def _call_events(node: ast.Call) -> list[Event]:
    name = _call_name(node)
    first = node.args[0] if node.args else None
    if isinstance(node.func, ast.Name) and name in UNREADABLE_CALLS:
        return [("always", "", f"runs code the grader cannot read (`{name}`)")]
    if name in IMPORTLIB_LOADERS and _base_name(node.func) == "importlib":
        return [("always", "", f"loads modules by name (`importlib.{name}`)")]
    if name in REFLECTION_CALLS and first is not None:
        if _is_sys_modules(first):
            return [("always", "", "changes `sys.modules`")]
        base = _base_name(first)
        return [("reflect", base, f"reaches into labhelpers with `{name}({ast.unparse(first)[:40]}, ...)`")] \
            if base else []
    if name in IPYTHON_RUNNERS and isinstance(node.func, ast.Attribute):
        return [("always", "", f"runs code through IPython (`{name}`)")]
    if name in SYS_MODULES_CHANGES and isinstance(node.func, ast.Attribute) and _is_sys_modules(node.func.value):
        return [("always", "", "changes `sys.modules`")]
    return []


class _Reader:
    """One notebook's cells read in order, so that a module imported in one cell is known in the next."""

    def __init__(self) -> None:
        self.modules: set[str] = set()
        self.objects: set[str] = set(RECORD_FUNCTIONS)
        self.findings: list[Finding] = []

    def read(self, index: int, source: str) -> None:
        cell_modules, cell_objects, events = _facts(source)
        modules = self.modules | cell_modules
        protected = self.objects | cell_objects
        for kind, name, words in events:
            if kind == "always":
                self._note(index, words)
            elif kind == "bind" and words and name in protected | modules:
                self._note(index, f"binds `{name}` again, a name imported from labhelpers")
            elif kind == "alias" and name in modules:  # `r = records`: r is records too
                modules.add(words)
            elif kind in ("change", "private", "reflect") and name in modules:
                self._note(index, words)
        self.modules = modules
        self.objects = protected

    def _note(self, index: int, what: str) -> None:
        if Finding(index, what) not in self.findings:
            self.findings.append(Finding(index, what))


def _imports_labhelpers(node: ast.AST) -> bool:
    if isinstance(node, ast.Import):
        return all(a.name.split(".")[0] == PACKAGE for a in node.names)
    return (getattr(node, "module", None) or "").split(".")[0] == PACKAGE


def _is_sys_modules(node: ast.AST) -> bool:
    return isinstance(node, ast.Attribute) and node.attr == "modules" and _base_name(node) == "sys"


def tampering(sources: list[tuple[int, str]]) -> list[Finding]:
    """Every finding (see the module) in the code cells ``(index, source)`` of one notebook, in order."""
    reader = _Reader()
    for index, source in sources:
        reader.read(index, source)
    return reader.findings
