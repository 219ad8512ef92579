"""Portal settings' bodies and changes: PUT resets what it omits, PATCH keeps it, the key stays."""

import base64

import pytest

from chalicelib.domain.portal import (
    DelegationSettings,
    SettingName,
    SignUpSettings,
    TermsOfService,
    apply_changes,
    notification_name,
    read_setting_changes,
    setting_name,
)
from chalicelib.errors import MalformedRequest, ValidationFailed

KEY = base64.b64encode(bytes(64)).decode()
CONFIGURED = SignUpSettings(enabled=False, terms=TermsOfService("Mine", True, True), version=7)


def changes(name, whole, **props):
    return read_setting_changes(name, {"properties": props}, whole=whole)


def test_a_put_resets_what_it_omits_and_a_patch_keeps_it():
    put = apply_changes(CONFIGURED, changes(SettingName.SIGNUP, True, enabled=False))
    assert put.terms == SignUpSettings().terms and put.enabled is False
    patch = apply_changes(
        CONFIGURED, changes(SettingName.SIGNUP, False, termsOfService={"enabled": False})
    )
    assert patch.terms == TermsOfService("Mine", False, True) and patch.enabled is False


def test_the_key_is_kept_by_any_body_without_one_and_a_null_url_clears_the_url():
    current = DelegationSettings("https://p.example/d", KEY, True, False)
    put = apply_changes(current, changes(SettingName.DELEGATION, True))
    assert (put.url, put.validation_key, put.enabled) == (None, KEY, False)
    # Delegation still on: its URL cannot go; once off, it can.
    with pytest.raises(ValidationFailed) as refused:
        apply_changes(current, changes(SettingName.DELEGATION, False, url=None))
    assert [d.target for d in refused.value.details] == ["url"]
    off = changes(SettingName.DELEGATION, False, url=None, subscriptions={"enabled": False})
    assert apply_changes(current, off).url is None


def test_every_bad_field_is_reported_at_once():
    with pytest.raises(ValidationFailed) as refused:
        changes(
            SettingName.DELEGATION,
            True,
            url="mailto:x@example.com",
            validationKey="!!",
            subscriptions={"enabled": "true"},
            userRegistration=[],
        )
    targets = [d.target for d in refused.value.details]
    assert targets == ["url", "validationKey", "subscriptions.enabled", "userRegistration"]


def test_a_body_that_is_not_an_object_is_malformed():
    with pytest.raises(MalformedRequest):
        read_setting_changes(SettingName.SIGNIN, [], whole=True)


def test_names_are_matched_case_insensitively():
    assert setting_name("SignUp") is SettingName.SIGNUP and setting_name("x") is None
    assert notification_name("bcc").value == "BCC" and notification_name("nope") is None
