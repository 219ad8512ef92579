"""The audit trail: every change writes its event in the same transaction; failures write none."""

import json
from datetime import timedelta
from urllib.parse import urlencode

import boto3
import pytest

from chalicelib.bootstrap import services
from chalicelib.config import get_settings
from tests.support import mail_to

INVITE = "/confirm/invitation"
RESET = "/confirm-v2/password"


def events(api, user_id, **query):
    reply = api.get(f"/users/{user_id}/events" + ("?" + urlencode(query) if query else ""))
    assert reply.status == 200, reply.body
    return reply.json["value"]


def actions(api, user_id):
    return [e["action"] for e in events(api, user_id)]


def trail(api, expression):
    reply = api.get("/auditEvents?" + urlencode({"$filter": expression}))
    assert reply.status == 200, reply.body
    return reply.json["value"]


@pytest.mark.wire
def test_create_block_activate_and_delete_are_recorded_with_actor_and_values(api):
    created = api.create_user("ada", "ada@example.com", note="first")
    request_id = created.headers["x-ms-request-id"]
    api.patch("/users/ada", {"properties": {"state": "blocked"}}, headers={"If-Match": "*"})
    api.patch("/users/ada", {"properties": {"state": "active"}}, headers={"If-Match": "*"})
    api.patch(
        "/users/ada",
        {"properties": {"note": "second", "email": "ADA@example.org"}},
        headers={"If-Match": "*"},
    )
    assert actions(api, "ada") == [
        "user.updated",
        "user.email_changed",
        "user.activated",
        "user.blocked",
        "user.created",
    ]
    newest = events(api, "ada")
    blocked = newest[3]
    assert blocked["changes"] == {"state": {"old": "active", "new": "blocked"}}
    assert blocked["actor"]["id"] == "integration"
    assert blocked["actor"]["kind"] == "management"
    assert blocked["target"] == {"type": "user", "id": "ada", "email": "ada@example.com"}
    assert newest[0]["changes"] == {"note": {"old": "first", "new": "second"}}
    assert newest[1]["changes"]["email"] == {"old": "ada@example.com", "new": "ADA@example.org"}
    first = newest[-1]
    assert first["requestId"] == request_id
    assert first["changes"]["email"] == {"old": None, "new": "ada@example.com"}
    assert first["time"].endswith("Z")
    api.delete("/users/ada", headers={"If-Match": "*"})
    assert actions(api, "ada")[0] == "user.deleted"


def test_a_password_set_by_the_admin_is_an_event_without_the_password(api):
    api.create_user("ada", password="the first passphrase")
    api.patch(
        "/users/ada",
        {"properties": {"password": "the second passphrase"}},
        headers={"If-Match": "*"},
    )
    event = events(api, "ada")[0]
    assert event["action"] == "user.password_set_by_admin"
    assert event["changes"] == {"password": {"old": None, "new": "(changed)"}}
    dump = json.dumps(events(api, "ada"))
    assert "passphrase" not in dump and "argon2" not in dump


def test_failed_changes_leave_no_event(api):
    first = api.create_user("ada", "ada@example.com")
    api.patch("/users/ada", {"properties": {"note": "x"}}, headers={"If-Match": "*"})
    assert (
        api.patch(
            "/users/ada", {"properties": {"note": "y"}}, headers={"If-Match": first.etag}
        ).status
        == 412
    )
    assert (
        api.put(
            "/users/bob",
            {"properties": {"email": "ADA@example.com", "firstName": "B", "lastName": "B"}},
        ).status
        == 409
    )
    assert actions(api, "ada") == ["user.updated", "user.created"]
    assert events(api, "bob") == []


@pytest.mark.moto
def test_a_cancelled_transaction_leaves_neither_change_nor_event(api, wired):
    from tests.api.test_transactions import ConflictingTx, a_user

    store = services().store
    tx = ConflictingTx(store.transaction()._connection, conflicts=99)
    user = a_user("ghost", "ghost@example.com")
    store.users.stage_create(tx, user)
    services().audit.stage(tx, "user.created", _target(user))
    from chalicelib.errors import ServiceBusy

    with pytest.raises(ServiceBusy):
        tx.commit()
    assert api.get("/users/ghost").status == 404
    assert events(api, "ghost") == []


def _target(user):
    from chalicelib.services.audit import user_target

    return user_target(user)


