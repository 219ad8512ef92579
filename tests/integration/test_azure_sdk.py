"""The official azure-mgmt-apimanagement client, unmodified, against the live dev server."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.mgmt.apimanagement.models import UserCreateParameters, UserUpdateParameters

from tests.integration.sdk_client import RG, SERVICE, sdk_client, with_status_and_etag

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def client(live_server):
    with sdk_client(live_server) as sdk:
        yield sdk


def new_id(prefix: str = "sdk") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:16]}"


def email_for(user_id: str) -> str:
    return f"{user_id}@example.com"


def create_user(client, user_id: str, email: str | None = None, **fields):
    """PUT a new user; returns (entity, etag)."""
    parameters = UserCreateParameters(
        email=email or email_for(user_id),
        first_name=fields.pop("first_name", "Ada"),
        last_name=fields.pop("last_name", "Lovelace"),
        **fields,
    )
    status, user, etag = client.user.create_or_update(
        RG, SERVICE, user_id, parameters, cls=with_status_and_etag
    )
    assert status == 201
    return user, etag


def test_create_returns_the_new_user_and_its_etag(client, live_server):
    user_id = new_id()
    before = datetime.now(UTC) - timedelta(seconds=5)

    user, etag = create_user(client, user_id, note="first of her kind")

    assert user.name == user_id
    assert user.id == f"{live_server.service_path}/users/{user_id}"
    assert user.type == "Microsoft.ApiManagement/service/users"
    assert (user.email, user.first_name, user.last_name) == (email_for(user_id), "Ada", "Lovelace")
    assert user.state == "active"
    assert user.note == "first of her kind"
    assert before <= user.registration_date <= datetime.now(UTC) + timedelta(seconds=5)
    assert [(i.provider, i.id) for i in user.identities] == [("Basic", email_for(user_id))]
    assert etag and etag.startswith('"') and etag.endswith('"')


def test_replace_needs_the_current_etag(client):
    user_id = new_id()
    _, first_etag = create_user(client, user_id)

    status, replaced, second_etag = client.user.create_or_update(
        RG,
        SERVICE,
        user_id,
        UserCreateParameters(email=email_for(user_id), first_name="Grace", last_name="Hopper"),
        if_match=first_etag,
        cls=with_status_and_etag,
    )
    assert status == 200
    assert (replaced.first_name, replaced.last_name) == ("Grace", "Hopper")
    assert second_etag != first_etag

    with pytest.raises(HttpResponseError) as stale:
        client.user.create_or_update(
            RG,
            SERVICE,
            user_id,
            UserCreateParameters(email=email_for(user_id), first_name="Lost", last_name="Update"),
            if_match=first_etag,
        )
    assert stale.value.status_code == 412
    assert stale.value.error.code == "PreconditionFailed"
    assert client.user.get(RG, SERVICE, user_id).first_name == "Grace"


def test_get_and_entity_tag_of_a_user(client):
    user_id = new_id()
    created, etag = create_user(client, user_id, first_name="Katherine", last_name="Johnson")

    status, user, get_etag = client.user.get(RG, SERVICE, user_id, cls=with_status_and_etag)
    assert status == 200
    assert user.as_dict() == created.as_dict()
    assert get_etag == etag
    assert client.user.get_entity_tag(RG, SERVICE, user_id) is True


def test_a_missing_user_is_not_found(client):
    missing = new_id("missing")
    with pytest.raises(ResourceNotFoundError) as not_found:
        client.user.get(RG, SERVICE, missing)
    assert not_found.value.status_code == 404
    assert not_found.value.error.code == "ResourceNotFound"
    with pytest.raises(ResourceNotFoundError):
        client.user.get_entity_tag(RG, SERVICE, missing)


def test_list_filters_by_email_ignoring_case(client):
    user_id = new_id()
    create_user(client, user_id, email=email_for(user_id).upper())
    create_user(client, new_id())  # someone else, who must not show up

    found = list(
        client.user.list_by_service(RG, SERVICE, filter=f"email eq '{email_for(user_id)}'")
    )

    assert [u.name for u in found] == [user_id]
    assert found[0].email == email_for(user_id).upper()


def test_list_pages_through_a_filtered_collection(client):
    prefix = f"pg{uuid.uuid4().hex[:10]}"
    ids = [f"{prefix}-{n}" for n in range(7)]
    for n, user_id in enumerate(ids):
        create_user(client, user_id, first_name=f"{prefix}{n}")
    create_user(client, new_id(), first_name="Outsider")
    by_prefix = f"startswith(firstName,'{prefix}')"

    everyone = client.user.list_by_service(RG, SERVICE, filter=by_prefix, top=3)
    assert [u.name for u in everyone] == ids  # the SDK follows nextLink to the end

    pages = client.user.list_by_service(RG, SERVICE, filter=by_prefix, top=3).by_page()
    assert [[u.name for u in page] for page in pages] == [ids[0:3], ids[3:6], ids[6:7]]

    skipped = client.user.list_by_service(RG, SERVICE, filter=by_prefix, top=3, skip=2)
    assert [u.name for u in skipped] == ids[2:]

    first_names = [u.first_name for u in client.user.list_by_service(RG, SERVICE, filter=by_prefix)]
    assert first_names == [f"{prefix}{n}" for n in range(7)]


def test_update_changes_the_sent_fields_and_needs_the_current_etag(client):
    user_id = new_id()
    _, etag = create_user(client, user_id)

    status, updated, new_etag = client.user.update(
        RG,
        SERVICE,
        user_id,
        etag,
        UserUpdateParameters(note="prefers punched cards", last_name="King"),
        cls=with_status_and_etag,
    )

    assert status == 200
    assert (updated.note, updated.last_name) == ("prefers punched cards", "King")
    assert (updated.first_name, updated.email) == ("Ada", email_for(user_id))
    assert updated.state == "active"  # the SDK always sends state=active
    assert new_etag != etag
    assert client.user.get(RG, SERVICE, user_id).as_dict() == updated.as_dict()

    with pytest.raises(HttpResponseError) as stale:
        client.user.update(RG, SERVICE, user_id, etag, UserUpdateParameters(note="lost update"))
    assert stale.value.status_code == 412
    assert client.user.get(RG, SERVICE, user_id).note == "prefers punched cards"


def test_delete_removes_the_user_and_frees_the_email(client):
    user_id = new_id()
    _, etag = create_user(client, user_id)

    assert client.user.begin_delete(RG, SERVICE, user_id, if_match=etag).result() is None

    with pytest.raises(ResourceNotFoundError):
        client.user.get(RG, SERVICE, user_id)
    successor, _ = create_user(client, new_id(), email=email_for(user_id))
    assert successor.email == email_for(user_id)


def test_a_user_is_in_the_developers_group_and_has_a_basic_identity(client):
    user_id = new_id()
    create_user(client, user_id)

    groups = {g.name: g for g in client.user_group.list(RG, SERVICE, user_id)}
    assert "developers" in groups
    assert groups["developers"].built_in is True
    assert groups["developers"].display_name == "Developers"

    identities = [i.as_dict() for i in client.user_identities.list(RG, SERVICE, user_id)]
    assert identities == [{"provider": "Basic", "id": email_for(user_id)}]


def test_an_email_already_in_use_is_a_conflict(client):
    owner_id = new_id()
    create_user(client, owner_id)

    with pytest.raises(ResourceExistsError) as conflict:
        create_user(client, new_id(), email=email_for(owner_id).upper())
    assert conflict.value.status_code == 409
    assert conflict.value.error.code == "Conflict"


def test_password_reset_email_token_and_sso_url(client, live_server):
    from azure.mgmt.apimanagement.models import UserTokenParameters

    user_id = new_id()
    create_user(client, user_id, password="a strong passphrase here")
    # 204 is the only status the SDK accepts for the reset email.
    assert client.user_confirmation_password.send(RG, SERVICE, user_id) is None
    [mail] = live_server.mail_to(email_for(user_id))
    assert "/confirm-v2/password?token=" in mail.get_body(("plain",)).get_content()

    expiry = datetime.now(UTC) + timedelta(days=2)
    token = client.user.get_shared_access_token(
        RG, SERVICE, user_id, UserTokenParameters(key_type="primary", expiry=expiry)
    ).value
    assert token.startswith(f"{user_id}&{expiry.strftime('%Y%m%d%H%M')}&")
    me = __import__("requests").get(
        live_server.base_url + "/me",
        headers={"Authorization": f'SharedAccessSignature token="{token}",refresh="true"'},
        timeout=10,
    )
    assert me.status_code == 200
    assert me.json()["name"] == user_id

    url = client.user.generate_sso_url(RG, SERVICE, user_id).value
    assert url.startswith(live_server.base_url + "/signin-sso?token=")
    signed_in = __import__("requests").get(url, timeout=10, allow_redirects=False)
    # To the portal's home, signed in.
    assert signed_in.status_code == 303
    assert "apim_session=" in signed_in.headers["Set-Cookie"]


def test_products_and_subscriptions_through_the_sdk(client):
    from azure.mgmt.apimanagement.models import (
        ProductContract,
        SubscriptionCreateParameters,
    )

    user_id = new_id()
    create_user(client, user_id)
    product_id = new_id("prod")
    product = client.product.create_or_update(
        RG,
        SERVICE,
        product_id,
        ProductContract(display_name="SDK product", subscriptions_limit=3, state="published"),
    )
    assert product.display_name == "SDK product"
    assert product.subscriptions_limit == 3
    sid = new_id("sub")
    status, sub, etag = client.subscription.create_or_update(
        RG,
        SERVICE,
        sid,
        SubscriptionCreateParameters(
            owner_id=f"/users/{user_id}", scope=f"/products/{product_id}", display_name="mine"
        ),
        cls=with_status_and_etag,
    )
    assert status == 201
    assert sub.state == "active"
    assert sub.owner_id.endswith(f"/users/{user_id}")
    assert sub.primary_key is None  # GET and PUT never show keys
    fetched = client.subscription.get(RG, SERVICE, sid)
    assert fetched.display_name == "mine"
    secrets = client.subscription.list_secrets(RG, SERVICE, sid)
    assert secrets.primary_key and secrets.secondary_key
    listed = [s.name for s in client.user_subscription.list(RG, SERVICE, user_id)]
    assert listed == [sid]
    client.subscription.delete(RG, SERVICE, sid, if_match=etag)
    with pytest.raises(ResourceNotFoundError):
        client.subscription.get(RG, SERVICE, sid)
