"""APIM's Group and GroupUser operations, through chalice's test client on moto."""

from dataclasses import replace
from datetime import UTC, datetime
from urllib.parse import parse_qs, quote, urlsplit

import pytest

from tests.support import error_of

GROUP_TYPE = "Microsoft.ApiManagement/service/groups"
BUILT_IN = ["administrators", "developers", "guests"]


def group(display_name="Partners", **props):
    return {"properties": {"displayName": display_name, **props}}


def names(reply):
    return [v["name"] for v in reply.json["value"]]


def next_page(api, reply):
    """GET the reply's nextLink (the test client wants the path, without the origin)."""
    link = urlsplit(reply.json["nextLink"])
    return api.get(f"{link.path}?{link.query}", absolute=True, api_version=None)


def follow(api, reply):
    """Every page of a collection, following nextLink."""
    pages = [reply]
    while "nextLink" in pages[-1].json:
        pages.append(next_page(api, pages[-1]))
        assert pages[-1].status == 200, pages[-1].body
    return pages


@pytest.fixture
def dynamo_calls(wired):
    """The DynamoDB operations the service makes (through PynamoDB's clients), in order."""
    from chalicelib.store.models import GroupItem, TemplateItem, UserItem

    calls = []

    def record(params, model, **kwargs):
        calls.append((model.name, params.get("TableName", ""), params.get("IndexName")))

    clients = {m._get_connection().connection.client for m in (UserItem, GroupItem, TemplateItem)}
    for client in clients:
        client.meta.events.register("before-parameter-build.dynamodb", record, "calls")
    yield calls
    for client in clients:
        client.meta.events.unregister("before-parameter-build.dynamodb", unique_id="calls")


@pytest.fixture(autouse=True)
def never_a_scan(request):
    """No request path scans: checked on every in-process test of this module."""
    callspec = getattr(request.node, "callspec", None)
    if callspec is not None and callspec.params.get("api") == "http":
        yield  # the live server's DynamoDB calls are not seen from this process
        return
    calls = request.getfixturevalue("dynamo_calls")
    yield
    assert all(op != "Scan" for op, _, _ in calls), calls


# --- built-in groups ---------------------------------------------------------------------------


def test_the_built_in_groups_are_listed_with_their_contract(api):
    reply = api.get("/groups")
    assert reply.status == 200
    assert names(reply) == BUILT_IN
    assert reply.json["count"] == 3
    developers = reply.json["value"][1]
    assert developers["id"] == f"{api.base}/groups/developers"
    assert developers["type"] == GROUP_TYPE
    props = developers["properties"]
    assert (props["displayName"], props["builtIn"], props["type"]) == ("Developers", True, "system")
    assert props["externalId"] is None


@pytest.mark.parametrize("group_id", ["administrators", "Developers", "guests"])
@pytest.mark.parametrize("method", ["PUT", "PATCH", "DELETE"])
def test_built_in_groups_cannot_be_changed_or_deleted(api, group_id, method):
    reply = api.call(method, f"/groups/{group_id}", group("Mine"), headers={"If-Match": "*"})
    assert reply.status == 405
    error = error_of(reply)
    assert error["code"] == "MethodNotAllowed"
    assert "built-in" in error["message"]
    assert api.get(f"/groups/{group_id.lower()}").json["properties"]["builtIn"] is True


@pytest.mark.wire
def test_a_built_in_group_has_a_constant_etag(api):
    first, second = api.get("/groups/guests"), api.head("/groups/guests")
    assert first.status == second.status == 200
    assert first.etag and first.etag == second.etag
    assert second.body == b""


# --- custom groups -----------------------------------------------------------------------------


def test_put_creates_a_group_with_201_and_an_etag(api):
    reply = api.put("/groups/partners", group(description="<b>Our</b> partners"))
    assert reply.status == 201
    body = reply.json
    assert body["id"] == f"{api.base}/groups/partners"
    assert (body["type"], body["name"]) == (GROUP_TYPE, "partners")
    assert body["properties"] == {
        "displayName": "Partners",
        "description": "<b>Our</b> partners",
        "builtIn": False,
        "type": "custom",
        "externalId": None,
    }
    assert reply.etag and reply.etag.startswith('"')


