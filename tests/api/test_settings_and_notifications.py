"""APIM's portalsettings and notifications operations through chalice's test client on moto, and
the BCC copies of developer emails end to end."""

import base64
import os

import pytest

from tests.support import error_of, mail_to

KEY = base64.b64encode(os.urandom(64)).decode()
SETTINGS_TYPE = "Microsoft.ApiManagement/service/portalsettings"
NAMES = [
    "RequestPublisherNotificationMessage",
    "PurchasePublisherNotificationMessage",
    "NewApplicationNotificationMessage",
    "BCC",
    "NewIssuePublisherNotificationMessage",
    "AccountClosedPublisher",
    "QuotaLimitApproachingPublisherNotificationMessage",
]


def props(**values):
    return {"properties": values}


def delegation(url="https://publisher.example.com/delegate", key=KEY, **flags):
    body = {"url": url, "validationKey": key}
    for name, enabled in flags.items():
        body[name] = {"enabled": enabled}
    return props(**body)


# --- settings ----------------------------------------------------------------------------------


def test_an_instance_nobody_configured_answers_apims_defaults(api):
    listed = api.get("/portalsettings")
    assert listed.status == 200
    assert listed.json["count"] == 3
    by_name = {v["name"]: v for v in listed.json["value"]}
    assert by_name["signin"]["properties"] == {"enabled": False}
    assert by_name["signup"]["properties"] == {
        "enabled": True,
        "termsOfService": {"text": "Terms of service", "enabled": False, "consentRequired": False},
    }
    assert by_name["delegation"]["properties"] == {
        "url": None,
        "subscriptions": {"enabled": False},
        "userRegistration": {"enabled": False},
    }
    signup = api.get("/portalsettings/signup")
    assert signup.status == 200 and signup.etag
    assert signup.json["type"] == SETTINGS_TYPE and signup.json["name"] == "signup"
    assert signup.json["id"].endswith("/service/local/portalsettings/signup")
    head = api.head("/portalsettings/signup")
    assert (head.status, head.body, head.etag) == (200, b"", signup.etag)


def test_put_replaces_the_setting_and_answers_it_with_a_new_etag(api):
    before = api.get("/portalsettings/signup").etag
    terms = {"text": "Be nice.", "enabled": True, "consentRequired": True}
    put = api.put("/portalsettings/signup", props(enabled=True, termsOfService=terms))
    assert put.status == 200, put.body
    assert put.json["properties"]["termsOfService"] == terms
    assert put.etag and put.etag != before
    # A PUT sets what it leaves out back to the default.
    again = api.put("/portalsettings/signup", props(enabled=False))
    assert again.json["properties"] == {
        "enabled": False,
        "termsOfService": {"text": "Terms of service", "enabled": False, "consentRequired": False},
    }
    assert api.get("/portalsettings/signup").json == again.json


def test_patch_changes_only_what_it_names_answers_204_and_needs_if_match(api):
    api.put("/portalsettings/signup", props(termsOfService={"text": "T", "enabled": True}))
    etag = api.get("/portalsettings/signup").etag
    missing = api.patch("/portalsettings/signup", props(enabled=False))
    assert missing.status == 400 and error_of(missing)["details"][0]["target"] == "If-Match"
    patched = api.patch(
        "/portalsettings/signup",
        props(termsOfService={"consentRequired": True}),
        headers={"If-Match": etag},
    )
    assert (patched.status, patched.body) == (204, b"")
    got = api.get("/portalsettings/signup")
    assert got.etag == patched.etag != etag
    assert got.json["properties"]["termsOfService"] == {
        "text": "T",
        "enabled": True,
        "consentRequired": True,
    }
    stale = api.patch("/portalsettings/signup", props(enabled=False), headers={"If-Match": etag})
    assert stale.status == 412 and error_of(stale)["code"] == "PreconditionFailed"
    stale_put = api.put("/portalsettings/signin", props(enabled=True), headers={"If-Match": etag})
    assert stale_put.status == 412
    assert api.put("/portalsettings/signin", props(enabled=True), headers={"If-Match": "*"}).json[
        "properties"
    ] == {"enabled": True}


def test_the_validation_key_is_shown_only_by_list_secrets_and_kept_when_a_body_omits_it(api):
    put = api.put("/portalsettings/delegation", delegation(userRegistration=True))
    assert put.status == 200, put.body
    assert "validationKey" not in put.json["properties"]
    assert "validationKey" not in api.get("/portalsettings/delegation").json["properties"]
    listed = api.get("/portalsettings").json["value"]
    assert all("validationKey" not in v["properties"] for v in listed)
    assert KEY not in str(listed)
    secrets = api.call("POST", "/portalsettings/delegation/listSecrets")
    assert (secrets.status, secrets.json) == (200, {"validationKey": KEY})
    # What a client read back (no key) can be PUT again without losing the key.
    read = api.get("/portalsettings/delegation").json
    assert api.put("/portalsettings/delegation", {"properties": read["properties"]}).status == 200
    assert api.call("POST", "/portalsettings/delegation/listSecrets").json == {"validationKey": KEY}


def test_list_secrets_of_an_instance_without_a_key_says_null(api):
    assert api.call("POST", "/portalsettings/delegation/listSecrets").json == {
        "validationKey": None
    }


def test_delegation_cannot_be_enabled_without_a_url_and_a_key(api):
    reply = api.put("/portalsettings/delegation", props(subscriptions={"enabled": True}))
    assert reply.status == 400
    assert {d["target"] for d in error_of(reply)["details"]} == {"url", "validationKey"}


