"""Sign-up's rules on fakes: the settings decide, consent is checked, a taken address changes and
mails nothing, and one client address cannot sign up without limit."""

from __future__ import annotations

import pytest

from chalicelib.domain.portal import SettingChanges, SettingName
from chalicelib.domain.users import UserState, email_key, read_draft
from chalicelib.errors import SignUpClosed, Throttled, ValidationFailed
from chalicelib.services.signup import SIGNUPS_PER_ADDRESS_HOUR
from tests.services.conftest import create_user

PASSWORD = "tea kettle in the morning fog"


def draft(email: str = "grace@example.com"):
    body = {"email": email, "firstName": "Grace", "lastName": "Hopper", "password": PASSWORD}
    return read_draft({"properties": body})


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
