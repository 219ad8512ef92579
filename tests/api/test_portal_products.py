"""The developer's products page: what their groups may see, and subscribing to it.

Subscribe honours ``subscriptionRequired``, ``approvalRequired``, the product's terms and its
``subscriptionsLimit`` per developer (which concurrent requests cannot pass together: the race
runs over real HTTP at the end); the developer's email goes out with the right template; a
refused or hostile form changes nothing and is never a 500.
"""

from __future__ import annotations

import re
import threading
import uuid
from urllib.parse import quote, urlencode

import pytest
import requests

from chalicelib.bootstrap import services
from tests.api.portal_support import (
    PASSWORD,
    Developer,
    gateway,
    keys_of,
    make_developer,
    put_product,
)
from tests.support import mail_to

PRODUCTS = "/portal/products"
SUBS = "/portal/subscriptions"


@pytest.fixture
def dev(api, client):
    make_developer("dev", "dev@example.com", firstName="Dee", lastName="Veloper")
    return Developer(client, "dev@example.com")


def subscriptions_of(user_id: str):
    return [o.subscription for o in services().subscriptions.of_developer(_user(user_id))]


def _user(user_id: str):
    return services().accounts.get(user_id)


def subscribe(dev: Developer, product: str, name: str = "My app", **extra) -> object:
    return dev.post(PRODUCTS, {"action": "subscribe", "product": product, "name": name, **extra})


def new_sid(page) -> str:
    return re.search(r"[?&]s=([0-9a-f]+)", page.location).group(1)


# --- signed out ---------------------------------------------------------------------------------


def test_signed_out_the_pages_lead_to_sign_in_and_back(client, aws):
    for method in ("GET", "POST"):
        for path in (PRODUCTS, SUBS):
            reply = client.http.request(method, path, headers={}, body=b"")
            assert reply.status_code == 303
            assert reply.headers["Location"] == f"../signin?next={quote(path[1:], safe='')}"
    asked = client.http.get(SUBS + "?rename=abc")
    assert asked.headers["Location"] == "../signin?next=portal%2Fsubscriptions%3Frename%3Dabc"
    forged = client.http.get(PRODUCTS, headers={"cookie": "apim_session=forged"})
    assert forged.status_code == 303
    assert "Max-Age=0" in forged.headers["Set-Cookie"]


def test_a_blocked_developer_is_signed_out_on_the_next_request(api, dev):
    assert dev.get(PRODUCTS).status == 200
    api.patch("/users/dev", {"properties": {"state": "blocked"}}, headers={"If-Match": "*"})
    assert dev.get(PRODUCTS).status == 303
    put_product(api, "open")
    assert dev.request("POST", PRODUCTS, {"action": "subscribe", "product": "open"}).status == 303
    assert subscriptions_of("dev") == []


# --- what the page shows ------------------------------------------------------------------------


def test_only_published_products_of_the_developers_groups_are_listed(api, dev):
    assert api.put("/groups/partners", {"properties": {"displayName": "Partners"}}).status == 201
    put_product(api, "open", displayName="Open plan")
    put_product(api, "hidden", displayName="Hidden draft", state="notPublished")
    put_product(api, "partners", groups=("partners",), displayName="Partner plan")
    put_product(api, "nobody", groups=(), displayName="Nobody's plan")
    page = dev.get(PRODUCTS)
    assert page.status == 200
    assert page.headers["Content-Security-Policy"].startswith("default-src 'none'")
    assert page.headers["Cache-Control"] == "no-store"
    assert "Open plan" in page.body
    for unseen in ("Hidden draft", "Partner plan", "Nobody's plan"):
        assert unseen not in page.body
    assert api.put("/groups/partners/users/dev").status in (200, 201)
    assert "Partner plan" in dev.get(PRODUCTS).body


def test_the_page_escapes_what_publishers_typed(api, dev):
    put_product(
        api,
        "gold",
        displayName="<script>alert(1)</script>Gold",
        description="<img src=x onerror=alert(1)>",
        terms="Be <b>nice</b>.\nNo abuse.",
    )
    page = dev.get(PRODUCTS)
    assert "<script>alert(1)" not in page.raw and "<img src=x" not in page.raw
    assert "&lt;script&gt;" in page.raw
    assert "Be &lt;b&gt;nice&lt;/b&gt;." in page.raw