@pytest.mark.parametrize(
    ("path", "body", "target"),
    [
        ("/portalsettings/signin", props(enabled="yes"), "enabled"),
        ("/portalsettings/signup", props(termsOfService={"text": 5}), "termsOfService.text"),
        ("/portalsettings/signup", props(termsOfService=[]), "termsOfService"),
        ("/portalsettings/signup", props(termsOfService={"enabled": 1}), "termsOfService.enabled"),
        ("/portalsettings/delegation", delegation(url="javascript:alert(1)"), "url"),
        ("/portalsettings/delegation", delegation(url="https://x.example/#f"), "url"),
        ("/portalsettings/delegation", delegation(key="not base64!"), "validationKey"),
        ("/portalsettings/delegation", delegation(key="c2hvcnQ="), "validationKey"),
        (
            "/portalsettings/delegation",
            props(subscriptions={"enabled": "on"}),
            "subscriptions.enabled",
        ),
        ("/portalsettings/delegation", props(userRegistration=True), "userRegistration"),
        ("/portalsettings/signin", {"properties": []}, "properties"),
    ],
)
def test_a_bad_body_gets_apims_error_naming_the_field(api, path, body, target):
    reply = api.put(path, body)
    assert reply.status == 400, reply.body
    error = error_of(reply)
    assert error["code"] == "ValidationError"
    assert target in [d["target"] for d in error["details"]]


@pytest.mark.parametrize("raw", [b"[1]", b'"text"', b"{not json"])
def test_a_body_that_is_not_an_object_is_refused_with_400(api, raw):
    reply = api.put("/portalsettings/signup", raw=raw)
    assert reply.status == 400 and error_of(reply)["code"] == "ValidationError"


def test_settings_refuse_other_methods_and_need_the_api_version(api):
    assert api.delete("/portalsettings/signin").status == 405
    assert api.call("POST", "/portalsettings/signup").status == 405
    assert api.get("/portalsettings/signin", api_version=None).status == 400


# --- notifications -----------------------------------------------------------------------------


def test_every_notification_is_listed_and_a_put_without_body_answers_it(api):
    listed = api.get("/notifications")
    assert listed.status == 200
    assert [v["name"] for v in listed.json["value"]] == NAMES
    bcc = listed.json["value"][3]
    assert bcc["type"] == "Microsoft.ApiManagement/service/notifications"
    assert bcc["properties"]["title"] == "BCC"
    assert bcc["properties"]["recipients"] == {"users": [], "emails": []}
    put = api.put("/notifications/AccountClosedPublisher")
    assert put.status == 200 and put.json["name"] == "AccountClosedPublisher"
    assert api.get("/notifications/accountclosedpublisher").json["name"] == "AccountClosedPublisher"
    missing = api.get("/notifications/NoSuchNotification")
    assert missing.status == 404 and error_of(missing)["code"] == "ResourceNotFound"


def test_recipient_users_are_added_checked_listed_and_removed(api):
    api.create_user("boss", "boss@example.com")
    base = "/notifications/PurchasePublisherNotificationMessage/recipientUsers"
    added = api.put(f"{base}/boss")
    assert added.status == 201
    assert added.json["name"] == "boss"
    assert added.json["properties"]["userId"].endswith("/service/local/users/boss")
    assert api.put(f"{base}/boss").status == 200
    assert api.head(f"{base}/boss").status == 204
    listed = api.get(base).json
    assert [v["name"] for v in listed["value"]] == ["boss"] and listed["count"] == 1
    recipients = api.get("/notifications/PurchasePublisherNotificationMessage").json
    assert recipients["properties"]["recipients"]["users"] == [added.json["properties"]["userId"]]
    assert api.delete(f"{base}/boss").status == 200
    assert api.head(f"{base}/boss").status == 404
    assert api.delete(f"{base}/boss").status == 204


def test_a_recipient_user_must_exist_and_have_a_valid_id(api):
    base = "/notifications/BCC/recipientUsers"
    missing = api.put(f"{base}/nobody")
    assert missing.status == 404 and "nobody" in error_of(missing)["message"]
    assert api.put(f"{base}/a%2Ab").status == 400


def test_recipient_emails_are_validated_and_matched_case_insensitively(api):
    base = "/notifications/BCC/recipientEmails"
    added = api.put(f"{base}/Ops@Example.com")
    assert added.status == 201
    assert added.json["properties"] == {"email": "Ops@Example.com"}
    assert api.put(f"{base}/ops@example.com").status == 200
    assert api.head(f"{base}/OPS@example.com").status == 204
    assert [v["name"] for v in api.get(base).json["value"]] == ["Ops@Example.com"]
    bad = api.put(f"{base}/not-an-address")
    assert bad.status == 400 and error_of(bad)["details"][0]["target"] == "email"
    assert api.delete(f"{base}/ops@example.com").status == 200
    assert api.get(base).json == {"value": [], "count": 0}


# --- BCC, end to end ---------------------------------------------------------------------------


def test_an_admin_invitation_is_copied_to_the_bcc_recipients_without_its_link(api):
    api.create_user("boss", "boss@example.com")
    assert api.put("/notifications/BCC/recipientUsers/boss").status == 201
    assert api.put("/notifications/BCC/recipientEmails/audit@example.com").status == 201
    invite = props(
        email="ivy@example.com", firstName="Ivy", lastName="Invitee", confirmation="invite"
    )
    assert api.put("/users/ivy", invite).status == 201
    [original] = mail_to("ivy@example.com")
    token = original.token("/confirm/invitation")
    copies = mail_to("boss@example.com") + mail_to("audit@example.com")
    assert [c.subject for c in copies] == [original.subject] * 2
    for copy in copies:
        assert "Ivy" in copy.text
        assert token not in copy.text and token not in copy.html
    # The welcome of the boss's own account (created active) was sent before the BCC existed.
    assert all("Ivy" in c.text for c in mail_to("boss@example.com"))
