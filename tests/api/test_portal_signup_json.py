"""The sign-up page is for people: a JSON caller gets APIM's error body, never a page."""

from __future__ import annotations

import json

from chalicelib.bootstrap import services


def test_a_json_sign_up_is_an_apim_error_and_creates_nothing(client, aws):
    body = {"email": "script@example.com", "firstName": "S", "lastName": "Cript", "password": "x"}
    reply = client.http.post(
        "/signup", headers={"Content-Type": "application/json"}, body=json.dumps(body)
    )
    assert reply.status_code == 400
    assert reply.headers["Content-Type"].startswith("application/json")
    error = json.loads(reply.body)["error"]
    assert "Sign up with the portal's form" in error["message"]
    assert services().store.users.find_by_email("script@example.com") is None