def test_no_subscription_needed_and_no_places_left_are_said_instead_of_a_form(api, dev):
    put_product(api, "free", displayName="Free plan", subscriptionRequired=False)
    put_product(api, "closed", displayName="Closed plan", subscriptionsLimit=0)
    page = dev.get(PRODUCTS)
    assert "Open to everyone: no subscription needed." in page.section("product-free")
    assert "takes no new subscriptions" in page.section("product-closed")
    assert 'name="action"' not in page.section("product-free")
    for product in ("free", "closed"):
        refused = subscribe(dev, product)
        assert refused.status == 409, refused.body
    assert "needs no subscription" in subscribe(dev, "free").alert()
    assert subscriptions_of("dev") == []


# --- subscribing --------------------------------------------------------------------------------


def test_subscribing_without_approval_is_active_at_once_with_the_purchase_email(api, dev):
    put_product(api, "gold", displayName="Gold plan")
    done = subscribe(dev, "gold", "  Weather app  ")
    assert done.status == 303
    assert done.location.startswith("../portal/subscriptions?done=subscribed&s=")
    sid = new_sid(done)
    sub = services().subscriptions.get(sid)
    assert (sub.state.value, sub.owner_id, sub.scope) == ("active", "dev", "/products/gold")
    assert sub.display_name == "Weather app" and sub.start_date is not None
    shown = dev.follow(done, PRODUCTS)
    assert "Your subscription “Weather app” is active." in shown.status_message()
    assert gateway(api, keys_of(api, sid)["primaryKey"], "gold")
    mails = mail_to("dev@example.com")
    assert [m.subject for m in mails] == ["Your subscription to the Gold plan"]
    assert "Dear Dee Veloper" in mails[0].text and "Gold plan" in mails[0].text
    assert sub.start_date.strftime("%d %B %Y") in mails[0].text


def test_subscribing_to_an_approval_product_waits_with_the_request_email(api, dev):
    put_product(api, "gold", displayName="Gold plan", approvalRequired=True)
    assert "Request a subscription" in dev.get(PRODUCTS).body
    done = subscribe(dev, "gold")
    assert done.location.startswith("../portal/subscriptions?done=requested&s=")
    sub = services().subscriptions.get(new_sid(done))
    assert sub.state.value == "submitted" and sub.start_date is None
    assert not gateway(api, sub.primary_key, "gold")
    mails = mail_to("dev@example.com")
    assert [m.subject for m in mails] == ["Your subscription request for the Gold plan"]
    assert "dev@example.com" in mails[0].text  # $DevEmail: where the answer will go
    page = dev.follow(done, PRODUCTS)
    assert "waits for approval" in page.status_message()
    assert "Awaiting approval" in page.body


def test_publishers_hear_of_the_request_and_of_the_approval(api, dev):
    """RequestPublisherNotificationMessage and PurchasePublisherNotificationMessage go to the
    recipients configured under notifications (a user's address and a plain one)."""
    api.create_user("boss", "boss@example.com")
    assert (
        api.put("/notifications/RequestPublisherNotificationMessage/recipientUsers/boss").status
        == 201
    )
    purchase = "/notifications/PurchasePublisherNotificationMessage/recipientEmails"
    assert api.put(f"{purchase}/sales@example.com").status == 201
    put_product(api, "gold", displayName="Gold plan", approvalRequired=True)
    sid = new_sid(subscribe(dev, "gold"))
    [request] = [m for m in mail_to("boss@example.com") if "Gold plan" in m.text]
    assert "dev@example.com" in request.text and "Dee" in request.text
    assert mail_to("sales@example.com") == []  # nothing bought yet
    approved = api.patch(
        f"/subscriptions/{sid}?notify=true",
        {"properties": {"state": "active"}},
        headers={"If-Match": "*"},
    )
    assert approved.status == 200, approved.body
    [sale] = mail_to("sales@example.com")
    assert "Gold plan" in sale.text and "dev@example.com" in sale.text
    assert len([m for m in mail_to("boss@example.com") if "Gold plan" in m.text]) == 1


