"""Scripts the labs launch as files (``accelerate launch <file>``), shipped inside the package.

They are found with :func:`labhelpers.launch.script_path` (``importlib.resources``), so a wheel install with no
checkout beside it (Colab) has them too; ``python -m labhelpers.scripts.sft_lora`` runs one as a module.
"""
