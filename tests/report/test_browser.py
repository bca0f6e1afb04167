"""The HTML report as a person sees it: rendered by headless Chromium, no JavaScript needed."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from mobilize.cli import main
from tests.report.conftest import device_args

CHROMIUM = shutil.which("chromium")
pytestmark = [
    pytest.mark.browser,
    pytest.mark.emulator,
    pytest.mark.slow,
    pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed "
                       "(scripts/install_system_deps.sh installs Debian's chromium)"),
]


def chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM is not None
    return subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
         "--no-first-run", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--disable-javascript", f"--user-data-dir={tmp_path / 'profile'}",
         *args],
        capture_output=True, text=True, timeout=120, check=False,
    )


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