def test_terms_are_shown_and_must_be_accepted(api, dev):
    put_product(api, "gold", terms="No reselling of the data.")
    page = dev.get(PRODUCTS)
    assert "No reselling of the data." in page.section("product-gold")
    assert 'name="acceptTerms" value="yes" required' in page.raw
    refused = subscribe(dev, "gold", "App")
    assert refused.status == 400
    assert "Accept the terms of use to subscribe." in refused.section("product-gold")
    assert 'aria-invalid="true"' in refused.section("product-gold")
    assert subscribe(dev, "gold", "App", acceptTerms="on").status == 400
    assert subscriptions_of("dev") == []
    assert subscribe(dev, "gold", "App", acceptTerms="yes").status == 303
    assert len(subscriptions_of("dev")) == 1


def test_the_limit_counts_the_developers_live_subscriptions(api, dev, client):
    put_product(api, "gold", displayName="Gold plan", subscriptionsLimit=2)
    first, second = (new_sid(subscribe(dev, "gold", n)) for n in ("One", "Two"))
    assert "You hold 2 of 2 allowed" in dev.get(PRODUCTS).body
    refused = subscribe(dev, "gold", "Three")
    assert refused.status == 409
    assert "as many subscriptions to this product as it allows" in refused.alert()
    assert "You have 2 of the 2 subscriptions this product allows." in refused.body
    assert len(subscriptions_of("dev")) == 2
    # Another developer has places of their own.
    make_developer("other", "other@example.com")
    other = Developer(client, "other@example.com")
    assert subscribe(other, "gold").status == 303
    # A cancelled subscription gives its place back.
    assert (
        dev.post(SUBS, {"action": "cancel", "subscription": first, "confirm": "yes"}).status == 303
    )
    assert subscribe(dev, "gold", "Three").status == 303
    states = sorted(s.state.value for s in subscriptions_of("dev"))
    assert states == ["active", "active", "cancelled"]
    assert second in {s.id for s in subscriptions_of("dev")}


def test_a_request_awaiting_approval_holds_a_place(api, dev):
    put_product(api, "gold", approvalRequired=True, subscriptionsLimit=1)
    assert subscribe(dev, "gold").status == 303
    assert subscribe(dev, "gold", "Again").status == 409


# --- bad and hostile forms ----------------------------------------------------------------------


def test_a_form_without_the_sessions_csrf_token_is_refused_and_changes_nothing(api, dev, client):
    put_product(api, "gold")
    fields = {"action": "subscribe", "product": "gold", "name": "App"}
    assert dev.post(PRODUCTS, fields, csrf=False).status == 403
    assert dev.post(PRODUCTS, {**fields, "csrf": "forged"}, csrf=False).status == 403
    # The token of another developer's session does not pass either.
    make_developer("other", "other@example.com")
    other = Developer(client, "other@example.com")
    other.get(PRODUCTS)
    assert dev.post(PRODUCTS, {**fields, "csrf": other.csrf}, csrf=False).status == 403
    json_body = dev.request(
        "POST",
        PRODUCTS,
        raw=b'{"action": "subscribe", "product": "gold"}',
        headers={"content-type": "application/json"},
    )
    assert json_body.status == 403
    assert subscriptions_of("dev") == [] and subscriptions_of("other") == []


@pytest.mark.parametrize(
    "name, problem",
    [
        ("", "Enter a name for the subscription."),
        ("   ", "Enter a name for the subscription."),
        ("x" * 101, "Use at most 100 characters for the name."),
        ("line\nbreak", "The name must be one line without control characters."),
        ("nul\x00", "The name must be one line without control characters."),
        ("\u202egnp.exe", "The name must be one line without control characters."),
    ],
)
def test_a_bad_name_is_said_next_to_the_field(api, dev, name, problem):
    put_product(api, "gold")
    refused = subscribe(dev, "gold", name)
    assert refused.status == 400
    assert problem in refused.section("product-gold")
    assert refused.alert() == "Nothing was subscribed: " + problem
    assert subscriptions_of("dev") == []


@pytest.mark.parametrize(
    "fields",
    [
        {"action": "subscribe", "product": "nosuch", "name": "A"},
        {"action": "subscribe", "product": "", "name": "A"},
        {"action": "subscribe", "product": "draft", "name": "A"},
        {"action": "subscribe", "product": "partners", "name": "A"},
        {"action": "subscribe", "product": "../../products/gold", "name": "A"},
    ],
)
def test_products_the_developer_cannot_see_are_not_found(api, dev, fields):
    put_product(api, "draft", state="notPublished")
    put_product(api, "partners", groups=())
    refused = dev.post(PRODUCTS, fields)
    assert refused.status == 404
    assert "not offered to you" in refused.alert()
    assert subscriptions_of("dev") == []


