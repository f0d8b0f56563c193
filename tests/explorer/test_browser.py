"""Render the explorer page in headless Chromium and check the DOM its script builds."""

import shutil
import subprocess
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(CHROMIUM is None, reason="chromium is not on PATH"),
]


def test_page_renders_latents_and_audio(explored: Path, tmp_path: Path, kit) -> None:
    command = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={tmp_path / 'profile'}",
        "--dump-dom",
        (explored / "index.html").as_uri(),
    ]
    dom = subprocess.run(command, capture_output=True, text=True, timeout=60, check=True).stdout
    assert 'data-ready="1"' in dom and "data-error" not in dom
    assert f'id="latent-{kit.VIBRATO}"' in dom and dom.count('class="card"') > 1
    assert "<audio" in dom and 'src="audio/row_' in dom
    assert 'class="rank-row"' in dom  # the "which latents encode..." ranking
