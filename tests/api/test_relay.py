"""The outbox relay: a request only records its email; the relay, which the outbox table's stream
triggers, sends each message once, at SES's send rate, with a link minted when it sends."""

from collections import Counter
from urllib.parse import parse_qs, urlsplit

import pytest

from chalicelib.bootstrap import services
from tests.support import (
    RecordingMailer,
    ThrottlingMailer,
    VirtualTimer,
    relay,
    relay_paused,
    stream_records,
    wire,
)

INVITE_PATH = "/confirm/invitation"


def invite(api, user_id="ivy", email=None):
    body = {
        "properties": {
            "email": email or f"{user_id}@example.com",
            "firstName": "Ivy",
            "lastName": "Invitee",
            "confirmation": "invite",
        }
    }
    reply = api.put(f"/users/{user_id}", body)
    assert reply.status == 201, reply.body
    return reply


def delivery(api, user_id="ivy"):
    return api.get(f"/users/{user_id}/invitations").json["value"][0]["delivery"]


def token_in(email):
    for word in email.text.split():
        if INVITE_PATH in word:
            return parse_qs(urlsplit(word.rstrip(".,")).query)["token"][0]
    raise AssertionError(f"no invitation link in {email.text}")


def test_an_invitation_request_only_records_its_email_and_the_relay_sends_it(api, client):
    mailer = RecordingMailer()
    wire(mailer=mailer)
    with relay_paused():
        invite(api)
        assert mailer.sent == []
        assert (delivery(api)["state"], delivery(api)["attempts"]) == ("queued", 0)
    relay()
    [email] = mailer.sent
    assert email.to == "ivy@example.com"
    assert (delivery(api)["state"], delivery(api)["attempts"]) == ("sent", 1)
    page = client.http.get(f"{INVITE_PATH}?token={token_in(email)}")
    assert page.status_code == 200
    assert "ivy@example.com" in page.body.decode()


def test_the_email_uses_its_template_as_it_is_when_the_relay_sends_it(api):
    mailer = RecordingMailer()
    wire(mailer=mailer)
    with relay_paused():
        invite(api)
        changed = api.put(
            "/templates/inviteUserNotificationMessage",
            {"properties": {"subject": "Come and join {{ OrganizationName }}"}},
        )
        assert changed.status == 201, changed.body
    relay()
    [email] = mailer.sent
    assert email.subject == "Come and join Contoso"


@pytest.mark.moto
def test_a_batch_handed_over_twice_sends_once_and_the_mailed_link_keeps_working(api, client):
    mailer = RecordingMailer()
    wire(mailer=mailer)
    with relay_paused():
        invite(api)
    records = stream_records()
    first = client.lambda_.invoke("outbox_relay", {"Records": records}).payload
    # Lambda hands a batch over again when a function times out after its work was done.
    again = client.lambda_.invoke("outbox_relay", {"Records": records}).payload
    assert first == again == {"batchItemFailures": []}
    [email] = mailer.sent
    assert client.http.get(f"{INVITE_PATH}?token={token_in(email)}").status_code == 200


def test_a_sweep_that_sends_before_a_late_relay_leaves_it_nothing_to_send(api, client, clock):
    mailer = RecordingMailer()
    wire(mailer=mailer)
    with relay_paused():
        invite(api)
        clock.advance(minutes=3)  # the relay's lease on the new message lapsed: the sweep's turn
        assert services().sweep.run().sent == 1
    relay()  # the stream's record of the message arrives at the relay after all
    [email] = mailer.sent
    assert client.http.get(f"{INVITE_PATH}?token={token_in(email)}").status_code == 200
    assert (delivery(api)["state"], delivery(api)["attempts"]) == ("sent", 1)


def test_a_held_email_is_left_by_the_relay_for_its_sender_and_the_sweep_is_the_net(api, clock):
    """apim-users create-admin prints the link it mails, so it must be the one to send it: the
    stream's relay leaves a held email alone (it used to race the command and win, and the
    command found no link); if the sender never sends, the sweep does after the lease."""
    mailer = RecordingMailer()
    wire(mailer=mailer)
    api.create_user("ada", "ada@example.com")
    relay()
    mailer.sent.clear()
    held = services().passwords.send_by_admin("ada", held=True)
    assert relay() >= 1 and mailer.sent == []  # the relay read it and left it
    services().relay.send_now(held)
    [email] = mailer.sent
    assert email.to == "ada@example.com" and "/confirm-v2/password" in email.text
    # Held, and its sender gone before sending: the sweep's net, after the lease.
    forgotten = services().passwords.send_by_admin("ada", held=True)
    relay()
    assert len(mailer.sent) == 1
    clock.advance(minutes=3)
    assert services().sweep.run().sent == 1
    assert services().store.outbox.get(forgotten).state.value == "sent"


