"""Password reset by email, sign-in, user tokens; blocking takes effect everywhere at once."""

import base64
import json
import re
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

import pytest

from chalicelib.api.signin import pad_to_floor
from chalicelib.bootstrap import services
from tests.support import (
    RecordingMailer,
    error_of,
    from_address,
    mail_to,
    relay,
    relay_paused,
    unwire,
    wire,
)

RESET_PATH = "/confirm-v2/password"
PASSWORD = "the first passphrase"
# Client addresses (documentation ranges) of an attacker and of the account's owner.
ATTACKER = "203.0.113.66"
OWNER = "198.51.100.7"


@pytest.fixture
def dev(api):
    api.create_user(
        "dev", "dev@example.com", firstName="Dee", lastName="Veloper", password=PASSWORD
    )
    return api


def post_form(client, path, fields, **headers):
    return client.http.post(
        path,
        headers={"Content-Type": "application/x-www-form-urlencoded", **headers},
        body=urlencode(fields),
    )


def post_json(client, path, body, **headers):
    return client.http.post(
        path, headers={"Content-Type": "application/json", **headers}, body=json.dumps(body)
    )


def sign_in_form(client, fields):
    """The sign-in form as a browser posts it: its page's cookie and CSRF token with it."""
    page = client.http.get("/signin")
    cookie = page.headers["Set-Cookie"].split(";")[0]
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.body.decode()).group(1)
    return post_form(client, "/signin", {**fields, "csrf": csrf}, Cookie=cookie)


def sign_in(client, email="dev@example.com", password=PASSWORD):
    return post_json(client, "/signin", {"email": email, "password": password})


def me(client, token):
    return client.http.get("/me", headers={"Authorization": f"SharedAccessSignature {token}"})


def token_of(reply):
    return json.loads(reply.body)["value"]


def send_reset(api, user_id="dev"):
    reply = api.call("POST", f"/users/{user_id}/confirmations/password/send")
    assert reply.status == 204, reply.body
    return mail_to(f"{user_id}@example.com")[-1].token(RESET_PATH)


# Reset by email


def test_admin_reset_end_to_end_through_the_pages(dev, client):
    token = send_reset(dev)
    mail = mail_to("dev@example.com")[-1]
    assert mail.subject == "Your password change request"
    page = client.http.get(f"{RESET_PATH}?token={token}")
    assert page.status_code == 200
    assert "dev@example.com" in page.body.decode()
    done = post_form(client, RESET_PATH, {"token": token, "password": "the second passphrase"})
    assert done.status_code == 200
    assert sign_in(client).status_code == 401
    assert sign_in(client, password="the second passphrase").status_code == 200
    assert (
        post_form(client, RESET_PATH, {"token": token, "password": "a third one here"}).status_code
        == 410
    )
    notice = mail_to("dev@example.com")[-1]
    assert notice.subject == "Your password was reset"
    assert "the second passphrase" not in notice.text + notice.html


def test_a_second_link_kills_the_first(dev, client):
    first = send_reset(dev)
    second = send_reset(dev)
    assert client.http.get(f"{RESET_PATH}?token={first}").status_code == 410
    assert client.http.get(f"{RESET_PATH}?token={second}").status_code == 200


def test_reset_link_lives_an_hour(dev, client, clock):
    token = send_reset(dev)
    clock.advance(minutes=59)
    assert client.http.get(f"{RESET_PATH}?token={token}").status_code == 200
    clock.advance(minutes=2)
    reply = post_form(client, RESET_PATH, {"token": token, "password": "too late passphrase"})
    assert reply.status_code == 410
    assert "expired" in reply.body.decode().lower()


def test_block_kills_an_outstanding_link_and_activating_does_not_revive_it(dev, client):
    token = send_reset(dev)
    dev.patch("/users/dev", {"properties": {"state": "blocked"}}, headers={"If-Match": "*"})
    assert client.http.get(f"{RESET_PATH}?token={token}").status_code == 410
    dev.patch("/users/dev", {"properties": {"state": "active"}}, headers={"If-Match": "*"})
    assert client.http.get(f"{RESET_PATH}?token={token}").status_code == 410


def test_a_refused_new_password_keeps_the_link(dev, client):
    token = send_reset(dev)
    bad = post_form(client, RESET_PATH, {"token": token, "password": "Dee Veloper"})
    assert bad.status_code == 400
    assert "name" in bad.body.decode()
    assert (
        post_form(client, RESET_PATH, {"token": token, "password": "a good new one"}).status_code
        == 200
    )


