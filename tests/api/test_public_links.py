"""Absolute URLs come from the configured public base URL, never from a Host header."""

import json
import logging
from urllib.parse import urlsplit

import pytest

from chalicelib.config import get_settings
from tests.support import error_of

EVIL = "evil.example"


@pytest.fixture
def stage(monkeypatch):
    """Switches the in-process service to another stage and base URL for one test."""

    def switch(name, **env):
        monkeypatch.setenv("APIM_STAGE", name)
        for key in ("PUBLIC_BASE_URL", "PORTAL_URL"):
            monkeypatch.delenv(key, raising=False)
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        get_settings.cache_clear()

    yield switch
    monkeypatch.undo()
    get_settings.cache_clear()


@pytest.fixture
def users(api):
    for user_id in ("u1", "u2", "u3"):
        api.create_user(user_id)
    return api


def next_link(api, host):
    reply = api.get("/users?$top=1", headers={"Host": host, "X-Forwarded-Proto": "https"})
    assert reply.status == 200, reply.body
    return reply.json["nextLink"]


def test_a_forged_host_never_becomes_the_next_links_host(users):
    link = next_link(users, EVIL)
    assert urlsplit(link).netloc == "127.0.0.1:8000"
    assert link.startswith(f"http://127.0.0.1:8000{users.base}/users?")


@pytest.mark.parametrize("host", ["127.0.0.1:5555", "127.3.4.5", "localhost:8080", "[::1]:9000"])
def test_the_local_stage_keeps_a_loopback_origin_whatever_its_port(users, host):
    # The dev server listens on any free port; its links must lead back to it.
    assert urlsplit(next_link(users, host)).netloc == host


def test_outside_the_local_stage_links_use_the_public_base_url_even_for_loopback(users, stage):
    stage("prod", PUBLIC_BASE_URL="https://api.example.com/api/")
    for host in (EVIL, "127.0.0.1:8000", "localhost"):
        link = next_link(users, host)
        assert link.startswith(f"https://api.example.com/api{users.base}/users?"), link


def test_the_portal_url_serves_when_no_public_base_url_is_set(users, stage):
    stage("prod", PORTAL_URL="https://developer.example.com")
    assert next_link(users, EVIL).startswith(f"https://developer.example.com{users.base}/")


def test_the_openapi_document_names_the_public_base_url(client, stage):
    stage("prod", PUBLIC_BASE_URL="https://api.example.com/api")
    reply = client.http.get("/openapi.json", headers={"Host": EVIL})
    assert reply.status_code == 200
    assert json.loads(reply.body)["servers"] == [{"url": "https://api.example.com/api"}]


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({}, "PUBLIC_BASE_URL"),
        ({"PUBLIC_BASE_URL": "http://api.example.com"}, "PUBLIC_BASE_URL"),
        ({"PORTAL_URL": "api.example.com"}, "PUBLIC_BASE_URL"),
        ({"PUBLIC_BASE_URL": "https://api.example.com", "PORTAL_URL": "ftp://x"}, "PORTAL_URL"),
    ],
)
def test_without_a_usable_base_url_outside_local_every_request_fails_closed(
    users, stage, caplog, env, named
):
    stage("prod", **env)
    with caplog.at_level(logging.ERROR):
        reply = users.get("/users", headers={"Host": EVIL})
    assert reply.status == 500
    error = error_of(reply)
    assert error["code"] == "InternalServerError"
    assert named in error["message"]
    assert any(named in r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR)
    # The public pages too: nothing answers with a link to a guessed host.
    page = users.client.http.get("/signin", headers={"Host": EVIL})
    assert page.status_code == 500
