"""Logs: one JSON line per request, one per sweep run; never a password, token, key or link."""

import io
import json
import logging
from urllib.parse import urlencode

import pytest

from chalicelib.bootstrap import services
from chalicelib.logs import JsonFormatter, logger
from tests.support import mail_to


@pytest.fixture
def captured():
    """Every log record of the service and of its libraries, as the JSON lines they become."""
    sink = io.StringIO()
    handler = logging.StreamHandler(sink)
    handler.setFormatter(JsonFormatter())
    handler.setLevel(logging.DEBUG)
    ours, root = logger(), logging.getLogger()
    ours.addHandler(handler)
    root.addHandler(handler)
    before = root.level
    root.setLevel(logging.DEBUG)
    yield sink
    root.setLevel(before)
    ours.removeHandler(handler)
    root.removeHandler(handler)


def form(client, path, fields):
    return client.http.post(
        path,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        body=urlencode(fields),
    )


def test_main_flows_log_no_secret(api, client, captured, wired):
    secrets = ["first secret passphrase", "second secret passphrase", "third secret passphrase"]
    api.create_user("dev", "dev@example.com", password=secrets[0])
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
    invite = mail_to("ivy@example.com")[-1]
    form(
        client,
        "/confirm/invitation",
        {"token": invite.token("/confirm/invitation"), "password": secrets[1]},
    )
    api.call("POST", "/users/dev/confirmations/password/send")
    reset = mail_to("dev@example.com")[-1]
    form(
        client,
        "/confirm-v2/password",
        {"token": reset.token("/confirm-v2/password"), "password": secrets[2]},
    )
    signed = client.http.post(
        "/signin",
        headers={"Content-Type": "application/json"},
        body=json.dumps({"email": "dev@example.com", "password": secrets[2]}),
    )
    user_token = json.loads(signed.body)["value"]
    client.http.get("/me", headers={"Authorization": f"SharedAccessSignature {user_token}"})
    client.http.post(
        "/signin",
        headers={"Content-Type": "application/json"},
        body=json.dumps({"email": "dev@example.com", "password": "a wrong guess here"}),
    )
    api.put("/products/p", {"properties": {"displayName": "P"}})
    api.put(
        "/subscriptions/s",
        {"properties": {"scope": "/products/p", "ownerId": "/users/dev", "displayName": "S"}},
    )
    keys = api.call("POST", "/subscriptions/s/listSecrets").json
    api.call("POST", "/gateway/check", {"key": keys["primaryKey"], "productId": "p"})
    services().sweep.run()

    logs = captured.getvalue()
    lines = [json.loads(line) for line in logs.splitlines() if line.startswith("{")]
    requests = [line for line in lines if line.get("message") == "request"]
    assert len(requests) >= 12
    for line in requests:
        assert {"request_id", "route", "method", "status", "duration_ms"} <= set(line)
    assert any(line.get("actor") == "integration" for line in requests)
    assert any("sweep" in line for line in lines)
    management_signature = api.token.split("sn=")[1]
    forbidden = [
        *secrets,
        "a wrong guess here",
        invite.token("/confirm/invitation"),
        invite.link("/confirm/invitation"),
        reset.token("/confirm-v2/password"),
        user_token,
        user_token.split("&")[2],
        keys["primaryKey"],
        keys["secondaryKey"],
        management_signature,
        "$argon2id$",
    ]
    for secret in forbidden:
        assert secret not in logs, f"a secret reached the logs: {secret[:12]}..."