def test_reset_needs_an_active_user(api):
    api.create_user("blk", state="blocked")
    reply = api.call("POST", "/users/blk/confirmations/password/send")
    assert reply.status == 409
    assert error_of(reply)["code"] == "Conflict"
    assert api.call("POST", "/users/ghost/confirmations/password/send").status == 404
    assert api.call("POST", "/users/blk/confirmations/password/send?appType=x").status == 400


def test_self_service_reset_answers_the_same_for_known_and_unknown_addresses(dev, client):
    known = post_json(client, "/password-reset", {"email": "DEV@example.com"})
    unknown = post_json(client, "/password-reset", {"email": "nobody@example.com"})
    assert known.status_code == unknown.status_code == 202
    assert known.body == unknown.body
    assert len(mail_to("dev@example.com")) == 1
    assert mail_to("nobody@example.com") == []
    page = post_form(client, "/password-reset", {"email": "nobody@example.com"})
    assert page.status_code == 202
    assert "If an account exists" in page.body.decode()


def test_a_reset_request_for_an_existing_account_calls_no_ses_in_the_request(dev, client):
    """Whatever SES does (slow, throttling, down), the request's time and answer cannot depend
    on it: only the relay, after the request, sends the email."""
    mailer = RecordingMailer()
    wire(mailer=mailer)
    with relay_paused():
        known = post_json(client, "/password-reset", {"email": "dev@example.com"})
        unknown = post_json(client, "/password-reset", {"email": "nobody@example.com"})
        assert known.status_code == unknown.status_code == 202
        assert known.body == unknown.body
        assert mailer.sent == []
    relay()
    [email] = mailer.sent
    assert email.to == "dev@example.com"
    assert f"{RESET_PATH}?token=" in email.text


def test_self_service_reset_sends_nothing_to_a_blocked_account(api, client):
    api.create_user("blk", state="blocked")
    assert post_json(client, "/password-reset", {"email": "blk@example.com"}).status_code == 202
    assert mail_to("blk@example.com") == []


def test_self_service_reset_is_rate_limited_per_address_without_locking(dev, client, clock):
    for _ in range(5):
        assert post_json(client, "/password-reset", {"email": "dev@example.com"}).status_code == 202
    throttled = post_json(client, "/password-reset", {"email": "dev@example.com"})
    assert throttled.status_code == 429
    assert json.loads(throttled.body)["error"]["code"] == "TooManyRequests"
    assert int(throttled.headers["Retry-After"]) > 0
    # The account is not locked: sign-in still works, and the next hour resets may go again.
    assert sign_in(client).status_code == 200
    clock.advance(hours=1)
    assert post_json(client, "/password-reset", {"email": "dev@example.com"}).status_code == 202


def test_resets_asked_from_another_address_do_not_use_up_the_owners(dev, client):
    with from_address(client, ATTACKER):
        for _ in range(5):
            assert (
                post_json(client, "/password-reset", {"email": "dev@example.com"}).status_code
                == 202
            )
        assert post_json(client, "/password-reset", {"email": "dev@example.com"}).status_code == 429
    sent = len(mail_to("dev@example.com"))
    with from_address(client, OWNER):
        mine = post_form(client, "/password-reset", {"email": "dev@example.com"})
        assert mine.status_code == 202
    assert len(mail_to("dev@example.com")) == sent + 1


def test_a_refused_reset_form_answers_a_page_not_json(dev, client):
    for _ in range(5):
        post_form(client, "/password-reset", {"email": "dev@example.com"})
    refused = post_form(client, "/password-reset", {"email": "dev@example.com"})
    assert refused.status_code == 429
    assert refused.headers["Content-Type"].startswith("text/html")
    assert int(refused.headers["Retry-After"]) > 0
    text = refused.body.decode()
    assert "<html" in text and "Too many" in text and '{"error"' not in text


def test_pad_to_floor_waits_for_the_rest_of_the_floor():
    slept = []
    pad_to_floor(10.0, 400, now=lambda: 10.1, sleep=slept.append)
    assert slept == [pytest.approx(0.3)]
    pad_to_floor(10.0, 400, now=lambda: 10.5, sleep=slept.append)
    assert len(slept) == 1


# Sign-in


def test_sign_in_gives_a_user_token_in_header_and_body(dev, client):
    reply = sign_in(client, email="Dev@Example.com")
    assert reply.status_code == 200
    token = token_of(reply)
    assert token.startswith("dev&")
    assert reply.headers["ocp-apim-sas-token"] == f'token="{token}",refresh="true"'
    profile = me(client, token)
    assert profile.status_code == 200
    assert json.loads(profile.body)["properties"]["email"] == "dev@example.com"
    bare = client.http.get("/me", headers={"Authorization": token})
    assert bare.status_code == 200


