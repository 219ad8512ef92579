"""Portal settings, delegation and publisher notifications through the official Azure SDK,
unchanged, over HTTP (sign_in_settings, sign_up_settings, delegation_settings, portal_settings,
notification, notification_recipient_user, notification_recipient_email)."""

from __future__ import annotations

import base64
import os
import uuid

import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.mgmt.apimanagement.models import (
    PortalDelegationSettings,
    PortalSigninSettings,
    PortalSignupSettings,
    RegistrationDelegationSettingsProperties,
    SubscriptionsDelegationSettingsProperties,
    TermsOfServiceProperties,
    UserCreateParameters,
)

from tests.integration.sdk_client import RG, SERVICE, sdk_client, with_status_and_etag

pytestmark = pytest.mark.integration

KEY = base64.b64encode(os.urandom(64)).decode()


@pytest.fixture(scope="module")
def client(live_server):
    with sdk_client(live_server) as sdk:
        yield sdk


@pytest.fixture
def defaults_after(client):
    """The live stack is shared: the settings go back to APIM's defaults afterwards."""
    yield
    client.sign_in_settings.create_or_update(RG, SERVICE, PortalSigninSettings(enabled=False))
    client.sign_up_settings.create_or_update(
        RG,
        SERVICE,
        PortalSignupSettings(
            enabled=True, terms_of_service=TermsOfServiceProperties(text="Terms of service")
        ),
    )
    client.delegation_settings.create_or_update(
        RG,
        SERVICE,
        PortalDelegationSettings(
            url=None,
            subscriptions=SubscriptionsDelegationSettingsProperties(enabled=False),
            user_registration=RegistrationDelegationSettingsProperties(enabled=False),
        ),
    )


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def test_sign_in_settings_get_put_patch_and_etag(client, defaults_after):
    status, model, etag = client.sign_in_settings.get(RG, SERVICE, cls=with_status_and_etag)
    assert status == 200 and etag
    assert model.name == "signin" and model.type == "Microsoft.ApiManagement/service/portalsettings"
    assert client.sign_in_settings.get_entity_tag(RG, SERVICE) is True
    put = client.sign_in_settings.create_or_update(
        RG, SERVICE, PortalSigninSettings(enabled=True), if_match=etag
    )
    assert put.enabled is True
    _, _, current = client.sign_in_settings.get(RG, SERVICE, cls=with_status_and_etag)
    assert (
        client.sign_in_settings.update(RG, SERVICE, current, PortalSigninSettings(enabled=False))
        is None
    )
    assert client.sign_in_settings.get(RG, SERVICE).enabled is False
    with pytest.raises(HttpResponseError) as stale:
        client.sign_in_settings.update(RG, SERVICE, etag, PortalSigninSettings(enabled=True))
    assert stale.value.status_code == 412


def test_sign_up_settings_with_terms_of_service(client, defaults_after):
    terms = TermsOfServiceProperties(text="Play fair.", enabled=True, consent_required=True)
    put = client.sign_up_settings.create_or_update(
        RG, SERVICE, PortalSignupSettings(enabled=True, terms_of_service=terms)
    )
    assert (put.terms_of_service.text, put.terms_of_service.consent_required) == (
        "Play fair.",
        True,
    )
    client.sign_up_settings.update(RG, SERVICE, "*", PortalSignupSettings(enabled=False))
    got = client.sign_up_settings.get(RG, SERVICE)
    assert got.enabled is False and got.terms_of_service.text == "Play fair."
    assert client.sign_up_settings.get_entity_tag(RG, SERVICE) is True
    with pytest.raises(HttpResponseError) as bad:
        client.sign_up_settings.create_or_update(
            RG,
            SERVICE,
            PortalSignupSettings(terms_of_service=TermsOfServiceProperties(text="x" * 50_001)),
        )
    assert bad.value.status_code == 400
    assert bad.value.error.details[0].target == "termsOfService.text"


def test_delegation_settings_keep_their_key_secret_but_for_list_secrets(client, defaults_after):
    settings = PortalDelegationSettings(
        url="https://publisher.example.com/delegate",
        validation_key=KEY,
        subscriptions=SubscriptionsDelegationSettingsProperties(enabled=True),
        user_registration=RegistrationDelegationSettingsProperties(enabled=True),
    )
    put = client.delegation_settings.create_or_update(RG, SERVICE, settings)
    assert put.url == "https://publisher.example.com/delegate"
    assert put.validation_key is None
    got = client.delegation_settings.get(RG, SERVICE)
    assert got.validation_key is None and got.subscriptions.enabled is True
    assert client.delegation_settings.list_secrets(RG, SERVICE).validation_key == KEY
    client.delegation_settings.update(
        RG,
        SERVICE,
        "*",
        PortalDelegationSettings(
            subscriptions=SubscriptionsDelegationSettingsProperties(enabled=False)
        ),
    )
    got = client.delegation_settings.get(RG, SERVICE)
    assert (got.subscriptions.enabled, got.user_registration.enabled) == (False, True)
    assert client.delegation_settings.get_entity_tag(RG, SERVICE) is True
    assert client.delegation_settings.list_secrets(RG, SERVICE).validation_key == KEY


def test_portal_settings_lists_the_three(client):
    listed = client.portal_settings.list_by_service(RG, SERVICE)
    assert listed.count == 3
    assert sorted(v.name for v in listed.value) == ["delegation", "signin", "signup"]
    assert all(v.validation_key is None for v in listed.value)


def test_notifications_and_their_recipients(client):
    names = [n.name for n in client.notification.list_by_service(RG, SERVICE)]
    assert len(names) == 7 and "BCC" in names
    name = "RequestPublisherNotificationMessage"
    assert client.notification.create_or_update(RG, SERVICE, name).title == (
        "Subscription requests (requiring approval)"
    )
    user_id = new_id("publisher")
    client.user.create_or_update(
        RG,
        SERVICE,
        user_id,
        UserCreateParameters(email=f"{user_id}@example.com", first_name="P", last_name="Q"),
    )
    users = client.notification_recipient_user
    added = users.create_or_update(RG, SERVICE, name, user_id)
    assert added.user_id.endswith(f"/users/{user_id}")
    assert users.check_entity_exists(RG, SERVICE, name, user_id) is True
    assert user_id in [r.name for r in users.list_by_notification(RG, SERVICE, name).value]
    users.delete(RG, SERVICE, name, user_id)
    assert users.check_entity_exists(RG, SERVICE, name, user_id) is False
    with pytest.raises(ResourceNotFoundError):
        users.create_or_update(RG, SERVICE, name, new_id("nobody"))

    address = f"{new_id('ops')}@example.com"
    emails = client.notification_recipient_email
    assert emails.create_or_update(RG, SERVICE, name, address).email == address
    assert emails.check_entity_exists(RG, SERVICE, name, address) is True
    got = client.notification.get(RG, SERVICE, name)
    assert any(e.endswith(address) for e in got.recipients.emails)
    assert address in [r.email for r in emails.list_by_notification(RG, SERVICE, name).value]
    emails.delete(RG, SERVICE, name, address)
    assert emails.check_entity_exists(RG, SERVICE, name, address) is False
    with pytest.raises(HttpResponseError) as bad:
        emails.create_or_update(RG, SERVICE, name, "not-an-address")
    assert bad.value.status_code == 400
