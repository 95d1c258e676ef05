"""The setup cell every lab opens with, generated from one template.

The course's repository and the revision the notebooks belong to are defined here and nowhere else. On Colab
the cell pip-installs the labs' runtime (``labhelpers``, plus its ``gpu`` extra, bitsandbytes, when the machine
has an NVIDIA GPU) from that repository at that revision, without ``--upgrade``: pip keeps every preinstalled
package the requirements admit (Colab's torch and transformers among them) and moves only what they exclude.
When it moved a package this Python had already imported, the cell stops and asks for a restart, since the
running session would go on with the old modules. The cell can be re-run after a failed install. Outside Colab
it installs nothing.

:mod:`labhelpers.course.generated` writes the cell into every lab (and ``--check`` names a lab whose cell differs).
A release sets :data:`REVISION` to its tag and regenerates the cells, so a notebook opened from that tag
installs that tag. A fork is used by setting ``LABS_REPO`` (and ``LABS_REVISION``) before the cell runs.
"""

from __future__ import annotations

REPOSITORY = "https://github.com/llm-finetuning-labs/llm-finetuning-labs"
REVISION = "main"

TEMPLATE = '''\
# Setup. On Colab: install the labs' runtime from the course repository at this notebook's revision (safe to
# re-run), with bitsandbytes on a GPU. Elsewhere nothing is installed: your environment already has it.
import os, shutil, subprocess, sys
if "google.colab" in sys.modules:
    from importlib.metadata import distributions, packages_distributions
    repo = os.environ.get("LABS_REPO", "{repository}")
    revision = os.environ.get("LABS_REVISION", "{revision}")
    extra = "[gpu]" if shutil.which("nvidia-smi") else ""  # bitsandbytes: lab 06's 4-bit QLoRA
    before = {{d.metadata["Name"]: d.version for d in distributions()}}
    pip = subprocess.run([sys.executable, "-m", "pip", "install", "-q", f"labhelpers{{extra}} @ git+{{repo}}@{{revision}}"])
    if pip.returncode != 0:
        raise RuntimeError(f"Could not install the labs from {{repo}} at {{revision}} (pip's message is above). "
                           "For a fork, set os.environ['LABS_REPO'] (and 'LABS_REVISION') and re-run this cell.")
    changed = {{d.metadata["Name"]: (before[d.metadata["Name"]], d.version) for d in distributions()
               if before.get(d.metadata["Name"], d.version) != d.version}}
    stale = sorted({{n for module, names in packages_distributions().items() if module in sys.modules
                    for n in names if n in changed}})
    if stale:  # the running Python keeps the old modules: a restart loads the new ones
        raise RuntimeError("pip upgraded " + ", ".join(f"{{n}} {{changed[n][0]}} -> {{changed[n][1]}}" for n in stale)
                           + ", already imported in this session. Restart the session (Runtime > Restart "
                           "session) and run this cell again: the second run changes nothing.")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
import labhelpers
labhelpers.quiet_known_warnings()
labhelpers.print_versions()'''


def setup_cell_source(repository: str = REPOSITORY, revision: str = REVISION) -> str:
    """The source of the setup cell (the second cell of every lab)."""
    return TEMPLATE.format(repository=repository, revision=revision)


SETUP_CELL_INDEX = 1  # cell 0 is the lab's title and overview
