"""Sign-up's rules on fakes: the settings decide, consent is checked, a taken address changes and
mails nothing, one client address and one email cannot sign up without limit; a pending sign-up
is replaced by a new one; its link activates only with the password chosen at sign-up."""

from __future__ import annotations

import pytest

from chalicelib.domain.links import LinkPurpose, LinkState
from chalicelib.domain.portal import SettingChanges, SettingName
from chalicelib.domain.users import UserState, email_key, read_draft
from chalicelib.errors import (
    LinkUnusable,
    NotAuthenticated,
    SignUpClosed,
    Throttled,
    ValidationFailed,
)
from chalicelib.services.signup import SIGNUPS_PER_ADDRESS_HOUR, SIGNUPS_PER_EMAIL_HOUR
from tests.services.conftest import create_user

PASSWORD = "tea kettle in the morning fog"
THEIRS = "someone else picked this one"
CONFIRM = "/confirm-v2/identities/basic/signup"


def draft(email: str = "grace@example.com", password: str = PASSWORD, first: str = "Grace"):
    body = {"email": email, "firstName": first, "lastName": "Hopper", "password": password}
    return read_draft({"properties": body})


def sent(svc) -> None:
    """What the relay does after the commit: every recorded email goes out."""
    for message in list(svc.store.outbox.rows.values()):
        if message.sent_at is None:
            svc.relay.send_now(message.id)


def link_sent_to(svc, address: str) -> str:
    sent(svc)
    return svc.fake_mailer.to(address)[-1].token(CONFIRM)


def signup_settings(svc, **changes) -> None:
    svc.portal.save(SettingName.SIGNUP, SettingChanges(whole=True, **changes), None)


def found(svc, email: str):
    return svc.store.users.find_by_email(email_key(email))


def test_a_sign_up_is_a_pending_account_with_its_confirmation_email(svc):
    svc.signup.sign_up(draft(), consented=False, client="198.51.100.7")
    user = found(svc, "grace@example.com")
    assert user.state is UserState.PENDING and user.password_hash
    [message] = [m for m in svc.store.outbox.rows.values() if m.user_id == user.id]
    assert message.template == "confirmSignUpIdentityDefault"


def test_closed_sign_up_creates_nothing(svc):
    signup_settings(svc, enabled=False)
    with pytest.raises(SignUpClosed):
        svc.signup.sign_up(draft(), consented=True, client="198.51.100.7")
    assert found(svc, "grace@example.com") is None


def test_consent_is_required_only_when_the_terms_are_shown_and_ask_for_it(svc):
    signup_settings(svc, terms_text="Terms", terms_enabled=False, terms_consent_required=True)
    svc.signup.sign_up(draft("a@example.com"), consented=False, client="198.51.100.7")
    signup_settings(svc, terms_text="Terms", terms_enabled=True, terms_consent_required=True)
    with pytest.raises(ValidationFailed) as refused:
        svc.signup.sign_up(draft("b@example.com"), consented=False, client="198.51.100.7")
    assert refused.value.details[0].target == "consent"
    assert found(svc, "b@example.com") is None
    svc.signup.sign_up(draft("b@example.com"), consented=True, client="198.51.100.7")
    assert found(svc, "b@example.com").state is UserState.PENDING


def test_a_taken_address_changes_and_mails_nothing(svc):
    ada = create_user(svc, "ada", "ada@example.com")
    outbox = dict(svc.store.outbox.rows)
    svc.signup.sign_up(draft("ADA@example.com"), consented=False, client="198.51.100.7")
    assert svc.accounts.get("ada") == ada
    assert dict(svc.store.outbox.rows) == outbox


def test_one_client_address_is_held_back_after_its_hourly_sign_ups(svc):
    for n in range(SIGNUPS_PER_ADDRESS_HOUR):
        svc.signup.sign_up(draft(f"u{n}@example.com"), consented=False, client="198.51.100.7")
    with pytest.raises(Throttled):
        svc.signup.sign_up(draft("late@example.com"), consented=False, client="198.51.100.7")
    assert found(svc, "late@example.com") is None
    svc.signup.sign_up(draft("other@example.com"), consented=False, client="203.0.113.9")


def test_one_email_is_held_back_after_its_hourly_sign_ups_whatever_its_state(svc):
    create_user(svc, "ada", "ada@example.com")
    for address in ("grace@example.com", "ada@example.com"):
        for n in range(SIGNUPS_PER_EMAIL_HOUR):
            svc.signup.sign_up(draft(address), consented=False, client=f"198.51.100.{n}")
        with pytest.raises(Throttled):
            svc.signup.sign_up(draft(address.upper()), consented=False, client="203.0.113.9")
    svc.clock.advance(hours=1)
    svc.signup.sign_up(draft(), consented=False, client="203.0.113.9")


