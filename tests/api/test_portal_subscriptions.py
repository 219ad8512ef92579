"""The developer's subscriptions page, and the emails an administrator's state change sends.

Keys are in no page until a POST asks for one, and never in a URL; regenerate, rename and
cancel (which asks first) act on the developer's own subscriptions only: another developer's
id is answered exactly like an id that does not exist. Approve and reject, from the console or
the management API (with APIM's ``notify=true``), email the developer in the transaction of the
change; reactivating a suspended subscription announces nothing.
"""

from __future__ import annotations

import re

import pytest

from chalicelib.bootstrap import services
from tests.api.portal_support import Developer, gateway, keys_of, make_developer, put_product
from tests.api.test_console import ADMIN_EMAIL, ADMIN_PASSWORD, Console, make_user
from tests.support import mail_to, relay_paused, stream_records

SUBS = "/portal/subscriptions"
PRODUCTS = "/portal/products"


@pytest.fixture
def dev(api, client):
    make_developer("dev", "dev@example.com", firstName="Dee", lastName="Veloper")
    put_product(api, "gold", displayName="Gold plan")
    put_product(api, "silver", displayName="Silver plan", approvalRequired=True)
    return Developer(client, "dev@example.com")


def subscribe(dev: Developer, product: str, name: str = "Weather app") -> str:
    done = dev.post(PRODUCTS, {"action": "subscribe", "product": product, "name": name})
    assert done.status == 303, done.body
    return re.search(r"[?&]s=([0-9a-f]+)", done.location).group(1)


def act(dev: Developer, action: str, sid: str, **fields):
    return dev.post(SUBS, {"action": action, "subscription": sid, **fields})


def state(sid: str) -> str:
    return services().subscriptions.get(sid).state.value


# --- the list -----------------------------------------------------------------------------------


def test_the_page_lists_product_state_and_dates_but_no_key(dev, api):
    active = subscribe(dev, "gold", "Weather app")
    waiting = subscribe(dev, "silver", "Maps app")
    page = dev.get(SUBS)
    assert page.status == 200
    card = page.section(f"sub-{active}")
    assert "Weather app" in card and "Gold plan" in card and "Active" in card
    assert re.search(r"<dt>Started</dt><dd>\d{4}-\d\d-\d\d</dd>", card)
    assert "Show primary key" in card and "Regenerate secondary key" in card
    pending = page.section(f"sub-{waiting}")
    assert "Awaiting approval" in pending and "<dt>Requested</dt>" in pending
    assert "Show primary key" not in pending and "Keys are issued once" in pending
    assert "Withdraw request" in pending
    for sid in (active, waiting):
        for key in keys_of(api, sid).values():
            assert key not in page.raw


def test_a_developer_without_subscriptions_is_pointed_to_the_products(dev):
    page = dev.get(SUBS)
    assert "You have no subscriptions yet." in page.body
    assert 'href="products"' in page.raw


def test_show_renders_that_one_key_and_puts_none_in_a_url(dev, api):
    sid = subscribe(dev, "gold")
    keys = keys_of(api, sid)
    shown = act(dev, "show", sid, key="primary")
    assert shown.status == 200
    assert shown.headers["Cache-Control"] == "no-store"
    assert keys["primaryKey"] in shown.raw and keys["secondaryKey"] not in shown.raw
    assert "Location" not in shown.headers
    assert "Hide primary key" in shown.body
    assert keys["primaryKey"] not in dev.get(SUBS).raw  # hidden again
    secondary = act(dev, "show", sid, key="secondary")
    assert keys["secondaryKey"] in secondary.raw and keys["primaryKey"] not in secondary.raw


def test_regenerate_refuses_the_old_key_and_allows_the_new_one(dev, api):
    sid = subscribe(dev, "gold")
    old = keys_of(api, sid)
    assert gateway(api, old["primaryKey"], "gold")
    done = act(dev, "regenerate", sid, key="primary")
    assert done.status == 303
    assert done.location == f"../portal/subscriptions?done=regenerated-primary&s={sid}"
    assert "new primary key" in dev.follow(done, SUBS).status_message()
    new = keys_of(api, sid)
    assert new["primaryKey"] != old["primaryKey"]
    assert new["secondaryKey"] == old["secondaryKey"]
    assert not gateway(api, old["primaryKey"], "gold")
    assert gateway(api, new["primaryKey"], "gold")
    assert act(dev, "regenerate", sid, key="tertiary").status == 400
    assert keys_of(api, sid) == new


def test_keys_of_a_request_awaiting_approval_are_neither_shown_nor_regenerated(dev, api):
    sid = subscribe(dev, "silver")
    before = keys_of(api, sid)
    for action in ("show", "regenerate"):
        refused = act(dev, action, sid, key="primary")
        assert refused.status == 409
        assert "has no keys" in refused.alert()
        assert before["primaryKey"] not in refused.raw
    assert keys_of(api, sid) == before


