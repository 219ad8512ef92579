"""Issue 17 in a real browser: an administrator's day in the console, at 1366 px and at 390 px.

Playwright drives Debian's chromium against the session's live stack, reset for this module. At
each width the same walk: the administrator's own page offers no Block or Delete; the Users list
sorts from its headers, pages forward and back, shows 50 a page and a Pending view with expiry
dates; a blocked user is offered Activate but not Reset password, and a bad email in the edit form
is said in plain words; a user is edited in place; a subscription is approved from the user's page;
a 120-character name leaves every badge on one line; groups explain how to make one and say when a
user was already a member; a template's HTML preview shows at once and Reset to default asks first;
the publishers' emails are listed and previewed read-only (issue 15); + Add, + Invite and Delete
move the focus to their panel; a user without a password gets a one-click email; signing in again
returns to the page asked for; an unknown address is the console's 404; bulk Block asks once,
listing the users; the export downloads CSV. axe-core (axe-playwright-python) finds no violation
on any console page visited, at either width.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator

import pytest

from tests.browser.conftest import save_screenshot
from tests.browser.test_console_walkthrough import create_admin_with_password
from tests.http_api import HttpApi
from tests.live_stack import LiveServer

pytestmark = pytest.mark.browser

ADMIN_EMAIL = "admin@example.com"
ADMIN_PASSWORD = "the console admin passphrase"
TIMEOUT_MS = 15_000
WIDE = {"width": 1366, "height": 900}
PHONE = {"width": 390, "height": 844}
# 120 characters: a first name of 91 and a last name of 28.
LONG_FIRST = (
    "Maximiliane Wilhelmina Konstanze Friederike Adelheid Charlotte Amalie Henriette Sophie Doro"
)
LONG_LAST = "von Hohenzollern-Sigmaringen"


@pytest.fixture(scope="module")
def server(live_server) -> Iterator[LiveServer]:
    """The session's stack, made clean once for this module's walks (which share its admin)."""
    live_server.reset()
    yield live_server


@pytest.fixture(scope="module")
def admin_ready(server, browser) -> str:
    """The administrator, made by ``apim-users create-admin``, with its password chosen."""
    create_admin_with_password(server, browser, ADMIN_PASSWORD)
    return ADMIN_EMAIL


class Axe:
    """axe-core over every console page the walk visits (each distinct path once)."""

    def __init__(self) -> None:
        from axe_playwright_python.sync_playwright import Axe as Runner

        self.runner = Runner()
        self.checked: list[str] = []

    def check(self, page) -> None:
        page.wait_for_load_state("load")
        key = re.sub(r"[0-9a-f]{24}", "{id}", page.url.split("#")[0])
        if key in self.checked:
            return
        results = self.runner.run(page)
        assert results.violations_count == 0, f"{page.url}\n{results.generate_report()}"
        self.checked.append(key)


def make_users(api: HttpApi, tag: str) -> None:
    """Developers for this walk: 45 to page through, one blocked, one invited, one long name."""
    for n in range(45):
        api.create_user(f"{tag}-p{n:02d}", f"{tag}.p{n:02d}@example.com", firstName=f"Pat{n:02d}")
    blocked = api.create_user(f"{tag}-blocked", f"{tag}.blocked@example.com", firstName="Bea")
    assert blocked.status == 201
    api.patch(
        f"/users/{tag}-blocked", {"properties": {"state": "blocked"}}, headers={"If-Match": "*"}
    )
    api.create_user(
        f"{tag}-invited", f"{tag}.invited@example.com", firstName="Ivy", confirmation="invite"
    )
    api.create_user(
        f"{tag}-long",
        f"{tag}.a.very.long.address.of.someone@subdomain.example.com",
        firstName=LONG_FIRST,
        lastName=LONG_LAST,
    )
    product = {"properties": {"displayName": "Gold plan", "approvalRequired": True}}
    api.put("/products/gold", {"properties": {**product["properties"], "state": "published"}})
    sub = {
        "displayName": "Mobile app",
        "scope": "/products/gold",
        "ownerId": f"/users/{tag}-p00",
    }
    assert api.put(f"/subscriptions/{tag}-s1", {"properties": sub}).status == 201


def sign_in(page, base: str, target: str = "/console/") -> None:
    page.goto(base + target)
    page.get_by_label("Email", exact=True).fill(ADMIN_EMAIL)
    page.get_by_label("Password", exact=True).fill(ADMIN_PASSWORD)
    page.get_by_role("button", name="Sign in").click()


def emails(page) -> list[str]:
    return page.locator('table.users td[data-label="Email"]').all_inner_texts()


def no_sideways_scroll(page, width: int) -> None:
    scroll_width = page.evaluate("document.documentElement.scrollWidth")
    assert scroll_width <= width, f"{page.url} is {scroll_width}px wide at {width}px"


def sort_by(page, name: str) -> None:
    """A column header's link (wide), or the same link in the "Sort by" list (phone)."""
    page.get_by_role("link", name=name, exact=True).filter(visible=True).first.click()


