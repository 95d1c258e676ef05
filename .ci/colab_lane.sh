#!/usr/bin/env bash
# The Colab lane: the course installed and run the way a Colab learner gets it.
#
#   bash .ci/colab_lane.sh [install|labs|all]     (default all)
#
# install: build the wheel; make a fresh venv; put this machine's torch in it, then Colab's preinstalled versions
#          of every package the labs import (.ci/colab-constraints.txt, from Colab's published freeze); then
#          install the wheel exactly as the labs' setup cell does on Colab: a plain `pip install`, no extras, no
#          --upgrade, no constraints. Prints what that last step moved; transformers must stay Colab's.
# labs:    copy labs/*.ipynb into an empty folder outside the checkout and execute every lab there (PROFILE
#          "auto", which is tiny on a CPU) in a kernel of that venv, the folder as the kernel's working folder
#          and no path to the checkout. Fails unless every lab's status is "passed".
#
# The harness (papermill, through `labhelpers run`) is the calling Python's (HARNESS_PYTHON, default python3:
# CI's venv); only the kernel is the lane's. Environment: COLAB_LANE_DIR (default .cache/colab-lane, git-ignored;
# rebuilt by install), COLAB_LANE_CACHE (the zoo's folder; default $LABHELPERS_CACHE, else .cache/labhelpers:
# its models are keyed by the torch/transformers versions, so Colab's build its own once), COLAB_LANE_LABS (lab numbers, default every lab), PYTHON (the venv's Python, default
# python3). Colab runs Python 3.13; this machine's Python is what the venv gets (.ci/wheels_cp313.sh checks that
# every runtime dependency has cp313 wheels).
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"
phase="${1:-all}"
lane="${COLAB_LANE_DIR:-$root/.cache/colab-lane}"
venv="$lane/venv"
harness="${HARNESS_PYTHON:-python3}"
constraints="$root/.ci/colab-constraints.txt"
# Colab's preinstalled layer: every package the labs and labhelpers import, and the kernel's own. trl and
# sacrebleu are not on Colab: the wheel's install brings them.
colab_layer=(transformers accelerate peft datasets huggingface_hub tokenizers safetensors pyarrow numpy pandas
             matplotlib tqdm ipywidgets filelock platformdirs nbformat psutil pyyaml
             ipykernel ipython jupyter_client traitlets)
colab_transformers="$(sed -n 's/^transformers==//p' "$constraints")"

stamp() { echo "[colab lane $(date +%T)] $*"; }
# pip, without the warnings of this machine's local package index about folders it lacks
pip_() { "$@" 2>&1 | { grep -v "is ignored: it is neither a file nor a directory" || true; }; return "${PIPESTATUS[0]}"; }

install() {
    local t0=$SECONDS
    "$harness" -m uv --version >/dev/null 2>&1 || pip_ "$harness" -m pip install -q uv
    rm -rf "$lane"
    mkdir -p "$lane/wheel"
    stamp "building the wheel"
    pip_ "$harness" -m pip wheel -q --no-deps "$root" -w "$lane/wheel"
    local wheel
    wheel="$(ls "$lane"/wheel/labhelpers-*.whl)"
    stamp "built $(basename "$wheel")"

    "${PYTHON:-python3}" -m venv "$venv"
    local pip=(pip_ "$venv/bin/python" -m pip)
    # a current pip for the setup cell's install below, as Colab's
    "${pip[@]}" install -q --upgrade pip
    stamp "torch from this machine"
    # --no-compile: no bytecode for modules no lab imports (the kernel compiles what it imports)
    "${pip[@]}" install -q --no-compile torch==2.13.0
    "$venv/bin/python" -c 'import importlib.metadata as m; print("torch==" + m.version("torch"))' >"$lane/torch.txt"
    stamp "Colab's preinstalled layer ($(sed -n 2p "$constraints" | sed 's/^# //'))"
    # uv sets up the preinstalled layer (Google's build of the image, not the learner's step) in seconds where
    # pip takes two minutes; torch stays the one above
    "$harness" -m uv pip install -q --python "$venv/bin/python" --no-compile -c "$constraints" -c "$lane/torch.txt" \
        "${colab_layer[@]}"
    "${pip[@]}" freeze --all >"$lane/colab-layer.txt"

    stamp "the setup cell's install: pip install $(basename "$wheel")  (no extras, no --upgrade, no constraints)"
    "${pip[@]}" install -q "$wheel"
    "${pip[@]}" freeze --all >"$lane/installed.txt"
    "$harness" - "$lane/colab-layer.txt" "$lane/installed.txt" <<'EOF'
import sys
def read(path):
    out = {}
    for line in open(path):
        if "==" in line:
            name, version = line.strip().split("==", 1)
            out[name.lower().replace("_", "-")] = version
    return out
before, after = read(sys.argv[1]), read(sys.argv[2])
moved = [f"  {n} {before[n]} -> {after[n]}" for n in sorted(after) if n in before and before[n] != after[n]]
new = [f"  {n} {after[n]}" for n in sorted(after) if n not in before]
print("the setup cell's install upgraded (or downgraded) Colab's:", *(moved or ["  nothing"]), sep="\n")
print("and installed:", *(new or ["  nothing"]), sep="\n")
EOF
    local transformers
    transformers="$("$venv/bin/python" -c 'import importlib.metadata as m; print(m.version("transformers"))')"
    if [ "$transformers" != "$colab_transformers" ]; then
        echo "FAIL: the install moved Colab's transformers $colab_transformers to $transformers" >&2
        return 1
    fi
    stamp "transformers stays Colab's $transformers"
    # the doctor's record of what this lane tests (labhelpers.versions.COLAB, read from the installed wheel)
    "$venv/bin/python" - "$constraints" <<'EOF'
import sys
from importlib import metadata
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from labhelpers.versions import COLAB
colab = {}
for line in open(sys.argv[1]):
    if line.strip() and not line.startswith("#"):
        name, version = line.strip().split("==")
        colab[canonicalize_name(name)] = version
recorded = {canonicalize_name(k): v for k, v in COLAB.items()}
wrong = []
for text in metadata.requires("labhelpers"):
    req = Requirement(text)
    if req.marker is not None and not req.marker.evaluate({"extra": ""}):
        continue
    name = canonicalize_name(req.name)
    have, theirs = metadata.version(req.name), colab.get(name)
    kept = theirs is not None and have == theirs
    if kept != (name in recorded):
        wrong.append(f"{req.name}: Colab's {theirs}, installed {have}; labhelpers.versions.COLAB says "
                     + (f"{recorded[name]} is kept" if name in recorded else "it is not kept"))
print("\n".join(f"FAIL {w}" for w in wrong) or "labhelpers.versions.COLAB names exactly the Colab versions kept")
if wrong:
    print("fix: update COLAB in labhelpers/versions.py (the doctor's record of what this lane tested)")
sys.exit(1 if wrong else 0)
EOF
    stamp "install took $((SECONDS - t0)) s"
}