def test_put_on_an_existing_group_replaces_it_with_200_and_keeps_what_it_omits(api):
    created = api.put("/groups/partners", group(description="kept"))
    reply = api.put("/groups/partners", group("Partner companies"))
    assert reply.status == 200
    assert reply.json["properties"]["displayName"] == "Partner companies"
    assert reply.json["properties"]["description"] == "kept"
    assert reply.etag != created.etag
    assert api.get("/groups/partners").json == reply.json


def test_group_ids_ignore_letter_case_and_keep_the_case_they_were_created_in(api):
    api.put("/groups/Partners", group())
    got = api.get("/groups/PARTNERS")
    assert got.status == 200
    assert got.json["name"] == "Partners"
    assert api.put("/groups/partners", group("Again")).status == 200
    assert names(api.get("/groups")) == [*BUILT_IN, "Partners"]


def test_an_external_group_needs_its_external_id(api):
    aad = "aad://contoso.onmicrosoft.com/groups/0f1e2d3c"
    reply = api.put("/groups/aad", group("AAD", type="external", externalId=aad))
    assert reply.status == 201
    assert (reply.json["properties"]["type"], reply.json["properties"]["externalId"]) == (
        "external",
        aad,
    )
    missing = api.put("/groups/aad2", group("AAD", type="external"))
    assert missing.status == 400
    assert [d["target"] for d in error_of(missing)["details"]] == ["externalId"]
    custom = api.put("/groups/c", group("C", externalId=aad))
    assert custom.status == 400
    assert [d["target"] for d in error_of(custom)["details"]] == ["externalId"]


def test_a_group_that_stops_being_external_loses_its_external_id(api):
    created = api.put("/groups/aad", group("AAD", type="external", externalId="aad://x/groups/1"))
    reply = api.patch(
        "/groups/aad", {"properties": {"type": "custom"}}, headers={"If-Match": created.etag}
    )
    assert reply.status == 200
    assert (reply.json["properties"]["type"], reply.json["properties"]["externalId"]) == (
        "custom",
        None,
    )


def test_put_reports_every_invalid_field_at_once(api):
    reply = api.put(
        "/groups/bad",
        {"properties": {"displayName": "x" * 301, "description": "d" * 1001, "type": "weird"}},
    )
    assert reply.status == 400
    error = error_of(reply)
    assert error["code"] == "ValidationError"
    assert {d["target"] for d in error["details"]} == {"displayName", "description", "type"}
    assert api.get("/groups/bad").status == 404


@pytest.mark.parametrize(
    ("properties", "target"),
    [
        ({}, "displayName"),
        ({"displayName": ""}, "displayName"),
        ({"displayName": 7}, "displayName"),
        ({"displayName": "S", "type": "system"}, "type"),
        ({"displayName": "S", "externalId": ""}, "externalId"),
    ],
)
def test_put_validation(api, properties, target):
    reply = api.put("/groups/g1", {"properties": properties})
    assert reply.status == 400
    assert target in [d["target"] for d in error_of(reply)["details"]]


def test_put_needs_a_properties_object(api):
    assert api.put("/groups/g1", {"displayName": "flat"}).status == 400
    assert api.put("/groups/g1", raw=b"{not json").status == 400


@pytest.mark.wire
@pytest.mark.parametrize("group_id", ["a*b", "a:b", "a%3Cb", "x" * 257, "%20lead"])
def test_invalid_group_ids_are_refused(api, group_id):
    reply = api.put(f"/groups/{group_id}", group())
    assert reply.status == 400
    assert error_of(reply)["details"][0]["target"] == "groupId"


def test_a_group_id_of_256_characters_is_fine(api):
    assert api.put(f"/groups/{'g' * 256}", group()).status == 201


