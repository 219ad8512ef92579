"""The User operations of APIM's contract, through chalice's test client on moto.

Over HTTP too (``wire``): the ETag and If-Match headers, HEAD and 204 answers without a body.
"""

import re

import pytest

from tests.support import error_of

USER_TYPE = "Microsoft.ApiManagement/service/users"


def props(**overrides):
    base = {"email": "grace@example.com", "firstName": "Grace", "lastName": "Hopper"}
    base.update(overrides)
    return {"properties": base}


@pytest.mark.wire
def test_create_answers_201_with_the_user_contract_and_an_etag(api):
    reply = api.put("/users/grace", props(note="admiral"))
    assert reply.status == 201
    body = reply.json
    assert body["id"] == f"{api.base}/users/grace"
    assert body["type"] == USER_TYPE
    assert body["name"] == "grace"
    p = body["properties"]
    assert p["email"] == "grace@example.com"
    assert (p["firstName"], p["lastName"], p["note"]) == ("Grace", "Hopper", "admiral")
    assert p["state"] == "active"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", p["registrationDate"])
    assert p["identities"] == [{"provider": "Basic", "id": "grace@example.com"}]
    assert reply.etag and reply.etag.startswith('"')
    assert "password" not in reply.body.decode().lower()


def test_new_user_is_in_the_developers_group(api):
    api.create_user("dev1")
    groups = api.get("/users/dev1/groups").json["value"]
    assert [g["name"] for g in groups] == ["developers"]
    assert groups[0]["properties"]["builtIn"] is True
    assert groups[0]["type"] == "Microsoft.ApiManagement/service/users/groups"


def test_put_on_existing_user_replaces_it_with_200_and_a_new_etag(api):
    first = api.create_user("grace", note="kept")
    reply = api.put("/users/grace", props(firstName="Amazing"))
    assert reply.status == 200
    assert reply.json["properties"]["firstName"] == "Amazing"
    assert reply.json["properties"]["note"] == "kept"
    assert reply.etag != first.etag
    assert (
        reply.json["properties"]["registrationDate"] == first.json["properties"]["registrationDate"]
    )


def test_put_with_stale_if_match_is_412_and_changes_nothing(api):
    first = api.create_user("grace")
    api.put("/users/grace", props(firstName="Second"))
    stale = api.put("/users/grace", props(firstName="Third"), headers={"If-Match": first.etag})
    assert stale.status == 412
    assert error_of(stale)["code"] == "PreconditionFailed"
    assert api.get("/users/grace").json["properties"]["firstName"] == "Second"


def test_put_with_current_if_match_replaces(api):
    first = api.create_user("grace")
    reply = api.put("/users/grace", props(lastName="H."), headers={"If-Match": first.etag})
    assert reply.status == 200
    assert reply.json["properties"]["lastName"] == "H."


def test_put_with_if_match_on_a_missing_user_is_412(api):
    reply = api.put("/users/ghost", props(), headers={"If-Match": "*"})
    assert reply.status == 412
    assert api.get("/users/ghost").status == 404


@pytest.mark.parametrize("email", ["GRACE@example.com", "grace@EXAMPLE.COM", "Grace@Example.Com"])
def test_same_email_in_any_letter_case_is_409(api, email):
    api.create_user("grace", "grace@example.com")
    reply = api.put("/users/other", props(email=email))
    assert reply.status == 409
    assert error_of(reply)["code"] == "Conflict"
    assert api.get("/users/other").status == 404


def test_email_keeps_the_case_it_was_typed_in(api):
    reply = api.create_user("mixed", "Mixed.Case@Example.com")
    assert reply.json["properties"]["email"] == "Mixed.Case@Example.com"


@pytest.mark.wire
def test_get_and_head(api):
    created = api.create_user("grace")
    got = api.get("/users/grace")
    assert got.status == 200
    assert got.json == created.json
    assert got.etag == created.etag
    head = api.head("/users/grace")
    assert head.status == 200
    assert head.etag == created.etag
    assert head.body == b""


@pytest.mark.wire
def test_get_and_head_of_a_missing_user_are_404(api):
    reply = api.get("/users/nobody")
    assert reply.status == 404
    assert error_of(reply)["code"] == "ResourceNotFound"
    assert api.head("/users/nobody").status == 404


def test_patch_changes_only_the_fields_sent(api):
    created = api.create_user("grace", note="n1")
    reply = api.patch(
        "/users/grace",
        {"properties": {"firstName": "G."}},
        headers={"If-Match": created.etag},
    )
    assert reply.status == 200
    p = reply.json["properties"]
    assert (p["firstName"], p["lastName"], p["note"], p["email"]) == (
        "G.",
        "Lovelace",
        "n1",
        "grace@example.com",
    )
    assert reply.etag != created.etag
    assert api.get("/users/grace").json == reply.json


def test_patch_requires_if_match(api):
    api.create_user("grace")
    reply = api.patch("/users/grace", {"properties": {"note": "x"}})
    assert reply.status == 400
    assert error_of(reply)["details"][0]["target"] == "If-Match"


