"""Section 1: DynamoDB requests and capacity of each API operation, against the minimum.

Run alone: ``python -m bench.operations [out.json]``. The app is driven in-process through
``chalice.test.Client`` against moto, exactly as the API tests drive it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from bench import env

env.configure()

from bench import emit  # noqa: E402
from bench.counting import Measurement, Meter  # noqa: E402

METER = Meter(env.REGION, env.TABLE_PREFIX + "-")
METER.install()

PASSWORD = "correct horse battery staple 42"
NEW_PASSWORD = "a different long passphrase 7"
EXPIRED_INVITES = 10
LIVE_INVITES = 10
LISTED_USERS = 150


@dataclass(frozen=True)
class Row:
    """One operation: what the rules allow at least, what it does, and issue 16's target."""

    name: str
    minimum: int
    minimum_why: str
    target: int | None = None


ROWS = [
    Row(
        "create user",
        1,
        "one transaction: the user, its email lock, its subscription count (0), the audit event",
        1,
    ),
    Row(
        "invite",
        1,
        "one transaction (user, email lock, subscription count, link, email in the outbox, "
        "audit); the relay reads the template and sends, after the commit",
        1,
    ),
    Row(
        "accept invitation, page GET",
        1,
        "the link and its account by key, in one BatchGetItem (the token names them)",
        1,
    ),
    Row(
        "accept invitation, POST",
        2,
        "the link and its account (one BatchGetItem); one transaction (link, user, welcome "
        "email, audit)",
        2,
    ),
    Row("get user", 1, "one GetItem"),
    Row(
        "list a page of 100",
        1,
        "one Query of 101 items (the 101st says whether a next page exists)",
    ),
    Row("$filter=email eq", 1, "one Query on the email index"),
    Row(
        "PATCH (a name)",
        2,
        "read the user (PATCH merges into it); one transaction (user, audit)",
        2,
    ),
    Row(
        "block",
        2,
        "read the user; one transaction (user with a new token epoch, audit, and a check that "
        "the account has no Administrators row: the last active one stays)",
        2,
    ),
    Row(
        "delete",
        2,
        "read the user (its email names the lock to free); one transaction (user, email lock, "
        "its subscription count, deleted only if 0: 409 without deleteSubscriptions; the "
        "Administrators check; audit; the relay's clean-up task)",
        2,
    ),
    Row(
        "send reset",
        2,
        "read the user (active users only); one transaction (link, email, the account's reset "
        "link, audit)",
        2,
    ),
    Row(
        "reset",
        2,
        "the link and its account (one BatchGetItem); one transaction (link, user, notice, audit)",
    ),
    Row(
        "sign-in",
        2,
        "read both throttling counters (one BatchGetItem); find the user by email (one Query)",
        2,
    ),
    Row(
        "token check of a blocked user",
        3,
        "read the user (one GetItem); count the refusal for this user and client address (one "
        "UpdateItem), so that a replay is recorded once an hour; the first time, record it in the "
        "audit trail (one PutItem)",
    ),
    Row(
        "subscription-key check",
        2,
        "find the subscription by its key; read its owner (blocked owners are refused)",
    ),
    Row(
        f"sweep ({EXPIRED_INVITES} expired, {LIVE_INVITES} live invitations)",
        EXPIRED_INVITES + 2,
        "one Query of the due links; one conditional write per expired link; one Query of due "
        "emails",
    ),
]


class Scenario:
    """Drives the app through the operations of ROWS, measuring each."""

    def __init__(self, api: Any, clock: Any) -> None:
        self.api = api
        self.clock = clock
        self.results: dict[str, dict[str, Any]] = {}

    def measure(self, row: Row, action: Callable[[], Any], check: Callable[[Any], bool]) -> None:
        with METER.measure() as measured:
            outcome = action()
        if not check(outcome):
            raise RuntimeError(f"{row.name}: unexpected outcome {outcome!r}")
        self.results[row.name] = _result(row, measured)

    def request(self, method: str, path: str, body: Any = None, **headers: str) -> Any:
        """A call outside the management API (portal pages, sign-in)."""
        sent = {"Content-Type": "application/json", **headers}
        payload = json.dumps(body) if body is not None else b""
        return self.api.client.http.request(method, path, headers=sent, body=payload)

    def token_in_mail(self, address: str, path: str) -> str:
        from tests.support import mail_to

        return mail_to(address)[-1].token(path)


def _result(row: Row, measured: Measurement) -> dict[str, Any]:
    data = measured.as_dict()
    data.update(
        minimum=row.minimum,
        minimum_why=row.minimum_why,
        target=row.target,
        ratio=round(measured.count / row.minimum, 2),
    )
    return data


