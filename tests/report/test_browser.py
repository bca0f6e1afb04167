"""The HTML report as a person sees it: rendered by headless Chromium, no JavaScript needed.

The layout check renders a copy of the report with a small inline script added (the report
itself has none) that writes what Chromium laid out into the DOM: the page's scroll width and
each plot's right edge, at a 1,280 px window.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from mobilize.cli import main
from mobilize.report import provenance
from mobilize.report.html import ReportInput, write_report
from tests.report.conftest import device_args
from tests.report.synthetic import sweep_records

CHROMIUM = shutil.which("chromium")
WINDOW_WIDTH = 1280
pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed "
                       "(scripts/install_system_deps.sh installs Debian's chromium)"),
]
MEASURE = """<script>
window.addEventListener("load", () => {
  const page = document.documentElement;
  const plots = [...document.querySelectorAll("svg")].map(
    svg => Math.ceil(svg.getBoundingClientRect().right));
  const out = document.createElement("pre");
  out.id = "measured";
  out.textContent = JSON.stringify(
    {scrollWidth: page.scrollWidth, innerWidth: window.innerWidth, plotRights: plots});
  document.body.appendChild(out);
});
</script>"""


def chromium(tmp_path: Path, *args: str, javascript: bool = False
             ) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM is not None
    return subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
         "--no-first-run", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", *([] if javascript else ["--disable-javascript"]),
         f"--user-data-dir={tmp_path / 'profile'}", *args],
        capture_output=True, text=True, timeout=120, check=False,
    )


def layout_at_1280(tmp_path: Path, report: Path) -> dict:
    """Scroll width and plot edges of the report laid out in a 1,280 px window."""
    html = report.read_text()
    assert "<script" not in html  # the report itself needs no JavaScript
    copy = tmp_path / f"measured-{report.name}"
    copy.write_text(html.replace("</body>", MEASURE + "</body>"))
    dom = chromium(tmp_path, f"--window-size={WINDOW_WIDTH},900", "--virtual-time-budget=5000",
                   "--dump-dom", copy.as_uri(), javascript=True)
    assert dom.returncode == 0, dom.stderr[-2000:]
    found = re.search(r'<pre id="measured">(.*?)</pre>', dom.stdout, flags=re.S)
    assert found is not None, dom.stdout[-2000:]
    return json.loads(found.group(1))


def assert_fits(layout: dict) -> None:
    assert layout["innerWidth"] == WINDOW_WIDTH
    assert layout["scrollWidth"] <= WINDOW_WIDTH, layout  # no horizontal scrollbar
    assert layout["plotRights"] and max(layout["plotRights"]) <= WINDOW_WIDTH, layout


def test_a_fifteen_series_report_fits_a_1280_px_window(tmp_path) -> None:
    records, recommendation = sweep_records()
    report = write_report(tmp_path / "sweep.html", ReportInput(
        "mobilize sweep: fast_style on Pixel 7", tuple(records), recommendation,
        provenance.build(records)))
    assert_fits(layout_at_1280(tmp_path, report))


def test_the_layout_check_sees_a_plot_wider_than_the_window(tmp_path) -> None:
    wide = tmp_path / "wide.html"
    wide.write_text('<!DOCTYPE html><html><body><svg width="1520" height="40"><rect '
                    'width="1520" height="40"/></svg></body></html>')
    layout = layout_at_1280(tmp_path, wide)
    assert layout["scrollWidth"] > WINDOW_WIDTH and max(layout["plotRights"]) > WINDOW_WIDTH


@pytest.mark.emulator
def test_report_renders_with_its_plots_and_images(capsys, tiny_export, emu, tmp_path) -> None:
    report = tmp_path / "sweep.html"
    code = main(["sweep", str(tiny_export), "--delegates", "cpu,gpu", "--report", str(report),
                 "--runs", "20", "--warmup", "2", "--threads", "1", "--cooldown-timeout", "5",
                 "--quality-samples", "2", *device_args(emu, tmp_path)])
    assert code == 0, capsys.readouterr().err

    dom = chromium(tmp_path, "--dump-dom", report.as_uri())
    assert dom.returncode == 0, dom.stderr[-2000:]
    svgs = re.findall(r"<svg\b.*?</svg>", dom.stdout, flags=re.S)
    assert len(svgs) >= 3 and all(svg.count("<path") > 5 for svg in svgs)  # drawn, not empty
    images = re.findall(r'<img [^>]*src="data:image/png;base64,([A-Za-z0-9+/=]{100,})"',
                        dom.stdout)
    assert len(images) == 2 * (2 + 6 * 2)  # 2 strips: input, PyTorch, 6 x (output, diff)
    assert "Recommendation" in dom.stdout and "<table>" in dom.stdout
    assert_fits(layout_at_1280(tmp_path, report))

    screenshot = tmp_path / "report.png"
    shot = chromium(tmp_path, f"--screenshot={screenshot}", "--window-size=1280,2600",
                    "--hide-scrollbars", report.as_uri())
    assert shot.returncode == 0, shot.stderr[-2000:]
    from PIL import Image

    pixels = np.asarray(Image.open(screenshot).convert("RGB"), dtype=np.float32)
    assert pixels.shape[:2] == (2600, 1280)
    # Not blank: plenty of non-white pixels, and colour (plots, photos), not just text.
    non_white = np.mean(pixels.min(axis=2) < 240)
    saturation = pixels.max(axis=2) - pixels.min(axis=2)
    assert non_white > 0.05
    assert np.mean(saturation > 60) > 0.01
