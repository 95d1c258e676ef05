"""The Colab lane's probe: the kernel the labs will run in imports the installed wheel, not the checkout.

    python .ci/colab_kernel_probe.py --kernel colab-lane --cwd WORK --venv VENV --out DIR

Executes a one-cell notebook with the harness's runner (the one ``labhelpers run`` uses) in kernel ``--kernel``
with working folder ``--cwd``, and fails unless, inside the kernel, ``labhelpers`` comes from the venv's
site-packages, the interpreter is the venv's, the working folder is ``--cwd`` and nothing on ``sys.path`` is
the checkout.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import nbformat

from labhelpers.course.runner import run_notebook

CHECKOUT = Path(__file__).resolve().parents[1]

PROBE = """\
import json, os, sys
import labhelpers
print("PROBE " + json.dumps({"labhelpers": labhelpers.__file__, "executable": sys.executable,
                             "cwd": os.getcwd(), "path": sys.path}))
"""


def problems(seen: dict, *, venv: Path, cwd: Path) -> list[str]:
    """What is wrong with the kernel the probe saw (empty when it is the lane's)."""
    out = []
    module = Path(seen["labhelpers"]).resolve()
    if "site-packages" not in module.parts or not module.is_relative_to(venv.resolve()):
        out.append(f"labhelpers was imported from {module}, not from {venv}'s site-packages")
    if not Path(seen["executable"]).is_relative_to(venv):
        out.append(f"the kernel's Python is {seen['executable']}, not {venv}'s")
    if Path(seen["cwd"]).resolve() != cwd.resolve():
        out.append(f"the kernel's working folder is {seen['cwd']}, not {cwd}")
    on_path = [p for p in seen["path"] if p and Path(p).resolve().is_relative_to(CHECKOUT)
               and not Path(p).resolve().is_relative_to(venv.resolve())]
    if on_path:
        out.append(f"sys.path holds the checkout: {on_path}")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kernel", required=True)
    parser.add_argument("--cwd", type=Path, required=True)
    parser.add_argument("--venv", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    notebook = args.out / "probe.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(PROBE)]), notebook)
    run = run_notebook(notebook, args.out / "probe.out.ipynb", kernel_name=args.kernel, cwd=args.cwd,
                       hard_timeout=300)
    if run.error:
        print(f"FAIL: the probe did not run in kernel {args.kernel}: {run.error}\n{run.stderr_tail}")
        return 1
    executed = nbformat.read(run.output, as_version=4)
    text = "".join(o.get("text", "") for o in executed.cells[0].outputs if o.output_type == "stream")
    seen = json.loads(text.split("PROBE ", 1)[1])
    found = problems(seen, venv=args.venv, cwd=args.cwd)
    for line in found:
        print(f"FAIL: {line}")
    if not found:
        print(f"the kernel's labhelpers: {seen['labhelpers']} (cwd {seen['cwd']})")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
