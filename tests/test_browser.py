"""The labs as a learner sees them: JupyterLab in Chromium runs labs 05 and 01 from its menu (tiny profile).

Every other test talks to a kernel; this one reads the page. It checks what only the front end decides: that the
records' custom MIME type falls back to a readable line, that plots and the masked-token view are drawn, that
any progress bar is a widget (the labs hide preprocessing bars, so these two may draw none), and that nothing
red reaches the learner. A screenshot of each notebook is written
to this test's output folder (printed with ``-s``, kept by pytest under its temporary folder).

Skipped, with one line, where no Chromium or no Playwright is installed. ``.ci/run`` installs both and sets
``LABS_REQUIRE_BROWSER=1``, which turns that skip into a failure.
"""

from __future__ import annotations

import importlib.util
import os
import shutil

import pytest
from conftest import LABS

from labhelpers.records import read_records

pytestmark = pytest.mark.notebook

# Lab 05 first: the shortest, and the one a new user is told to try in the README.
BROWSER_LABS = ("05_generation_parameters", "01_instruction_tuning")


def browser_missing() -> str | None:
    if importlib.util.find_spec("playwright") is None:
        return "browser test skipped: Playwright is not installed (pip install playwright)"
    from browser import find_chromium

    if find_chromium() is None:
        return "browser test skipped: no Chromium found (apt-get install -y chromium, or set $CHROMIUM)"
    return None


@pytest.fixture(scope="module")
def lab_server(tmp_path_factory):
    reason = browser_missing()
    if reason and os.environ.get("LABS_REQUIRE_BROWSER") == "1":  # CI sets it: there the test must run
        pytest.fail(reason.replace("skipped", "cannot run") + "; LABS_REQUIRE_BROWSER=1 asks for it")
    if reason:
        pytest.skip(reason)
    from browser import jupyter_lab

    root = tmp_path_factory.mktemp("jupyterlab_root")
    for name in BROWSER_LABS:
        shutil.copy(LABS / f"{name}.ipynb", root / f"{name}.ipynb")
    with jupyter_lab(root) as server:
        yield server


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory):
    folder = tmp_path_factory.mktemp("browser_screenshots")
    print(f"\nscreenshots of the notebooks in JupyterLab: {folder}")
    return folder


@pytest.mark.parametrize("lab", BROWSER_LABS)
def test_lab_runs_clean_in_jupyterlab(lab, lab_server, screenshots):
    from browser import chromium_page, run_all_in_browser, screenshot_notebook

    try:
        with chromium_page(viewport=(1280, 900)) as page:
            run = run_all_in_browser(page, lab_server, f"{lab}.ipynb")
            shot = screenshot_notebook(page, screenshots / f"{lab}.png")
    finally:
        lab_server.shut_down(f"{lab}.ipynb")
    print(f"{lab}: all cells ran from the menu in {run.seconds:.0f} s; screenshot {shot}")

    assert run.dialogs == [], f"{lab}: JupyterLab opened a dialog during the run: {run.dialogs}"
    assert run.stderr == [], f"{lab} shows red stderr or error output in the browser: {run.stderr}"
    records = read_records(run.saved)
    checks = [r for r in records if r["kind"] == "check"]
    assert checks, f"{lab}: the notebook the page saved holds no check records"
    failed = [r["name"] for r in checks if not r["passed"]]
    assert failed == [], f"{lab}: checks failed in the browser run: {failed}"
    missing = [r["name"] for r in checks if f"✅ PASS {r['name']}:" not in run.text]
    assert missing == [], f"{lab}: check lines not shown as text with their PASS mark: {missing}"
    assert "❌ FAIL" not in run.text
    assert run.images >= 1, f"{lab}: no plot image was rendered"
    # the labs hide preprocessing bars (tests/test_quiet_notebooks.py); a tqdm bar left, saved as a widget, is drawn
    widget_bars = sum("application/vnd.jupyter.widget-view+json" in output.get("data", {})
                      for cell in run.saved.get("cells", []) for output in cell.get("outputs", []))
    assert run.progress_widgets >= min(widget_bars, 1), f"{lab}: a progress bar was saved but not drawn as a widget"
    assert run.text_progress == [], f"{lab}: progress bars shown as text, not widgets: {run.text_progress}"
    assert run.broken_widgets == [], f"{lab}: widgets that did not render: {run.broken_widgets}"
    if lab.startswith("01"):
        assert run.masking_views >= 1, "lab 01: the masked-token view (tokens marked by colour) was not rendered"
    assert shot.stat().st_size > 10_000