def test_odd_bodies_get_pages_never_a_500(api, dev):
    put_product(api, "gold")
    dev.get(PRODUCTS)
    token = dev.csrf
    cases = [
        b"\xff\xfe\x00garbage",
        b"csrf=" + token.encode() + b"&action=nope",
        b"csrf=" + token.encode() + b"&action=subscribe&product=gold&name=" + b"a" * (1024 * 1024),
        b"csrf=" + token.encode(),
    ]
    for raw in cases:
        reply = dev.request(
            "POST", PRODUCTS, raw=raw, headers={"content-type": "application/x-www-form-urlencoded"}
        )
        assert reply.status in (400, 403, 409), (raw[:60], reply.status)
        assert reply.headers["Content-Type"].startswith("text/html")
    assert subscriptions_of("dev") == []
    # Bytes that are not UTF-8 read as U+FFFD, a character like any other in a name.
    odd = b"csrf=" + token.encode() + b"&action=subscribe&product=gold&name=%FF%FE"
    reply = dev.request(
        "POST", PRODUCTS, raw=odd, headers={"content-type": "application/x-www-form-urlencoded"}
    )
    assert reply.status == 303
    assert [s.display_name for s in subscriptions_of("dev")] == ["\ufffd\ufffd"]


# --- the limit under concurrent requests, over real HTTP ----------------------------------------

RACERS = 12
LIMIT = 3


@pytest.mark.integration
def test_concurrent_subscribes_pass_the_limit_exactly(live_server):
    """Many tabs at once: exactly ``LIMIT`` subscriptions, the rest a 409 page; the counter
    holds under the real stack's concurrency (moto server + chalice local, threads)."""
    tag = uuid.uuid4().hex[:10]
    product, user_id, email = f"race-{tag}", f"racer-{tag}", f"racer-{tag}@example.com"
    api = {"api-version": "2024-05-01"}

    def admin(method, path, body=None):
        reply = requests.request(
            method,
            live_server.url(path),
            params=api,
            json=body,
            headers=live_server.headers,
            timeout=30,
        )
        assert reply.status_code in (200, 201), reply.text
        return reply

    props = {"email": email, "firstName": "Race", "lastName": "Runner", "password": PASSWORD}
    admin("PUT", f"/users/{user_id}", {"properties": props})
    admin(
        "PUT",
        f"/products/{product}",
        {
            "properties": {
                "displayName": "Race plan",
                "state": "published",
                "subscriptionsLimit": LIMIT,
            }
        },
    )
    admin("PUT", f"/products/{product}/groups/developers")
    base = live_server.base_url
    browser = requests.Session()  # the sign-in form's page first: its cookie and CSRF token
    form = browser.get(f"{base}/signin", timeout=30)
    csrf = re.search(r'name="csrf" value="([^"]+)"', form.text).group(1)
    signed = browser.post(
        f"{base}/signin",
        data={"email": email, "password": PASSWORD, "csrf": csrf},
        allow_redirects=False,
        timeout=30,
    )
    assert signed.status_code == 303, signed.text
    cookies = {"apim_session": signed.cookies["apim_session"]}
    page = requests.get(f"{base}{PRODUCTS}", cookies=cookies, timeout=30)
    token = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
    barrier = threading.Barrier(RACERS)
    statuses: list[int] = []

    def racer(n: int) -> None:
        body = urlencode(
            {"csrf": token, "action": "subscribe", "product": product, "name": f"T{n}"}
        )
        barrier.wait(timeout=30)
        reply = requests.post(
            f"{base}{PRODUCTS}",
            data=body,
            cookies=cookies,
            allow_redirects=False,
            timeout=60,
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        statuses.append(reply.status_code)

    threads = [threading.Thread(target=racer, args=(n,)) for n in range(RACERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert sorted(statuses) == [303] * LIMIT + [409] * (RACERS - LIMIT)
    listed = admin("GET", f"/users/{user_id}/subscriptions").json()["value"]
    assert len(listed) == LIMIT
