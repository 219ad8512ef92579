"""Errors in APIM's body for every failure; management authentication; input validation."""

import json

import pytest

from chalicelib.keys import forget_cached_keys
from tests.support import admin_token, error_of


@pytest.mark.wire
def test_unknown_route_is_404_with_error_body(api):
    # "/" is the developer portal's home (a page): tests/api/test_portal_home.py.
    for path in ["/nothing", "/a/b/c/d/e/f/g/h/i/j"]:
        reply = api.get(path, absolute=True)
        assert reply.status == 404
        assert error_of(reply)["code"] == "ResourceNotFound"


def test_unknown_sub_resource_is_404(api):
    reply = api.get("/users/u1/unknown")
    assert reply.status == 404
    assert error_of(reply)["code"] == "ResourceNotFound"


@pytest.mark.wire
def test_wrong_method_is_405_with_error_body(api):
    api.create_user("u1")
    for method, path in [("POST", "/users/u1"), ("DELETE", "/users"), ("PUT", "/users/u1/groups")]:
        reply = api.call(method, path)
        assert reply.status == 405
        assert error_of(reply)["code"] == "MethodNotAllowed"


@pytest.mark.wire
def test_api_version_is_required(api):
    reply = api.get("/users", api_version=None)
    assert reply.status == 400
    assert error_of(reply)["code"] == "MissingApiVersionParameter"


@pytest.mark.parametrize("version", ["2022-08-01", "2024-05-01"])
def test_supported_api_versions(api, version):
    assert api.get("/users", api_version=version).status == 200


def test_unknown_api_version_is_400(api):
    reply = api.get("/users", api_version="1999-01-01")
    assert reply.status == 400
    error = error_of(reply)
    assert error["code"] == "InvalidApiVersionParameter"
    assert "2024-05-01" in error["message"]


@pytest.mark.parametrize(
    "path",
    [
        "/subscriptions/11111111-1111-1111-1111-111111111111/resourceGroups/local"
        "/providers/Microsoft.ApiManagement/service/local/users",
        "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/other"
        "/providers/Microsoft.ApiManagement/service/local/users",
        "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/local"
        "/providers/Microsoft.ApiManagement/service/other/users",
    ],
)
def test_another_instance_is_404(api, path):
    reply = api.get(path, absolute=True)
    assert reply.status == 404
    assert error_of(reply)["code"] == "ResourceNotFound"


def test_instance_names_compare_case_insensitively(api):
    path = api.base.replace("resourceGroups/local", "resourceGroups/LOCAL") + "/users"
    assert api.get(path, absolute=True).status == 200


@pytest.mark.wire
@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "",
        "Basic dXNlcjpwYXNz",
        "SharedAccessSignature garbage",
        "SharedAccessSignature uid=integration&ex=2099-01-01T00:00:00.0000000Z&sn=Zm9yZ2Vk",
        admin_token(key="not-our-key"),
        admin_token(hours=-1),
    ],
    ids=["missing", "empty", "basic", "garbage", "forged", "wrong-key", "expired"],
)
def test_bad_credentials_are_401_with_error_body(api, authorization):
    reply = api.get("/users", headers={"Authorization": authorization})
    assert reply.status == 401
    assert error_of(reply)["code"] == "Unauthorized"


def test_auth_is_checked_before_anything_else(api):
    reply = api.get("/users", headers={"Authorization": None}, api_version=None)
    assert reply.status == 401


def test_token_of_another_identifier_is_401(api):
    from datetime import UTC, datetime, timedelta

    from chalicelib.domain.sas import management_token

    token = management_token("someone", datetime.now(UTC) + timedelta(hours=1), "test-primary-key")
    reply = api.get("/users", headers={"Authorization": f"SharedAccessSignature {token}"})
    assert reply.status == 401


@pytest.mark.wire
def test_bearer_form_and_secondary_key_and_compact_form_are_accepted(api):
    from datetime import UTC, datetime, timedelta

    from chalicelib.domain.sas import compact_token

    bearer = "Bearer " + admin_token().removeprefix("SharedAccessSignature ")
    assert api.get("/users", headers={"Authorization": bearer}).status == 200
    secondary = admin_token(key="test-secondary-key")
    assert api.get("/users", headers={"Authorization": secondary}).status == 200
    compact = compact_token(
        "integration", datetime.now(UTC) + timedelta(hours=1), "test-primary-key"
    )
    reply = api.get("/users", headers={"Authorization": f"SharedAccessSignature {compact}"})
    assert reply.status == 200


