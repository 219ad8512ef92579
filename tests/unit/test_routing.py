"""Requests as the handlers see them: ids decoded, the route without API Gateway's stage."""

from types import SimpleNamespace

from chalicelib.api.html import relative_root
from chalicelib.api.routing import _make_call
from chalicelib.config import get_settings


def request(path, headers=None):
    return SimpleNamespace(
        context={"path": path, "requestId": "r1", "identity": {"sourceIp": "10.0.0.1"}},
        query_params={"a": "1"},
        headers=headers or {"host": "api.example.test", "x-forwarded-proto": "https"},
        raw_body=b"",
        path=path,
    )


def test_behind_api_gateway_links_keep_the_stage_and_pages_do_not_count_it(monkeypatch):
    # Deployed, the stage is in the public base URL, and the path's stage is not repeated.
    monkeypatch.setenv("APIM_STAGE", "prod")
    monkeypatch.setenv("PUBLIC_BASE_URL", "https://api.example.test/api")
    get_settings.cache_clear()
    try:
        call = _make_call(
            request("/api/confirm/invitation", {"host": "evil.example"}), {}, "/confirm/invitation"
        )
        assert call.link(b="2") == "https://api.example.test/api/confirm/invitation?a=1&b=2"
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()
    assert relative_root(call.route) == "../"
    # ../portal.css from /api/confirm/invitation is /api/portal.css: inside the stage.


def test_a_route_with_ids_keeps_only_its_own_segments():
    path, route = "/v1/users/a%20b/groups", "/users/{userId}/groups"
    call = _make_call(request(path), {"userId": "a%20b"}, route)
    assert call.route_path() == "/users/a%20b/groups"
    assert _make_call(request("/api/"), {}, "/").route_path() == "/"


def test_path_ids_are_decoded():
    call = _make_call(request("/users/a%20b"), {"userId": "a%20b"}, "/users/{userId}")
    assert call.params == {"userId": "a b"}
    assert call.source_ip == "10.0.0.1"


def test_relative_root_of_nested_and_top_level_routes():
    assert relative_root("/signin") == ""
    assert relative_root("/confirm-v2/identities/basic/signup") == "../../../"
