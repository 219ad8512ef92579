"""Passwords on create and PATCH: policy errors, argon2id at rest, never in a response."""

import boto3
import pytest

from chalicelib.config import get_settings
from tests.support import error_of


def stored_item(user_id):
    table = boto3.resource("dynamodb").Table(get_settings().users_table)
    return table.get_item(Key={"id": user_id})["Item"]


@pytest.mark.moto
def test_password_is_stored_as_argon2id_only(api):
    secret = "a perfectly fine passphrase"
    reply = api.create_user("grace", password=secret)
    assert secret not in reply.body.decode()
    item = stored_item("grace")
    assert item["password_hash"].startswith("$argon2id$")
    assert secret not in str(item)


@pytest.mark.parametrize(
    ("password", "words"),
    [("1234567", "at least 8"), ("password1", "common"), ("grace@example.com", "email")],
)
def test_refused_password_says_why(api, password, words):
    reply = api.put(
        "/users/grace",
        {
            "properties": {
                "email": "grace@example.com",
                "firstName": "Grace",
                "lastName": "Hopper",
                "password": password,
            }
        },
    )
    assert reply.status == 400
    detail = error_of(reply)["details"][0]
    assert detail["target"] == "password"
    assert words in detail["message"]
    assert password not in reply.body.decode() or password == "grace@example.com"


@pytest.mark.moto
def test_patch_sets_a_new_password_hash(api):
    api.create_user("grace", password="first passphrase here")
    before = stored_item("grace")["password_hash"]
    reply = api.patch(
        "/users/grace",
        {"properties": {"password": "second passphrase here"}},
        headers={"If-Match": "*"},
    )
    assert reply.status == 200
    assert "passphrase" not in reply.body.decode()
    assert stored_item("grace")["password_hash"] != before


def test_patch_password_is_checked_against_the_users_own_name(api):
    api.create_user("grace", firstName="Grace", lastName="Hopper")
    reply = api.patch(
        "/users/grace", {"properties": {"password": "gracehopper"}}, headers={"If-Match": "*"}
    )
    assert reply.status == 400
    assert error_of(reply)["details"][0]["target"] == "password"


@pytest.mark.moto
def test_user_without_password_has_no_hash(api):
    api.create_user("grace")
    assert "password_hash" not in stored_item("grace")
