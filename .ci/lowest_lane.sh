#!/usr/bin/env bash
# The lowest-versions lane: every lower bound in pyproject.toml installed exactly, then every lab's configs and the
# fast tests. "A lower bound that is not tested does not exist."
#
#   bash .ci/lowest_lane.sh [install|test|all]     (default all)
#
# install: a fresh venv with name==lower_bound of every runtime dependency (.ci/lowest_pins.py pins; torch from
#          PyPI, the CUDA build, which also runs on a CPU), the [course]/[dev] tools on top with those pins as
#          constraints (so no tool moves one), and the checkout itself without dependencies. Fails when any
#          installed version differs from its pin.
# test:    every lab's config in every profile and every trainer config built from it
#          (.ci/lowest_configs.py), then pytest -m "not notebook".
#
# Environment: LOWEST_LANE_DIR (default .cache/lowest-lane, git-ignored; rebuilt by install), LOWEST_LANE_CACHE
# (the zoo's folder, default $LABHELPERS_CACHE, else .cache/labhelpers), HARNESS_PYTHON
# (runs uv and the pin script; default python3), PYTHON (the venv's Python, default python3: the lowest Python
# requires-python admits is what CI should have).
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"
phase="${1:-all}"
lane="${LOWEST_LANE_DIR:-$root/.cache/lowest-lane}"
venv="$lane/venv"
harness="${HARNESS_PYTHON:-python3}"

stamp() { echo "[lowest lane $(date +%T)] $*"; }

install() {
    local t0=$SECONDS
    "$harness" -m uv --version >/dev/null 2>&1 || "$harness" -m pip install -q uv
    rm -rf "$lane"
    mkdir -p "$lane"
    "$harness" .ci/lowest_pins.py pins >"$lane/pins.txt"
    "$harness" .ci/lowest_pins.py tools >"$lane/tools.txt"
    stamp "pins: $(tr '\n' ' ' <"$lane/pins.txt")"
    "${PYTHON:-python3}" -m venv --without-pip "$venv"  # pip comes with the tools
    stamp "Python $("$venv/bin/python" -c 'import platform; print(platform.python_version())')"
    local uv=("$harness" -m uv pip install -q --python "$venv/bin/python")
    "${uv[@]}" -r "$lane/pins.txt"
    stamp "the pins are in; the tools on top, constrained by them"
    "${uv[@]}" -r "$lane/tools.txt" -c "$lane/pins.txt"
    "${uv[@]}" --no-deps -e "$root"
    "$harness" -m uv pip freeze --python "$venv/bin/python" >"$lane/installed.txt"
    "$harness" - "$lane/pins.txt" "$lane/installed.txt" <<'EOF'
import sys
from packaging.utils import canonicalize_name
from packaging.version import Version
installed = {}
for line in open(sys.argv[2]):
    if "==" in line:
        name, version = line.strip().split("==", 1)
        installed[canonicalize_name(name)] = version
wrong = []
for line in open(sys.argv[1]):
    name, pin = line.strip().split("==")
    have = installed.get(canonicalize_name(name))
    # a local version (torch's +cu128) is the pinned release
    if have is None or Version(Version(have).public) != Version(pin):
        wrong.append(f"{name}: pinned {pin}, installed {have}")
print("\n".join(f"FAIL {w}" for w in wrong) or "every runtime dependency is at its lower bound")
sys.exit(1 if wrong else 0)
EOF
    stamp "install took $((SECONDS - t0)) s"
}

test_() {
    local t0=$SECONDS
    [ -x "$venv/bin/python" ] || { echo "no lane venv at $venv: run '$0 install' first" >&2; return 1; }
    export HF_HUB_OFFLINE=1 LABS_PROFILE=tiny
    # the zoo's folders are keyed by the torch and transformers versions: the lowest build their own once
    export LABHELPERS_CACHE="${LOWEST_LANE_CACHE:-${LABHELPERS_CACHE:-$root/.cache/labhelpers}}"
    stamp "every lab's config in every profile, and its trainer configs"
    "$venv/bin/python" .ci/lowest_configs.py
    stamp "pytest -m 'not notebook'"
    "$venv/bin/python" -m pytest -q -m "not notebook" -p no:cacheprovider
    stamp "tests took $((SECONDS - t0)) s"
}

case "$phase" in
    install) install ;;
    test) test_ ;;
    all) install && test_ ;;
    *) echo "usage: $0 [install|test|all]" >&2; exit 2 ;;
esac
