"""Pictures of what the labs show, for the README: chosen outputs of executed tiny-profile labs, saved as PNG.

    python benchmarks/render_pictures.py                # executes labs 01-05 (tiny, offline), then renders
    python benchmarks/render_pictures.py --from runs    # renders from notebooks `labhelpers run --out runs` wrote

Plots are the notebooks' own ``image/png`` outputs, copied byte for byte. Lab 01's masked-token view is HTML, so it
is rendered by Debian's ``chromium`` (driven with Playwright, no browser download) and photographed. The pictures go
to ``docs/img/`` (``--out``); the script fails, naming the lab and the cell, when an output it wants is missing, so a
reorganised lab is noticed instead of leaving a stale picture behind. Together they must stay under 1 MB.

The Chromium helpers here (:func:`find_chromium`, :func:`chromium_page`) are also used by ``tests/test_browser.py``.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MAX_TOTAL_BYTES = 1_000_000

# A headless, offline browser that leaves nothing behind: no sandbox (CI runs as root), no GPU, no network
# services of its own (QUIC, background updates, sync), and a fresh profile directory on every launch.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
CHROMIUM_CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


@dataclass(frozen=True)
class Picture:
    file: str
    lab: str
    what: str
    cell_id: str | None = None
    """The cell whose ``image/png`` output is the picture; ``None`` for lab 01's masked-token view (HTML)."""
    image_index: int = 0
    """Which of that cell's images, when it draws more than one."""


PICTURES = (
    Picture("01_masking.png", "01_instruction_tuning", "instruction masking, token by token"),
    Picture("02_win_rate.png", "02_reward_modeling", "reward-model win rate before and after training", "adf437ad"),
    Picture("03_beta_sweep.png", "03_dpo", "β sweep of the closed-form optimum: reward against KL", "8b84b7a8"),
    Picture("03_likelihood_displacement.png", "03_dpo", "likelihood displacement, and the SFT term against it",
            "48c1d8b9"),
    Picture("04_reward_kl.png", "04_ppo_rlhf", "PPO reward and KL curves", "64ef8244"),
    Picture("05_temperature.png", "05_generation_parameters", "temperature reshapes the next-token distribution",
            "8c81566e"),
    Picture("06_ddp_losses.png", "06_scaling_up", "the same loss curve on one process and on two (DDP)", "aeb4df23"),
)


def find_chromium() -> str | None:
    """Path of a Chromium-family browser: ``$CHROMIUM`` if set, else the first candidate on ``PATH``."""
    explicit = os.environ.get("CHROMIUM")
    if explicit:
        return explicit if Path(explicit).exists() else None
    for name in CHROMIUM_CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    return None


@contextlib.contextmanager
def chromium_page(viewport=(1280, 900), device_scale_factor: float = 1.0):
    """A Playwright page in the system Chromium with a fresh, throw-away profile."""
    from playwright.sync_api import sync_playwright

    executable = find_chromium()
    if executable is None:
        raise RuntimeError("No Chromium found: install it (Debian: `apt-get install -y chromium`) or point "
                           "$CHROMIUM at a Chromium or Chrome binary.")
    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile, sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            profile, executable_path=executable, args=CHROMIUM_ARGS, headless=True,
            viewport={"width": viewport[0], "height": viewport[1]}, device_scale_factor=device_scale_factor)
        try:
            yield context.pages[0] if context.pages else context.new_page()
        finally:
            context.close()


def cell_outputs(notebook: dict, lab: str, cell_id: str) -> list[dict]:
    for cell in notebook["cells"]:
        if cell.get("id") == cell_id:
            return cell.get("outputs", [])
    raise LookupError(f"Lab {lab} has no cell with id {cell_id!r}: update PICTURES in {Path(__file__).name} to the "
                      "cell that now draws this picture.")


