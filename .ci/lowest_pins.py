"""The lowest-versions lane's requirements, derived from pyproject.toml.

    python .ci/lowest_pins.py pins     # name==lower_bound for every runtime dependency (one a line)
    python .ci/lowest_pins.py tools    # the [course] and [dev] extras' tools, without the runtime's packages,
                                       # and pip with the build backend (tests build the wheel without isolation)

"A lower bound that is not tested does not exist": .ci/lowest_lane.sh installs exactly these pins, then the tools
on top with the pins as constraints, so no tool can move a pin. A runtime dependency without a lower bound is an
error: there would be nothing to install. An extra that names a runtime package again (the [course] extra's
ipywidgets>=8.1 for JupyterLab) is left out of the tools: the lane tests the runtime's lowest, not the extra's.
"""

from __future__ import annotations

import argparse
import sys
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"


def lower_bound(requirement: Requirement) -> str:
    """The version of the ``>=`` (or ``==``) clause of a requirement; ValueError when it has none."""
    bounds = [s.version for s in requirement.specifier if s.operator in (">=", "==", "~=")]
    if len(bounds) != 1:
        raise ValueError(f"{requirement}: a runtime dependency needs exactly one lower bound (>=), found {bounds}")
    return bounds[0]


def runtime(project: dict) -> list[Requirement]:
    return [Requirement(text) for text in project["dependencies"]]


def pins(project: dict) -> list[str]:
    """``name==lower_bound`` for every runtime dependency, in pyproject's order."""
    return [f"{r.name}=={lower_bound(r)}" for r in runtime(project)]


def tools(project: dict, build_requires: list[str] = ()) -> list[str]:
    """The course and dev extras' requirements, less the package itself and the runtime's packages; then pip and
    ``build_requires`` (the build-system's), which the tests use to build the wheel without build isolation."""
    own = canonicalize_name(project["name"])
    runtime_names = {canonicalize_name(r.name) for r in runtime(project)}
    out = []
    for extra in ("course", "dev"):
        for text in project["optional-dependencies"][extra]:
            name = canonicalize_name(Requirement(text).name)
            if name != own and name not in runtime_names:
                out.append(text)
    return out + (["pip", *build_requires] if build_requires else [])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("what", choices=("pins", "tools"))
    parser.add_argument("--pyproject", type=Path, default=PYPROJECT)
    args = parser.parse_args(argv)
    doc = tomllib.loads(args.pyproject.read_text())
    project = doc["project"]
    print("\n".join(pins(project) if args.what == "pins" else tools(project, doc["build-system"]["requires"])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
