"""Over real HTTP: 20 developers' browsers POST the same invitation link; exactly one wins."""

import re
import threading
import uuid
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

pytestmark = pytest.mark.integration

API = {"api-version": "2024-05-01"}
RACERS = 20


def invitation_link(live_server, email: str) -> str:
    [message] = live_server.mail_to(email)
    text = message.get_body(("plain",)).get_content()
    return next(u for u in re.findall(r"https?://\S+", text) if "/confirm/invitation" in u)


def test_twenty_posts_of_one_token_activate_the_account_once(live_server):
    user_id = f"inv-{uuid.uuid4().hex[:12]}"
    email = f"{user_id}@example.com"
    created = requests.put(
        live_server.url(f"/users/{user_id}"),
        params=API,
        headers=live_server.headers,
        json={
            "properties": {
                "email": email,
                "firstName": "Race",
                "lastName": "Winner",
                "confirmation": "invite",
            }
        },
        timeout=10,
    )
    assert created.status_code == 201, created.text
    link = invitation_link(live_server, email)
    assert link.startswith(live_server.base_url + "/confirm/invitation?token=")
    token = parse_qs(urlsplit(link).query)["token"][0]

    sessions = []
    for _ in range(RACERS):
        session = requests.Session()
        # Each browser opens the page first (a GET never consumes the token).
        page = session.get(link, timeout=10)
        assert page.status_code == 200
        assert "Race" in page.text
        sessions.append(session)
    barrier = threading.Barrier(RACERS)
    statuses: list[int] = []
    lock = threading.Lock()

    def submit(session: requests.Session) -> None:
        barrier.wait(timeout=30)
        reply = session.post(
            live_server.base_url + "/confirm/invitation",
            data={"token": token, "password": "the winner's passphrase"},
            timeout=30,
        )
        with lock:
            statuses.append(reply.status_code)

    threads = [threading.Thread(target=submit, args=(s,)) for s in sessions]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert sorted(statuses) == [200] + [410] * (RACERS - 1)
    user = requests.get(
        live_server.url(f"/users/{user_id}"), params=API, headers=live_server.headers, timeout=10
    )
    assert user.json()["properties"]["state"] == "active"
    welcome = live_server.mail_to(email)[-1]
    assert "Welcome" in str(welcome["Subject"])
