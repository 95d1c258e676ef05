"""JupyterLab in a real browser, for tests/test_browser.py: a throw-away server, "Run All Cells" from the menu, and
what the page shows afterwards.

The server runs on 127.0.0.1 with a random token, in a folder of its own, with fresh JupyterLab settings (no news
fetching, every cell kept in the page so that its outputs can be read) and the environment the labs need
(``LABS_PROFILE=tiny``, ``HF_HUB_OFFLINE=1``). The browser is the system Chromium, driven by Playwright.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from render_pictures import chromium_page, find_chromium  # noqa: E402, F401  (re-exported for the test)

# JupyterLab settings for a headless run: no news or update checks (they would reach the network), and no
# virtual scrolling, so that every cell and its outputs stay in the page for the assertions and the screenshot.
LAB_SETTINGS = {
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {"checkForUpdates": False,
                                                                        "fetchNews": "false"},
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
}


@dataclass
class LabServer:
    url: str
    token: str
    root: Path
    log: Path

    def api(self, path: str, method: str = "GET"):
        request = urllib.request.Request(f"{self.url}{path}", method=method,
                                         headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(request, timeout=30) as response:
            body = response.read()
        return json.loads(body) if body else None

    def wait_for_idle_kernel(self, name: str, timeout_s: float = 180) -> None:
        """Until the notebook's kernel has started, a page is connected to it, and it is idle."""
        deadline = time.monotonic() + timeout_s
        while True:
            kernels = [s["kernel"] for s in self.api("/api/sessions") if s["path"] == name]
            if kernels and kernels[0]["execution_state"] == "idle" and kernels[0]["connections"] > 0:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"the kernel of {name} is not idle after {timeout_s:.0f} s: {kernels}")
            time.sleep(0.5)

    def shut_down(self, name: str) -> None:
        """End the notebook's session and its kernel (frees the CPU and memory for the next notebook)."""
        for session in self.api("/api/sessions"):
            if session["path"] == name:
                self.api(f"/api/sessions/{session['id']}", method="DELETE")

    def notebook(self, name: str) -> dict:
        """The notebook as the server has it on disk (after the page saved it)."""
        return self.api(f"/api/contents/{name}?content=1&type=notebook")["content"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def jupyter_lab(root: Path, start_timeout_s: float = 180, lab_env: dict | None = None):
    """Start ``jupyter lab`` serving ``root``; yields a :class:`LabServer`; stops it and its kernels afterwards.

    ``lab_env`` is what the kernels get on top of this process's environment; by default the tiny profile,
    offline (``None``). ``{}`` leaves the environment as it is, as for a learner who types ``jupyter lab``.
    """
    state = Path(tempfile.mkdtemp(prefix="jupyterlab-state-"))
    for relative, values in LAB_SETTINGS.items():
        path = state / "settings" / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))
    if lab_env is None:
        lab_env = {"LABS_PROFILE": "tiny", "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    env = {**os.environ, **lab_env, "JUPYTERLAB_SETTINGS_DIR": str(state / "settings"),
           "JUPYTERLAB_WORKSPACES_DIR": str(state / "workspaces"),
           "JUPYTER_RUNTIME_DIR": str(state / "runtime")}
    port, token = _free_port(), secrets.token_hex(16)
    log = state / "jupyterlab.log"
    command = [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
               f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
               "--ServerApp.terminals_enabled=False", "--LabApp.extension_manager=readonly"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:  # CI containers run as root, which Jupyter refuses by default
        command.append("--allow-root")
    with open(log, "w") as log_file:
        process = subprocess.Popen(command, cwd=root, env=env, stdout=log_file, stderr=subprocess.STDOUT)
    server = LabServer(url=f"http://127.0.0.1:{port}", token=token, root=root, log=log)
    try:
        deadline = time.monotonic() + start_timeout_s
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"jupyter lab exited with {process.returncode}:\n{log.read_text()[-3000:]}")
            try:
                server.api("/api/status")
                break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"jupyter lab did not answer within {start_timeout_s:.0f} s:\n"
                                       f"{log.read_text()[-3000:]}") from None
                time.sleep(0.5)
        yield server
    finally:
        with contextlib.suppress(Exception):
            for kernel in server.api("/api/kernels"):
                server.api(f"/api/kernels/{kernel['id']}", method="DELETE")
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        shutil.rmtree(state, ignore_errors=True)  # settings, workspaces, log: errors above quote the log


# The notebook panel on screen: other notebooks' panels stay in the page, hidden.
VISIBLE_PANEL = ("[...document.querySelectorAll('.jp-NotebookPanel')]"
                 ".find(panel => !panel.classList.contains('lm-mod-hidden') && panel.offsetParent !== null)")

# Done when no code cell waits or runs ("[*]") and every cell with code has an execution count.
ALL_CELLS_DONE = """() => {
  const panel = PANEL_ON_SCREEN;
  if (!panel) return false;
  const cells = [...panel.querySelectorAll('.jp-Notebook .jp-CodeCell')];
  if (cells.length === 0) return false;
  return cells.every(cell => {
    const prompt = cell.querySelector('.jp-InputPrompt')?.textContent ?? '';
    const code = (cell.querySelector('.cm-content')?.textContent ?? '').trim();
    return code === '' || /\\[\\d+\\]/.test(prompt);
  });
}""".replace("PANEL_ON_SCREEN", VISIBLE_PANEL)

