"""Requests as the handlers see them: ids decoded, the route without API Gateway's stage."""

from types import SimpleNamespace

from chalicelib.api.html import relative_root
from chalicelib.api.routing import _make_call


def request(path, headers=None):
    return SimpleNamespace(
        context={"path": path, "requestId": "r1", "identity": {"sourceIp": "10.0.0.1"}},
        query_params={"a": "1"},
        headers=headers or {"host": "api.example.test", "x-forwarded-proto": "https"},
        raw_body=b"",
        path=path,
    )


def test_behind_api_gateway_links_keep_the_stage_and_pages_do_not_count_it():
    call = _make_call(request("/api/confirm/invitation"), {}, "/confirm/invitation")
    assert call.link(b="2") == "https://api.example.test/api/confirm/invitation?a=1&b=2"
    assert relative_root(call.route) == "../"
    # ../portal.css from /api/confirm/invitation is /api/portal.css: inside the stage.


def test_path_ids_are_decoded():
    call = _make_call(request("/users/a%20b"), {"userId": "a%20b"}, "/users/{userId}")
    assert call.params == {"userId": "a b"}
    assert call.source_ip == "10.0.0.1"


def test_relative_root_of_nested_and_top_level_routes():
    assert relative_root("/signin") == ""
    assert relative_root("/confirm-v2/identities/basic/signup") == "../../../"
