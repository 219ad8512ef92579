"""Throttling, links and the outbox on fakes: what the sweep and the clock do to them.

tests/api covers the same flows through the pages and the management API (status codes, the
pages, the error bodies); here the rules are run many times, or far into the future, cheaply.
"""

import pytest

from chalicelib.domain.links import LinkPurpose, LinkState
from chalicelib.domain.messages import Delivery
from chalicelib.errors import NotAuthenticated, Throttled
from chalicelib.mail.sender import MailFailed
from tests.fakes import services
from tests.services.conftest import create_user

PASSWORD = "the first passphrase"
INVITE_PATH = "/confirm/invitation"


def invite(svc, user_id="ivy", email=None):
    """An invitation, and its email sent as the relay sends it (the request only records it)."""
    user = create_user(svc, user_id, email, confirmation="invite", state="active")
    for message in list(svc.store.outbox.rows.values()):
        if message.user_id == user.id and message.sent_at is None:
            svc.relay.send_now(message.id)  # what the stream hands the relay
    return user


def token_sent_to(svc, address, path=INVITE_PATH):
    return svc.fake_mailer.to(address)[-1].token(path)


# --- sign-in throttling ------------------------------------------------------------------------


def test_the_11th_failure_from_one_address_is_refused_there_even_with_the_right_password(svc):
    create_user(svc, "dev", "dev@example.com", password=PASSWORD)
    assert svc.settings.signin_failures_per_account_address == 10
    for _ in range(10):
        with pytest.raises(NotAuthenticated):
            svc.sessions.sign_in("dev@example.com", "wrong guess", "127.0.0.9")
    with pytest.raises(Throttled) as throttled:
        svc.sessions.sign_in("dev@example.com", PASSWORD, "127.0.0.9")
    assert throttled.value.retry_after > 0
    # The owner, from another address, is not locked out; the guessing address is, for the hour.
    user, token, _ = svc.sessions.sign_in("dev@example.com", PASSWORD, "127.0.0.1")
    assert user.id == "dev" and token.startswith("dev&")
    svc.clock.advance(hours=1)
    assert svc.sessions.sign_in("dev@example.com", PASSWORD, "127.0.0.9")[0].id == "dev"


def test_failures_count_per_address_too_and_successes_never_count():
    svc = services(signin_failures_per_address=3)
    create_user(svc, "dev", "dev@example.com", password=PASSWORD)
    for email in ("a@example.com", "b@example.com", "c@example.com"):
        with pytest.raises(NotAuthenticated):
            svc.sessions.sign_in(email, "guess", "10.0.0.1")
    with pytest.raises(Throttled):
        svc.sessions.sign_in("dev@example.com", PASSWORD, "10.0.0.1")
    # Another address is not held back by them, and successes are never counted.
    for _ in range(5):
        svc.sessions.sign_in("dev@example.com", PASSWORD, "10.0.0.2")


# --- invitation links and the sweep ------------------------------------------------------------


def test_the_sweep_expires_invitations_once_and_leaves_the_users_pending(svc):
    invite(svc, "a")
    invite(svc, "b")
    svc.clock.advance(hours=24)
    invite(svc, "c")
    svc.clock.advance(hours=25)
    assert svc.sweep.run().expired == 2
    assert svc.sweep.run().expired == 0
    assert svc.invitations.list("a")[0].state is LinkState.EXPIRED
    assert svc.invitations.list("c")[0].state is LinkState.PENDING
    # The user stays pending, as in APIM; the admin can resend.
    assert svc.accounts.get("a").state.value == "pending"
    actions = [e.action for e in svc.audit.for_user("a", 10)]
    assert actions == ["invitation.expired", "user.invited"]


def test_a_mail_failure_keeps_the_invitation_and_the_sweep_delivers_it_when_due(svc):
    svc.fake_mailer.failing = MailFailed(
        "Throttling: Maximum sending rate exceeded.", retryable=True
    )
    invite(svc)
    assert svc.fake_mailer.attempts == 1 and svc.fake_mailer.sent == []
    [view] = svc.invitations.list("ivy")
    assert view.state is LinkState.PENDING
    assert view.delivery.state is Delivery.QUEUED
    assert "Throttling" in view.delivery.last_error
    # Not due yet: the sweep leaves it alone.
    assert svc.sweep.run().sent == 0
    svc.fake_mailer.failing = None
    svc.clock.advance(minutes=6)
    assert svc.sweep.run().sent == 1
    token = token_sent_to(svc, "ivy@example.com")
    assert svc.invitations.accept(token, "a fine passphrase").state.value == "active"
    assert svc.sweep.run().sent == 0
    [view] = svc.invitations.list("ivy")
    assert (view.state, view.delivery.state) == (LinkState.ACCEPTED, Delivery.SENT)


def test_the_sweep_sends_a_fresh_token_and_the_unsent_one_never_works(svc):
    svc.fake_mailer.failing = MailFailed("Throttling", retryable=True)
    invite(svc)
    unsent = svc.store.links.for_user("ivy", {LinkPurpose.INVITE})[0]
    svc.fake_mailer.failing = None
    svc.clock.advance(minutes=6)
    assert svc.sweep.run().sent == 1
    sent = svc.store.links.for_user("ivy", {LinkPurpose.INVITE})[0]
    assert sent.token_hash != unsent.token_hash
    assert svc.invitations.open(token_sent_to(svc, "ivy@example.com"), LinkPurpose.INVITE)


def test_a_message_whose_link_died_unsent_is_cancelled(svc):
    svc.fake_mailer.failing = MailFailed("Throttling", retryable=True)
    invite(svc)
    svc.invitations.revoke("ivy")
    svc.fake_mailer.failing = None
    svc.clock.advance(minutes=10)
    report = svc.sweep.run()
    assert (report.sent, report.cancelled) == (0, 1)
    assert svc.fake_mailer.to("ivy@example.com") == []
    [view] = svc.invitations.list("ivy")
    assert (view.state, view.delivery.state) == (LinkState.REVOKED, Delivery.CANCELLED)


def test_a_permanent_failure_is_given_up_after_three_attempts(svc):
    svc.fake_mailer.failing = MailFailed(
        "SES refused the message: MessageRejected", retryable=False
    )
    invite(svc)
    for _ in range(5):
        svc.clock.advance(hours=1)
        svc.sweep.run()
    [view] = svc.invitations.list("ivy")
    assert view.delivery.state is Delivery.FAILED
    assert view.delivery.attempts == 3
    assert svc.fake_mailer.attempts == 3


def test_a_message_whose_first_attempt_never_ran_is_sent_by_the_sweep(svc):
    # As if the function died between the commit and the send: the claim lapses, the sweep sends.
    user = create_user(svc, "lost", "lost@example.com")
    tx = svc.store.transaction()
    svc.mail.stage(tx, "newDeveloperNotificationMessage", user)
    tx.commit()
    svc.clock.advance(minutes=1)
    assert svc.sweep.run().sent == 0
    svc.clock.advance(minutes=2)
    assert svc.sweep.run().sent == 1
    assert "Welcome" in svc.fake_mailer.to("lost@example.com")[0].subject