def test_sign_in_with_basic_authorization(dev, client):
    basic = base64.b64encode(f"dev@example.com:{PASSWORD}".encode()).decode()
    reply = client.http.post("/signin", headers={"Authorization": f"Basic {basic}"}, body=b"")
    assert reply.status_code == 200
    assert me(client, token_of(reply)).status_code == 200


def test_sign_in_form_sets_a_session_cookie(dev, client):
    page = client.http.get("/signin")
    assert page.status_code == 200 and 'autocomplete="current-password"' in page.body.decode()
    reply = sign_in_form(client, {"email": "dev@example.com", "password": PASSWORD})
    # A person lands on the portal's home, signed in.
    assert reply.status_code == 303 and reply.headers["Location"] == "./"
    cookie = reply.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    session = cookie.split(";")[0]
    assert client.http.get("/me", headers={"Cookie": session}).status_code == 200
    wrong = sign_in_form(client, {"email": "dev@example.com", "password": "nope nope"})
    assert wrong.status_code == 401
    assert "not correct" in wrong.body.decode()


def test_wrong_password_and_unknown_email_are_the_same_401(dev, client):
    wrong = sign_in(client, password="not the password")
    unknown = sign_in(client, email="nobody@example.com")
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.body == unknown.body
    assert json.loads(wrong.body)["error"]["code"] == "Unauthorized"


@pytest.mark.parametrize("state", ["blocked", "pending"])
def test_blocked_and_pending_accounts_cannot_sign_in(api, client, state):
    api.create_user("x", "x@example.com", password=PASSWORD, state=state)
    reply = sign_in(client, "x@example.com")
    assert reply.status_code == 401
    assert reply.body == sign_in(client, "nobody@example.com").body


def test_user_without_password_cannot_sign_in(api, client):
    api.create_user("nopw")
    assert sign_in(client, "nopw@example.com", "").status_code == 401


def fail_until_refused(client, attempt, most=200):
    """Wrong guesses until one is refused with 429; how many were answered 401 before it."""
    for tried in range(most):
        reply = attempt()
        if reply.status_code == 429:
            return tried, reply
        assert reply.status_code in (400, 401), reply.body
    raise AssertionError(f"{most} wrong guesses and never a 429")


def test_an_address_guessing_one_account_is_stopped_but_the_owner_elsewhere_gets_in(
    dev, client, clock
):
    with from_address(client, ATTACKER):
        tried, refused = fail_until_refused(client, lambda: sign_in(client, password="a guess"))
        assert json.loads(refused.body)["error"]["code"] == "TooManyRequests"
        assert int(refused.headers["Retry-After"]) > 0
        # Stopped means stopped: the right password from there is refused as well.
        assert sign_in(client).status_code == 429
        # The same address may still sign in to another account it knows the password of.
        dev.create_user("other", "other@example.com", password=PASSWORD)
        assert sign_in(client, email="other@example.com").status_code == 200
    with from_address(client, OWNER):
        assert sign_in(client).status_code == 200
        form = sign_in_form(client, {"email": "dev@example.com", "password": PASSWORD})
        assert form.status_code == 303
    assert tried == 10
    clock.advance(hours=1)
    with from_address(client, ATTACKER):
        assert sign_in(client).status_code == 200


def test_an_address_failing_on_many_accounts_is_stopped_on_every_account(dev, client, monkeypatch):
    from chalicelib.config import get_settings

    monkeypatch.setenv("SIGNIN_FAILURES_PER_ADDRESS_HOUR", "25")
    get_settings.cache_clear()
    unwire()
    with from_address(client, ATTACKER):
        for n in range(5):
            for _ in range(5):
                reply = sign_in(client, email=f"guess{n}@example.com", password="a guess")
                assert reply.status_code == 401
        assert sign_in(client).status_code == 429
    with from_address(client, OWNER):
        assert sign_in(client).status_code == 200


def test_own_password_change_stops_an_address_guessing_the_current_password(dev, client):
    token = token_of(sign_in(client))
    headers = {"Authorization": f"SharedAccessSignature {token}"}

    def guess(current="a wrong guess"):
        body = {"currentPassword": current, "newPassword": "a changed passphrase"}
        return post_json(client, "/me/password", body, **headers)

    with from_address(client, ATTACKER):
        tried, refused = fail_until_refused(client, guess)
        assert error_of_body(refused)["code"] == "TooManyRequests"
        assert guess(PASSWORD).status_code == 429
        # The guesses count against the same budget as sign-in from that address.
        assert sign_in(client).status_code == 429
    with from_address(client, OWNER):
        assert guess(PASSWORD).status_code == 200
    assert tried == 10


