"""Over real HTTP: one email, one account, however many sign-ups race for it; and the auth forms."""

from __future__ import annotations

import random
import threading
import uuid

import pytest
import requests

pytestmark = pytest.mark.integration

API = {"api-version": "2024-05-01"}
RACERS = 30


def _user_body(email: str) -> dict:
    return {"properties": {"email": email, "firstName": "Race", "lastName": "Runner"}}


def _random_case(text: str, rng: random.Random) -> str:
    return "".join(c.upper() if rng.random() < 0.5 else c.lower() for c in text)


def _spellings(email: str, count: int) -> list[str]:
    """``count`` different letter-case spellings of ``email`` (the first is all lower case)."""
    rng = random.Random(email)
    spellings = [email, email.upper()]
    while len(spellings) < count:
        candidate = _random_case(email, rng)
        if candidate not in spellings:
            spellings.append(candidate)
    return spellings


def test_racing_signups_with_one_email_in_different_cases_create_exactly_one_user(live_server):
    email = f"race-{uuid.uuid4().hex}@example.com"
    attempts = [(f"race-{uuid.uuid4().hex}", e) for e in _spellings(email, RACERS)]
    barrier = threading.Barrier(RACERS)
    results: dict[str, requests.Response | BaseException] = {}

    def sign_up(user_id: str, spelling: str) -> None:
        barrier.wait(timeout=30)
        # A new connection each, opened at the same instant as the 29 others (none in advance).
        try:
            results[user_id] = requests.put(
                live_server.url(f"/users/{user_id}"),
                params=API,
                json=_user_body(spelling),
                headers=live_server.headers,
                timeout=30,
            )
        except requests.RequestException as exc:
            results[user_id] = exc

    threads = [threading.Thread(target=sign_up, args=attempt) for attempt in attempts]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    failures = {uid: r for uid, r in results.items() if isinstance(r, BaseException)}
    assert not failures, f"requests that got no answer: {failures}"
    assert len(results) == RACERS
    statuses = sorted(r.status_code for r in results.values())
    assert statuses == [201] + [409] * (RACERS - 1), {
        uid: (r.status_code, r.text)
        for uid, r in results.items()
        if r.status_code not in (201, 409)
    }

    winner_id = next(uid for uid, r in results.items() if r.status_code == 201)
    winner = results[winner_id].json()
    assert winner["name"] == winner_id
    assert winner["properties"]["email"].lower() == email
    for response in results.values():
        if response.status_code == 409:
            error = response.json()["error"]
            assert error["code"] == "Conflict"
            assert error["message"]

    listed = requests.get(
        live_server.url("/users"),
        params={**API, "$filter": f"email eq '{email}'"},
        headers=live_server.headers,
        timeout=10,
    )
    assert listed.status_code == 200
    assert [u["name"] for u in listed.json()["value"]] == [winner_id]

    # Every loser's id stayed free: its PUT created nothing.
    for uid, response in results.items():
        if response.status_code == 409:
            missing = requests.get(
                live_server.url(f"/users/{uid}"),
                params=API,
                headers=live_server.headers,
                timeout=10,
            )
            assert missing.status_code == 404, (uid, response.text, missing.text)


def test_the_bearer_form_of_the_token_is_accepted(live_server):
    signed = live_server.token.removeprefix("SharedAccessSignature ")
    response = requests.get(
        live_server.url("/users"),
        params={**API, "$top": "1"},
        headers={"Authorization": f"Bearer {signed}"},
        timeout=10,
    )
    assert response.status_code == 200
    assert isinstance(response.json()["value"], list)


def test_a_forged_token_is_rejected_with_apim_error_body(live_server):
    signed = live_server.token.removeprefix("SharedAccessSignature ")
    forged = signed[: signed.index("&sn=")] + "&sn=" + "A" * 86 + "=="
    for scheme in ("SharedAccessSignature", "Bearer"):
        response = requests.get(
            live_server.url("/users"),
            params=API,
            headers={"Authorization": f"{scheme} {forged}"},
            timeout=10,
        )
        assert response.status_code == 401, scheme
        assert response.json()["error"]["code"] == "Unauthorized"
        assert response.json()["error"]["message"]