def test_put_with_if_match(api):
    first = api.put("/groups/partners", group())
    api.put("/groups/partners", group("Second"))
    stale = api.put("/groups/partners", group("Third"), headers={"If-Match": first.etag})
    assert stale.status == 412
    assert error_of(stale)["code"] == "PreconditionFailed"
    current = api.get("/groups/partners")
    assert current.json["properties"]["displayName"] == "Second"
    ok = api.put("/groups/partners", group("Third"), headers={"If-Match": current.etag})
    assert ok.status == 200
    assert api.put("/groups/ghost", group(), headers={"If-Match": "*"}).status == 412
    assert api.get("/groups/ghost").status == 404


def test_get_and_head_of_a_missing_group_are_404(api):
    reply = api.get("/groups/nobody")
    assert reply.status == 404
    assert error_of(reply)["code"] == "ResourceNotFound"
    assert api.head("/groups/nobody").status == 404


@pytest.mark.wire
def test_head_gives_the_etag_of_get(api):
    created = api.put("/groups/partners", group())
    head = api.head("/groups/partners")
    assert (head.status, head.etag, head.body) == (200, created.etag, b"")


def test_patch_changes_only_the_fields_sent_and_needs_if_match(api):
    created = api.put("/groups/partners", group(description="first"))
    missing = api.patch("/groups/partners", {"properties": {"description": "x"}})
    assert missing.status == 400
    assert error_of(missing)["details"][0]["target"] == "If-Match"
    reply = api.patch(
        "/groups/partners", {"properties": {"description": "second"}}, headers={"If-Match": "*"}
    )
    assert reply.status == 200
    assert reply.json["properties"]["displayName"] == "Partners"
    assert reply.json["properties"]["description"] == "second"
    assert reply.etag != created.etag
    stale = api.patch(
        "/groups/partners",
        {"properties": {"description": "lost"}},
        headers={"If-Match": created.etag},
    )
    assert stale.status == 412
    assert api.get("/groups/partners").json["properties"]["description"] == "second"


def test_patch_validation_and_missing_group(api):
    api.put("/groups/partners", group())
    bad = api.patch(
        "/groups/partners", {"properties": {"displayName": None}}, headers={"If-Match": "*"}
    )
    assert bad.status == 400
    too_long = api.patch(
        "/groups/partners", {"properties": {"displayName": "x" * 301}}, headers={"If-Match": "*"}
    )
    assert too_long.status == 400
    ghost = api.patch("/groups/ghost", {"properties": {}}, headers={"If-Match": "*"})
    assert ghost.status == 404


@pytest.mark.wire
def test_delete_needs_if_match_and_answers_204(api):
    created = api.put("/groups/partners", group())
    assert api.delete("/groups/partners").status == 400
    api.patch("/groups/partners", {"properties": {"description": "x"}}, headers={"If-Match": "*"})
    stale = api.delete("/groups/partners", headers={"If-Match": created.etag})
    assert stale.status == 412
    current = api.get("/groups/partners").etag
    reply = api.delete("/groups/partners", headers={"If-Match": current})
    assert (reply.status, reply.body) == (204, b"")
    assert api.get("/groups/partners").status == 404
    assert api.delete("/groups/partners", headers={"If-Match": "*"}).status == 404


# --- lists -------------------------------------------------------------------------------------


@pytest.fixture
def catalogue(api):
    api.put("/groups/aad", group("Entra", type="external", externalId="aad://t/groups/1"))
    api.put("/groups/beta", group("Beta testers", description="Early access"))
    api.put("/groups/partners", group("Partners", description="Companies we work with"))
    api.put("/groups/zeta", group("Zeta"))
    return api


def test_list_filters_reach_the_service(catalogue):
    """Every group filter rule: tests/services/test_lists.py."""
    reply = catalogue.get("/groups?$filter=" + quote("contains(description,'built-in')"))
    assert reply.status == 200, reply.body
    assert names(reply) == BUILT_IN
    by_external_id = catalogue.get("/groups?$filter=" + quote("externalId eq 'aad://t/groups/1'"))
    assert names(by_external_id) == ["aad"]


