"""Browser tests: Playwright (from PyPI) drives Debian's chromium against the live stack.

Playwright never downloads a browser here: it launches ``/usr/bin/chromium-headless-shell``,
chromium's headless build (the one Playwright runs headless tests in, at about half the CPU of the
full browser per page), which ``make test`` installs with apt when it is missing; Debian's
``/usr/bin/chromium`` when only that is there. Without either these tests fail (they never
skip), saying so.

``live_server`` is the session's live stack (tests/conftest.py). ``short_links_server`` is a second
``chalice local`` on the same moto server whose password-reset links live about a second, so a
link can really expire while the browser waits: chalice local takes ``RESET_LIFETIME_MINUTES``
from the environment, because .chalice/config.json's local stage does not set it (a stage
variable would win over the environment).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from chalicelib.cli import stage_environment
from tests.live_stack import LiveServer, live_stack

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

# The headless build; Debian's full chromium (twice the CPU a page) when only that is installed.
CHROMIUM = os.environ.get("CHROMIUM_PATH") or next(
    (p for p in ("/usr/bin/chromium-headless-shell", "/usr/bin/chromium") if Path(p).is_file()),
    "/usr/bin/chromium-headless-shell",
)
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
SCREENSHOTS = Path(__file__).resolve().parents[2] / "build" / "screenshots"
RESET_LINK_SECONDS = 1.2  # the lifetime of reset links on short_links_server
# Screenshots are pictures for people, not checks: the walks save them only when asked
# (`make screenshots`), since each full-page one costs chromium about 0.2 s of CPU.
TAKE_SCREENSHOTS = os.environ.get("SCREENSHOTS") == "1"


def save_screenshot(page: Page, name: str, full_page: bool = True) -> None:
    """``build/screenshots/{name}.png`` of the page, when screenshots were asked for."""
    if TAKE_SCREENSHOTS:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=full_page)


@pytest.fixture(scope="session")
def short_links_server(
    tmp_path_factory: pytest.TempPathFactory, live_server: LiveServer
) -> Iterator[LiveServer]:
    """A live stack whose password-reset links expire after RESET_LINK_SECONDS."""
    if "RESET_LIFETIME_MINUTES" in stage_environment("local"):
        pytest.fail(
            ".chalice/config.json's local stage sets RESET_LIFETIME_MINUTES, which then wins over "
            "the environment: the short-lived links of this test cannot be made.",
            pytrace=False,
        )
    minutes = str(RESET_LINK_SECONDS / 60)
    with live_stack(
        tmp_path_factory.mktemp("short-links"),
        extra_env={**live_server.settings, "RESET_LIFETIME_MINUTES": minutes},
        backend=live_server,
    ) as server:
        yield replace(server, token=live_server.token)


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).is_file():
        pytest.fail(
            f"Debian's chromium-headless-shell is not installed ({CHROMIUM} is missing), so the "
            "browser tests cannot run. `make test` installs it with apt; on this machine run: "
            "apt-get update && apt-get install -y chromium-headless-shell",
            pytrace=False,
        )
    try:
        from playwright.sync_api import expect, sync_playwright
    except ImportError as exc:
        pytest.fail(
            f"Playwright is not installed ({exc}): it is a dev dependency, `make test` installs "
            "it with pip (never run `playwright install`: the tests use Debian's chromium).",
            pytrace=False,
        )
    expect.set_options(timeout=15_000)
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport=DESKTOP)
    opened = context.new_page()
    opened.set_default_timeout(15_000)
    yield opened
    context.close()