labs() {
    local t0=$SECONDS
    [ -x "$venv/bin/python" ] || { echo "no lane venv at $venv: run '$0 install' first" >&2; return 1; }
    local work
    work="$(mktemp -d "${TMPDIR:-/tmp}/colab-lane.XXXXXX")"
    cp "$root"/labs/*.ipynb "$work/"
    stamp "labs copied into $work (outside the checkout): $(cd "$work" && ls -- *.ipynb | tr '\n' ' ')"

    # a kernelspec of the lane's venv, found through JUPYTER_PATH only; its PATH leads with the venv, as on Colab
    rm -rf "$lane/jupyter"
    "$venv/bin/python" -m ipykernel install --prefix "$lane/jupyter" --name colab-lane \
        --display-name "Python 3 (Colab lane)" >/dev/null 2>&1
    local spec="$lane/jupyter/share/jupyter/kernels/colab-lane/kernel.json"
    "$harness" - "$spec" "$venv" <<'EOF'
import json, os, sys
spec, venv = sys.argv[1], sys.argv[2]
doc = json.load(open(spec))
doc["env"] = {"PATH": f"{venv}/bin:{os.environ['PATH']}", "VIRTUAL_ENV": venv}
json.dump(doc, open(spec, "w"), indent=1)
EOF
    export JUPYTER_PATH="$lane/jupyter/share/jupyter"
    unset PYTHONPATH LABS_DIR LABS_PROFILE VIRTUAL_ENV
    export HF_HUB_OFFLINE=1
    # the zoo's folders are keyed by the torch and transformers versions: Colab's 5.15 builds its own on first use
    export LABHELPERS_CACHE="${COLAB_LANE_CACHE:-${LABHELPERS_CACHE:-$root/.cache/labhelpers}}"

    stamp "probe: the kernel imports the wheel's labhelpers, in the copied folder"
    "$harness" "$root/.ci/colab_kernel_probe.py" --kernel colab-lane --cwd "$work" --venv "$venv" --out "$lane/probe"

    stamp "labhelpers doctor under Colab's versions, from $work"
    (cd "$work" && "$venv/bin/python" -m labhelpers.course.cli doctor | sed -n '/^runtime dependencies/,$p')

    stamp "executing the labs (PROFILE auto) from $work"
    local status=0
    # shellcheck disable=SC2086
    "$harness" -m labhelpers.course.cli run ${COLAB_LANE_LABS:-} --labs-dir "$work" --kernel colab-lane --cwd "$work" \
        --out "$work/executed" || status=$?
    "$harness" - "$work/executed/summary.json" <<'EOF'
import json, sys
for lab in json.load(open(sys.argv[1]))["labs"]:
    if lab["status"] != "passed":
        print(f"FAIL {lab['lab']}: {lab['status']}: {lab['error'] or ''}")
        for r in lab["records"]:
            if r.get("kind") == "check" and not r.get("passed"):
                print(f"     check {r.get('name')} failed: {r.get('message', '')}")
EOF
    stamp "labs took $((SECONDS - t0)) s; executed notebooks in $work/executed"
    return "$status"
}

case "$phase" in
    install) install ;;
    labs) labs ;;
    all) install && labs ;;
    *) echo "usage: $0 [install|labs|all]" >&2; exit 2 ;;
esac
