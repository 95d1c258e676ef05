"""Benchmark the tiny zoo: cold build of every model, and warm loading from the cache.

    python benchmarks/bench_zoo.py [--repeats 3]

Each cold build uses a fresh temporary cache folder in a fresh process (so nothing is reused); the warm
load times ``from_pretrained`` of all four models (tokenizers included) from a built cache. Prints medians.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

BUILD = "from labhelpers import tiny; tiny.build_zoo()"
LOAD = """
import time
t0 = time.perf_counter()
from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification, AutoTokenizer
# transformers imports each architecture's modelling code lazily, on first use; import it here so that the
# timed part is the zoo's own work (cache keys, folders, weights), not the library's one-off import
import transformers.models.distilbert.modeling_distilbert, transformers.models.gpt2.modeling_gpt2
import transformers.models.opt.modeling_opt
from labhelpers import tiny
t1 = time.perf_counter()
for name, recipe in tiny.RECIPES.items():
    path = tiny.zoo_path(name)
    AutoTokenizer.from_pretrained(path)
    (AutoModelForCausalLM if recipe.kind == "causal-lm" else AutoModelForSequenceClassification).from_pretrained(path)
print(time.perf_counter() - t1, t1 - t0)
"""


def run(code: str, cache: str) -> tuple[float, str]:
    env = {**os.environ, "LABHELPERS_CACHE": cache, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_VERBOSITY": "error"}
    started = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code], env=env, check=True, capture_output=True, text=True)
    return time.perf_counter() - started, out.stdout.strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    cold, warm, imports = [], [], []
    for _ in range(args.repeats):
        with tempfile.TemporaryDirectory() as cache:
            seconds, _ = run(BUILD, cache)
            cold.append(seconds)
            for _ in range(3):
                _, out = run(LOAD, cache)
                load, imp = map(float, out.split())
                warm.append(load)
                imports.append(imp)
    report = {"cold_build_s_median": round(statistics.median(cold), 1), "cold_build_s": [round(x, 1) for x in cold],
              "warm_load_all_s_median": round(statistics.median(warm), 2),
              "import_transformers_s_median": round(statistics.median(imports), 2),
              "cpus": os.cpu_count()}
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
