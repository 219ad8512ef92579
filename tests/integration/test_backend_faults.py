"""Over real HTTP, the backend failing around a commit: a committed change is reported done."""

import uuid

import pytest
import requests

from tests.live_stack import live_stack

pytestmark = pytest.mark.integration

API = {"api-version": "2024-05-01"}


@pytest.fixture(scope="module")
def faulty(tmp_path_factory):
    with live_stack(tmp_path_factory.mktemp("backend-faults"), fault_proxy=True) as server:
        yield server


@pytest.fixture
def proxy(faulty):
    faulty.proxy.mode = "pass"
    yield faulty.proxy
    faulty.proxy.mode = "pass"


def invite(server, user_id: str) -> requests.Response:
    return requests.put(
        server.url(f"/users/{user_id}"),
        params=API,
        headers=server.headers,
        json={
            "properties": {
                "email": f"{user_id}@example.com",
                "firstName": "Lost",
                "lastName": "Backend",
                "confirmation": "invite",
            }
        },
        timeout=120,
    )


def test_an_invite_whose_backend_is_lost_right_after_the_commit_answers_its_success(faulty, proxy):
    user_id = f"lost-{uuid.uuid4().hex[:10]}"
    proxy.mode = "lose_after_commit"
    reply = invite(faulty, user_id)
    assert "DynamoDB_20120810.TransactWriteItems" in proxy.targets("200")
    assert proxy.targets("refused") or proxy.mode == "refuse"
    assert reply.status_code == 201, reply.text
    assert reply.json()["properties"]["state"] == "pending"
    proxy.mode = "pass"
    # Everything the commit wrote is there; the email waits for the relay or the sweep.
    got = requests.get(
        faulty.url(f"/users/{user_id}"), params=API, headers=faulty.headers, timeout=30
    )
    assert got.status_code == 200
    views = requests.get(
        faulty.url(f"/users/{user_id}/invitations"), params=API, headers=faulty.headers, timeout=30
    ).json()["value"]
    assert [v["state"] for v in views] == ["pending"]


def test_an_unreachable_backend_is_a_clean_503_and_changes_nothing(faulty, proxy):
    user_id = f"down-{uuid.uuid4().hex[:10]}"
    proxy.mode = "refuse"
    reply = invite(faulty, user_id)
    assert reply.status_code == 503, reply.text
    assert reply.json()["error"]["code"]
    proxy.mode = "pass"
    got = requests.get(
        faulty.url(f"/users/{user_id}"), params=API, headers=faulty.headers, timeout=30
    )
    assert got.status_code == 404
