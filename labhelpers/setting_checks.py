"""The checks behind :mod:`labhelpers.lab_configs`: a setting's name and type, and every lab's profile blocks.

:func:`check_field` raises one ``ValueError`` naming a setting that a lab's class does not have, or a value of the
wrong type; :func:`check_profiles` checks every lab's ``PROFILES`` when :mod:`labhelpers.lab_configs` is imported,
so a renamed or mistyped option fails there, naming the lab and the field.
"""

from __future__ import annotations

import types
import typing
from dataclasses import MISSING, fields
from typing import Any


def field_names(cls: type) -> list[str]:
    return [f.name for f in fields(cls)]


def _accepts(kind, value) -> bool:
    """Whether ``value`` fits the annotation ``kind`` (int for float, tuples for lists: what a parameter cell gives)."""
    origin = typing.get_origin(kind)
    if kind is typing.Any:
        return True
    if origin in (typing.Union, types.UnionType):
        return any(_accepts(k, value) for k in typing.get_args(kind))
    if kind is type(None):
        return value is None
    if origin is tuple:
        return isinstance(value, (tuple, list))
    if kind is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, kind)


def check_field(cls: type, name: str, value) -> None:
    """Raise one ``ValueError`` naming the field when ``name`` is unknown or ``value`` has the wrong type."""
    from .lab_configs import SET_BY_LAB_CONFIG

    hints = typing.get_type_hints(cls)
    if name not in field_names(cls):  # a class variable such as PROFILES is no setting
        known = ", ".join(n.upper() for n in field_names(cls) if n not in SET_BY_LAB_CONFIG)
        raise ValueError(f"Unknown setting {name.upper()!r} for {cls.__name__}; known settings: {known}.")
    if not _accepts(hints[name], value):
        raise ValueError(f"{name.upper()} must be {_describe(hints[name])}, not {value!r} "
                         f"({type(value).__name__}).")


def _describe(kind) -> str:
    if typing.get_origin(kind) in (typing.Union, types.UnionType):
        return " or ".join(_describe(k) for k in typing.get_args(kind))
    if kind is type(None):
        return "None"
    if typing.get_origin(kind) is tuple:
        return "a tuple or list"
    name = str(getattr(kind, "__name__", kind))
    return f"{'an' if name[:1] in 'aeiou' else 'a'} {name}"


def _check_block(lab: str, cls: type, block: str, values: dict[str, Any]) -> None:
    from .lab_configs import SET_BY_LAB_CONFIG

    settable = [name for name in field_names(cls) if name not in SET_BY_LAB_CONFIG]
    for name, value in values.items():
        if name not in settable:
            raise ValueError(f"Lab {lab}: {cls.__name__}.PROFILES[{block!r}] sets {name!r}, which is not one of its "
                             f"fields: {', '.join(settable)}.")
        try:
            check_field(cls, name, value)
        except ValueError as err:
            raise ValueError(f"Lab {lab}: {cls.__name__}.PROFILES[{block!r}]: {err}") from None


def check_profiles() -> None:
    """Check every lab's ``PROFILES``: exactly the blocks ``common`` and one per profile, each value a field of the
    lab's class with the field's type, and every field without a default set in every profile."""
    from .lab_configs import CONFIG_CLASSES, PROFILE_NAMES, SET_BY_LAB_CONFIG, profile_values

    for lab, cls in CONFIG_CLASSES.items():
        blocks = ("common", *PROFILE_NAMES)
        if sorted(cls.PROFILES) != sorted(blocks):
            raise ValueError(f"Lab {lab}: {cls.__name__}.PROFILES has the blocks {', '.join(cls.PROFILES)}; it "
                             f"must have exactly {', '.join(blocks)}.")
        for block, values in cls.PROFILES.items():
            _check_block(lab, cls, block, values)
        required = [f.name for f in fields(cls) if f.name not in SET_BY_LAB_CONFIG
                    and f.default is MISSING and f.default_factory is MISSING]
        for profile in PROFILE_NAMES:
            missing = [name for name in required if name not in profile_values(lab, profile)]
            if missing:
                raise ValueError(f"Lab {lab}: {cls.__name__}.PROFILES sets no value for {', '.join(missing)} in "
                                 f"the {profile!r} profile (neither in its block nor in 'common').")
