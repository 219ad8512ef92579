"""An email change kills what was bound to the old address: links, and emails not yet sent."""

from chalicelib.bootstrap import services
from tests.api.test_invitations import INVITE_PATH, FailingMailer, invite, portal_get, portal_post
from tests.api.test_signin_and_reset import PASSWORD, RESET_PATH, post_form, send_reset, sign_in
from tests.support import mail_to, wire


def change_email(api, user_id, email):
    reply = api.patch(
        f"/users/{user_id}", {"properties": {"email": email}}, headers={"If-Match": "*"}
    )
    assert reply.status == 200, reply.body
    return reply


def test_a_reset_link_mailed_to_the_old_address_stops_working(api, client):
    api.create_user("dev", "dev@example.com", firstName="Dee", password=PASSWORD)
    token = send_reset(api)
    change_email(api, "dev", "dee@example.org")
    assert client.http.get(f"{RESET_PATH}?token={token}").status_code == 410
    taken = post_form(client, RESET_PATH, {"token": token, "password": "the old mailbox wins"})
    assert taken.status_code == 410
    # The account still has its own password, and the new address gets working links.
    assert sign_in(client, "dee@example.org").status_code == 200
    reply = api.call("POST", "/users/dev/confirmations/password/send")
    assert reply.status == 204
    new_token = mail_to("dee@example.org")[-1].token(RESET_PATH)
    assert client.http.get(f"{RESET_PATH}?token={new_token}").status_code == 200


def test_a_corrected_invitation_address_gets_a_new_invitation_and_the_old_link_dies(api, client):
    invite(api, email="ivy@exmaple.com")  # mistyped
    old = mail_to("ivy@exmaple.com")[0].token(INVITE_PATH)
    change_email(api, "ivy", "ivy@example.com")
    assert portal_get(client, old).status_code == 410
    taken = portal_post(client, {"token": old, "password": "the typo's owner wins"})
    assert taken.status_code == 410
    assert api.get("/users/ivy").json["properties"]["state"] == "pending"
    [mail] = mail_to("ivy@example.com")
    accepted = portal_post(client, {"token": mail.token(INVITE_PATH), "password": "ivy's own one"})
    assert accepted.status_code == 200
    assert api.get("/users/ivy").json["properties"]["state"] == "active"
    states = [v["state"] for v in api.get("/users/ivy/invitations").json["value"]]
    assert states == ["accepted", "revoked"]


def test_a_queued_invitation_is_never_sent_to_the_old_address(api, clock):
    wire(mailer=FailingMailer())
    invite(api, email="ivy@exmaple.com")
    wire(mailer=None)
    change_email(api, "ivy", "ivy@example.com")
    clock.advance(minutes=10)
    services().sweep.run()
    assert mail_to("ivy@exmaple.com") == []
    assert len(mail_to("ivy@example.com")) == 1


def test_a_queued_welcome_is_not_sent_to_an_address_the_account_left(api, clock):
    wire(mailer=FailingMailer())
    reply = api.put(
        "/users/wes?notify=true",
        {"properties": {"email": "wes@old.example", "firstName": "Wes", "lastName": "Old"}},
    )
    assert reply.status == 201
    wire(mailer=None)
    change_email(api, "wes", "wes@new.example")
    clock.advance(minutes=10)
    report = services().sweep.run()
    assert report.cancelled == 1
    assert mail_to("wes@old.example") == []