# What the page shows, read from the DOM after the run. JupyterLab renders stderr streams and tracebacks
# with the MIME type application/vnd.jupyter.stderr.
FINDINGS = """() => {
  const notebook = (PANEL_ON_SCREEN).querySelector('.jp-Notebook');
  const outputs = [...notebook.querySelectorAll('.jp-OutputArea-output')];
  const stderr = outputs.filter(o => o.dataset.mimeType === 'application/vnd.jupyter.stderr').map(o => o.innerText.slice(0, 500));
  const images = [...notebook.querySelectorAll('.jp-OutputArea-output img')]
      .filter(img => img.naturalWidth > 0 && img.getBoundingClientRect().height > 0).length;
  const transparent = c => c === 'rgba(0, 0, 0, 0)' || c === 'transparent';
  const maskingViews = [...notebook.querySelectorAll('.jp-RenderedHTMLCommon')].filter(view => {
    const spans = [...view.querySelectorAll('span')];
    const marked = spans.filter(s => !transparent(getComputedStyle(s).backgroundColor)).length;
    return spans.length >= 10 && marked > 0 && marked < spans.length && view.getBoundingClientRect().height > 0;
  }).length;
  const progressWidgets = notebook.querySelectorAll('.jp-OutputArea-output .widget-hprogress').length;
  const textProgress = outputs.filter(o => ['text/plain', 'application/vnd.jupyter.stdout'].includes(o.dataset.mimeType)
                                       && /\\d+%\\|/.test(o.innerText))
      .map(o => o.innerText.slice(0, 200));
  const brokenWidgets = outputs.filter(o => /Error displaying widget|model not found|Loading widget/.test(o.innerText))
      .map(o => o.innerText.slice(0, 200));
  return {text: notebook.innerText, stderr, images, maskingViews, progressWidgets, textProgress, brokenWidgets};
}""".replace("PANEL_ON_SCREEN", VISIBLE_PANEL)


@dataclass
class BrowserRun:
    seconds: float
    text: str
    stderr: list
    images: int
    masking_views: int
    progress_widgets: int
    text_progress: list
    broken_widgets: list
    saved: dict
    """The notebook as the page saved it: outputs and records, exactly what the browser received."""
    dialogs: list
    """Texts of the dialogs open when the run ended (a question to the learner, or an error JupyterLab reports)."""


def menu_command(page, menu: str, item: str) -> None:
    """Click ``menu`` in JupyterLab's menu bar, then its entry labelled exactly ``item``, as a learner would."""
    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(f"^{re.escape(menu)}$")).click()
    label = page.locator(".lm-Menu-itemLabel", has_text=re.compile(f"^{re.escape(item)}$"))
    page.locator(".lm-Menu-item", has=label).click()


def run_all_in_browser(page, server: LabServer, name: str, timeout_s: float = 900) -> BrowserRun:
    """Open ``name`` in JupyterLab, run every cell with the menu's Run → Run All Cells, wait, save, read the page."""
    workspace = Path(name).stem
    page.goto(f"{server.url}/lab/workspaces/{workspace}/tree/{name}?reset&token={server.token}")
    page.wait_for_selector(".jp-Notebook .jp-CodeCell", timeout=120_000)
    server.wait_for_idle_kernel(name)  # before it is connected, Run All would ask which kernel to start
    started = time.monotonic()
    menu_command(page, "Run", "Run All Cells")
    page.wait_for_function(ALL_CELLS_DONE, timeout=timeout_s * 1000, polling=1000)
    server.wait_for_idle_kernel(name)
    seconds = time.monotonic() - started
    # a dialog here would be something the notebook asks of the learner (or an error JupyterLab reports)
    dialogs = [page.locator(".jp-Dialog").nth(i).inner_text() for i in range(page.locator(".jp-Dialog").count())]
    if dialogs:
        return BrowserRun(seconds=seconds, text="", stderr=[], images=0, masking_views=0, progress_widgets=0,
                          text_progress=[], broken_widgets=[], saved={}, dialogs=dialogs)
    menu_command(page, "File", "Save Notebook")
    page.wait_for_function("() => !document.querySelector('.jp-mod-current.jp-mod-dirty')", timeout=60_000)
    found = page.evaluate(FINDINGS)
    return BrowserRun(seconds=seconds, text=found["text"], stderr=found["stderr"], images=found["images"],
                      masking_views=found["maskingViews"], progress_widgets=found["progressWidgets"],
                      text_progress=found["textProgress"], broken_widgets=found["brokenWidgets"],
                      saved=server.notebook(name), dialogs=[])


def screenshot_notebook(page, path: Path, max_height: int = 30_000) -> Path:
    """A picture of the whole notebook: the window is made as tall as the notebook, then photographed."""
    # the notebook scrolls inside its panel; the window's own height is the panel's plus the space around it
    outer = f"({VISIBLE_PANEL}).querySelector('.jp-WindowedPanel-outer')"
    content, visible = page.evaluate(f"() => [{outer}.scrollHeight, {outer}.clientHeight]")
    width, height = page.viewport_size["width"], page.viewport_size["height"]
    page.set_viewport_size({"width": width, "height": min(max_height, height - visible + content + 50)})
    page.wait_for_timeout(1000)  # let JupyterLab lay the taller window out
    page.evaluate(f"() => {{ {outer}.scrollTop = 0; }}")  # Run All left it at the end
    page.wait_for_timeout(500)
    path.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(path), full_page=True)
    return path
