"""GET /users: $filter, $top, $skip, expandGroups and nextLink paging, through the API.

The filter and paging rules themselves are tested on the service: tests/services/test_lists.py.
"""

from urllib.parse import parse_qs, urlsplit

import pytest

from tests.support import error_of

PEOPLE = [
    ("alan", "Alan", "Turing", "alan@example.com", "blocked"),
    ("barbara", "Barbara", "Liskov", "barbara@example.org", "active"),
    ("claude", "Claude", "Shannon", "claude@example.com", "active"),
    ("donald", "Donald", "Knuth", "don@example.org", "active"),
    ("edsger", "Edsger", "Dijkstra", "edsger@example.com", "blocked"),
]


@pytest.fixture
def people(api):
    for uid, first, last, email, state in PEOPLE:
        api.create_user(uid, email, firstName=first, lastName=last, state=state, note=f"n-{uid}")
    return api


def names(reply):
    return [u["name"] for u in reply.json["value"]]


def test_list_returns_every_user_in_id_order_with_count(people):
    reply = people.get("/users")
    assert reply.status == 200
    assert names(reply) == ["alan", "barbara", "claude", "donald", "edsger"]
    assert reply.json["count"] == 5
    assert "nextLink" not in reply.json


@pytest.mark.wire
def test_filters_reach_the_list_as_they_were_written(people):
    """Quotes, parentheses, commas, colons and spaces in ``$filter``, as a client encodes them
    (every filter rule: tests/services/test_lists.py)."""
    for expression, expected in [
        ("email eq 'CLAUDE@Example.com'", ["claude"]),
        (
            "(state eq 'active') and (endswith(email,'.com') or lastName eq 'Knuth')",
            ["claude", "donald"],
        ),
        ("registrationDate ge 2000-01-01T00:00:00Z and startswith(lastName,'S')", ["claude"]),
        ("state eq 'blocked' or name eq 'barbara'", ["alan", "barbara", "edsger"]),
    ]:
        reply = people.get(f"/users?$filter={expression}")
        assert reply.status == 200, reply.body
        assert names(reply) == expected, expression


@pytest.mark.parametrize(
    "expression",
    ["colour eq 'red'", "state gt 'active'", "startswith(state,'a')", "email eq", "(name eq 'x'"],
)
def test_bad_filter_is_a_validation_error_naming_the_filter(api, expression):
    reply = api.get(f"/users?$filter={expression}")
    assert reply.status == 400
    error = error_of(reply)
    assert error["code"] == "ValidationError"
    assert error["details"][0]["target"] == "$filter"


def test_top_and_skip(people):
    assert names(people.get("/users?$top=2")) == ["alan", "barbara"]
    assert names(people.get("/users?$top=2&$skip=3")) == ["donald", "edsger"]
    assert names(people.get("/users?$skip=10")) == []
    assert names(people.get("/users?$filter=state eq 'active'&$skip=1&$top=1")) == ["claude"]


@pytest.mark.parametrize("query", ["$top=0", "$top=1001", "$top=x", "$skip=-1", "$skiptoken=%%%"])
def test_out_of_range_paging_parameters_are_400(api, query):
    reply = api.get(f"/users?{query}")
    assert reply.status == 400
    assert error_of(reply)["code"] == "ValidationError"


@pytest.mark.wire
def test_bad_parameters_are_reported_together(api):
    reply = api.get("/users?$top=0&$skip=-4&$filter=nope eq 'x'")
    targets = {d["target"] for d in error_of(reply)["details"]}
    assert targets == {"$top", "$skip", "$filter"}


def test_next_link_is_absolute_on_the_public_base_url_and_pages_to_the_end(people):
    # A Host header that is not loopback never becomes the link's host (README: Security).
    reply = people.get(
        "/users?$top=2&$filter=name ne 'barbara'", headers={"Host": "apim.example.test"}
    )
    seen = names(reply)
    link = reply.json["nextLink"]
    parts = urlsplit(link)
    assert (parts.scheme, parts.netloc) == ("http", "127.0.0.1:8000")
    assert parts.path == people.base + "/users"
    query = parse_qs(parts.query)
    assert query["$filter"] == ["name ne 'barbara'"]
    assert query["$top"] == ["2"]
    pages = 1
    while "nextLink" in reply.json:
        reply = people.get(reply.json["nextLink"], absolute=True, api_version=None)
        assert reply.status == 200
        seen += names(reply)
        pages += 1
    assert seen == ["alan", "claude", "donald", "edsger"]
    assert pages == 2


@pytest.mark.wire
def test_next_link_carries_the_remaining_skip(people):
    reply = people.get("/users?$top=2&$skip=1")
    assert names(reply) == ["barbara", "claude"]
    following = people.get(reply.json["nextLink"], absolute=True, api_version=None)
    assert names(following) == ["donald", "edsger"]
    assert "nextLink" not in following.json


@pytest.mark.wire
def test_forwarded_proto_of_a_loopback_origin_is_used_in_next_link(people):
    headers = {"Host": "127.0.0.1:8443", "X-Forwarded-Proto": "https"}
    reply = people.get("/users?$top=1", headers=headers)
    assert reply.json["nextLink"].startswith("https://127.0.0.1:8443/")


def test_expand_groups(people):
    reply = people.get("/users?$top=1&expandGroups=true")
    groups = reply.json["value"][0]["properties"]["groups"]
    assert groups == [
        {
            "displayName": "Developers",
            "description": groups[0]["description"],
            "builtIn": True,
            "type": "system",
            "externalId": None,
        }
    ]
    assert "groups" not in people.get("/users?$top=1").json["value"][0]["properties"]
    assert people.get("/users?expandGroups=maybe").status == 400


def test_empty_list(api):
    reply = api.get("/users")
    assert reply.json == {"value": [], "count": 0}
