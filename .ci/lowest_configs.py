"""Every lab's config in every profile, and every trainer config the labs build from it, under this environment.

    python .ci/lowest_configs.py

The lowest-versions lane runs it with every lower bound installed: a field a lab sets that the lowest allowed
transformers or TRL lacks raises a TypeError here (as ``activation_checkpointing`` did under transformers 5.15).
It is ``labhelpers doctor``'s trainer-config check (labhelpers.doctor.trainer_config_problems) for tiny and full.
"""

from __future__ import annotations

import sys

from labhelpers.doctor import trainer_config_problems
from labhelpers.records import versions


def main() -> int:
    print("  ".join(f"{k} {v}" for k, v in versions().items()))
    lines, findings = trainer_config_problems(("tiny", "full"))
    print("\n".join(lines))
    for finding in findings:
        print("\n".join(finding.lines()))
    print(f"{len(findings)} problem(s)" if findings else "every lab's configs build in every profile")
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())