@pytest.mark.parametrize("expression", ["startswith(externalId,'aad')", "nope eq 'x'", "name eq"])
def test_list_refuses_filters_it_does_not_offer(api, expression):
    reply = api.get("/groups?$filter=" + quote(expression))
    assert reply.status == 400
    assert error_of(reply)["details"][0]["target"] == "$filter"


@pytest.mark.wire
def test_list_merges_built_in_and_custom_groups_in_id_order_and_pages(catalogue):
    everything = ["aad", "administrators", "beta", "developers", "guests", "partners", "zeta"]
    assert names(catalogue.get("/groups")) == everything
    pages = follow(catalogue, catalogue.get("/groups?$top=2"))
    assert [names(p) for p in pages] == [everything[i : i + 2] for i in range(0, 7, 2)]
    assert "count" not in pages[0].json  # given only when everything fits in one page
    skipped = catalogue.get("/groups?$top=3&$skip=2")
    assert names(skipped) == everything[2:5]
    token = parse_qs(urlsplit(skipped.json["nextLink"]).query)["$skiptoken"][0]
    assert token
    filtered = follow(catalogue, catalogue.get("/groups?$top=1&$filter=" + quote("name ne 'x'")))
    assert [n for p in filtered for n in names(p)] == everything


@pytest.mark.moto
def test_a_group_list_is_one_query(catalogue, dynamo_calls):
    dynamo_calls.clear()
    catalogue.get("/groups")
    assert [(op, index) for op, _, index in dynamo_calls] == [("Query", "by-name")]


# --- memberships -------------------------------------------------------------------------------


@pytest.fixture
def team(api):
    for uid, first in (("ada", "Ada"), ("bob", "Bob"), ("cy", "Cy")):
        api.create_user(uid, firstName=first)
    api.put("/groups/partners", group())
    return api


def test_adding_a_member_answers_201_with_the_user_then_200(team):
    added = team.put("/groups/partners/users/ada")
    assert added.status == 201
    assert added.json["name"] == "ada"
    assert added.json["type"] == "Microsoft.ApiManagement/service/users"
    assert added.json["properties"]["email"] == "ada@example.com"
    again = team.put("/groups/partners/users/ada")
    assert again.status == 200
    assert again.json == added.json


def test_head_tells_whether_a_user_is_a_member(team):
    team.put("/groups/partners/users/ada")
    member = team.head("/groups/partners/users/ada")
    assert (member.status, member.body) == (204, b"")
    assert team.head("/groups/PARTNERS/users/ada").status == 204
    assert team.head("/groups/partners/users/bob").status == 404
    assert team.head("/groups/partners/users/nobody").status == 404
    assert team.head("/groups/nogroup/users/ada").status == 404


def test_removing_a_member_answers_204_and_is_idempotent(team):
    team.put("/groups/partners/users/ada")
    reply = team.delete("/groups/partners/users/ada")
    assert (reply.status, reply.body) == (204, b"")
    assert team.head("/groups/partners/users/ada").status == 404
    assert team.delete("/groups/partners/users/ada").status == 204
    assert team.put("/groups/partners/users/ada").status == 201


def test_membership_of_an_unknown_group_or_user_is_404(team):
    for method in ("PUT", "DELETE"):
        unknown_group = team.call(method, "/groups/nogroup/users/ada")
        assert unknown_group.status == 404
        assert "nogroup" in error_of(unknown_group)["message"]
        unknown_user = team.call(method, "/groups/partners/users/nobody")
        assert unknown_user.status == 404
        assert "nobody" in error_of(unknown_user)["message"]


@pytest.mark.parametrize("group_id", BUILT_IN)
@pytest.mark.parametrize("method", ["PUT", "DELETE"])
def test_membership_of_built_in_groups_is_managed_by_the_system(team, group_id, method):
    reply = team.call(method, f"/groups/{group_id}/users/ada")
    assert reply.status == 405
    error = error_of(reply)
    assert error["code"] == "MethodNotAllowed"
    assert "managed by the system" in error["message"]