def test_a_relay_that_sent_leaves_the_sweep_nothing_to_send(api, clock):
    mailer = RecordingMailer()
    wire(mailer=mailer)
    invite(api)
    clock.advance(minutes=10)
    assert services().sweep.run().sent == 0
    assert len(mailer.sent) == 1


def test_an_invitation_revoked_before_the_relay_ran_is_never_mailed(api):
    mailer = RecordingMailer()
    wire(mailer=mailer)
    with relay_paused():
        invite(api)
        assert api.call("POST", "/users/ivy/invitations/revoke").status == 200
    relay()
    assert mailer.sent == []
    assert delivery(api)["state"] == "cancelled"


class BrokenMailer(RecordingMailer):
    """A mailer that crashes (not an SES answer) on its first email only."""

    def __init__(self):
        super().__init__()
        self.crashed = False

    def send(self, email):
        if not self.crashed:
            self.crashed = True
            raise RuntimeError("the SES client crashed")
        return super().send(email)


@pytest.mark.moto
def test_the_function_answers_what_it_did_not_handle_and_the_sweep_sends_that(api, client, clock):
    mailer = BrokenMailer()
    wire(mailer=mailer)
    with relay_paused():
        for user_id in ("a", "b", "c"):
            invite(api, user_id)
    records = stream_records()
    answer = client.lambda_.invoke("outbox_relay", {"Records": records}).payload
    # The first message crashed: it and the rest are handed back, as Lambda's retry will.
    failed = [f["itemIdentifier"] for f in answer["batchItemFailures"]]
    assert failed == [r["dynamodb"]["SequenceNumber"] for r in records]
    retry = [r for r in records if r["dynamodb"]["SequenceNumber"] in failed]
    assert client.lambda_.invoke("outbox_relay", {"Records": retry}).payload == {
        "batchItemFailures": []
    }
    assert sorted(e.to for e in mailer.sent) == ["b@example.com", "c@example.com"]
    # The crashed attempt was claimed: nobody sends it until its lease lapses, then the sweep.
    assert delivery(api, "a")["state"] == "queued"
    clock.advance(minutes=3)
    assert services().sweep.run().sent == 1
    assert sorted(e.to for e in mailer.sent) == ["a@example.com", "b@example.com", "c@example.com"]


def test_500_invitations_in_a_burst_are_each_delivered_once_within_14_a_second(api):
    timer = VirtualTimer()
    mailer = ThrottlingMailer(14, timer.monotonic)
    wire(mailer=mailer, timer=timer, send_rate=14)
    addresses = [f"burst{n:03d}@example.com" for n in range(500)]
    with relay_paused():
        for n, address in enumerate(addresses):
            invite(api, f"burst{n:03d}", address)
    relay()
    counts = Counter(email.to for email in mailer.sent)
    assert set(counts) == set(addresses)  # none lost
    assert set(counts.values()) == {1}  # none twice
    # Nothing is left for the sweep, and every invitation shows its email sent.
    assert services().sweep.run().as_dict() == {
        "expired": 0,
        "sent": 0,
        "retried": 0,
        "failed": 0,
        "cancelled": 0,
    }
    for n in (0, 250, 499):
        assert delivery(api, f"burst{n:03d}")["state"] == "sent"


def test_a_throttled_send_is_retried_within_seconds_not_left_for_the_sweep(api):
    # The relay believes it may send 50 a second; SES takes 14: it answers Throttling.
    timer = VirtualTimer()
    mailer = ThrottlingMailer(14, timer.monotonic)
    wire(mailer=mailer, timer=timer, send_rate=50)
    with relay_paused():
        for n in range(40):
            invite(api, f"t{n:02d}")
    relay()
    assert mailer.refused > 0
    assert Counter(e.to for e in mailer.sent) == {f"t{n:02d}@example.com": 1 for n in range(40)}
    # Each went out on its first attempt (the retries were within it), without the sweep.
    for n in range(40):
        assert (delivery(api, f"t{n:02d}")["state"], delivery(api, f"t{n:02d}")["attempts"]) == (
            "sent",
            1,
        )
