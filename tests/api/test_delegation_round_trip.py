"""Delegation end to end: settings on, the signed redirect, the publisher's site (a real HTTP
server, tests/delegation_site.py) checking it and signing the developer in through
generateSsoUrl, and /signin-sso starting the portal session."""

import base64
import os
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from chalicelib.bootstrap import services
from chalicelib.domain.delegation import Operation
from tests.delegation_site import DelegationSite, serve

KEY = base64.b64encode(os.urandom(64)).decode()


def enable(api, url, **flags):
    body = {"url": url, "validationKey": KEY}
    body.update({name: {"enabled": on} for name, on in flags.items()})
    reply = api.put("/portalsettings/delegation", {"properties": body})
    assert reply.status == 200, reply.body


@pytest.fixture
def site(api):
    def generate_sso_url(user_id):
        reply = api.call("POST", f"/users/{user_id}/generateSsoUrl")
        assert reply.status == 200, reply.body
        return reply.json["value"]

    made = DelegationSite(KEY, generate_sso_url, accounts={"ada-at-publisher": "ada"})
    with serve(made) as url:
        made.url = url
        yield made


def test_sign_in_is_delegated_and_the_site_signs_the_developer_in_through_sso(api, client, site):
    api.create_user("ada", "ada@example.com", firstName="Ada")
    enable(api, site.url, userRegistration=True)
    target = services().delegation.redirect_for(
        Operation.SIGN_IN, return_url="/portal/subscriptions"
    )
    assert target is not None and target.startswith(site.url + "?operation=SignIn&")

    site.visitor = "ada-at-publisher"
    at_site = requests.get(target, allow_redirects=False, timeout=10)
    assert at_site.status_code == 302, at_site.text
    sso = urlsplit(at_site.headers["Location"])
    assert sso.path == "/signin-sso"
    assert parse_qs(sso.query)["returnUrl"] == ["/portal/subscriptions"]

    signed_in = client.http.get(f"{sso.path}?{sso.query}", headers={"Accept": "text/html"})
    assert signed_in.status_code == 303  # to the page the developer asked for, signed in
    assert signed_in.headers["Location"] == "./portal/subscriptions"
    cookie = signed_in.headers["Set-Cookie"].split(";")[0]
    me = client.http.get("/me", headers={"Cookie": cookie, "Accept": "application/json"})
    assert me.status_code == 200
    assert me.json_body["name"] == "ada"
    # The SSO link works once.
    again = client.http.get(f"{sso.path}?{sso.query}", headers={"Accept": "application/json"})
    assert again.status_code == 401


def test_the_site_refuses_a_redirect_whose_signature_does_not_match(api, site):
    api.create_user("ada", "ada@example.com")
    enable(api, site.url, userRegistration=True)
    target = services().delegation.redirect_for(Operation.SIGN_IN, return_url="/")
    site.visitor = "ada-at-publisher"
    forged = target.replace("returnUrl=%2F", "returnUrl=https%3A%2F%2Fevil.example%2F")
    assert forged != target
    assert requests.get(forged, allow_redirects=False, timeout=10).status_code == 403
    assert site.handled == []


def test_subscribing_is_delegated_with_product_and_user_only_when_subscriptions_are(api, site):
    enable(api, site.url, subscriptions=True)
    delegation = services().delegation
    assert delegation.redirect_for(Operation.SIGN_IN, return_url="/") is None
    target = delegation.redirect_for(Operation.SUBSCRIBE, product_id="starter", user_id="ada")
    assert requests.get(target, timeout=10).status_code == 200
    [handled] = site.handled
    assert (handled["operation"], handled["productId"], handled["userId"]) == (
        "Subscribe",
        "starter",
        "ada",
    )
    unsubscribe = delegation.redirect_for(Operation.UNSUBSCRIBE, subscription_id="sub-1")
    assert requests.get(unsubscribe, timeout=10).status_code == 200


def test_nothing_is_delegated_until_delegation_is_enabled(api):
    delegation = services().delegation
    for operation in Operation:
        assert (
            delegation.redirect_for(
                operation, return_url="/", user_id="u", product_id="p", subscription_id="s"
            )
            is None
        )
    api.put(
        "/portalsettings/delegation",
        {"properties": {"url": "https://publisher.example.com/d", "validationKey": KEY}},
    )
    assert delegation.redirect_for(Operation.SIGN_UP, return_url="/") is None