def test_rename(dev):
    sid = subscribe(dev, "gold", "Old name")
    form = dev.get(f"{SUBS}?rename={sid}")
    assert 'name="name"' in form.section(f"sub-{sid}") and 'value="Old name"' in form.raw
    done = act(dev, "rename", sid, name="  New <name>  ")
    assert done.status == 303
    assert services().subscriptions.get(sid).display_name == "New <name>"
    page = dev.follow(done, SUBS)
    assert "The subscription is now called “New <name>”." in page.status_message()
    assert "&lt;name&gt;" in page.raw and "<name>" not in page.raw
    for bad, problem in (("", "Enter a name"), ("x" * 101, "at most 100"), ("a\rb", "one line")):
        refused = act(dev, "rename", sid, name=bad)
        assert refused.status == 400
        assert problem in refused.section(f"sub-{sid}")
        assert 'aria-invalid="true"' in refused.section(f"sub-{sid}")
    assert services().subscriptions.get(sid).display_name == "New <name>"


def test_cancel_asks_first_then_the_keys_stop_at_once(dev, api):
    sid = subscribe(dev, "gold")
    key = keys_of(api, sid)["primaryKey"]
    asked = dev.get(f"{SUBS}?cancel={sid}")
    assert "Cancel this subscription?" in asked.section(f"sub-{sid}")
    assert 'name="confirm" value="yes"' in asked.section(f"sub-{sid}")
    unconfirmed = act(dev, "cancel", sid)
    assert unconfirmed.status == 400
    assert "Cancel this subscription?" in unconfirmed.section(f"sub-{sid}")
    assert state(sid) == "active" and gateway(api, key, "gold")
    done = act(dev, "cancel", sid, confirm="yes")
    assert done.status == 303
    assert state(sid) == "cancelled"
    assert services().subscriptions.get(sid).end_date is not None
    assert not gateway(api, key, "gold")
    page = dev.follow(done, SUBS)
    assert "is cancelled: its keys no longer work" in page.status_message()
    card = page.section(f"sub-{sid}")
    assert "Cancelled" in card and "<dt>Ended</dt>" in card and "Show primary key" not in card
    again = act(dev, "cancel", sid, confirm="yes")
    assert again.status == 409 and "nothing to cancel" in again.alert()


def test_a_request_can_be_withdrawn(dev):
    sid = subscribe(dev, "silver")
    assert act(dev, "cancel", sid, confirm="yes").status == 303
    assert state(sid) == "cancelled"


# --- another developer's subscriptions ----------------------------------------------------------


def test_another_developers_subscription_is_not_found_and_never_leaks(dev, api, client):
    make_developer("eve", "eve@example.com", firstName="Eve")
    eve = Developer(client, "eve@example.com")
    theirs = subscribe(dev, "gold", "Secret project")
    before = services().subscriptions.get(theirs)
    keys = keys_of(api, theirs)
    attempts = [
        ("show", {"key": "primary"}),
        ("show", {"key": "secondary"}),
        ("regenerate", {"key": "primary"}),
        ("rename", {"name": "Mine now"}),
        ("cancel", {"confirm": "yes"}),
        ("cancel", {}),
    ]
    for action, fields in attempts:
        refused = act(eve, action, theirs, **fields)
        assert refused.status == 404, (action, refused.status)
        assert "does not exist, or it is not yours" in refused.alert()
        assert "Secret project" not in refused.raw
        assert all(k not in refused.raw for k in keys.values())
        nosuch = act(eve, action, "0123456789abcdef01234567", **fields)
        assert (nosuch.status, nosuch.alert()) == (refused.status, refused.alert())
    # A bad name is refused before anything is read: the same answer for any id.
    bad = act(eve, "rename", theirs, name="")
    assert bad.status == 400 and "Enter a name" in bad.alert()
    assert "Secret project" not in bad.raw
    for path in (f"{SUBS}?rename={theirs}", f"{SUBS}?cancel={theirs}"):
        page = eve.get(path)
        assert page.status == 200 and "Secret project" not in page.raw
    assert services().subscriptions.get(theirs) == before
    assert keys_of(api, theirs) == keys


# --- bad and hostile forms ----------------------------------------------------------------------


def test_forms_without_the_csrf_token_change_nothing(dev, api):
    sid = subscribe(dev, "gold")
    before = services().subscriptions.get(sid)
    for action, fields in (("regenerate", {"key": "primary"}), ("cancel", {"confirm": "yes"})):
        sent = {"action": action, "subscription": sid, **fields}
        assert dev.post(SUBS, sent, csrf=False).status == 403
        assert dev.post(SUBS, {**sent, "csrf": dev.csrf + "x"}, csrf=False).status == 403
        show = dev.post(SUBS, {"action": "show", "subscription": sid, "key": "primary"}, csrf=False)
        assert show.status == 403 and before.primary_key not in show.raw
    assert services().subscriptions.get(sid) == before


@pytest.mark.parametrize(
    "fields",
    [
        {"action": "explode"},
        {},
        {"action": "show"},
        {"action": "show", "subscription": "x" * 5000, "key": "primary"},
        {"action": "rename", "subscription": "../../users/dev", "name": "a"},
        {"action": "show", "subscription": "\x00", "key": "primary"},
    ],
)
def test_bad_forms_get_the_page_with_a_message_never_a_500(dev, fields):
    subscribe(dev, "gold")
    reply = dev.post(SUBS, fields)
    assert reply.status in (400, 404), reply.status
    assert reply.alert()
    assert reply.headers["Content-Type"].startswith("text/html")


