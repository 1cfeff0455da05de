"""A real Chromium for the UI tests: Debian's ``chromium`` when installed, else Playwright's own.

No browser (or no Playwright) skips locally and fails under ``CI=true`` (see :mod:`tests.support.ci`).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from tests.support.ci import unavailable

if TYPE_CHECKING:
    from playwright.sync_api import Page

#: Debian's package; on other systems (GitHub's runners) `playwright install chromium` provides one.
DEBIAN_CHROMIUM = "chromium"


@contextmanager
def browser_page() -> Iterator[Page]:
    """A page of a headless Chromium, 1600x1000, closed afterwards."""
    try:
        from playwright.sync_api import Error, sync_playwright
    except ImportError:
        unavailable("Playwright for Python is not installed (pip install -e '.[dev]')")
        raise
    with sync_playwright() as playwright:
        executable = shutil.which(DEBIAN_CHROMIUM)
        try:
            # --no-sandbox: CI containers often run as root, where Chromium's sandbox refuses to start.
            browser = playwright.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        except Error as error:
            unavailable(
                f"no Chromium to drive ({DEBIAN_CHROMIUM} not found or failed: {error.message[:200]})"
            )
            raise
        try:
            yield browser.new_page(viewport={"width": 1600, "height": 1000})
        finally:
            browser.close()