@pytest.mark.moto
def test_keys_come_from_ssm_when_a_parameter_is_configured(api, monkeypatch, wired):
    """SSM answers through botocore's Stubber on the service's own client: moto's SSM costs a
    second and a half to load, and every test over HTTP already reads the keys from the live
    stack's SSM (tests/conftest.py: ``live_server``)."""
    from botocore.stub import Stubber

    from chalicelib.keys import _ssm_client

    def keys_stored(primary, secondary):
        value = json.dumps({"primary": primary, "secondary": secondary})
        answer = {"Parameter": {"Name": "/apim/keys", "Type": "SecureString", "Value": value}}
        asked = {"Name": "/apim/keys", "WithDecryption": True}
        ssm.add_response("get_parameter", answer, asked)

    monkeypatch.setenv("APIM_KEYS_PARAMETER", "/apim/keys")
    wired.reload()
    with Stubber(_ssm_client("us-east-1")) as ssm:
        keys_stored("ssm-primary", "ssm-secondary")  # read once, then cached
        assert (
            api.get("/users", headers={"Authorization": admin_token("ssm-secondary")}).status == 200
        )
        assert (
            api.get("/users", headers={"Authorization": admin_token("ssm-primary")}).status == 200
        )
        assert api.get("/users", headers={"Authorization": admin_token()}).status == 401
        # Rotation: a new secondary is picked up once the cached pair is refreshed.
        keys_stored("ssm-primary", "rotated")
        forget_cached_keys()
        assert api.get("/users", headers={"Authorization": admin_token("rotated")}).status == 200
        assert (
            api.get("/users", headers={"Authorization": admin_token("ssm-secondary")}).status == 401
        )
        ssm.assert_no_pending_responses()


def test_every_offending_field_is_reported_at_once(api):
    reply = api.put(
        "/users/u1",
        {
            "properties": {
                "email": "not-an-email",
                "firstName": "",
                "lastName": "x" * 101,
                "note": "n" * 1001,
                "state": "sleeping",
                "password": "short",
                "confirmation": "maybe",
                "appType": 3,
                "identities": "Basic",
            }
        },
    )
    assert reply.status == 400
    error = error_of(reply)
    assert error["code"] == "ValidationError"
    targets = {d["target"] for d in error["details"]}
    assert targets == {
        "email",
        "firstName",
        "lastName",
        "note",
        "state",
        "password",
        "confirmation",
        "appType",
        "identities",
    }
    assert api.get("/users/u1").status == 404


def test_required_fields(api):
    reply = api.put("/users/u1", {"properties": {}})
    targets = {d["target"] for d in error_of(reply)["details"]}
    assert targets == {"email", "firstName", "lastName"}


@pytest.mark.wire
@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b"[1, 2]",
        b'{"properties": []}',
        b'"text"',
        b'{"properties": {"email": 5, "firstName": true, "lastName": null}}',
        b"\xff\xfe",
    ],
)
def test_malformed_bodies_are_400_never_500(api, body):
    reply = api.put("/users/u1", raw=body)
    assert reply.status == 400
    assert error_of(reply)["code"] == "ValidationError"


@pytest.mark.wire
def test_huge_body_is_400(api):
    body = {
        "properties": {
            "email": "a@example.com",
            "firstName": "a",
            "lastName": "b",
            "note": "x" * 200_000,
        }
    }
    reply = api.put("/users/u1", body)
    assert reply.status == 400
    assert "too large" in error_of(reply)["message"]


@pytest.mark.wire
@pytest.mark.parametrize(
    "user_id",
    ["a" * 81, "a*b", "a%23b", "a&b", "a+b", "a:b", "a<b", "a>b", "a%3Fb", "%20a", "a%2Fb"],
)
def test_invalid_ids_are_400(api, user_id):
    reply = api.put(
        f"/users/{user_id}",
        {"properties": {"email": "a@example.com", "firstName": "a", "lastName": "b"}},
    )
    assert reply.status == 400
    assert error_of(reply)["details"][0]["target"] == "userId"


@pytest.mark.wire
def test_percent_encoded_ids_are_decoded(api):
    api.create_user("a%20b")
    reply = api.get("/users/a%20b")
    assert reply.json["name"] == "a b"


def test_id_of_80_characters_is_accepted(api):
    assert api.create_user("a" * 80).status == 201


def test_cannot_set_state_deleted(api):
    reply = api.put(
        "/users/u1",
        {
            "properties": {
                "email": "a@example.com",
                "firstName": "a",
                "lastName": "b",
                "state": "deleted",
            }
        },
    )
    assert reply.status == 400
    assert error_of(reply)["details"][0]["target"] == "state"


def test_bad_boolean_query_parameter_is_400(api):
    reply = api.put(
        "/users/u1?notify=yes",
        {"properties": {"email": "a@example.com", "firstName": "a", "lastName": "b"}},
    )
    assert reply.status == 400
    assert error_of(reply)["details"][0]["target"] == "notify"
