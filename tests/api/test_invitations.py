"""Invitations: the email, the portal page, accepting, expiry, resend, revoke, the sweep."""

from urllib.parse import urlencode, urlsplit

import boto3
import pytest

from chalicelib.bootstrap import services
from tests.support import error_of, mail_to, sent_mail, unwire, wire

INVITE_PATH = "/confirm/invitation"


def invite(api, user_id="ivy", email="ivy@example.com", first="Ivy", **extra):
    body = {
        "properties": {
            "email": email,
            "firstName": first,
            "lastName": "Invitee",
            "confirmation": "invite",
            "state": "active",  # what the Azure SDK always sends; an invite still starts pending
            **extra,
        }
    }
    reply = api.put(f"/users/{user_id}", body)
    assert reply.status == 201, reply.body
    return reply


def portal_get(client, token, path=INVITE_PATH, **headers):
    return client.http.get(f"{path}?{urlencode({'token': token})}", headers=headers)


def portal_post(client, fields, path=INVITE_PATH):
    return client.http.post(
        path,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        body=urlencode(fields),
    )


def portal_json(client, fields, path=INVITE_PATH):
    import json

    return client.http.post(
        path, headers={"Content-Type": "application/json"}, body=json.dumps(fields)
    )


def test_invite_creates_a_pending_user_and_emails_a_link(api):
    reply = invite(api)
    assert reply.json["properties"]["state"] == "pending"
    [mail] = mail_to("ivy@example.com")
    assert "invited" in mail.subject.lower()
    link = mail.link(INVITE_PATH)
    assert link.startswith("http://127.0.0.1:8000/confirm/invitation?token=")
    assert mail.html and mail.text
    views = api.get("/users/ivy/invitations").json["value"]
    assert len(views) == 1
    assert views[0]["state"] == "pending"
    assert views[0]["delivery"]["state"] == "sent"


def test_the_page_shows_who_is_invited_and_never_consumes_the_token(api, client):
    invite(api)
    token = mail_to("ivy@example.com")[0].token(INVITE_PATH)
    for _ in range(3):
        page = portal_get(client, token)
        assert page.status_code == 200
        html = page.body.decode()
        assert "Ivy" in html and "ivy@example.com" in html
        assert 'type="password"' in html and 'method="post"' in html
        assert "<script" not in html and "http" not in html.split("<body>")[1].split("</main>")[0]
    headers = {k.lower(): v for k, v in page.headers.items()}
    assert headers["referrer-policy"] == "no-referrer"
    assert "default-src 'none'" in headers["content-security-policy"]
    assert headers["content-type"].startswith("text/html")
    assert api.get("/users/ivy").json["properties"]["state"] == "pending"


def test_accepting_sets_the_password_activates_and_sends_the_welcome(api, client):
    invite(api)
    token = mail_to("ivy@example.com")[0].token(INVITE_PATH)
    done = portal_post(client, {"token": token, "password": "my own passphrase"})
    assert done.status_code == 200
    assert "active" in done.body.decode().lower()
    assert api.get("/users/ivy").json["properties"]["state"] == "active"
    subjects = [m.subject for m in mail_to("ivy@example.com")]
    assert any("Welcome" in s for s in subjects)
    again = portal_post(client, {"token": token, "password": "my own passphrase"})
    assert again.status_code == 410
    assert "already been used" in again.body.decode()
    [view] = api.get("/users/ivy/invitations").json["value"]
    assert view["state"] == "accepted"


def test_a_refused_password_shows_the_form_again_and_keeps_the_link(api, client):
    invite(api)
    token = mail_to("ivy@example.com")[0].token(INVITE_PATH)
    bad = portal_post(client, {"token": token, "password": "password"})
    assert bad.status_code == 400
    assert "common" in bad.body.decode()
    assert 'aria-invalid="true"' in bad.body.decode()
    assert (
        portal_post(client, {"token": token, "password": "a better passphrase"}).status_code == 200
    )