def run() -> dict[str, Any]:
    from chalice.test import Client

    from app import app
    from chalicelib.bootstrap import services
    from tests.support import Api, MovableClock, wire

    with env.moto_backend(), Client(app, stage_name="bench") as client:
        clock = MovableClock()
        wire(clock=clock)
        api = Api(client)
        s = Scenario(api, clock)
        rows = {r.name: r for r in ROWS}
        for i in range(LISTED_USERS):
            api.create_user(f"listed{i:04d}", f"listed{i:04d}@example.com")
        for name in ("bob", "carl"):
            api.create_user(name, f"{name}@example.com")

        props = {"email": "ada@example.com", "firstName": "Ada", "lastName": "Lovelace"}
        s.measure(
            rows["create user"],
            lambda: api.put("/users/ada", {"properties": props}),
            lambda r: r.status == 201,
        )
        invited = {
            "email": "iris@example.com",
            "firstName": "Iris",
            "lastName": "Murdoch",
            "confirmation": "invite",
        }
        s.measure(
            rows["invite"],
            lambda: api.put("/users/iris", {"properties": invited}),
            lambda r: r.status == 201,
        )
        token = s.token_in_mail("iris@example.com", "/confirm/invitation")
        s.measure(
            rows["accept invitation, page GET"],
            lambda: s.request("GET", f"/confirm/invitation?token={token}", Accept="text/html"),
            lambda r: r.status_code == 200,
        )
        s.measure(
            rows["accept invitation, POST"],
            lambda: s.request(
                "POST", "/confirm/invitation", {"token": token, "password": PASSWORD}
            ),
            lambda r: r.status_code == 200,
        )
        s.measure(rows["get user"], lambda: api.get("/users/ada"), lambda r: r.status == 200)
        s.measure(
            rows["list a page of 100"],
            lambda: api.get("/users?$top=100"),
            lambda r: r.status == 200 and len(r.json["value"]) == 100 and "nextLink" in r.json,
        )
        s.measure(
            rows["$filter=email eq"],
            lambda: api.get("/users?$filter=email eq 'ada@example.com'"),
            lambda r: r.status == 200 and len(r.json["value"]) == 1,
        )
        s.measure(
            rows["PATCH (a name)"],
            lambda: api.patch(
                "/users/ada", {"properties": {"firstName": "Augusta"}}, headers={"If-Match": "*"}
            ),
            lambda r: r.status == 200,
        )
        expiry = (datetime.now(UTC) + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
        bob_token = api.call(
            "POST", "/users/bob/token", {"properties": {"keyType": "primary", "expiry": expiry}}
        ).json["value"]
        s.measure(
            rows["block"],
            lambda: api.patch(
                "/users/bob", {"properties": {"state": "blocked"}}, headers={"If-Match": "*"}
            ),
            lambda r: r.status == 200 and r.json["properties"]["state"] == "blocked",
        )
        s.measure(
            rows["token check of a blocked user"],
            lambda: s.request("GET", "/me", Authorization=f"SharedAccessSignature {bob_token}"),
            lambda r: r.status_code == 401,
        )
        s.measure(
            rows["delete"],
            lambda: api.delete("/users/carl", headers={"If-Match": "*"}),
            lambda r: r.status == 204,
        )
        s.measure(
            rows["send reset"],
            lambda: api.call("POST", "/users/ada/confirmations/password/send"),
            lambda r: r.status == 204,
        )
        reset_token = s.token_in_mail("ada@example.com", "/confirm-v2/password")
        s.measure(
            rows["reset"],
            lambda: s.request(
                "POST", "/confirm-v2/password", {"token": reset_token, "password": NEW_PASSWORD}
            ),
            lambda r: r.status_code == 200,
        )
        s.measure(
            rows["sign-in"],
            lambda: s.request(
                "POST", "/signin", {"email": "ada@example.com", "password": NEW_PASSWORD}
            ),
            lambda r: r.status_code == 200,
        )
        subscription = rows["subscription-key check"]
        try:
            s.measure(subscription, _key_check(api), lambda allowed: allowed is True)
        except _NotBuilt as exc:
            s.results[subscription.name] = {"not_built": str(exc), "minimum": 2}

        sweep_row = ROWS[-1]
        for i in range(EXPIRED_INVITES):
            api.put(f"/users/old{i}", {"properties": {**invited, "email": f"old{i}@example.com"}})
        clock.advance(hours=25)
        for i in range(LIVE_INVITES):
            api.put(f"/users/new{i}", {"properties": {**invited, "email": f"new{i}@example.com"}})
        clock.advance(hours=25)
        s.measure(sweep_row, lambda: services().sweep.run(), lambda r: r.expired == EXPIRED_INVITES)
        return {"rows": [{"operation": r.name, **s.results[r.name]} for r in ROWS]}


class _NotBuilt(Exception):
    pass


def _key_check(api: Any) -> Callable[[], bool]:
    """The API Gateway authorizer with an active key of an active owner (if it exists yet)."""
    try:
        from chalicelib.api import authorizer
    except ImportError as exc:
        raise _NotBuilt(f"no subscription-key authorizer: {exc}") from None
    api.create_user("dev", "dev@example.com")
    product = {"properties": {"displayName": "Starter", "state": "published"}}
    if api.put("/products/starter", product).status != 201:
        raise _NotBuilt("PUT /products/{id} does not create a product")
    body = {
        "properties": {"ownerId": "/users/dev", "scope": "/products/starter", "displayName": "s"}
    }
    if api.put("/subscriptions/sub1", body).status != 201:
        raise _NotBuilt("PUT /subscriptions/{id} does not create a subscription")
    key = api.call("POST", "/subscriptions/sub1/listSecrets").json["primaryKey"]
    event = {
        "type": "REQUEST",
        "methodArn": "arn:aws:execute-api:us-east-1:123456789012:abcdef1234/api/GET/things",
        "headers": {"Ocp-Apim-Subscription-Key": key},
        "queryStringParameters": {},
        "stageVariables": {"apimProductId": "starter"},
    }

    def allowed() -> bool:
        policy = authorizer.authorize(event)
        return policy["policyDocument"]["Statement"][0]["Effect"] == "Allow"

    return allowed


def main() -> None:
    emit(run())


if __name__ == "__main__":
    main()
