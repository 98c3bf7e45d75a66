"""What the browser tests share: Debian's Chromium (Playwright cannot download its own here), its
flags, the patience a loaded 2-core box needs, and optional screenshots for a person to look at."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

CHROMIUM = shutil.which("chromium")
if os.environ.get("ATELIER_REQUIRE_BROWSER") and CHROMIUM is None:  # scripts/test.sh, CI: never skip silently
    raise RuntimeError("the browser tests need Debian's chromium (apt-get install chromium)")
NO_CHROMIUM = "Debian chromium is not installed"  # the skip reason where no browser is required
CHROME_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
               "--disable-sync", "--no-first-run", "--disable-quic"]
WAIT = 90_000  # ms


def shot(page, name: str) -> None:
    """With ATELIER_SCREENSHOTS=DIR, a full-page screenshot ``DIR/name.png``."""
    folder = os.environ.get("ATELIER_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.wait_for_timeout(600)
        page.screenshot(path=str(Path(folder) / f"{name}.png"), full_page=True)
