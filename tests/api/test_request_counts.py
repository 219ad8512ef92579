"""Each write's DynamoDB requests on the request path, counted against issue 16's targets.

A botocore handler (as in bench/counting.py) records every DynamoDB call the test's own thread
makes while one request runs; the relay is paused meanwhile, since in AWS it runs in another
function after the commit. These are costs a user pays in latency and on the bill, counted, not
timed, so they hold on any machine.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import botocore.handlers
import pytest

from tests.support import mail_to, relay, relay_paused

# Requests to DynamoDB, counted: on moto in `make test-fast` too.
pytestmark = pytest.mark.moto

_recording: dict[int, list[str]] = {}


def _record(params: dict[str, Any], model: Any, **_: Any) -> None:
    calls = _recording.get(threading.get_ident())
    if calls is not None:
        tables = params.get("TableName") or ",".join(
            sorted(params.get("RequestItems") or {})
            or sorted(
                next(iter(item.values()))["TableName"] for item in params.get("TransactItems", [])
            )
        )
        calls.append(f"{model.name}({tables})")


# Sessions register BUILTIN_HANDLERS when they are made: this module is imported at collection,
# before any test makes a DynamoDB session (the first test below checks the meter sees calls).
botocore.handlers.BUILTIN_HANDLERS.append(("provide-client-params.dynamodb", _record))

PASSWORD = "correct horse battery staple 42"
INVITED = {"firstName": "Iris", "lastName": "Murdoch", "confirmation": "invite"}


@contextmanager
def counted() -> Iterator[list[str]]:
    """The DynamoDB calls of this thread inside the block, the relay held until after it."""
    calls: list[str] = []
    with relay_paused():
        _recording[threading.get_ident()] = calls
        try:
            yield calls
        finally:
            del _recording[threading.get_ident()]
    relay()


def portal(api: Any, method: str, path: str, body: Any = None) -> Any:
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    payload = json.dumps(body) if body is not None else b""
    return api.client.http.request(method, path, headers=headers, body=payload)


def requests_of(action: Callable[[], Any], check: Callable[[Any], bool]) -> list[str]:
    with counted() as calls:
        outcome = action()
    assert check(outcome), outcome
    return calls


def invite(api: Any, user_id: str) -> str:
    """Invite an account; the token its email carries."""
    email = f"{user_id}@example.com"
    assert api.put(f"/users/{user_id}", {"properties": {**INVITED, "email": email}}).status == 201
    return mail_to(email)[-1].token("/confirm/invitation")


def test_the_meter_sees_the_apps_requests(api):
    api.create_user("ada")
    calls = requests_of(lambda: api.get("/users/ada"), lambda r: r.status == 200)
    assert [c.split("(")[0] for c in calls] == ["GetItem"]


@pytest.mark.parametrize(
    ("operation", "target"),
    [("create user", 1), ("invite", 1)],
)
def test_a_create_is_one_transaction(api, operation, target):
    body = {"email": "iris@example.com", "firstName": "Iris", "lastName": "Murdoch"}
    if operation == "invite":
        body["confirmation"] = "invite"
    calls = requests_of(
        lambda: api.put("/users/iris", {"properties": body}), lambda r: r.status == 201
    )
    assert len(calls) == target, calls
    assert calls[0].startswith("TransactWriteItems")


def test_patch_block_and_delete_read_once_and_write_once(api):
    for name in ("bob", "carl"):
        api.create_user(name, f"{name}@example.com")
    any_version = {"If-Match": "*"}
    patch = requests_of(
        lambda: api.patch("/users/bob", {"properties": {"note": "n"}}, headers=any_version),
        lambda r: r.status == 200,
    )
    block = requests_of(
        lambda: api.patch("/users/bob", {"properties": {"state": "blocked"}}, headers=any_version),
        lambda r: r.status == 200 and r.json["properties"]["state"] == "blocked",
    )
    delete = requests_of(
        lambda: api.delete("/users/carl", headers=any_version), lambda r: r.status == 204
    )
    for calls in (patch, block, delete):
        assert len(calls) == 2, calls
        assert calls[0].startswith("GetItem(") and calls[1].startswith("TransactWriteItems(")


def test_send_reset_reads_the_account_and_writes_once(api):
    api.create_user("ada")
    calls = requests_of(
        lambda: api.call("POST", "/users/ada/confirmations/password/send"),
        lambda r: r.status == 204,
    )
    assert len(calls) == 2, calls
    assert calls[0].startswith("GetItem(") and calls[1].startswith("TransactWriteItems(")


def test_an_invitation_page_is_one_read_and_its_acceptance_two_requests(api):
    token = invite(api, "iris")
    page = requests_of(
        lambda: portal(api, "GET", f"/confirm/invitation?token={token}"),
        lambda r: r.status_code == 200,
    )
    accept = requests_of(
        lambda: portal(api, "POST", "/confirm/invitation", {"token": token, "password": PASSWORD}),
        lambda r: r.status_code == 200,
    )
    assert len(page) == 1 and page[0].startswith("BatchGetItem("), page
    assert len(accept) == 2, accept
    assert accept[0].startswith("BatchGetItem(") and accept[1].startswith("TransactWriteItems(")


def test_sign_in_is_two_requests(api):
    token = invite(api, "iris")
    portal(api, "POST", "/confirm/invitation", {"token": token, "password": PASSWORD})
    calls = requests_of(
        lambda: portal(api, "POST", "/signin", {"email": "iris@example.com", "password": PASSWORD}),
        lambda r: r.status_code == 200,
    )
    assert len(calls) == 2, calls


def test_an_administrator_is_still_never_the_last_to_go(api):
    """The cheap path assumes "not an administrator" inside the transaction; for the last one
    the check fails and the full rule refuses (tests/api/test_last_administrator.py has more)."""
    from chalicelib.bootstrap import services

    api.create_user("boss")
    assert services().groups.add_administrator("boss")
    reply = api.patch(
        "/users/boss", {"properties": {"state": "blocked"}}, headers={"If-Match": "*"}
    )
    assert reply.status == 409
    assert api.delete("/users/boss", headers={"If-Match": "*"}).status == 409


def test_a_deleted_account_never_shows_and_the_relay_clears_what_it_left(api):
    from chalicelib.bootstrap import services

    api.create_user("dora")
    assert api.put("/groups/team", {"properties": {"displayName": "Team"}}).status == 201
    assert api.put("/groups/team/users/dora").status in (200, 201)
    invite(api, "ivy")
    with relay_paused():
        assert api.delete("/users/dora", headers={"If-Match": "*"}).status == 204
        assert api.delete("/users/ivy", headers={"If-Match": "*"}).status == 204
        # Before the relay has run, the rows are there, and no listing shows the account.
        assert services().groups.is_member("team", "dora") is False
        members = api.get("/groups/team/users")
        assert members.status == 200 and members.json["value"] == []
        ids = [u["name"] for u in api.get("/users").json["value"]]
        assert "dora" not in ids and "ivy" not in ids
        rows = services().group_repository.memberships_of("dora", None, 10, 10)
        assert [m.user_id for m in rows] == ["dora"]
        assert [link.state.value for link in services().store.links.for_user("ivy", {*_all()})] == [
            "pending"
        ]
    relay()
    assert list(services().group_repository.memberships_of("dora", None, 10, 10)) == []
    assert [link.state.value for link in services().store.links.for_user("ivy", {*_all()})] == [
        "revoked"
    ]
    # A new account under the same id starts with no group and no link.
    api.create_user("dora")
    assert api.get("/groups/team/users").json["value"] == []


def _all() -> set[Any]:
    from chalicelib.domain.links import LinkPurpose

    return set(LinkPurpose)


def test_a_link_from_before_epochs_and_named_tokens_still_works_by_the_old_checks(api):
    """Links already mailed carry an opaque token and no epoch: found through the token index
    (two reads), accepted if the account is still pending at the address it was sent to."""
    from dataclasses import replace

    from chalicelib.bootstrap import services
    from chalicelib.domain.links import LinkPurpose, hash_token, new_token

    store = services().store
    with relay_paused():
        email = "olga@example.com"
        assert api.put("/users/olga", {"properties": {**INVITED, "email": email}}).status == 201
    (issued,) = store.links.for_user("olga", {LinkPurpose.INVITE})
    token, _ = new_token()
    old = replace(
        issued, link_id=issued.link_id + "-old", token_hash=hash_token(token), token_epoch=""
    )
    tx = store.transaction()
    store.links.stage_put(tx, old)
    tx.commit()
    page = requests_of(
        lambda: portal(api, "GET", f"/confirm/invitation?token={token}"),
        lambda r: r.status_code == 200,
    )
    assert [c.split("(")[0] for c in page] == ["Query", "GetItem"]
    accepted = portal(api, "POST", "/confirm/invitation", {"token": token, "password": PASSWORD})
    assert accepted.status_code == 200
    assert api.get("/users/olga").json["properties"]["state"] == "active"


def test_a_portal_form_reads_the_delegation_setting_once(api):
    """A signed-in form asks whether its action is delegated, and the page it answers with (a
    field left empty) asks which forms are: the setting is read once for both."""
    from chalicelib.bootstrap import services
    from tests.api.portal_support import Developer, make_developer

    make_developer("dev", "dev@example.com")
    dev = Developer(api.client, "dev@example.com")
    version = str(services().accounts.get("dev").version)
    calls = requests_of(
        lambda: dev.post(
            "/portal/profile/name", {"firstName": "", "lastName": "V", "version": version}
        ),
        lambda page: page.status == 400,
    )
    settings = [c for c in calls if c.startswith("GetItem(") and "portal" in c]
    assert len(settings) == 1, calls


def test_the_relay_reads_the_bcc_recipients_once_a_batch(api):
    """Each developer email the relay sends is copied to the BCC recipients, read once for the
    batch rather than once for each email."""
    assert api.put("/notifications/BCC/recipientEmails/audit@example.com").status == 201
    with relay_paused():
        for name in ("ann", "ben", "cat"):
            invite_body = {**INVITED, "email": f"{name}@example.com"}
            assert api.put(f"/users/{name}", {"properties": invite_body}).status == 201
    calls: list[str] = []
    _recording[threading.get_ident()] = calls
    try:
        relay()
    finally:
        del _recording[threading.get_ident()]
    recipients = [c for c in calls if c.startswith("Query(") and "portal" in c]
    assert len(recipients) == 1, calls
    assert len(mail_to("audit@example.com")) == 3
