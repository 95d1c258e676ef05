"""``labhelpers`` command line: run the labs, check the environment, grade, make student versions.

    labhelpers run [LAB ...] [--profile P] [--out DIR] [-p NAME VALUE ...] [--labs-dir DIR] [--kernel K] [--cwd DIR]
    labhelpers doctor
    labhelpers grade PATH ... [--out DIR] [--rerun] [--unsafe-rerun] [--timeout S] [--profile P] [--expect-versions V]
                             [--reference PATH] [--export gradescope,canvas] [--roster CSV]
    labhelpers student [LAB ...] [--out DIR]
    labhelpers rehearse [LAB ...] [--out DIR] [-p NAME VALUE ...]
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from pathlib import Path

from labhelpers import config


def _cmd_run(args) -> int:
    from labhelpers.course.runner import execute_lab, lab_notebooks, parse_value, run_labs, write_summary

    profile = args.profile
    if profile:
        config._check_profile(profile, "--profile")
    else:  # each lab resolves "auto" itself: on a GPU it needs that lab's models in the cache or on the Hub
        profile = "auto"
    try:
        notebooks = lab_notebooks(args.labs, folder=Path(args.labs_dir) if args.labs_dir else None)
    except (ValueError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if not notebooks:
        print("error: no lab notebooks found (give --labs-dir, or set LABS_DIR to the labs/ folder).",
              file=sys.stderr)
        return 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    parameters = {"PROFILE": profile}
    for name, value in args.parameter or []:
        parameters[name] = parse_value(value)

    def run_one(nb: Path):
        return execute_lab(nb, out / nb.name, parameters=parameters, timeout=args.timeout,
                           hard_timeout=args.hard_timeout, kernel_name=args.kernel,
                           cwd=Path(args.cwd) if args.cwd else None)

    def report(run) -> str:
        return (f"{run.lab}: {run.status} in {run.seconds:.0f} s ({run.checks_passed}/{run.checks_total} checks)"
                + (f" -- {run.error}" if run.error else ""))

    runs = run_labs(notebooks, run_one, report, progress_bar=True)
    summary = write_summary(runs, out)

    width = max(len(r.lab) for r in runs)
    print(f"\n{'lab':<{width}}  {'status':<13} {'seconds':>7}  checks")
    for r in runs:
        print(f"{r.lab:<{width}}  {r.status:<13} {r.seconds:>7.1f}  {r.checks_passed}/{r.checks_total}")
    print(f"\nexecuted notebooks and {summary.name} are in {out}/")
    return 0 if all(r.status == "passed" for r in runs) else 1


# Library APIs the labs use, and the old-course APIs that are gone with what replaces them.
USED_APIS = [
    ("trl", "SFTTrainer"), ("trl", "SFTConfig"), ("trl", "RewardTrainer"), ("trl", "RewardConfig"),
    ("trl", "DPOTrainer"), ("trl", "DPOConfig"), ("trl", "GRPOTrainer"), ("trl", "GRPOConfig"),
    ("transformers", "pipeline"), ("transformers", "AutoModelForCausalLM"),
    ("transformers", "AutoModelForSequenceClassification"), ("transformers", "GenerationConfig"),
    ("datasets", "load_dataset"), ("sacrebleu", "corpus_bleu"),
]
# The course tooling's ([course] extra: `labhelpers run`, `rehearse`, `grade`), which a Colab install lacks on purpose
COURSE_APIS = [("papermill", "execute_notebook")]
USED_FIELDS = [
    ("trl", "SFTConfig", "max_length"), ("trl", "SFTConfig", "completion_only_loss"),
    ("trl", "DPOConfig", "beta"), ("trl", "DPOConfig", "precompute_ref_log_probs"),
    ("trl", "DPOConfig", "loss_type"), ("trl", "RewardConfig", "center_rewards_coefficient"),
    ("transformers", "TrainingArguments", "eval_strategy"),
]
GONE_APIS = [
    ("trl", "PPOTrainer", "labhelpers.ppo.PPOTrainer (lab 04)"),
    ("trl", "AutoModelForCausalLMWithValueHead", "labhelpers.ppo's value head on the policy (lab 04)"),
    ("trl", "DataCollatorForCompletionOnlyLM",
     "labhelpers.collators.CompletionOnlyCollator, or SFTConfig(completion_only_loss=True) (lab 01)"),
    ("trl.core", "LengthSampler", "labhelpers.ppo.LengthSampler (lab 04)"),
]
GONE_FIELDS = [
    ("transformers", "TrainingArguments", "evaluation_strategy", "eval_strategy"),
    ("trl", "SFTConfig", "max_seq_length", "max_length"),
]


def _has(module: str, attr: str) -> bool:
    try:
        return hasattr(importlib.import_module(module), attr)
    except ImportError:
        return False


def _has_field(module: str, cls: str, name: str) -> bool:
    import dataclasses

    try:
        klass = getattr(importlib.import_module(module), cls)
    except (ImportError, AttributeError):
        return False
    return name in {f.name for f in dataclasses.fields(klass)}


def doctor_report(trainer_profiles: tuple[str, ...] = ("tiny",)) -> tuple[list[str], bool]:
    """Lines of the doctor's report, and whether everything the labs need is in place.

    Besides the environment (versions, device, profile, Hub, cache) and the library APIs the labs use, it
    compares every runtime dependency with the labs' requirement and the versions CI tested, and builds every
    lab's trainer configs (:mod:`labhelpers.doctor`); each problem comes with its fix, listed again at the end.
    """
    import torch

    from labhelpers import doctor
    from labhelpers.records import versions
    from labhelpers.tiny import RECIPES, cache_dir, zoo_path

    ok = True
    lines = ["versions:"] + [f"  {k:<13} {v}" for k, v in versions().items()]
    device, dtype = config.resolve_device_dtype()
    gpu = torch.cuda.get_device_name(0) if device == "cuda" else "none"
    lines += [f"device:         {device} ({dtype}); GPU: {gpu}; CPU threads: {torch.get_num_threads()}"]
    profile, reason = config.resolve_profile("auto")
    lines += [f"profile 'auto': {profile} -- {reason}"]
    reachable, why = config.hub_reachable()
    lines += [f"Hugging Face Hub: {'reachable' if reachable else 'NOT reachable'} ({why})"]
    lines += [f"cache folder:   {cache_dir()}"]
    for name in RECIPES:
        built = (zoo_path(name, build=False) / "recipe.json").exists()
        lines += [f"  zoo {name:<16} {'built' if built else 'not built yet (builds on first use)'}"]
    lines += ["library APIs the labs use:"]
    for module, attr in USED_APIS:
        present = _has(module, attr)
        ok &= present
        lines += [f"  {'ok     ' if present else 'MISSING'} {module}.{attr}"]
    for module, cls, name in USED_FIELDS:
        present = _has_field(module, cls, name)
        ok &= present
        lines += [f"  {'ok     ' if present else 'MISSING'} {module}.{cls}({name}=...)"]
    for module, attr in COURSE_APIS:
        present = _has(module, attr)
        lines += [f"  {'ok     ' if present else 'absent '} {module}.{attr} (course tooling only: "
                  f"{'installed' if present else 'pip install labhelpers[course] for labhelpers run/grade'})"]
    lines += ["old-course APIs (gone today) and their replacements:"]
    for module, attr, instead in GONE_APIS:
        state = "still present" if _has(module, attr) else "gone"
        lines += [f"  {module}.{attr}: {state} -> use {instead}"]
    for module, cls, name, instead in GONE_FIELDS:
        state = "still accepted" if _has_field(module, cls, name) else "gone"
        lines += [f"  {module}.{cls}({name}=...): {state} -> use {instead}="]

    version_lines, findings = doctor.version_problems()
    lines += ["runtime dependencies (installed, required, tested in CI):", *version_lines]
    config_lines, config_findings = doctor.trainer_config_problems(trainer_profiles)
    lines += [f"every lab's trainer configs, built as the labs build them ({', '.join(trainer_profiles)}):",
              *config_lines]
    findings += config_findings
    if findings:
        lines += ["problems and their fixes:" if any(f.fails for f in findings) else "notes:"]
        for finding in findings:
            lines += finding.lines()
    ok &= not any(f.fails for f in findings)
    return lines, ok


def _cmd_doctor(args) -> int:
    lines, ok = doctor_report()
    print("\n".join(lines))
    print("\neverything the labs use is in place" if ok
          else "\nsome of what the labs use is MISSING or untested: see the PROBLEM lines and their fixes above")
    return 0 if ok else 1


def _cmd_grade(args) -> int:
    from labhelpers.course.grading import flow

    try:
        options = flow.command_options(args.profile, args.expect_versions, args.reference)
        book = flow.run(args.paths, args.out, options=options, rerun=args.rerun or args.unsafe_rerun,
                        unsafe_rerun=args.unsafe_rerun, timeout=args.timeout,
                        exports=args.export or [], progress=lambda msg: print(msg, file=sys.stderr, flush=True),
                        roster=Path(args.roster) if args.roster else None)
    except (ValueError, OSError) as err:  # bad options, no notebooks, a missing path, an --out that cannot be written
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(book.summary())
    print(f"\n{', '.join(book.written)} are in {args.out}/")
    return 0


def _cmd_student(args) -> int:
    from labhelpers.course.runner import lab_notebooks
    from labhelpers.course.student import StudentVersionError, write_student_versions

    try:
        notebooks = lab_notebooks(args.labs)
        if not notebooks:
            raise FileNotFoundError("no lab notebooks found (set LABS_DIR to the labs/ folder).")
        written = write_student_versions(notebooks, Path(args.out))
    except (ValueError, FileNotFoundError) as err:  # StudentVersionError is a ValueError
        print(f"error: {err}", file=sys.stderr)
        return 2 if not isinstance(err, StudentVersionError) else 1
    for path in written:
        print(f"wrote {path}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="labhelpers", description="Run and check the fine-tuning labs.")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="execute labs headless (papermill), write executed notebooks + summary")
    run.add_argument("labs", nargs="*", help="lab numbers (05) or stems (05_generation_parameters); default all")
    run.add_argument("--profile", choices=config.PROFILES, default=None,
                     help="tiny, full or auto (default: auto; LABS_PROFILE overrides auto)")
    run.add_argument("--out", default="runs", help="folder for executed notebooks and summary.json")
    run.add_argument("-p", "--parameter", nargs=2, action="append", metavar=("NAME", "VALUE"),
                     help="set a notebook parameter, e.g. -p MAX_STEPS 50 (repeatable)")
    run.add_argument("--timeout", type=float, default=None, help="per-cell timeout in seconds")
    run.add_argument("--hard-timeout", type=float, default=None,
                     help="seconds for a whole lab, kernel start included; past it every process of the run is "
                          "stopped (default: none)")
    run.add_argument("--labs-dir", default=None,
                     help="the folder holding the lab notebooks (default: $LABS_DIR, else labs/ beside the package)")
    run.add_argument("--kernel", default=None,
                     help="the Jupyter kernel to run the labs in (default python3), e.g. one of another environment")
    run.add_argument("--cwd", default=None,
                     help="the kernel's working folder (default: the --out folder)")
    run.set_defaults(func=_cmd_run)

    doc = sub.add_parser("doctor", help="versions (against the tested ones), device, cache, Hub access, library "
                                        "APIs, every lab's trainer configs; each problem with its fix")
    doc.set_defaults(func=_cmd_doctor)

    grd = sub.add_parser("grade", help="grade executed notebooks: gradebook.csv, grades.json, report.md")
    grd.add_argument("paths", nargs="+", metavar="PATH", help="executed .ipynb files or folders of them (recursive)")
    grd.add_argument("--out", default="grades", help="folder for gradebook.csv, grades.json and report.md")
    grd.add_argument("--rerun", action="store_true",
                     help="run the course's notebook of each submission's lab (labs/, or LABS_DIR) with only the "
                          "submission's solution bodies in it, in a sandbox (its own /proc, an empty HOME and "
                          "temporary folder, the batch, --out and the instructor's checkout hidden, no network, an "
                          "unprivileged user, memory and process caps), and grade that; this RUNS THE LEARNERS' "
                          "CODE, and refuses where a protection cannot be set up (it needs root and unshare)")
    grd.add_argument("--unsafe-rerun", action="store_true",
                     help="--rerun even where a protection of the sandbox cannot be set up (the summary and "
                          "report name what was missing): a submission may then read what the grader can")
    grd.add_argument("--timeout", type=float, default=600, help="seconds per notebook for --rerun (default 600)")
    grd.add_argument("--profile", choices=("auto", "tiny", "full", "any"), default="auto",
                     help="profile the records must have been made in (default auto: from --reference, else not "
                          "enforced and the batch's profiles are reported; --rerun runs in tiny unless full)")
    grd.add_argument("--expect-versions", default="auto", metavar="V",
                     help="'auto' (default: from --reference, else the major.minor most submissions recorded), "
                          "'installed', 'any', or e.g. 'torch=2.13,transformers=5.24'")
    grd.add_argument("--reference", action="append", metavar="PATH",
                     help="an executed solution notebook, or a folder of them (e.g. from `labhelpers run`), that "
                          "defines each lab's checks, points and expected environment; repeatable (default: the "
                          "union of the checks in the graded notebooks)")
    grd.add_argument("--export", action="append", metavar="FORMAT",
                     help="also write gradescope (a results.json per submission) and/or canvas (canvas.csv); "
                          "repeatable or comma-separated")
    grd.add_argument("--roster", metavar="CSV", default=None,
                     help="a CSV with columns file and submission_id mapping files or folders (paths relative to the "
                          "graded folder, or bare names) to submission ids; it wins over file and folder names")
    grd.set_defaults(func=_cmd_grade)

    stu = sub.add_parser("student", help="write the student version of the labs (solutions -> TODO)")
    stu.add_argument("labs", nargs="*", help="lab numbers or stems; default all")
    stu.add_argument("--out", default="student", help="folder for the student notebooks (default student/)")
    stu.set_defaults(func=_cmd_student)

    from labhelpers.course.rehearsal.cli import add_parser as add_rehearse_parser

    add_rehearse_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
