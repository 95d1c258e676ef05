"""labhelpers.versions, the tested versions the doctor compares against, agrees with what the lanes install."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from labhelpers import versions

ROOT = Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
RUNTIME = {canonicalize_name(Requirement(d).name): Requirement(d) for d in PROJECT["dependencies"]}
CONSTRAINTS = ROOT / ".ci" / "colab-constraints.txt"


def _canonical(table: dict[str, str]) -> dict[str, str]:
    return {canonicalize_name(k): v for k, v in table.items()}


def colab_pins() -> dict[str, str]:
    out = {}
    for line in CONSTRAINTS.read_text().splitlines():
        if line and not line.startswith("#"):
            name, version = line.split("==")
            out[canonicalize_name(name)] = version
    return out


def test_lowest_is_every_lower_bound_of_pyproject():
    lowest = {}
    for name, req in RUNTIME.items():
        (bound,) = [s.version for s in req.specifier if s.operator == ">="]
        lowest[name] = bound
    assert _canonical(versions.LOWEST) == lowest


def test_colab_is_colabs_own_and_admitted():
    """Each recorded Colab version is Colab's (the constraints file) and one the requirements admit, so the setup
    cell keeps it. Which ones pip keeps also depends on the newest releases (datasets 5 moves Colab's
    huggingface_hub): .ci/colab_lane.sh checks the record against what it installed."""
    pins = colab_pins()
    for name, version in _canonical(versions.COLAB).items():
        assert pins.get(name) == version, f"{name}: recorded {version}, Colab has {pins.get(name)}"
        assert RUNTIME[name].specifier.contains(version), f"{name}: Colab's {version} is outside {RUNTIME[name]}"
    assert versions.COLAB["transformers"] == "5.15.0", "the lead's decision: Colab keeps its own transformers"


def test_newest_covers_the_runtime_and_is_admitted():
    newest = _canonical(versions.NEWEST)
    assert set(newest) == set(RUNTIME)
    for name, version in newest.items():
        assert RUNTIME[name].specifier.contains(version), f"{name} {version} is outside {RUNTIME[name]}"
        assert Version(version) >= Version(versions.LOWEST[next(k for k in versions.LOWEST
                                                                  if canonicalize_name(k) == name)])


@pytest.mark.parametrize("name,expected", [
    ("transformers", [("lowest lane", versions.LOWEST["transformers"]), ("Colab lane", "5.15.0"),
                      ("main CI", versions.NEWEST["transformers"])]),
    ("Tokenizers", [("lowest lane", versions.LOWEST["tokenizers"]), ("Colab lane", versions.COLAB["tokenizers"]),
                    ("main CI", versions.NEWEST["tokenizers"])]),
    ("trl", [("lowest lane", versions.LOWEST["trl"]), ("main CI", versions.NEWEST["trl"])]),
    ("no-such-package", []),
])
def test_tested_versions_looks_names_up_canonically(name, expected):
    assert versions.tested_versions(name) == expected