def test_every_account_is_in_developers_and_nobody_in_the_other_built_ins(team):
    assert team.head("/groups/developers/users/ada").status == 204
    assert team.head("/groups/developers/users/nobody").status == 404
    assert team.head("/groups/administrators/users/ada").status == 404
    assert team.head("/groups/guests/users/ada").status == 404
    assert names(team.get("/groups/developers/users")) == ["ada", "bob", "cy"]
    assert names(team.get("/groups/administrators/users")) == []
    assert names(team.get("/groups/guests/users")) == []


def test_a_groups_members_are_listed_in_id_order_with_filters_and_paging(team):
    for uid in ("cy", "ada", "bob"):
        team.put(f"/groups/partners/users/{uid}")
    reply = team.get("/groups/partners/users")
    assert reply.status == 200
    assert names(reply) == ["ada", "bob", "cy"]
    assert reply.json["count"] == 3
    assert reply.json["value"][0]["properties"]["firstName"] == "Ada"
    pages = follow(team, team.get("/groups/partners/users?$top=2"))
    assert [names(p) for p in pages] == [["ada", "bob"], ["cy"]]
    assert names(team.get("/groups/partners/users?$skip=1")) == ["bob", "cy"]
    by_name = team.get("/groups/partners/users?$filter=" + quote("firstName eq 'BOB'"))
    assert names(by_name) == ["bob"]
    bad = team.get("/groups/partners/users?$filter=" + quote("colour eq 'red'"))
    assert bad.status == 400
    assert team.get("/groups/nogroup/users").status == 404


@pytest.mark.moto
def test_members_are_read_with_one_query_and_one_batch_of_users(team, dynamo_calls):
    for uid in ("ada", "bob"):
        team.put(f"/groups/partners/users/{uid}")
    dynamo_calls.clear()
    team.get("/groups/partners/users")
    ops = [(op, table.rsplit("-", 1)[-1], index) for op, table, index in dynamo_calls]
    assert ops == [
        ("GetItem", "groups", None),
        ("Query", "groups", None),
        ("BatchGetItem", "", None),
    ]


def test_a_users_groups_agree_with_memberships_and_expand_groups(team):
    team.put("/groups/zeta", group("Zeta"))
    team.put("/groups/alpha", group("Alpha"))
    for gid in ("zeta", "alpha", "partners"):
        team.put(f"/groups/{gid}/users/ada")
    team.put("/groups/partners/users/bob")
    mine = team.get("/users/ada/groups")
    assert mine.status == 200
    assert names(mine) == ["alpha", "developers", "partners", "zeta"]
    assert mine.json["count"] == 4
    assert mine.json["value"][0]["type"] == "Microsoft.ApiManagement/service/users/groups"
    assert names(team.get("/users/bob/groups")) == ["developers", "partners"]
    assert names(team.get("/users/cy/groups")) == ["developers"]
    expanded = {
        u["name"]: [g["displayName"] for g in u["properties"]["groups"]]
        for u in team.get("/users?expandGroups=true").json["value"]
    }
    assert expanded == {
        "ada": ["Alpha", "Developers", "Partners", "Zeta"],
        "bob": ["Developers", "Partners"],
        "cy": ["Developers"],
    }
    assert "groups" not in team.get("/users").json["value"][0]["properties"]


def test_a_users_groups_page_and_filter(team):
    for gid in ("alpha", "beta", "gamma"):
        team.put(f"/groups/{gid}", group(gid.title()))
        team.put(f"/groups/{gid}/users/ada")
    pages = follow(team, team.get("/users/ada/groups?$top=2"))
    assert [names(p) for p in pages] == [["alpha", "beta"], ["developers", "gamma"]]
    filtered = team.get("/users/ada/groups?$filter=" + quote("startswith(displayName,'g')"))
    assert names(filtered) == ["gamma"]
    assert team.get("/users/nobody/groups").status == 404


