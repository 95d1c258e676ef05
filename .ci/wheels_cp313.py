"""Every runtime dependency resolves to wheels for Colab's Python: CPython 3.13 on manylinux x86_64 (glibc 2.35).

    python .ci/wheels_cp313.py [WHEEL]     (default: build the wheel of this checkout into a temporary folder)

Resolves ``labhelpers[gpu] @ WHEEL`` (the runtime and bitsandbytes, which the setup cell adds on a GPU) for
CPython 3.13 on x86_64-manylinux_2_35 (Colab's Ubuntu 22.04) with binaries only, and fails when any package has
no usable wheel there, or when a runtime dependency is missing from the resolution.

uv resolves it (``uv pip compile --python-version 3.13 --python-platform ... --only-binary :all:``): it reads each
wheel's metadata with HTTP range requests, about 40 MB in all. ``pip install --dry-run --only-binary=:all:
--python-version 3.13 --platform ...`` would do the same only where the index serves the wheels' metadata files
(PEP 658); the index this project's CI reaches does not, so pip downloads every wheel in full (measured: 9.4 GB,
torch and triton among them, in 252 s).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
PYTHON_VERSION = "3.13"
PLATFORM = "x86_64-manylinux_2_35"  # Colab: Ubuntu 22.04.5 LTS, glibc 2.35 (../shared/colab/os-info-gpu.txt)


def resolved(text: str) -> dict[str, str]:
    """``{name: version}`` of a ``uv pip compile`` output."""
    out = {}
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if "==" in line:
            name, version = line.split("==", 1)
            out[canonicalize_name(name.split("[")[0])] = version.split(";")[0].strip()
    return out


def missing_runtime(pins: dict[str, str], dependencies: list[str]) -> list[str]:
    """The runtime dependencies that a resolution lacks."""
    return [d for d in dependencies if canonicalize_name(Requirement(d).name) not in pins]


def build_wheel(folder: Path) -> Path:
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", str(ROOT), "-w", str(folder)],
                   check=True)
    return next(folder.glob("labhelpers-*.whl"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("wheel", nargs="?", type=Path)
    args = parser.parse_args(argv)
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="cp313-") as tmp:
        wheel = (args.wheel or build_wheel(Path(tmp))).resolve()
        request = f"labhelpers[gpu] @ {wheel.as_uri()}\n"
        proc = subprocess.run([sys.executable, "-m", "uv", "pip", "compile", "-", "--python-version", PYTHON_VERSION,
                               "--python-platform", PLATFORM, "--only-binary", ":all:", "--no-header", "--quiet"],
                              input=request, capture_output=True, text=True)
    if proc.returncode != 0:
        print(f"FAIL: the runtime does not resolve to wheels for CPython {PYTHON_VERSION} on {PLATFORM}:\n"
              f"{proc.stderr.strip()}")
        return 1
    pins = resolved(proc.stdout)
    missing = missing_runtime(pins, project["dependencies"])
    if missing:
        print(f"FAIL: runtime dependencies missing from the resolution: {', '.join(missing)}")
        return 1
    names = [canonicalize_name(Requirement(d).name) for d in project["dependencies"]] + ["bitsandbytes"]
    print(f"every runtime dependency resolves to wheels for CPython {PYTHON_VERSION} on {PLATFORM} "
          f"({len(pins)} packages, {time.perf_counter() - started:.0f} s):")
    print("  " + ", ".join(f"{n} {pins[n]}" for n in names if n in pins))
    return 0


if __name__ == "__main__":
    sys.exit(main())