# --- emails on an administrator's state changes -------------------------------------------------


@pytest.fixture
def console(client, dev):
    admin = make_user("admin1", ADMIN_EMAIL, ADMIN_PASSWORD, firstName="Grace")
    assert services().groups.add_administrator(admin.id)
    browser = Console(client)
    assert browser.sign_in().status == 303
    browser.get("/console/users/dev")
    return browser


def console_change(console: Console, sid: str, verb: str):
    fields = {
        "action": "subscription",
        "subscription": sid,
        "change": verb,
        "version": str(services().subscriptions.get(sid).version),
    }
    reply = console.post("/console/users/dev", fields)
    assert reply.status == 303, reply.body
    return reply


def subjects(address: str = "dev@example.com") -> list[str]:
    return [m.subject for m in mail_to(address)]


REQUEST = "Your subscription request for the Silver plan"
PURCHASE = "Your subscription to the Silver plan"


def test_approving_in_the_console_sends_the_purchase_email(dev, console, api):
    sid = subscribe(dev, "silver")
    assert subjects() == [REQUEST]
    console_change(console, sid, "approve")
    assert state(sid) == "active"
    assert subjects() == [REQUEST, PURCHASE]
    purchase = mail_to("dev@example.com")[-1]
    assert "Dear Dee Veloper" in purchase.text and "is active since" in purchase.text
    # Suspending and activating again announces nothing: it is no new purchase.
    console_change(console, sid, "suspend")
    console_change(console, sid, "activate")
    console_change(console, sid, "cancel")
    assert subjects() == [REQUEST, PURCHASE]
    assert gateway(api, keys_of(api, sid)["primaryKey"], "silver") is False


def test_rejecting_in_the_console_sends_the_reject_email(dev, console):
    sid = subscribe(dev, "silver")
    console_change(console, sid, "reject")
    assert state(sid) == "rejected"
    assert subjects() == [REQUEST, REQUEST]  # APIM's request and reject share a subject
    rejected = mail_to("dev@example.com")[-1]
    assert "was declined" in rejected.text and "Silver plan" in rejected.text
    card = dev.get(SUBS).section(f"sub-{sid}")
    assert "Rejected" in card and "Show primary key" not in card


@pytest.mark.moto
def test_the_email_is_staged_in_the_transaction_of_the_change(dev, console):
    sid = subscribe(dev, "silver")
    with relay_paused():
        console_change(console, sid, "approve")
        staged = [r for r in stream_records() if "purchaseDeveloper" in str(r)]
    assert len(staged) == 1
    assert subjects() == [REQUEST, PURCHASE]


def test_the_management_api_notifies_only_when_asked(dev, api):
    first, second = subscribe(dev, "silver", "One"), subscribe(dev, "silver", "Two")
    active = {"properties": {"state": "active"}}
    quiet = api.patch(f"/subscriptions/{first}", active, headers={"If-Match": "*"})
    assert quiet.status == 200
    assert subjects() == [REQUEST, REQUEST]
    told = api.patch(f"/subscriptions/{second}?notify=true", active, headers={"If-Match": "*"})
    assert told.status == 200
    assert subjects() == [REQUEST, REQUEST, PURCHASE]
    third = subscribe(dev, "silver", "Three")
    reason = {"properties": {"state": "rejected", "stateComment": "Only for partners."}}
    assert (
        api.patch(f"/subscriptions/{third}?notify=true", reason, headers={"If-Match": "*"}).status
        == 200
    )
    assert "Reason: Only for partners." in mail_to("dev@example.com")[-1].text
    # A PUT with notify=true that creates an active subscription announces the purchase.
    body = {
        "properties": {
            "scope": "/products/gold",
            "ownerId": "/users/dev",
            "displayName": "Made by admin",
        }
    }
    assert api.put("/subscriptions/byadmin?notify=true", body).status == 201
    assert subjects()[-1] == "Your subscription to the Gold plan"
    count = len(subjects())
    assert api.put("/subscriptions/quiet", {"properties": {**body["properties"]}}).status == 201
    assert len(subjects()) == count


def test_a_refused_change_sends_nothing(dev, console, api):
    sid = subscribe(dev, "silver")
    stale = api.patch(
        f"/subscriptions/{sid}?notify=true",
        {"properties": {"state": "active"}},
        headers={"If-Match": '"AAAAAAAAAAE="'},
    )
    assert stale.status == 412
    assert subjects() == [REQUEST]
    assert state(sid) == "submitted"


def test_the_console_still_shows_the_developers_subscription(console, dev):
    sid = subscribe(dev, "silver", "From the portal")
    page = console.get("/console/users/dev")
    assert "From the portal" in page.body and ">Approve<" in page.body
    assert f'name="subscription" value="{sid}"' in page.body