def test_link_works_until_48_hours_and_not_after(api, client, clock):
    invite(api)
    token = mail_to("ivy@example.com")[0].token(INVITE_PATH)
    clock.advance(hours=47, minutes=59)
    assert portal_get(client, token).status_code == 200
    clock.advance(minutes=2)
    expired = portal_get(client, token)
    assert expired.status_code == 410
    assert "expired" in expired.body.decode().lower()
    assert "new invitation" in expired.body.decode()
    assert portal_post(client, {"token": token, "password": "a fine passphrase"}).status_code == 410
    assert api.get("/users/ivy").json["properties"]["state"] == "pending"


def test_sweep_marks_expired_invitations_and_is_idempotent(api, clock):
    invite(api, "a", "a@example.com")
    invite(api, "b", "b@example.com")
    clock.advance(hours=24)
    invite(api, "c", "c@example.com")
    clock.advance(hours=25)
    report = services().sweep.run()
    assert report.expired == 2
    assert services().sweep.run().expired == 0
    assert api.get("/users/a/invitations").json["value"][0]["state"] == "expired"
    assert api.get("/users/c/invitations").json["value"][0]["state"] == "pending"
    # The user stays pending, as in APIM; the admin can resend.
    assert api.get("/users/a").json["properties"]["state"] == "pending"


def test_resend_after_expiry_gives_a_new_working_link_and_kills_the_old(api, client, clock):
    invite(api)
    old = mail_to("ivy@example.com")[0].token(INVITE_PATH)
    clock.advance(hours=49)
    services().sweep.run()
    reply = api.call("POST", "/users/ivy/invitations/resend")
    assert reply.status == 200
    assert reply.json["state"] == "pending"
    new = mail_to("ivy@example.com")[-1].token(INVITE_PATH)
    assert new != old
    assert portal_get(client, old).status_code == 410
    clock.advance(hours=47)
    assert portal_post(client, {"token": new, "password": "a fine passphrase"}).status_code == 200
    states = [v["state"] for v in api.get("/users/ivy/invitations").json["value"]]
    assert states == ["accepted", "expired"]


def test_resend_before_expiry_revokes_the_pending_link(api, client):
    invite(api)
    old = mail_to("ivy@example.com")[0].token(INVITE_PATH)
    api.call("POST", "/users/ivy/invitations/resend")
    revoked = portal_get(client, old)
    assert revoked.status_code == 410
    assert "revoked or replaced" in revoked.body.decode()
    states = [v["state"] for v in api.get("/users/ivy/invitations").json["value"]]
    assert states == ["pending", "revoked"]


def test_revoke_kills_the_link_and_the_user_stays_pending(api, client):
    invite(api)
    token = mail_to("ivy@example.com")[0].token(INVITE_PATH)
    reply = api.call("POST", "/users/ivy/invitations/revoke")
    assert reply.status == 200
    assert reply.json["value"][0]["state"] == "revoked"
    assert portal_get(client, token).status_code == 410
    assert api.get("/users/ivy").json["properties"]["state"] == "pending"
    again = api.call("POST", "/users/ivy/invitations/revoke")
    assert again.status == 409
    assert error_of(again)["code"] == "Conflict"


def test_resend_to_an_active_user_is_409(api):
    api.create_user("act")
    reply = api.call("POST", "/users/act/invitations/resend")
    assert reply.status == 409
    assert "pending" in error_of(reply)["message"]
    assert api.call("POST", "/users/ghost/invitations/resend").status == 404


def test_inviting_a_pending_user_again_replaces_the_link(api, client, clock):
    invite(api)
    old = mail_to("ivy@example.com")[0].token(INVITE_PATH)
    clock.advance(hours=50)
    reply = api.put(
        "/users/ivy",
        {
            "properties": {
                "email": "ivy@example.com",
                "firstName": "Ivy",
                "lastName": "I",
                "confirmation": "invite",
            }
        },
    )
    assert reply.status == 200
    assert reply.json["properties"]["state"] == "pending"
    new = mail_to("ivy@example.com")[-1].token(INVITE_PATH)
    assert portal_get(client, new).status_code == 200
    assert portal_get(client, old).status_code == 410


