"""Headless Chromium for the report tests: the DOM of a page after its scripts ran, as a reviewer's browser has it.

`make test` installs Chromium from Debian's packages (Makefile target /usr/bin/chromium); without it these tests
are skipped with that instruction.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

import pytest

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def chromium() -> str:
    exe = os.environ.get("CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    if not os.path.exists(exe):
        pytest.skip("headless Chromium not installed: `make test` installs it (apt-get install -y chromium)")
    return exe


def _run(args: list[str], timeout: int) -> subprocess.CompletedProcess:
    """Chromium with `args` and a fresh profile. Headless Chromium now and then never finishes a virtual-time page on
    a loaded machine (seen once under `make test`, its smoke DAG beside it): the whole process group is killed after
    `timeout` s and the page opened once more; a second hang fails the test."""
    for attempt in (1, 2):
        with tempfile.TemporaryDirectory(prefix="grlo-chromium-") as profile:
            proc = subprocess.Popen([chromium(), *FLAGS, f"--user-data-dir={profile}", *args], stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, text=True, start_new_session=True)
            try:
                out, err = proc.communicate(timeout=timeout)
                return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)  # the renderer and GPU processes too
                proc.communicate()
                if attempt == 2:
                    raise
    raise AssertionError("unreachable")


def dump_dom(url_or_path: str | Path, budget_ms: int = 10000, timeout: int = 120) -> str:
    """document.documentElement.outerHTML after the page's scripts ran (virtual time budget)."""
    url = url_or_path if str(url_or_path).startswith(("file:", "data:", "http")) else Path(url_or_path).resolve().as_uri()
    p = _run([f"--virtual-time-budget={budget_ms}", "--dump-dom", str(url)], timeout)
    assert p.returncode == 0 and p.stdout.strip(), f"chromium failed ({p.returncode}): {p.stderr[-2000:]}"
    return p.stdout


# What a reviewer sees without scrolling: each selector's element is inside the window and on top at its centre
# (not clipped by an overflow box, not under a sticky column). The page is copied with this script appended.
_VISIBLE_JS = """
<script>
(function () {
  var wanted = %s, tries = 0;
  function check() {
    var found = wanted.map(function (sel) { return document.querySelector(sel); });
    if (found.some(function (e) { return !e; }) && tries++ < 200) { return setTimeout(check, 50); }
    var out = {window: [window.innerWidth, window.innerHeight]};
    wanted.forEach(function (sel, i) {
      var e = found[i];
      if (!e) { out[sel] = {found: false}; return; }
      var r = e.getBoundingClientRect(), x = r.left + r.width / 2, y = r.top + r.height / 2;
      var hit = document.elementFromPoint(x, y);
      out[sel] = {found: true, text: e.textContent.trim(), rect: [r.left, r.top, r.right, r.bottom],
                  inside: r.left >= 0 && r.top >= 0 && r.right <= window.innerWidth && r.bottom <= window.innerHeight,
                  on_top: !!hit && (hit === e || e.contains(hit))};
    });
    var pre = document.createElement("pre");
    pre.id = "grlo-visibility"; pre.textContent = JSON.stringify(out);
    document.body.appendChild(pre);
  }
  window.addEventListener("load", function () { setTimeout(check, 100); });
})();
</script>
"""


def visible(page: str | Path, selectors: list[str], width: int = 1366, height: int = 768) -> dict:
    """{selector: {found, text, rect, inside, on_top}} for a page opened in a width x height window."""
    import json
    import re

    src = Path(page).read_text(encoding="utf-8")
    script = _VISIBLE_JS % json.dumps(selectors)
    with tempfile.TemporaryDirectory(prefix="grlo-visible-") as d:
        copy = Path(d) / Path(page).name
        head, sep, tail = src.rpartition("</body>")  # the page's own end (embedded pages may hold others)
        copy.write_text(head + script + sep + tail if sep else src + script, encoding="utf-8")
        p = _run([f"--window-size={width},{height}", "--hide-scrollbars", "--virtual-time-budget=15000", "--dump-dom",
                  copy.as_uri()], 180)
    assert p.returncode == 0, f"chromium failed ({p.returncode}): {p.stderr[-2000:]}"
    m = re.search(r'<pre id="grlo-visibility">(.*?)</pre>', p.stdout, flags=re.S)
    assert m, "the visibility probe did not run (no #grlo-visibility in the DOM)"
    from html import unescape

    return json.loads(unescape(m.group(1)))