def span(first: int, last: int) -> str:
    """The pager's range as shown: 1, an en dash, 20."""
    return f"{first}\u2013{last}"


def opens_panel(page, link) -> None:
    """Follow a link to a panel (``#panel``): the page loads with the focus on the panel."""
    href = link.get_attribute("href")
    assert href and href.endswith("#panel"), href
    target = href.rsplit("console/", 1)[-1]
    link.click()
    page.wait_for_url(lambda url: url.endswith(target))
    page.wait_for_load_state("load")
    assert focused_id(page) == "panel", page.url


def focused_id(page) -> str:
    return page.evaluate("document.activeElement && document.activeElement.id")


@pytest.mark.parametrize("size", [WIDE, PHONE], ids=["1366px", "390px"])
def test_an_administrators_day(server, browser, admin_ready, size):
    base = server.base_url
    tag = f"w{size['width']}"
    api = HttpApi(server, server.token)
    make_users(api, tag)
    context = browser.new_context(viewport=size, accept_downloads=True)
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    problems: list[str] = []
    # Errors in the browser's console (a CSP violation, a missing file); pages that answer
    # 400 or 404 on purpose (a refused form, the 404 page) are documents, not missing files.
    page.on(
        "console",
        lambda m: (
            problems.append(m.text)
            if m.type == "error" and not m.text.startswith("Failed to load resource")
            else None
        ),
    )
    page.on(
        "response",
        lambda r: (
            problems.append(f"{r.status} {r.url}")
            if r.status >= 400 and r.request.resource_type != "document"
            else None
        ),
    )
    axe = Axe()
    width = size["width"]

    # --- signing in returns to the page asked for (here: a bookmark of the Pending view) -----
    page.goto(f"{base}/console/users?state=pending")
    assert "/console/signin?next=" in page.url
    axe.check(page)
    sign_in(page, base, page.url.removeprefix(base))
    page.get_by_role("heading", name="Users").wait_for()
    assert page.url.endswith("/console/users?state=pending")

    # --- the Pending view: each invitation's expiry ---------------------------------------------
    row = page.get_by_role("row").filter(has_text=f"{tag}.invited@example.com")
    assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d UTC", row.inner_text())
    axe.check(page)

    # --- no self-lockout ------------------------------------------------------------------------
    page.goto(f"{base}/console/users?q={ADMIN_EMAIL}")
    page.get_by_role("link", name="Grace Hopper").click()
    page.get_by_text("This is your own account").wait_for()
    toolbar = page.get_by_role("group", name="User actions")
    assert toolbar.get_by_role("button", name="Block").count() == 0
    assert toolbar.get_by_role("link", name="Delete").count() == 0
    axe.check(page)

    # --- a Users list that scales: sort from the headers, page size, Next and Previous ----------
    page.goto(f"{base}/console/users?q={tag}.p")
    sort_by(page, "Email")
    page.wait_for_url(re.compile(r"sort=email"))
    ascending = emails(page)
    assert ascending == sorted(ascending) and len(ascending) == 20
    assert page.get_by_text(span(1, 20), exact=True).count() == 2
    # The sorted header says so, and links to the other way.
    sort_by(page, "Email (sorted ascending)")
    page.wait_for_url(re.compile(r"dir=desc"))
    assert emails(page)[0] == f"{tag}.p44@example.com"
    page.get_by_label("Per page").select_option("50")
    page.get_by_role("button", name="Search").click()
    page.wait_for_url(re.compile(r"size=50"))
    assert len(emails(page)) == 45
    assert page.get_by_text(span(1, 45) + " of 45").first.is_visible()
    page.get_by_label("Per page").select_option("20")
    page.get_by_role("button", name="Search").click()
    page.wait_for_url(re.compile(r"sort=email"))
    first_page = emails(page)
    page.get_by_role("link", name="Next page").first.click()
    page.get_by_text(span(21, 40), exact=True).first.wait_for()
    axe.check(page)
    page.get_by_role("link", name="Previous page").first.click()
    page.get_by_text(span(1, 20), exact=True).first.wait_for()
    assert emails(page) == first_page
    no_sideways_scroll(page, width)

    # --- tables that don't break words: a 120-character name at this width --------------------
    page.goto(f"{base}/console/users?q={tag}")
    long_row = page.get_by_role("row").filter(has_text="Hohenzollern")
    assert len(long_row.locator("a").first.inner_text()) == 120
    for badge in page.locator(".state").all():
        box = badge.bounding_box()
        line = badge.evaluate("e => parseFloat(getComputedStyle(e).lineHeight)")
        assert box is not None and box["height"] < line * 1.5 + 4, badge.inner_text()
    for header in page.locator("th a").all():
        # A header may wrap between its words, never inside one.
        words = header.inner_text().split()
        lines = header.evaluate("e => Math.round(e.getBoundingClientRect().height)")
        line = header.evaluate("e => parseFloat(getComputedStyle(e).lineHeight)")
        assert lines <= line * len(words) + 4, header.inner_text()
    no_sideways_scroll(page, width)
    save_screenshot(page, f"console-day-users-{width}", full_page=False)
    axe.check(page)

    # --- only what can work, in plain words -----------------------------------------------------
    page.goto(f"{base}/console/users?q={tag}.blocked")
    page.get_by_role("link", name="Bea Lovelace").click()
    toolbar = page.get_by_role("group", name="User actions")
    toolbar.get_by_role("button", name="Activate").wait_for()
    assert toolbar.get_by_role("link", name="Reset password").count() == 0
    assert page.get_by_role("button", name="Revoke invitation").count() == 0
    axe.check(page)

    # --- edit in place (a refused address in plain words, then the change) --------------------
    opens_panel(page, toolbar.get_by_role("link", name="Edit"))
    page.get_by_label("Email", exact=True).fill("bea@localhost")
    page.get_by_role("button", name="Save").click()
    page.get_by_text("Enter an email address in the form name@example.com.").wait_for()
    axe.check(page)
    page.get_by_label("Last name").fill("Beauvoir")
    page.get_by_label("Email", exact=True).fill(f"{tag}.bea@example.com")
    page.get_by_role("button", name="Save").click()
    page.get_by_text("The changes to Bea Beauvoir were saved.").wait_for()
    assert page.get_by_role("heading", name="Bea Beauvoir").is_visible()

    # --- the user's subscriptions: approve one --------------------------------------------------
    page.goto(f"{base}/console/users?q={tag}.p00@")
    page.get_by_role("link", name="Pat00 Lovelace").click()
    subs = page.get_by_role("table", name=re.compile("Subscriptions of"))
    assert "Gold plan" in subs.inner_text() and "Submitted" in subs.inner_text()
    axe.check(page)
    subs.get_by_role("button", name="Approve Mobile app").click()
    page.get_by_text("is approved and active").wait_for()
    assert "Active" in page.get_by_role("table", name=re.compile("Subscriptions of")).inner_text()

    # --- groups you can find --------------------------------------------------------------------
    if page.get_by_text("There are no custom groups yet.").count():
        opens_panel(page, page.get_by_role("link", name="Groups \u203a + Add"))
        axe.check(page)
        page.get_by_label("Name", exact=True).fill("Beta testers")
        page.get_by_role("button", name="Add", exact=True).click()
        page.get_by_text("The group was added.").wait_for()
    else:
        page.goto(f"{base}/console/groups/beta-testers")
    page.get_by_label("Add a member by email").fill(f"{tag}.p00@example.com")
    page.get_by_role("button", name="Add member").click()
    page.get_by_text("Pat00 Lovelace was added to the group.").wait_for()
    page.get_by_label("Add a member by email").fill(f"{tag}.p00@example.com")
    page.get_by_role("button", name="Add member").click()
    page.get_by_text("Pat00 Lovelace was already a member of this group").wait_for()
    axe.check(page)
    opens_panel(page, page.get_by_role("link", name="Edit"))
    axe.check(page)
    page.goto(f"{base}/console/groups")
    axe.check(page)

    # --- focus: + Add, + Invite and Delete move it to their panel ------------------------------
    page.goto(f"{base}/console/users")
    opens_panel(page, page.get_by_role("link", name="+ Add"))
    axe.check(page)
    opens_panel(page, page.get_by_role("link", name="+ Invite"))
    page.keyboard.press("Tab")
    assert focused_id(page) == "f-firstName"  # the panel's first field comes next

    # --- "no password yet", with one click -----------------------------------------------------
    page.goto(f"{base}/console/users?form=add")
    page.get_by_label("First name").fill("Nadia")
    page.get_by_label("Last name").fill("Boulanger")
    page.get_by_label("Email", exact=True).fill(f"{tag}.nadia@example.com")
    page.get_by_role("button", name="Add", exact=True).click()
    page.get_by_role("heading", name="Nadia Boulanger").wait_for()
    assert page.locator("#password-state").inner_text().startswith("No password yet")
    page.get_by_role("button", name="Send a password email").click()
    page.get_by_text("A password reset email was sent to Nadia Boulanger.").wait_for()
    assert len(server.mail_to(f"{tag}.nadia@example.com")) == 1

    # --- Delete asks, with the focus on its panel -----------------------------------------------
    toolbar = page.get_by_role("group", name="User actions")
    opens_panel(page, toolbar.get_by_role("link", name="Delete"))
    axe.check(page)
    page.get_by_role("button", name="Delete", exact=True).click()
    page.get_by_text("The user was deleted.").wait_for()

    # --- bulk: select two, Block…, one confirmation listing them --------------------------------
    page.goto(f"{base}/console/users?q={tag}.p0&sort=email")
    page.get_by_label("Select Pat01 Lovelace").check()
    page.get_by_label("Select Pat02 Lovelace").check()
    page.get_by_role("button", name="Block…").click()
    page.get_by_role("heading", name="Block 2 users?").wait_for()
    selection = page.locator("#bulk-selection").inner_text()
    assert "Pat01 Lovelace" in selection and "Pat02 Lovelace" in selection
    axe.check(page)
    page.get_by_role("button", name="Block 2 users").click()
    page.get_by_text("2 of 2 done").wait_for()
    axe.check(page)

    # --- export: the filtered list as CSV -------------------------------------------------------
    page.goto(f"{base}/console/users?q={tag}.p0&sort=email")
    with page.expect_download() as download:
        page.get_by_role("link", name="Export these users as CSV").click()
    text = download.value.path().read_text(encoding="utf-8-sig")
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0][:3] == ["First name", "Last name", "Email"]
    assert [r[2] for r in rows[1:]] == [f"{tag}.p{n:02d}@example.com" for n in range(10)]

    # --- templates: the list says what is sent, the preview shows at once, reset asks ----------
    page.goto(f"{base}/console/templates")
    invite_row = page.get_by_role("row").filter(has_text="Invite user")
    assert "When an administrator invites a user" in invite_row.inner_text()
    axe.check(page)
    page.get_by_role("link", name="Invite user").click()
    page.get_by_label("Subject").fill("Join {{ OrganizationName }}, {{ DevFirstName }}")
    page.get_by_role("button", name="Preview").click()
    page.get_by_text("Subject: Join").wait_for()
    frame = page.frame_locator("iframe.preview")
    frame.get_by_role("link", name="Accept the invitation and set my password").wait_for()
    axe.check(page)
    page.get_by_role("button", name="Save").click()
    page.get_by_text("The template was saved").wait_for()
    opens_panel(page, page.get_by_role("link", name="Reset to default…"))
    page.get_by_text("this cannot be undone").wait_for()
    axe.check(page)
    page.get_by_role("button", name="Reset to default").click()
    page.get_by_text("The template is back to its default.").wait_for()

    # --- the publishers' emails: listed with when and to how many, previewed read-only --------
    page.goto(f"{base}/console/templates")
    closed_row = page.get_by_role("row").filter(has_text="Close account message")
    assert "When a developer closes their account on the portal" in closed_row.inner_text()
    closed_row.get_by_role("link", name="Close account message").click()
    page.get_by_role("heading", name="Close account message", level=1).wait_for()
    frame = page.frame_locator("iframe.preview")
    frame.get_by_role("heading", name="A developer closed their account").wait_for()
    assert page.get_by_role("button").filter(has_text=re.compile("Save|Reset")).count() == 0
    no_sideways_scroll(page, width)
    axe.check(page)

    # --- an unknown console address -------------------------------------------------------------
    page.goto(f"{base}/console/no/such/page")
    page.get_by_role("heading", name="Page not found").wait_for()
    axe.check(page)

    # --- axe on the console's remaining pages and panels ------------------------------------------
    page.goto(f"{base}/console/users?q={tag}.p03@")
    page.get_by_role("link", name="Pat03 Lovelace").click()
    page.get_by_role("heading", name="Pat03 Lovelace").wait_for()
    user_page = page.url.split("?")[0]
    for address in (
        f"{user_page}?confirm=reset",
        f"{user_page}?confirm=delete",
        f"{base}/console/users?state=blocked&sort=registered&dir=desc",
        f"{base}/console/groups/beta-testers?confirm=delete",
        f"{base}/console/groups/developers",
        f"{base}/console/templates/passwordResetIdentityDefault",
        f"{base}/console/templates/publisher/RequestPublisherNotificationMessage",
        f"{base}/console/templates/publisher/PurchasePublisherNotificationMessage",
    ):
        page.goto(address)
        axe.check(page)

    assert not problems, "\n".join(problems)
    assert len(axe.checked) >= 20, axe.checked
    context.close()
