"""Headless Chromium (Debian's chromium package): render a page, take a screenshot, dump the DOM."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


def chromium_path() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    # A missing browser fails the test, never skips it.
    assert path is not None, "headless Chromium is required: apt-get install -y chromium"
    return path


def _run(page: Path, *args: str) -> str:
    with tempfile.TemporaryDirectory(prefix="chromium-") as profile:
        proc = subprocess.run(
            [chromium_path(), *FLAGS, f"--user-data-dir={profile}", *args, page.as_uri()],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    assert proc.returncode == 0, f"chromium failed ({proc.returncode}):\n{proc.stderr[-2000:]}"
    return proc.stdout


def screenshot(page: Path, png: Path, *, width: int = 1280, height: int = 2000) -> None:
    _run(page, f"--screenshot={png}", f"--window-size={width},{height}")


def dump_dom(page: Path) -> str:
    """The DOM after Chromium has parsed and laid out the page, serialised."""
    return _run(page, "--dump-dom")