def test_the_link_alone_activates_nothing_and_a_wrong_password_changes_nothing(svc):
    # Someone signs up with Grace's address and picks the password; Grace gets the link.
    svc.signup.sign_up(draft(password=THEIRS), consented=False, client="198.51.100.7")
    token = link_sent_to(svc, "grace@example.com")
    for given in (None, "", PASSWORD):
        with pytest.raises(ValidationFailed) as refused:
            svc.sessions.confirm_sign_up(token, given, "203.0.113.9")
        assert refused.value.details[0].target == "password"
    assert found(svc, "grace@example.com").state is UserState.PENDING
    with pytest.raises(NotAuthenticated):
        svc.sessions.sign_in("grace@example.com", THEIRS, "198.51.100.7")


def test_the_password_chosen_at_sign_up_activates_once_and_signs_in(svc):
    svc.signup.sign_up(draft(), consented=False, client="198.51.100.7")
    token = link_sent_to(svc, "grace@example.com")
    user, session = svc.sessions.confirm_sign_up(token, PASSWORD, "198.51.100.7")
    assert user.state is UserState.ACTIVE and found(svc, "grace@example.com") == user
    assert svc.sessions.authenticate(session, "198.51.100.7") == user
    with pytest.raises(LinkUnusable):
        svc.sessions.confirm_sign_up(token, PASSWORD, "198.51.100.7")


def test_wrong_passwords_on_the_link_are_throttled_like_sign_in(svc):
    svc.signup.sign_up(draft(), consented=False, client="198.51.100.7")
    token = link_sent_to(svc, "grace@example.com")
    for _ in range(svc.settings.signin_failures_per_account_address):
        with pytest.raises(ValidationFailed):
            svc.sessions.confirm_sign_up(token, "a guess at it", "203.0.113.9")
    # The guessing address is held back, even with the right password, and on sign-in too...
    with pytest.raises(Throttled):
        svc.sessions.confirm_sign_up(token, PASSWORD, "203.0.113.9")
    assert found(svc, "grace@example.com").state is UserState.PENDING
    # ...but the owner, from another address, is not locked out.
    user, _ = svc.sessions.confirm_sign_up(token, PASSWORD, "198.51.100.7")
    assert user.state is UserState.ACTIVE


def test_a_new_sign_up_replaces_a_pending_one_and_kills_its_link(svc):
    svc.signup.sign_up(draft(password=THEIRS, first="Mallory"), consented=False, client="10.0.0.1")
    first = link_sent_to(svc, "grace@example.com")
    pending = found(svc, "grace@example.com")
    # The owner never got (or did not want) the first email: she signs up herself.
    svc.clock.advance(minutes=5)
    svc.signup.sign_up(draft(), consented=False, client="198.51.100.7")
    second = link_sent_to(svc, "grace@example.com")
    assert second != first and len(svc.fake_mailer.to("grace@example.com")) == 2
    again = found(svc, "grace@example.com")
    assert again.id == pending.id and again.first_name == "Grace"
    assert again.state is UserState.PENDING
    links = svc.store.links.for_user(again.id, {LinkPurpose.SIGNUP})
    assert [link.state for link in links] == [LinkState.PENDING, LinkState.REVOKED]
    with pytest.raises(LinkUnusable):
        svc.sessions.confirm_sign_up(first, THEIRS, "10.0.0.1")
    with pytest.raises(ValidationFailed):
        svc.sessions.confirm_sign_up(second, THEIRS, "10.0.0.1")
    user, _ = svc.sessions.confirm_sign_up(second, PASSWORD, "198.51.100.7")
    assert user.state is UserState.ACTIVE
    with pytest.raises(NotAuthenticated):
        svc.sessions.sign_in("grace@example.com", THEIRS, "10.0.0.1")
    assert svc.sessions.sign_in("grace@example.com", PASSWORD, "198.51.100.7")[0].id == user.id


def test_an_invited_account_is_left_alone(svc):
    invited = create_user(svc, "ivy", "ivy@example.com", confirmation="invite")
    sent(svc)
    outbox = dict(svc.store.outbox.rows)
    svc.signup.sign_up(draft("ivy@example.com"), consented=False, client="198.51.100.7")
    assert svc.accounts.get("ivy") == invited
    assert dict(svc.store.outbox.rows) == outbox