def test_expired_invitation_is_no_duplicate_for_a_new_invite(api, clock, wired):
    invite(api)
    clock.advance(hours=49)
    services().sweep.run()
    api.delete("/users/ivy", headers={"If-Match": "*"})
    assert invite(api, "ivy2").status == 201


class FailingMailer:
    """SES as it behaves when throttling: every send fails."""

    def __init__(self):
        self.calls = 0

    def send(self, email):
        from chalicelib.mail.sender import MailFailed

        self.calls += 1
        raise MailFailed("Throttling: Maximum sending rate exceeded.", retryable=True)


def test_ses_failure_keeps_the_invitation_and_the_sweep_delivers_it(api, client, clock):
    failing = FailingMailer()
    wire(mailer=failing)
    reply = invite(api)
    assert reply.status == 201
    assert failing.calls == 1
    assert mail_to("ivy@example.com") == []
    [view] = api.get("/users/ivy/invitations").json["value"]
    assert view["state"] == "pending"
    assert view["delivery"]["state"] == "queued"
    assert "Throttling" in view["delivery"]["lastError"]
    # Not due yet: the sweep leaves it alone.
    assert services().sweep.run().sent == 0
    wire(mailer=None)
    clock.advance(minutes=6)
    report = services().sweep.run()
    assert report.sent == 1
    [mail] = mail_to("ivy@example.com")
    token = mail.token(INVITE_PATH)
    assert portal_post(client, {"token": token, "password": "a fine passphrase"}).status_code == 200
    assert services().sweep.run().sent == 0


@pytest.mark.moto
def test_ses_rejecting_an_unverified_sender_is_retried_after_the_fix(
    api, client, clock, monkeypatch, wired
):
    monkeypatch.setenv("SENDER_EMAIL", "unverified@example.com")
    unwire()
    wire(clock=clock)
    invite(api)
    assert mail_to("ivy@example.com") == []
    [view] = api.get("/users/ivy/invitations").json["value"]
    assert view["delivery"]["state"] == "queued"
    boto3.client("ses").verify_email_identity(EmailAddress="unverified@example.com")
    clock.advance(minutes=10)
    assert services().sweep.run().sent == 1
    assert len(mail_to("ivy@example.com")) == 1


def test_a_message_whose_link_died_unsent_is_cancelled(api, clock):
    wire(mailer=FailingMailer())
    invite(api)
    api.call("POST", "/users/ivy/invitations/revoke")
    wire(mailer=None)
    clock.advance(minutes=10)
    report = services().sweep.run()
    assert (report.sent, report.cancelled) == (0, 1)
    assert mail_to("ivy@example.com") == []


def test_names_are_escaped_in_the_html_part(api, client):
    invite(api, first="<script>alert(1)</script>")
    [mail] = mail_to("ivy@example.com")
    assert "<script>" not in mail.html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in mail.html
    token = mail.token(INVITE_PATH)
    assert "<script>alert" not in portal_get(client, token).body.decode()


@pytest.mark.moto
def test_no_raw_token_is_stored_anywhere(api):
    invite(api)
    api.call("POST", "/users/ivy/invitations/resend")
    tokens = [m.token(INVITE_PATH) for m in mail_to("ivy@example.com")]
    dynamodb = boto3.client("dynamodb")
    dump = ""
    for table in dynamodb.list_tables()["TableNames"]:
        dump += str(dynamodb.scan(TableName=table)["Items"])
    assert "ivy@example.com" in dump  # the dump does hold the data
    for token in tokens:
        assert token not in dump


def test_unknown_token_is_404_and_json_callers_get_the_error_body(api, client):
    page = portal_get(client, "not-a-token")
    assert page.status_code == 404
    assert "not valid" in page.body.decode()
    reply = portal_json(client, {"token": "not-a-token", "password": "a fine passphrase"})
    assert reply.status_code == 404
    invite(api)
    token = mail_to("ivy@example.com")[0].token(INVITE_PATH)
    assert portal_json(client, {"token": token, "password": "a fine passphrase"}).status_code == 200
    used = portal_json(client, {"token": token, "password": "a fine passphrase"})
    assert used.status_code == 410
    import json

    assert json.loads(used.body)["error"]["code"] == "Gone"


