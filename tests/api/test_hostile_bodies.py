"""Hostile request bodies get 400 with APIM's error body (or an HTML page), never a 500."""

import json

import pytest

from tests.support import error_of

NESTED = b"[" * 20000 + b"]" * 20000
PUBLIC_JSON_ROUTES = [
    "/signin",
    "/password-reset",
    "/confirm/invitation",
    "/confirm-v2/identities/basic/signup",
    "/confirm-v2/password",
]
PASSWORD = "a long enough passphrase"


class Reply:
    def __init__(self, response):
        self.status = response.status_code
        self.headers = dict(response.headers)
        self.body = response.body or b""

    @property
    def json(self):
        return json.loads(self.body)


def post(client, path, body, content_type="application/json"):
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return Reply(client.http.post(path, headers={"Content-Type": content_type}, body=raw))


def validation_error(reply):
    assert reply.status == 400, reply.body
    error = error_of(reply)
    assert error["code"] == "ValidationError"
    return error


@pytest.mark.parametrize("path", PUBLIC_JSON_ROUTES)
def test_deeply_nested_json_is_a_400_on_public_routes(client, path):
    error = validation_error(post(client, path, NESTED))
    assert "nest" in error["message"]


def test_deeply_nested_json_is_a_400_on_management_routes(api):
    reply = api.put("/users/dev", raw=NESTED)
    assert "nest" in validation_error(reply)["message"]


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/signin", {"email": "dev@example.com", "password": "\ud800" + PASSWORD}),
        ("/signin", {"email": "\ud800@example.com", "password": PASSWORD}),
        ("/password-reset", {"email": "dev\udfff@example.com"}),
        ("/confirm/invitation", {"token": "\ud800", "password": PASSWORD}),
        ("/confirm/invitation", {"token": "x", "password": PASSWORD + "\ud800"}),
        ("/confirm-v2/identities/basic/signup", {"token": "\ud800"}),
        ("/confirm-v2/password", {"token": "\ud800", "password": PASSWORD}),
    ],
)
def test_a_lone_surrogate_is_a_400_on_public_routes(client, path, body):
    error = validation_error(post(client, path, body))
    assert "surrogate" in error["message"]


@pytest.mark.parametrize(
    "field",
    [
        {"email": "d\ud800v@example.com"},
        {"firstName": "D\udc00e"},
        {"lastName": "\ud800"},
        {"note": "note \ud800"},
        {"password": PASSWORD + "\ud800"},
    ],
)
def test_a_lone_surrogate_is_a_400_when_creating_a_user(api, field):
    properties = {"email": "dev@example.com", "firstName": "Dee", "lastName": "Veloper"}
    properties.update(field)
    error = validation_error(api.put("/users/dev", {"properties": properties}))
    assert "surrogate" in error["message"]
    assert api.get("/users/dev").status == 404


def test_a_surrogate_pair_is_a_character_like_any_other(api):
    # "\ud83d\ude00" in JSON is one emoji, valid UTF-8 once decoded.
    properties = {"email": "dev@example.com", "firstName": "Dee \U0001f600", "lastName": "V"}
    reply = api.put("/users/dev", {"properties": properties})
    assert reply.status == 201, reply.body
    assert reply.json["properties"]["firstName"] == "Dee \U0001f600"


@pytest.mark.parametrize(
    ("path", "status"),
    # The sign-in form without its page's token is refused before the password is read.
    [("/signin", 403), ("/confirm/invitation", 404), ("/password-reset", 202)],
)
def test_a_form_that_is_not_utf8_gets_the_pages_own_answer(client, path, status):
    form = b"email=\xed\xa0\x80%ED%A0%80&token=\xff&password=x"
    reply = post(client, path, form, "application/x-www-form-urlencoded")
    assert reply.status == status, reply.body
    assert reply.headers["Content-Type"].startswith("text/html")