@pytest.mark.moto
def test_a_users_groups_are_one_query_and_one_batch_of_groups(team, dynamo_calls):
    team.put("/groups/partners/users/ada")
    dynamo_calls.clear()
    team.get("/users/ada/groups")
    ops = [(op, index) for op, _, index in dynamo_calls]
    assert ops == [("GetItem", None), ("Query", "by-member"), ("BatchGetItem", None)]


def test_expand_groups_pages_hold_at_most_100_users(api, wired):
    from chalicelib.domain.users import Identity, User, UserState
    from chalicelib.services.groups import EXPAND_GROUPS_MAX_USERS

    # Written through the user repository 30 at a time (3 items each: the user, its email lock,
    # its subscription count), not 101 PUTs: this is about the list.
    store, now = wired.store(), datetime.now(UTC)
    ids = [f"u{n:03d}" for n in range(EXPAND_GROUPS_MAX_USERS + 1)]
    for start in range(0, len(ids), 30):
        tx = store.transaction()
        for user_id in ids[start : start + 30]:
            email = f"{user_id}@example.com"
            user = User(user_id, email, "Ada", "L", UserState.ACTIVE, None, now, (), 1)
            store.users.stage_create(tx, replace(user, identities=(Identity("Basic", email),)))
        tx.commit()
    first = api.get("/users?expandGroups=true&$top=500")
    assert len(first.json["value"]) == EXPAND_GROUPS_MAX_USERS
    rest = next_page(api, first)
    assert names(rest) == [f"u{EXPAND_GROUPS_MAX_USERS:03d}"]
    assert rest.json["value"][0]["properties"]["groups"][0]["displayName"] == "Developers"


# --- deletions ---------------------------------------------------------------------------------


def stored_rows():
    """Every item of the groups table, as (pk, sk); a Scan, for inspection by tests only."""
    import boto3

    from chalicelib.config import get_settings

    table = boto3.resource("dynamodb").Table(get_settings().groups_table)
    return sorted((i["pk"], i["sk"]) for i in table.scan()["Items"])


@pytest.mark.moto
def test_deleting_a_user_removes_their_memberships(team):
    team.put("/groups/partners/users/ada")
    team.put("/groups/partners/users/bob")
    assert team.delete("/users/ada", headers={"If-Match": "*"}).status == 204
    assert names(team.get("/groups/partners/users")) == ["bob"]
    assert stored_rows() == [("group#partners", "#group"), ("group#partners", "user#bob")]
    team.create_user("ada")  # the same id, a new account
    assert team.head("/groups/partners/users/ada").status == 404
    assert names(team.get("/users/ada/groups")) == ["developers"]


@pytest.mark.moto
def test_deleting_a_group_removes_its_memberships(team):
    team.put("/groups/partners/users/ada")
    team.put("/groups/partners/users/bob")
    etag = team.get("/groups/partners").etag
    assert team.delete("/groups/partners", headers={"If-Match": etag}).status == 204
    assert stored_rows() == []
    assert names(team.get("/users/ada/groups")) == ["developers"]
    team.put("/groups/partners", group())  # the same id, a new group
    assert names(team.get("/groups/partners/users")) == []
    assert team.head("/groups/partners/users/ada").status == 404


@pytest.mark.moto
def test_a_membership_left_from_a_former_group_never_applies(team):
    """Rows a deleted group left behind (clean-up cut short) are invisible and overwritten."""
    from chalicelib.store.models import GroupItem

    team.put("/groups/partners/users/ada")
    leftover = GroupItem.get("group#partners", "user#ada")
    etag = team.get("/groups/partners").etag
    team.delete("/groups/partners", headers={"If-Match": etag})
    team.put("/groups/partners", group())
    leftover.save()  # the old row is back, as if the clean-up had not run
    assert ("group#partners", "user#ada") in stored_rows()
    assert team.head("/groups/partners/users/ada").status == 404
    assert names(team.get("/groups/partners/users")) == []
    assert names(team.get("/users/ada/groups")) == ["developers"]
    assert team.put("/groups/partners/users/ada").status == 201
    assert names(team.get("/groups/partners/users")) == ["ada"]