# Tokens, and blocking everywhere at once


def test_block_refuses_the_token_on_the_next_request_and_activation_keeps_it_dead(dev, client):
    token = token_of(sign_in(client))
    assert me(client, token).status_code == 200
    dev.patch("/users/dev", {"properties": {"state": "blocked"}}, headers={"If-Match": "*"})
    refused = me(client, token)
    assert refused.status_code == 401
    assert error_of_body(refused)["code"] == "Unauthorized"
    assert sign_in(client).status_code == 401
    dev.patch("/users/dev", {"properties": {"state": "active"}}, headers={"If-Match": "*"})
    assert me(client, token).status_code == 401
    assert me(client, token_of(sign_in(client))).status_code == 200


def test_admin_set_password_ends_sessions_and_notifies_without_the_password(dev, client):
    token = token_of(sign_in(client))
    reset_token = send_reset(dev)
    dev.patch(
        "/users/dev", {"properties": {"password": "set by the admin"}}, headers={"If-Match": "*"}
    )
    assert me(client, token).status_code == 401
    assert client.http.get(f"{RESET_PATH}?token={reset_token}").status_code == 410
    notice = mail_to("dev@example.com")[-1]
    assert notice.subject == "Your password was reset"
    assert "set by the admin" not in notice.text + notice.html
    assert sign_in(client, password="set by the admin").status_code == 200


def test_a_token_of_a_deleted_user_is_refused_even_if_the_id_comes_back(dev, client):
    token = token_of(sign_in(client))
    dev.delete("/users/dev", headers={"If-Match": "*"})
    assert me(client, token).status_code == 401
    dev.create_user("dev", "dev@example.com", password=PASSWORD)
    assert me(client, token).status_code == 401


def test_own_password_change_needs_the_current_one_and_renews_the_token(dev, client):
    token = token_of(sign_in(client))
    headers = {"Authorization": f"SharedAccessSignature {token}"}
    wrong = post_json(
        client, "/me/password", {"currentPassword": "nope", "newPassword": "x y z w v"}, **headers
    )
    assert wrong.status_code == 400
    assert error_of_body(wrong)["details"][0]["target"] == "currentPassword"
    changed = post_json(
        client,
        "/me/password",
        {"currentPassword": PASSWORD, "newPassword": "a changed passphrase"},
        **headers,
    )
    assert changed.status_code == 200
    assert me(client, token).status_code == 401
    assert me(client, token_of(changed)).status_code == 200
    assert sign_in(client, password="a changed passphrase").status_code == 200