def test_signup_confirmation_activates_with_the_password_given_at_creation(api, client):
    reply = api.put(
        "/users/sam",
        {
            "properties": {
                "email": "sam@example.com",
                "firstName": "Sam",
                "lastName": "Signup",
                "password": "sam's own passphrase",
                "confirmation": "signup",
            }
        },
    )
    assert reply.json["properties"]["state"] == "pending"
    [mail] = mail_to("sam@example.com")
    path = "/confirm-v2/identities/basic/signup"
    token = mail.token(path)
    assert portal_get(client, token, path).status_code == 200
    assert portal_get(client, token, INVITE_PATH).status_code == 404  # bound to one purpose
    # The link alone is not enough: the password chosen at creation goes with it.
    assert portal_json(client, {"token": token}, path).status_code == 400
    assert api.get("/users/sam").json["properties"]["state"] == "pending"
    sent = {"token": token, "password": "sam's own passphrase"}
    assert portal_json(client, sent, path).status_code == 200
    assert api.get("/users/sam").json["properties"]["state"] == "active"


def test_notify_sends_the_welcome_and_delete_notify_the_farewell(api):
    api.put(
        "/users/wes?notify=true",
        {"properties": {"email": "wes@example.com", "firstName": "Wes", "lastName": "W"}},
    )
    assert [m.subject for m in mail_to("wes@example.com")] == [sent_mail()[-1].subject]
    assert "Welcome" in mail_to("wes@example.com")[0].subject
    api.create_user("quiet")
    assert mail_to("quiet@example.com") == []
    assert api.delete("/users/wes?notify=true", headers={"If-Match": "*"}).status == 204
    assert "Thank you" in mail_to("wes@example.com")[-1].subject


def test_deleting_a_user_kills_the_link_even_if_the_id_comes_back(api, client):
    invite(api)
    token = mail_to("ivy@example.com")[0].token(INVITE_PATH)
    api.delete("/users/ivy", headers={"If-Match": "*"})
    assert portal_get(client, token).status_code == 410
    api.create_user("ivy", "ivy@example.com", state="pending")
    assert portal_get(client, token).status_code == 410


def test_links_use_the_configured_portal_url_not_the_host_header(api, monkeypatch, wired):
    monkeypatch.setenv("PORTAL_URL", "https://developer.example.com/")
    unwire()
    api.put(
        "/users/h",
        {
            "properties": {
                "email": "h@example.com",
                "firstName": "H",
                "lastName": "H",
                "confirmation": "invite",
            }
        },
        headers={"Host": "evil.example.net"},
    )
    link = mail_to("h@example.com")[0].link(INVITE_PATH)
    assert urlsplit(link).netloc == "developer.example.com"


def test_the_schedule_runs_the_sweep(api, client, clock):
    invite(api)
    clock.advance(hours=49)
    event = client.events.generate_cw_event(
        source="aws.events",
        detail_type="Scheduled Event",
        detail={},
        resources=["arn:aws:events:us-east-1:1:rule/sweep"],
    )
    result = client.lambda_.invoke("sweep", event)
    assert result.payload["expired"] == 1


@pytest.mark.parametrize("path", ["/portal.css"])
def test_stylesheet_is_served(client, path):
    reply = client.http.get(path)
    assert reply.status_code == 200
    assert reply.headers["Content-Type"].startswith("text/css")


def test_a_message_whose_first_attempt_never_ran_is_sent_by_the_sweep(api, clock):
    # As if the function died between the commit and the send: the claim lapses, the sweep sends.
    api.create_user("lost", "lost@example.com")
    store, mail = services().store, services().mail
    tx = store.transaction()
    mail.stage(tx, "newDeveloperNotificationMessage", store.users.get("lost"))
    tx.commit()
    clock.advance(minutes=1)
    assert services().sweep.run().sent == 0
    clock.advance(minutes=2)
    assert services().sweep.run().sent == 1
    assert "Welcome" in mail_to("lost@example.com")[0].subject