def test_invitation_events_name_who_acted(api, client, clock, wired):
    api.put(
        "/users/ivy",
        {
            "properties": {
                "email": "ivy@example.com",
                "firstName": "I",
                "lastName": "V",
                "confirmation": "invite",
            }
        },
    )
    api.call("POST", "/users/ivy/invitations/resend")
    api.call("POST", "/users/ivy/invitations/revoke")
    api.call("POST", "/users/ivy/invitations/resend")
    token = mail_to("ivy@example.com")[-1].token(INVITE)
    client.http.post(
        INVITE,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        body=urlencode({"token": token, "password": "ivy's own passphrase"}),
    )
    trail_of_ivy = events(api, "ivy")
    assert [e["action"] for e in trail_of_ivy] == [
        "invitation.accepted",
        "invitation.resent",
        "invitation.revoked",
        "invitation.resent",
        "user.invited",
    ]
    accepted = trail_of_ivy[0]
    assert accepted["actor"] == {"id": "ivy", "kind": "user", "address": "127.0.0.1"}
    assert accepted["changes"]["state"] == {"old": "pending", "new": "active"}
    api.put(
        "/users/late",
        {
            "properties": {
                "email": "late@example.com",
                "firstName": "L",
                "lastName": "L",
                "confirmation": "invite",
            }
        },
    )
    clock.advance(hours=49)
    services().sweep.run()
    expired = events(api, "late")[0]
    assert expired["action"] == "invitation.expired"
    assert expired["actor"]["kind"] == "system"