def plot_png(notebook: dict, picture: Picture) -> bytes:
    images = [o["data"]["image/png"] for o in cell_outputs(notebook, picture.lab, picture.cell_id)
              if "image/png" in o.get("data", {})]
    if len(images) <= picture.image_index:
        raise LookupError(f"Lab {picture.lab}, cell {picture.cell_id}: wanted image {picture.image_index} "
                          f"({picture.what}), found {len(images)} image(s). Was the notebook executed?")
    data = images[picture.image_index]
    return base64.b64decode("".join(data) if isinstance(data, list) else data)


def masking_html(notebook: dict, lab: str) -> str:
    """The first HTML output that marks tokens as trained by a background colour: the masked-token view."""
    for cell in notebook["cells"]:
        for output in cell.get("outputs", []):
            html = output.get("data", {}).get("text/html")
            if html is None:
                continue
            html = "".join(html) if isinstance(html, list) else html
            if html.count("<span") >= 10 and "background" in html:
                return html
    raise LookupError(f"Lab {lab} has no HTML output with tokens marked by a background colour (the masked-token "
                      "view). Was the notebook executed?")


def screenshot_html(html: str, width: int = 1000) -> bytes:
    """Render an HTML output on a white page, as JupyterLab's default theme would, and photograph it."""
    page_html = ("<!doctype html><meta charset='utf-8'><body style='margin:0;background:#fff;"
                 f"font-family:sans-serif;font-size:13px'><div id='out' style='width:{width}px;padding:8px'>"
                 f"{html}</div></body>")
    with chromium_page(viewport=(width + 16, 600)) as page:
        page.set_content(page_html)
        return page.locator("#out").screenshot(type="png")


def execute_labs(labs: list[str], out_dir: Path) -> None:
    """Run each lab headless in the tiny profile, offline (the kernels inherit this environment)."""
    from labhelpers.course.runner import execute_lab

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("LABS_PROFILE", "tiny")

    for lab in labs:
        run = execute_lab(ROOT / "labs" / f"{lab}.ipynb", out_dir / f"{lab}.ipynb", parameters={"PROFILE": "tiny"},
                          timeout=600)
        print(f"executed {lab}: {run.status} in {run.seconds:.0f} s, checks {run.checks_passed}/{run.checks_total}")
        if run.status == "error":
            raise SystemExit(f"Lab {lab} raised ({run.error}); its pictures would not show the lab. See {run.output}.")


def render(executed_dir: Path, out_dir: Path) -> dict[str, int]:
    """Write every picture of :data:`PICTURES` into ``out_dir``; returns ``{file: bytes}``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    sizes = {}
    for picture in PICTURES:
        path = executed_dir / f"{picture.lab}.ipynb"
        if not path.exists():
            raise FileNotFoundError(f"{path} is missing: execute lab {picture.lab} first (or drop --from).")
        notebook = json.loads(path.read_text(encoding="utf-8"))
        png = (screenshot_html(masking_html(notebook, picture.lab)) if picture.cell_id is None
               else plot_png(notebook, picture))
        (out_dir / picture.file).write_bytes(png)
        sizes[picture.file] = len(png)
        print(f"{picture.file:34s} {len(png) / 1024:6.1f} KiB  lab {picture.lab}: {picture.what}")
    total = sum(sizes.values())
    print(f"{'total':34s} {total / 1024:6.1f} KiB (limit {MAX_TOTAL_BYTES / 1e6:.0f} MB)")
    if total > MAX_TOTAL_BYTES:
        raise SystemExit(f"The pictures take {total:,} bytes, over the {MAX_TOTAL_BYTES:,} the README allows.")
    return sizes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--from", dest="executed", type=Path,
                        help="a folder of executed labs (e.g. from `labhelpers run --out runs`); default: execute")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "img", help="where the PNGs go (docs/img)")
    args = parser.parse_args(argv)
    labs = sorted({p.lab for p in PICTURES})
    if args.executed is not None:
        render(args.executed, args.out)
        return 0
    with tempfile.TemporaryDirectory(prefix="labs-for-pictures-") as tmp:
        execute_labs(labs, Path(tmp))
        render(Path(tmp), args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
