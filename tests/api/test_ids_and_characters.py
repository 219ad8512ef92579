"""Ids and names: what works end to end, and what is refused at creation (400)."""

import json
from urllib.parse import quote

import pytest

from tests.api.test_signin_and_reset import sign_in_form
from tests.support import error_of

PASSWORD = "a long enough passphrase"
IF_ANY = {"If-Match": "*"}


def put_user(api, user_id, **props):
    properties = {"email": "dev@example.com", "firstName": "Dee", "lastName": "Veloper", **props}
    return api.put(f"/users/{quote(user_id, safe='')}", {"properties": properties})


def refused(reply, target):
    assert reply.status == 400, reply.body
    error = error_of(reply)
    assert target in [d["target"] for d in error["details"]], error
    return error


def me(client, **headers):
    reply = client.http.get("/me", headers=headers)
    return reply.status_code, json.loads(reply.body or b"{}")


@pytest.mark.parametrize(
    "user_id", ["a b", "o'neil", "a,b", "100%", "a;b", 'say "hi"', "josé", "ünï cødé", "dev"]
)
def test_an_id_with_any_allowed_character_signs_in_and_its_token_opens_me(api, client, user_id):
    assert put_user(api, user_id, password=PASSWORD).status == 201
    reply = client.http.post(
        "/signin",
        headers={"Content-Type": "application/json"},
        body=json.dumps({"email": "dev@example.com", "password": PASSWORD}),
    )
    assert reply.status_code == 200, reply.body
    token = json.loads(reply.body)["value"]
    for authorization in (
        f"SharedAccessSignature {token}",
        f"Bearer {token}",
        f'SharedAccessSignature token="{token}",refresh="true"',
    ):
        status, body = me(client, Authorization=authorization)
        assert status == 200, (authorization, body)
        assert body["name"] == user_id
    # The HTML form's session cookie carries the same token.
    form = sign_in_form(client, {"email": "dev@example.com", "password": PASSWORD})
    cookie = form.headers["Set-Cookie"].split(";")[0]
    status, body = me(client, Cookie=cookie)
    assert status == 200 and body["name"] == user_id


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("firstName", "Dee\r\nBcc: victim@example.com"),
        ("firstName", "Dee\nVeloper"),
        ("lastName", "Velo\x00per"),
        ("lastName", "Veloper\x85"),
        ("firstName", "Dee\u2028"),
        ("lastName", "\u202erepoleveD"),
        ("firstName", "D\u2066ee"),
    ],
)
def test_names_with_line_breaks_nul_or_direction_overrides_are_refused(api, field, value):
    refused(put_user(api, "dev", **{field: value}), field)
    assert api.get("/users/dev").status == 404
    assert put_user(api, "dev").status == 201
    refused(api.patch("/users/dev", {"properties": {field: value}}, headers=IF_ANY), field)


def test_names_in_any_script_are_fine(api):
    reply = put_user(api, "dev", firstName="محمد", lastName="Zoë O'Brien-Łukasz 李")
    assert reply.status == 201, reply.body
    # Persian writes some words with a zero-width non-joiner (U+200C).
    persian = "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645"
    assert put_user(api, "dev2", email="d2@example.com", firstName=persian).status == 201


@pytest.mark.parametrize(
    "user_id",
    [
        "admin\u202egnp.exe",
        "\u202eadmin",
        "ad\u200bmin",
        "ad\u2066min",
        "de\u2028v",
        "de\x85v",
        "dev\ufeff",
    ],
)
def test_ids_with_invisible_or_direction_characters_are_refused(api, user_id):
    refused(put_user(api, user_id), "userId")


@pytest.mark.parametrize("user_id", [".", ".."])
def test_dot_segments_are_refused_as_ids(api, user_id):
    # A URL cannot carry them: clients and browsers resolve /users/.. to the parent.
    refused(api.put(f"/users/{user_id.replace('.', '%2E')}", {"properties": {}}), "userId")
    assert put_user(api, "...").status == 201
    assert put_user(api, ".dev", email="d2@example.com").status == 201


def test_group_ids_follow_the_same_rules(api):
    for group_id in ("ad\u202emins", "..", "a\u200bb"):
        reply = api.put(
            f"/groups/{quote(group_id, safe='').replace('.', '%2E')}",
            {"properties": {"displayName": "Admins"}},
        )
        refused(reply, "groupId")


@pytest.mark.parametrize("email", ["dév@example.com", "用户@example.com"])
def test_a_non_ascii_local_part_is_refused_since_it_can_never_be_sent(api, email):
    error = refused(put_user(api, "dev", email=email), "email")
    assert "before the @" in " ".join(d["message"] for d in error["details"])
    assert put_user(api, "dev").status == 201
    refused(api.patch("/users/dev", {"properties": {"email": email}}, headers=IF_ANY), "email")


def test_a_non_ascii_domain_is_fine(api):
    reply = put_user(api, "dev", email="dev@bücher.example")
    assert reply.status == 201, reply.body