def test_patch_with_stale_if_match_is_412_and_changes_nothing(api):
    created = api.create_user("grace")
    api.patch("/users/grace", {"properties": {"note": "first"}}, headers={"If-Match": "*"})
    reply = api.patch(
        "/users/grace", {"properties": {"note": "second"}}, headers={"If-Match": created.etag}
    )
    assert reply.status == 412
    assert api.get("/users/grace").json["properties"]["note"] == "first"


@pytest.mark.wire
@pytest.mark.parametrize("if_match", ["garbage", '"AAAAAAAAAAE="', 'W/"x"'])
def test_patch_with_an_if_match_that_is_no_current_etag_is_412(api, if_match):
    api.create_user("grace")
    reply = api.patch("/users/grace", {"properties": {"note": "x"}}, headers={"If-Match": if_match})
    assert reply.status == 412


@pytest.mark.wire
def test_patch_accepts_unquoted_etag(api):
    created = api.create_user("grace")
    unquoted = created.etag.strip('"')
    reply = api.patch("/users/grace", {"properties": {"note": "x"}}, headers={"If-Match": unquoted})
    assert reply.status == 200


def test_block_and_activate(api):
    api.create_user("grace")
    blocked = api.patch(
        "/users/grace", {"properties": {"state": "blocked"}}, headers={"If-Match": "*"}
    )
    assert blocked.json["properties"]["state"] == "blocked"
    assert api.get("/users/grace").json["properties"]["state"] == "blocked"
    active = api.patch(
        "/users/grace", {"properties": {"state": "active"}}, headers={"If-Match": "*"}
    )
    assert active.json["properties"]["state"] == "active"


def test_patch_email_moves_uniqueness_to_the_new_address(api):
    api.create_user("grace", "old@example.com")
    api.create_user("other", "taken@example.com")
    clash = api.patch(
        "/users/grace", {"properties": {"email": "TAKEN@example.com"}}, headers={"If-Match": "*"}
    )
    assert clash.status == 409
    assert api.get("/users/grace").json["properties"]["email"] == "old@example.com"
    moved = api.patch(
        "/users/grace", {"properties": {"email": "new@example.com"}}, headers={"If-Match": "*"}
    )
    assert moved.status == 200
    assert moved.json["properties"]["identities"][0] == {
        "provider": "Basic",
        "id": "new@example.com",
    }
    # The old address is free again, the new one is not.
    assert api.put("/users/third", props(email="old@example.com")).status == 201
    assert api.put("/users/fourth", props(email="New@example.com")).status == 409


def test_patch_of_a_missing_user_is_404(api):
    reply = api.patch("/users/ghost", {"properties": {"note": "x"}}, headers={"If-Match": "*"})
    assert reply.status == 404


@pytest.mark.wire
def test_delete_needs_if_match_and_frees_the_email(api):
    created = api.create_user("grace")
    assert api.delete("/users/grace").status == 400
    api.patch("/users/grace", {"properties": {"note": "changed"}}, headers={"If-Match": "*"})
    stale = api.delete("/users/grace", headers={"If-Match": created.etag})
    assert stale.status == 412
    assert api.get("/users/grace").status == 200
    current = api.get("/users/grace").etag
    gone = api.delete(
        "/users/grace?deleteSubscriptions=true&notify=false&appType=developerPortal",
        headers={"If-Match": current},
    )
    assert gone.status == 204
    assert gone.body == b""
    assert api.get("/users/grace").status == 404
    assert api.put("/users/again", props()).status == 201


def test_delete_of_a_missing_user_is_404(api):
    assert api.delete("/users/ghost", headers={"If-Match": "*"}).status == 404


def test_etag_of_a_deleted_user_does_not_match_its_successor(api):
    old = api.create_user("grace")
    api.delete("/users/grace", headers={"If-Match": "*"})
    api.create_user("grace")
    reply = api.patch("/users/grace", {"properties": {"note": "x"}}, headers={"If-Match": old.etag})
    assert reply.status == 412


def test_identities(api):
    api.create_user("grace", "grace@example.com")
    body = api.get("/users/grace/identities").json
    assert body["value"] == [{"provider": "Basic", "id": "grace@example.com"}]
    assert body["count"] == 1
    assert api.get("/users/ghost/identities").status == 404


def test_created_with_given_state_and_identities(api):
    reply = api.put(
        "/users/b",
        props(
            email="b@example.com",
            state="blocked",
            identities=[{"provider": "Microsoft", "id": "oid-1"}],
            appType="developerPortal",
        ),
    )
    assert reply.status == 201
    p = reply.json["properties"]
    assert p["state"] == "blocked"
    assert p["identities"] == [
        {"provider": "Basic", "id": "b@example.com"},
        {"provider": "Microsoft", "id": "oid-1"},
    ]


def test_unknown_fields_are_ignored(api):
    reply = api.put(
        "/users/grace", {"properties": {**props()["properties"], "shoeSize": 9}, "x": 1}
    )
    assert reply.status == 201
    assert "shoeSize" not in reply.json["properties"]
