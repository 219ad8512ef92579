"""The README's picture of the developer portal: a signed-in developer's subscriptions, keys hidden.

Saved as build/screenshots/portal.png at 1366 px like every other screenshot; `make
readme-screenshot` runs this test alone and copies the file to docs/portal.png. It uses the
session's live stack as it is (ids of its own, nothing reset), so it may run beside other tests.
"""

from __future__ import annotations

import uuid

import pytest
import requests

from tests.browser.conftest import SCREENSHOTS
from tests.browser.test_console_day import Axe
from tests.live_stack import LiveServer

pytestmark = pytest.mark.browser

API = {"api-version": "2024-05-01"}
PASSWORD = "a quiet lighthouse by the sea"
# A picture 1366 px wide and short enough to stay small: the page's top and two cards.
VIEWPORT = {"width": 1366, "height": 920}


def call(
    server: LiveServer, method: str, path: str, body: object = None, **params: str
) -> requests.Response:
    reply = requests.request(
        method,
        server.url(path),
        params={**API, **params},
        json=body,
        headers={**server.headers, "If-Match": "*"} if method == "DELETE" else server.headers,
        timeout=30,
    )
    assert reply.status_code < 300, reply.text
    return reply


def portal_scene(server: LiveServer) -> tuple[str, str]:
    """A developer with an active subscription and a request awaiting approval."""
    tag = uuid.uuid4().hex[:8]
    products = {
        f"weather-{tag}": {"displayName": "Weather data", "approvalRequired": False},
        f"maps-{tag}": {"displayName": "Maps", "approvalRequired": True},
    }
    for product_id, props in products.items():
        call(
            server,
            "PUT",
            f"/products/{product_id}",
            {"properties": {**props, "state": "published"}},
        )
        call(server, "PUT", f"/products/{product_id}/groups/developers")
    user_id = f"ada-{tag}"
    # The picture shows a plain address: an account left by an earlier run goes first.
    email = "ada.lovelace@example.com"
    found = call(server, "GET", "/users", **{"$filter": f"email eq '{email}'"}).json()["value"]
    for user in found:
        call(server, "DELETE", f"/users/{user['name']}", deleteSubscriptions="true")
    props = {"email": email, "firstName": "Ada", "lastName": "Lovelace", "password": PASSWORD}
    call(server, "PUT", f"/users/{user_id}", {"properties": props})
    for n, (product_id, name) in enumerate(
        [(f"weather-{tag}", "Rain radar app"), (f"maps-{tag}", "Route planner")]
    ):
        sub = {
            "displayName": name,
            "scope": f"/products/{product_id}",
            "ownerId": f"/users/{user_id}",
        }
        call(server, "PUT", f"/subscriptions/{tag}{n:016x}", {"properties": sub})
    return email, PASSWORD


def test_the_readmes_portal_screenshot(live_server, browser):
    email, password = portal_scene(live_server)
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    page.set_default_timeout(15_000)
    base = live_server.base_url
    page.goto(f"{base}/portal/subscriptions")  # signed out: sign-in, then back here
    page.get_by_label("Email", exact=True).fill(email)
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{base}/portal/subscriptions")
    radar = page.get_by_role("region", name="Rain radar app")
    radar.get_by_role("button", name="Show primary key").click()
    page.locator("code.secret").wait_for()
    page.get_by_role("link", name="Hide primary key").click()
    # The picture shows the keys as every page starts: hidden, never in the page.
    page.get_by_role("region", name="Rain radar app").get_by_role(
        "button", name="Show primary key"
    ).wait_for()
    assert page.locator("code.secret").count() == 0
    assert "Awaiting approval" in page.get_by_role("region", name="Route planner").inner_text()
    page.evaluate("window.scrollTo(0, 0)")
    Axe().check(page)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "portal.png"))
    context.close()