def test_admin_user_token(dev, client):
    expiry = (datetime.now(UTC) + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    reply = dev.call(
        "POST", "/users/dev/token", {"properties": {"keyType": "secondary", "expiry": expiry}}
    )
    assert reply.status == 200
    token = reply.json["value"]
    assert token.split("&")[0] == "dev"
    assert me(client, token).status_code == 200
    too_far = (datetime.now(UTC) + timedelta(days=31)).isoformat()
    bad = dev.call(
        "POST", "/users/dev/token", {"properties": {"keyType": "tertiary", "expiry": too_far}}
    )
    assert bad.status == 400
    assert {d["target"] for d in error_of(bad)["details"]} == {"keyType", "expiry"}
    assert dev.call("POST", "/users/dev/token", {"properties": {"expiry": "soon"}}).status == 400
    assert dev.call("POST", "/users/dev/token", {}).status == 400


def test_expired_and_forged_user_tokens_are_refused(dev, client, clock):
    token = token_of(sign_in(client))
    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    assert me(client, forged).status_code == 401
    assert me(client, "dev&209901010000&c2lnbmF0dXJl").status_code == 401
    clock.advance(hours=9)
    assert me(client, token).status_code == 401
    assert client.http.get("/me").status_code == 401


def sso_path(api, user_id="dev"):
    reply = api.call("POST", f"/users/{user_id}/generateSsoUrl")
    assert reply.status == 200, reply.body
    url = reply.json["value"]
    assert url.startswith("http://127.0.0.1:8000/signin-sso?token=")
    return url.removeprefix("http://127.0.0.1:8000")


def forged(user_id):
    """A token in the right shape naming ``user_id``, signed with a key the service never had."""
    from chalicelib.domain.sas import compact_token

    return compact_token(user_id, datetime.now(UTC) + timedelta(days=1), "a guessed key")


def test_a_forged_token_is_refused_alike_whether_or_not_its_id_exists(dev, client):
    before = len(dev.get("/users/dev/events").json["value"])
    known = me(client, forged("dev"))
    unknown = me(client, forged("nobody-by-this-id"))
    assert known.status_code == unknown.status_code == 401
    assert known.body == unknown.body
    for _ in range(20):
        assert me(client, forged("dev")).status_code == 401
    # Nothing about the existing account was written: the console shows no flood.
    assert len(dev.get("/users/dev/events").json["value"]) == before


def test_a_revoked_real_token_is_recorded_once_an_hour_per_address(dev, client, clock):
    token = token_of(sign_in(client))
    dev.patch("/users/dev", {"properties": {"state": "blocked"}}, headers={"If-Match": "*"})

    def refusals():
        found = dev.get("/users/dev/events").json["value"]
        return [e for e in found if e["action"] == "token.refused"]

    for _ in range(5):
        assert me(client, token).status_code == 401
    assert len(refusals()) == 1
    with from_address(client, ATTACKER):
        assert me(client, token).status_code == 401
    assert len(refusals()) == 2
    clock.advance(hours=1)
    assert me(client, token).status_code == 401
    assert len(refusals()) == 3


def test_sso_link_signs_the_developer_in(dev, client):
    reply = client.http.get(sso_path(dev))
    assert reply.status_code == 303 and reply.headers["Location"] == "./"
    session = reply.headers["Set-Cookie"].split(";")[0]
    assert client.http.get("/me", headers={"Cookie": session}).status_code == 200
    assert client.http.get("/signin-sso?token=dev%26209901010000%26bad").status_code == 401


def test_an_sso_link_works_once(dev, client):
    path = sso_path(dev)
    assert client.http.get(path).status_code == 303
    again = client.http.get(path)
    assert again.status_code == 401
    assert "Sign-in link not valid" in again.body.decode()
    as_json = client.http.get(path, headers={"Accept": "application/json"})
    assert error_of_body(as_json)["code"] == "Unauthorized"
    # Each generated link is its own: a new one works.
    assert client.http.get(sso_path(dev)).status_code == 303


def test_sso_links_and_user_tokens_do_not_pass_for_each_other(dev, client):
    from urllib.parse import quote, unquote

    user_token = token_of(sign_in(client))
    assert client.http.get(f"/signin-sso?token={quote(user_token, safe='')}").status_code == 401
    sso_token = unquote(sso_path(dev).split("token=", 1)[1])
    assert me(client, sso_token).status_code == 401
    assert (
        client.http.get("/me", headers={"Cookie": f"apim_session={sso_token}"}).status_code == 401
    )
    # Refused as a user token, the link is still unused.
    assert client.http.get(f"/signin-sso?token={quote(sso_token, safe='')}").status_code == 303


@pytest.mark.parametrize("state", ["blocked", "pending"])
def test_no_sso_link_for_a_user_who_is_not_active(api, state):
    api.create_user("x", "x@example.com", state=state)
    reply = api.call("POST", "/users/x/generateSsoUrl")
    assert reply.status == 409
    assert error_of(reply)["code"] == "Conflict"
    assert api.call("POST", "/users/ghost/generateSsoUrl").status == 404


def test_a_link_generated_before_a_block_is_refused(dev, client):
    path = sso_path(dev)
    dev.patch("/users/dev", {"properties": {"state": "blocked"}}, headers={"If-Match": "*"})
    assert client.http.get(path).status_code == 401


def test_the_cli_prints_a_user_token_the_api_accepts(dev, client, capsys):
    import os

    from chalicelib.cli import main

    saved = dict(os.environ)
    try:
        assert main(["token", "--user", "dev", "--hours", "1"]) == 0
    finally:
        os.environ.clear()
        os.environ.update(saved)
    printed = capsys.readouterr().out.strip()
    assert printed.startswith("SharedAccessSignature dev&")
    reply = client.http.get("/me", headers={"Authorization": printed})
    assert reply.status_code == 200


def error_of_body(reply):
    return json.loads(reply.body)["error"]


def test_reset_after_block_sends_nothing(dev, client, wired):
    dev.patch("/users/dev", {"properties": {"state": "blocked"}}, headers={"If-Match": "*"})
    post_json(client, "/password-reset", {"email": "dev@example.com"})
    assert mail_to("dev@example.com") == []
    services().sweep.run()
