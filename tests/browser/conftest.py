"""One headless Chromium (Debian's, else the one `playwright install chromium` put in place) and one local stack
serving web/ for the browser tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from hub_local.stack import LocalStack
from tests.conftest import ROOT

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

sync_api = pytest.importorskip("playwright.sync_api")


@pytest.fixture(scope="module")
def site():
    with LocalStack(
        ROOT / "template.yaml",
        gateway_port=0,
        web_root=ROOT / "web",
        pump_queues=True,
        # The campaign page shows each donation as soon as it is polled.
        function_overrides={"TOTALS_CACHE_SECONDS": "0", "LEAD_RETRY_DELAY_SECONDS": "0"},
    ) as stack:
        yield stack


def chromium_executable(playwright_build: Path) -> Path:
    """Debian's Chromium when installed (make test installs it as root), else Playwright's own build."""
    for candidate in (CHROMIUM, playwright_build):
        if candidate.exists():
            return candidate
    pytest.fail(f"no Chromium at {CHROMIUM} or {playwright_build}: make test installs one (make browser)")


@pytest.fixture(scope="module")
def browser():
    # Playwright gives the browser a fresh, temporary --user-data-dir of its own and removes it afterwards.
    with sync_api.sync_playwright() as playwright:
        executable = chromium_executable(Path(playwright.chromium.executable_path))
        chromium = playwright.chromium.launch(executable_path=str(executable), headless=True, args=CHROMIUM_FLAGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser):
    context = browser.new_context()
    context.set_default_timeout(15_000)
    yield context.new_page()
    context.close()


def screenshot(page, name: str) -> Path:
    """Write the page as it looks now to test-artifacts/screenshots/ (ignored by git) and return the file."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