def test_reset_signin_and_token_events(api, client):
    api.create_user("dev", "dev@example.com", password="the first passphrase")
    api.call("POST", "/users/dev/confirmations/password/send")
    token = mail_to("dev@example.com")[-1].token(RESET)
    client.http.post(
        RESET,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        body=urlencode({"token": token, "password": "the second passphrase"}),
    )
    client.http.post(
        "/signin",
        headers={"Content-Type": "application/json"},
        body=json.dumps({"email": "dev@example.com", "password": "wrong one"}),
    )
    from datetime import UTC, datetime

    expiry = (datetime.now(UTC) + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert api.call("POST", "/users/dev/token", {"properties": {"expiry": expiry}}).status == 200
    # A forged token writes nothing, whatever id it names (no oracle, no flood of events).
    client.http.get("/me", headers={"Authorization": "SharedAccessSignature dev&209901010000&Zm9v"})
    assert actions(api, "dev")[:4] == [
        "user.token_issued",
        "signin.failed",
        "password.reset_completed",
        "password.reset_requested",
    ]
    unknown = trail(api, "action eq 'signin.failed' and targetType eq 'email'")
    assert unknown == []
    client.http.post(
        "/signin",
        headers={"Content-Type": "application/json"},
        body=json.dumps({"email": "nobody@example.com", "password": "whatever"}),
    )
    [failed] = trail(api, "action eq 'signin.failed' and targetType eq 'email'")
    assert failed["target"]["id"] == "nobody@example.com"


def test_throttled_requests_are_recorded(api, client):
    for _ in range(6):
        client.http.post(
            "/password-reset",
            headers={"Content-Type": "application/json"},
            body=json.dumps({"email": "someone@example.com"}),
        )
    [throttled] = trail(api, "action eq 'request.throttled'")
    assert throttled["target"] == {
        "type": "reset:pair",
        "id": "someone@example.com",
        "email": None,
    }


def test_group_template_and_subscription_events(api):
    api.create_user("dev")
    api.put("/groups/team", {"properties": {"displayName": "Team"}})
    api.patch("/groups/team", {"properties": {"description": "d"}}, headers={"If-Match": "*"})
    api.put("/groups/team/users/dev")
    api.delete("/groups/team/users/dev")
    api.delete("/groups/team", headers={"If-Match": "*"})
    group_trail = [e["action"] for e in trail(api, "targetType eq 'group'")]
    assert group_trail == ["group.deleted", "group.changed", "group.created"]
    assert actions(api, "dev")[:2] == ["group.member_removed", "group.member_added"]
    api.put(
        "/templates/inviteUserNotificationMessage",
        {"properties": {"subject": "Join {{ OrganizationName }}"}},
    )
    api.delete("/templates/inviteUserNotificationMessage", headers={"If-Match": "*"})
    template_trail = trail(api, "targetType eq 'template'")
    assert [e["action"] for e in template_trail] == ["template.reset", "template.changed"]
    assert template_trail[1]["changes"]["subject"]["new"] == "Join {{ OrganizationName }}"
    api.put("/products/p", {"properties": {"displayName": "P"}})
    api.put(
        "/subscriptions/s",
        {"properties": {"scope": "/products/p", "ownerId": "/users/dev", "displayName": "S"}},
    )
    api.patch("/subscriptions/s", {"properties": {"state": "suspended"}}, headers={"If-Match": "*"})
    api.call("POST", "/subscriptions/s/regeneratePrimaryKey")
    api.delete("/subscriptions/s", headers={"If-Match": "*"})
    sub_trail = trail(api, "targetType eq 'subscription'")
    assert [e["action"] for e in sub_trail] == [
        "subscription.deleted",
        "subscription.key_regenerated",
        "subscription.changed",
        "subscription.created",
    ]
    assert sub_trail[2]["changes"] == {"state": {"old": "active", "new": "suspended"}}
    assert "Key" not in json.dumps(sub_trail[3]["changes"])


def test_user_events_page_newest_first(api):
    api.create_user("ada")
    for n in range(5):
        api.patch("/users/ada", {"properties": {"note": f"n{n}"}}, headers={"If-Match": "*"})
    page = api.get("/users/ada/events?$top=2")
    assert [e["changes"]["note"]["new"] for e in page.json["value"]] == ["n4", "n3"]
    seen = [e["id"] for e in page.json["value"]]
    while "nextLink" in page.json:
        page = api.get(page.json["nextLink"], absolute=True, api_version=None)
        seen += [e["id"] for e in page.json["value"]]
    assert len(seen) == 6 and seen == sorted(seen, reverse=True)


def test_audit_trail_filters_by_action_actor_and_time_across_months(api, clock):
    api.create_user("old")
    clock.advance(days=40)
    api.create_user("new")
    now = clock.now
    recent = trail(api, f"time ge {(now - timedelta(days=1)).strftime('%Y-%m-%dT%H:%M:%SZ')}")
    assert [e["target"]["id"] for e in recent] == ["new"]
    everything, page = [], api.get("/auditEvents?$filter=action eq 'user.created'")
    everything += page.json["value"]
    while "nextLink" in page.json:
        page = api.get(page.json["nextLink"], absolute=True, api_version=None)
        everything += page.json["value"]
    assert [e["target"]["id"] for e in everything] == ["new", "old"]
    assert trail(api, "actor eq 'someone else'") == []
    assert api.get("/auditEvents?$filter=colour eq 'x'").status == 400


@pytest.mark.moto
def test_events_expire_after_the_retention(api):
    api.create_user("ada")
    table = boto3.resource("dynamodb").Table(get_settings().audit_table)
    [item] = table.query(
        KeyConditionExpression="#s = :s",
        ExpressionAttributeNames={"#s": "stream"},
        ExpressionAttributeValues={":s": "user#ada"},
    )["Items"]
    from datetime import UTC, datetime

    event_time = datetime.fromisoformat(item["time"].replace("+0000", "+00:00"))
    purge = datetime.fromtimestamp(int(item["purge_at"]), UTC)
    assert abs((purge - event_time) - timedelta(days=400)) < timedelta(seconds=2)


def test_signup_own_password_change_and_expired_reset_link_events(api, client, clock, wired):
    api.put(
        "/users/sam",
        {
            "properties": {
                "email": "sam@example.com",
                "firstName": "S",
                "lastName": "U",
                "password": "sam's first passphrase",
                "confirmation": "signup",
            }
        },
    )
    token = mail_to("sam@example.com")[-1].token("/confirm-v2/identities/basic/signup")
    client.http.post(
        "/confirm-v2/identities/basic/signup",
        headers={"Content-Type": "application/json"},
        body=json.dumps({"token": token, "password": "sam's first passphrase"}),
    )
    signed = client.http.post(
        "/signin",
        headers={"Content-Type": "application/json"},
        body=json.dumps({"email": "sam@example.com", "password": "sam's first passphrase"}),
    )
    user_token = json.loads(signed.body)["value"]
    client.http.post(
        "/me/password",
        headers={
            "Content-Type": "application/json",
            "Authorization": f"SharedAccessSignature {user_token}",
        },
        body=json.dumps(
            {"currentPassword": "sam's first passphrase", "newPassword": "sam's next passphrase"}
        ),
    )
    api.call("POST", "/users/sam/confirmations/password/send")
    clock.advance(minutes=61)
    services().sweep.run()
    trail_of_sam = events(api, "sam")
    assert [e["action"] for e in trail_of_sam] == [
        "password.reset_link_expired",
        "password.reset_requested",
        "password.changed",
        "signup.confirmed",
        "user.signed_up",
    ]
    changed = trail_of_sam[2]
    assert changed["actor"]["id"] == "sam" and changed["actor"]["kind"] == "user"
    assert changed["changes"] == {"password": {"old": None, "new": "(changed)"}}
    assert trail_of_sam[-2]["changes"]["state"] == {"old": "pending", "new": "active"}
    assert trail_of_sam[0]["actor"]["kind"] == "system"
