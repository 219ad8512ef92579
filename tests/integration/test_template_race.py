"""Over real HTTP: ten admins save one email template at once, without If-Match; all succeed."""

import threading

import pytest
import requests

pytestmark = pytest.mark.integration

API = {"api-version": "2024-05-01"}
RACERS = 10
TEMPLATE = "/templates/inviteUserNotificationMessage"


def test_ten_unconditional_saves_of_one_template_all_succeed(live_server):
    barrier = threading.Barrier(RACERS)
    replies: dict[int, requests.Response] = {}
    lock = threading.Lock()

    def save(n: int) -> None:
        body = {
            "properties": {
                "subject": f"Join us, take {n}",
                "body": f"<p>Take {n}: <a href='{{{{ ConfirmUrl }}}}'>accept</a></p>",
            }
        }
        barrier.wait(timeout=30)
        reply = requests.put(
            live_server.url(TEMPLATE),
            params=API,
            headers=live_server.headers,
            json=body,
            timeout=60,
        )
        with lock:
            replies[n] = reply

    threads = [threading.Thread(target=save, args=(n,)) for n in range(RACERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    statuses = sorted(r.status_code for r in replies.values())
    assert all(s in (200, 201) for s in statuses), [r.text for r in replies.values()]
    # Exactly one save found the default template; every other one replaced a saved one.
    assert statuses.count(201) == 1
    final = requests.get(
        live_server.url(TEMPLATE), params=API, headers=live_server.headers, timeout=10
    ).json()
    assert final["properties"]["subject"] in {f"Join us, take {n}" for n in range(RACERS)}
