"""Every notebook under labs/ runs top to bottom in the tiny profile, and all of its checks pass.

A lab is covered the moment its notebook lands; per-lab tests assert the learning effects. The conventions
test reads the notebook's code (no execution): outputs, the parameters cell, an exercise, numbered sections,
and trainers that report to no service.
"""

from __future__ import annotations

import ast
import json

import pytest
from conftest import LABS, failure_of, lab_stems

NOTEBOOKS = lab_stems()


@pytest.mark.notebook
@pytest.mark.parametrize("stem", NOTEBOOKS)
def test_lab_runs_and_all_checks_pass(executed_lab, stem):
    run = executed_lab(stem)
    assert run.error is None, f"{stem}: {failure_of(run)}"
    checks = [r for r in run.records if r["kind"] == "check"]
    assert checks, f"{stem} recorded no checks"
    failed = [f"{r['name']}: {r['message']} (value {r['value']}, threshold {r['threshold']})"
              for r in checks if not r["passed"]]
    assert not failed, f"{stem}: failed checks: {failed}"
    assert all(r["lab"] == stem and r["profile"] == "tiny" for r in run.records)


def code_of(nb: dict) -> str:
    """The notebook's code cells as one Python module (IPython's ``%`` and ``!`` lines left out)."""
    cells = ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code"]
    lines = [line for cell in cells for line in cell.splitlines() if not line.lstrip().startswith(("%", "!"))]
    return "\n".join(lines)


def _bindings(tree: ast.AST) -> tuple[dict[str, list[ast.expr]], dict[str, list[ast.expr]]]:
    """What each plain name is assigned, and what each function of the notebook returns."""
    assigned: dict[str, list[ast.expr]] = {}
    returned: dict[str, list[ast.expr]] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    assigned.setdefault(target.id, []).append(node.value)
        elif isinstance(node, ast.FunctionDef):
            returned[node.name] = [r.value for r in ast.walk(node) if isinstance(r, ast.Return) and r.value]
    return assigned, returned


def unreported_trainers(code: str) -> list[str]:
    """The Hugging Face trainers in ``code`` whose ``args`` are not known to set ``report_to="none"``.

    A trainer's ``args`` pass when they come from ``labhelpers.training`` (whose tests check ``report_to`` for
    every builder), directly, through a variable, or through a function of the notebook that returns one; or
    from a config class called with ``report_to="none"``. A trainer without ``args`` fails: it would get the
    library's defaults.
    """
    tree = ast.parse(code)
    hf_names = {alias.asname or alias.name for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
                and (node.module or "").split(".")[0] in ("trl", "transformers") for alias in node.names}
    assigned, returned = _bindings(tree)

    def keeps_silence(call: ast.Call) -> bool:
        """No ``report_to`` keyword, or ``report_to="none"``."""
        return all(k.arg != "report_to" or (isinstance(k.value, ast.Constant) and k.value.value == "none")
                   for k in call.keywords)

    def silent(expr: ast.expr, seen: frozenset = frozenset()) -> bool:
        if isinstance(expr, ast.Name) and expr.id in assigned and expr.id not in seen:
            return all(silent(e, seen | {expr.id}) for e in assigned[expr.id])
        if not isinstance(expr, ast.Call):
            return False
        func = expr.func
        if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and func.value.id == "training":
            return keeps_silence(expr)  # the builder says "none"; a report_to= passed to it would replace that
        if isinstance(func, ast.Name) and func.id in returned and func.id not in seen:
            return bool(returned[func.id]) and all(silent(e, seen | {func.id}) for e in returned[func.id])
        if (isinstance(func, ast.Name) and func.id == "replace") or (
                isinstance(func, ast.Attribute) and func.attr == "replace" and ast.unparse(func.value) == "dataclasses"):
            # dataclasses.replace(config, ...) keeps the config's report_to unless it sets another one
            return bool(expr.args) and silent(expr.args[0], seen) and keeps_silence(expr)
        return any(k.arg == "report_to" for k in expr.keywords) and keeps_silence(expr)  # a config saying "none"

    bad = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in hf_names \
                and node.func.id.endswith("Trainer"):
            args = next((k.value for k in node.keywords if k.arg == "args"), None)
            if args is None or not silent(args):
                bad.append(f"line {node.lineno}: {ast.unparse(node)[:100]}")
    return bad


def test_the_reporting_rule_catches_a_trainer_that_would_report():
    silent = ("from trl import SFTConfig, SFTTrainer\nfrom labhelpers import training\n"
              "def make(cfg):\n    return training.sft_args(cfg)\n"
              "args = make(cfg)\nSFTTrainer(model=m, args=args)\n"
              "SFTTrainer(model=m, args=SFTConfig(output_dir='o', report_to='none'))\n")
    assert unreported_trainers(silent) == []
    assert unreported_trainers(silent + "import dataclasses\n"
                               "SFTTrainer(model=m, args=dataclasses.replace(args, eval_steps=5))\n") == []
    for loud in ("SFTTrainer(model=m, args=SFTConfig(output_dir='o'))",
                 "import dataclasses\nSFTTrainer(model=m, args=dataclasses.replace(make(c), report_to='all'))\n",
                 "wandb_args = SFTConfig(output_dir='o', report_to='wandb')\nSFTTrainer(model=m, args=wandb_args)",
                 "SFTTrainer(model=m, args=training.sft_args(cfg, report_to='all'))",
                 "SFTTrainer(model=m)"):
        assert len(unreported_trainers(silent + loud)) == 1, loud
    # a trainer of labhelpers (PPOTrainer) reports nowhere and is not a Hugging Face trainer
    assert unreported_trainers("from labhelpers.ppo import PPOTrainer\nPPOTrainer(config, model, tok)") == []


@pytest.mark.parametrize("stem", NOTEBOOKS)
def test_lab_is_committed_clean_and_follows_conventions(stem):
    nb = json.loads((LABS / f"{stem}.ipynb").read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert all(not c.get("outputs") and c.get("execution_count") is None for c in code), "outputs committed"
    assert nb["cells"][0]["cell_type"] == "markdown" and nb["cells"][0]["source"], "cell 1 is the title"
    tagged = [c for c in code if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1 and "PROFILE" in "".join(tagged[0]["source"]), "one parameters cell with PROFILE"
    text = "".join("".join(c["source"]) for c in nb["cells"])
    assert "### BEGIN SOLUTION" in text and "### END SOLUTION" in text, "at least one exercise"
    assert unreported_trainers(code_of(nb)) == [], "trainers must not report to a service"
    assert "## 1." in text, "numbered sections"
