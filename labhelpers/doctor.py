"""What ``labhelpers doctor`` checks beyond "is it importable": versions against the tested ones, and trainer configs.

* :func:`version_problems` compares every runtime dependency's installed version with the labs' requirement
  (the installed ``labhelpers``'s metadata, which is ``pyproject.toml``'s) and with the versions CI tested
  (:mod:`labhelpers.versions`), and names the fix: ``pip install "pkg>=X,<Y"`` for a missing, too old or
  excluded version; the tested pin for one newer than anything tested.
* :func:`trainer_config_problems` builds every lab's trainer configs (:data:`LAB_TRAINER_CONFIGS`) from each
  lab's config, as the labs do. A ``TypeError`` there (a field the installed transformers or TRL lacks, say
  ``activation_checkpointing`` under transformers 5.15) is reported with the fix, instead of the lab crashing
  at its trainer cell. The lowest-versions lane of CI runs the same builds for every profile.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import metadata

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from . import versions as tested


@dataclass(frozen=True)
class Finding:
    package: str  # a distribution, or "lab NN" for a trainer config
    problem: str  # one line: what is wrong
    fix: str  # one line: what to run or do
    fails: bool = True  # False: worth saying, not an error (e.g. newer than anything tested)

    def lines(self) -> list[str]:
        return [f"  {'PROBLEM' if self.fails else 'note   '} {self.package}: {self.problem}", f"          fix: {self.fix}"]


def installed_version(name: str) -> str | None:
    """The installed version of distribution ``name``, or None (tests monkeypatch this)."""
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def runtime_requirements() -> list[Requirement]:
    """The labs' runtime requirements: the installed labhelpers's metadata, else the tested lower bounds."""
    try:
        texts = metadata.requires("labhelpers") or []
    except metadata.PackageNotFoundError:
        texts = []
    reqs = [Requirement(t) for t in texts]
    reqs = [r for r in reqs if r.marker is None or r.marker.evaluate({"extra": ""})]
    return reqs or [Requirement(f"{name}>={version}") for name, version in tested.LOWEST.items()]


def spec_text(req: Requirement) -> str:
    """The specifier with its lower bound first: ``>=5.0,<6``."""
    order = {">=": 0, ">": 0, "==": 0, "~=": 0}
    return ",".join(str(s) for s in sorted(req.specifier, key=lambda s: (order.get(s.operator, 1), str(s))))


def _pip_spec(req: Requirement) -> str:
    return f'pip install "{req.name}{spec_text(req)}"'


def _public(version: str) -> Version | None:
    try:
        return Version(Version(version).public)  # torch's 2.13.0+cpu is release 2.13.0
    except InvalidVersion:
        return None


def version_problems(requirements: list[Requirement] | None = None) -> tuple[list[str], list[Finding]]:
    """One line per runtime dependency (installed, required, tested), and the findings."""
    lines, findings = [], []
    for req in requirements if requirements is not None else runtime_requirements():
        name = canonicalize_name(req.name)
        have = installed_version(req.name)
        seen = tested.tested_versions(name)
        tested_text = ", ".join(f"{v} ({where})" for where, v in seen) or "none recorded"
        lines.append(f"  {req.name:<16} {have or 'MISSING':<14} requires {spec_text(req):<12} tested {tested_text}")
        version = _public(have) if have else None
        if have is None:
            findings.append(Finding(req.name, "not installed", _pip_spec(req)))
        elif version is None or not req.specifier.contains(version, prereleases=True):
            lowest = min((Version(v) for _, v in seen), default=None)
            why = "older than the labs need" if lowest is not None and version is not None and version < lowest \
                else "outside the versions the labs admit"
            findings.append(Finding(req.name, f"{have} is {why} ({spec_text(req)})", _pip_spec(req)))
        elif seen and version > max(Version(v) for _, v in seen):
            newest = max(seen, key=lambda s: Version(s[1]))
            findings.append(Finding(
                req.name, f"{have} is newer than anything CI tested (newest tested: {newest[1]}, {newest[0]})",
                f'if a lab fails, pip install "{req.name}=={newest[1]}" (the tested version)', fails=False))
    return lines, findings


# The trainer configs each lab builds, from its own config (``cfg``), as the notebooks call them.
def _builds():
    from . import training

    return {
        "01_instruction_tuning": [("sft_args", lambda cfg: training.sft_args(cfg)),
                                  ("sft_args(completion_only_loss=False)",
                                   lambda cfg: training.sft_args(cfg, completion_only_loss=False))],
        "02_reward_modeling": [("reward_args", lambda cfg: training.reward_args(cfg))],
        "03_dpo": [("dpo_args", lambda cfg: training.dpo_args(cfg)),
                   ("dpo_args(sigmoid+sft)",
                    lambda cfg: training.dpo_args(cfg, "dpo-sft", ["sigmoid", "sft"], [1.0, cfg.sft_weight]))],
        "04_ppo_rlhf": [("ppo_config", lambda cfg: training.ppo_config(cfg)),
                        ("grpo_args", lambda cfg: training.grpo_args(cfg))],
        "06_scaling_up": [("chat_sft_args", lambda cfg: training.chat_sft_args(cfg)),
                          ("chat_sft_args(lora)",
                           lambda cfg: training.chat_sft_args(cfg, learning_rate=cfg.lora_learning_rate))],
    }


LAB_TRAINER_CONFIGS = ("01_instruction_tuning", "02_reward_modeling", "03_dpo", "04_ppo_rlhf", "06_scaling_up")


def trainer_config_problems(profiles: tuple[str, ...] = ("tiny",)) -> tuple[list[str], list[Finding]]:
    """Build every lab's config and trainer configs in each profile; a TypeError or ValueError is a finding."""
    from .config import config_labs, lab_config

    lines, findings = [], []
    builds = _builds()
    fix = ("install the versions CI tested: " + " ".join(
        f'"{p}=={tested.NEWEST[p]}"' for p in ("transformers", "trl", "accelerate") if p in tested.NEWEST)
           + " (then restart the session), or update labhelpers")
    for lab in config_labs():  # lab 00 has no config
        for profile in profiles:
            try:
                cfg = lab_config(lab, profile, check_environment=False, quiet=True)
            except (TypeError, ValueError) as err:
                findings.append(Finding(f"lab {lab[:2]}", f"lab_config({lab[:2]!r}, {profile!r}): "
                                        f"{type(err).__name__}: {err}", "update labhelpers"))
                continue
            built = []
            for name, build in builds.get(lab, []):
                try:
                    args = build(cfg)
                except TypeError as err:
                    findings.append(Finding(f"lab {lab[:2]}", f"{name} ({profile}): TypeError: {err}", fix))
                    built.append(f"{name} FAILED")
                    continue
                built.append(type(args).__name__)
            lines.append(f"  {lab:<24} {profile:<5} {', '.join(built) if built else 'no trainer configs'}")
    return lines, findings
