"""Groups, memberships and email templates through the official Azure SDK, unchanged, over HTTP."""

from __future__ import annotations

import re
import uuid

import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.mgmt.apimanagement.models import (
    EmailTemplateParametersContractProperties,
    EmailTemplateUpdateParameters,
    GroupCreateParameters,
    GroupUpdateParameters,
    UserCreateParameters,
)

from tests.integration.sdk_client import RG, SERVICE, sdk_client, with_status_and_etag

pytestmark = pytest.mark.integration

INVITE = "inviteUserNotificationMessage"


@pytest.fixture(scope="module")
def client(live_server):
    with sdk_client(live_server) as sdk:
        yield sdk


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def create_user(client, user_id: str, **fields):
    user = UserCreateParameters(
        email=f"{user_id}@example.com", first_name="Ada", last_name="Lovelace", **fields
    )
    return client.user.create_or_update(RG, SERVICE, user_id, user)


def status_of(call, *args, **kwargs):
    """The HTTP status of an SDK call that returns no model."""
    return call(
        *args, cls=lambda response, model, headers: response.http_response.status_code, **kwargs
    )


@pytest.fixture
def reset_templates(client):
    """Email templates are shared by the whole live stack: put every one back afterwards."""
    touched: list[str] = []
    yield touched
    for name in touched:
        client.email_template.delete(RG, SERVICE, name, if_match="*")


# --- groups ------------------------------------------------------------------------------------


def test_a_group_is_created_read_changed_listed_and_deleted(client, live_server):
    group_id = new_id("partners")
    status, group, etag = client.group.create_or_update(
        RG,
        SERVICE,
        group_id,
        GroupCreateParameters(display_name="Partners", description="Companies we work with"),
        cls=with_status_and_etag,
    )
    assert status == 201
    assert group.id == f"{live_server.service_path}/groups/{group_id}"
    assert (group.name, group.display_name, group.type_properties_type, group.built_in) == (
        group_id,
        "Partners",
        "custom",
        False,
    )
    assert etag

    status, replaced, replaced_etag = client.group.create_or_update(
        RG,
        SERVICE,
        group_id,
        GroupCreateParameters(display_name="Partners Inc."),
        if_match=etag,
        cls=with_status_and_etag,
    )
    assert (status, replaced.display_name, replaced.description) == (
        200,
        "Partners Inc.",
        "Companies we work with",
    )
    status, got, got_etag = client.group.get(RG, SERVICE, group_id, cls=with_status_and_etag)
    assert (status, got.as_dict(), got_etag) == (200, replaced.as_dict(), replaced_etag)
    assert client.group.get_entity_tag(RG, SERVICE, group_id) is True

    status, updated, updated_etag = client.group.update(
        RG,
        SERVICE,
        group_id,
        replaced_etag,
        GroupUpdateParameters(description="Changed"),
        cls=with_status_and_etag,
    )
    assert (status, updated.description, updated.display_name) == (200, "Changed", "Partners Inc.")
    assert updated_etag != replaced_etag
    with pytest.raises(HttpResponseError) as stale:
        client.group.update(RG, SERVICE, group_id, etag, GroupUpdateParameters(description="Lost"))
    assert stale.value.status_code == 412

    listed = list(client.group.list_by_service(RG, SERVICE, filter=f"name eq '{group_id}'"))
    assert [g.name for g in listed] == [group_id]
    by_prefix = client.group.list_by_service(
        RG, SERVICE, filter="startswith(displayName,'Partners I')"
    )
    assert group_id in [g.name for g in by_prefix]

    assert status_of(client.group.delete, RG, SERVICE, group_id, if_match=updated_etag) == 204
    with pytest.raises(ResourceNotFoundError):
        client.group.get(RG, SERVICE, group_id)


def test_an_external_group_carries_its_external_id(client):
    group_id = new_id("aad")
    external_id = "aad://contoso.onmicrosoft.com/groups/0f1e2d3c"
    group = client.group.create_or_update(
        RG,
        SERVICE,
        group_id,
        GroupCreateParameters(display_name="AAD", type="external", external_id=external_id),
    )
    assert (group.type_properties_type, group.external_id) == ("external", external_id)
    found = list(client.group.list_by_service(RG, SERVICE, filter=f"externalId eq '{external_id}'"))
    assert group_id in [g.name for g in found]
    with pytest.raises(HttpResponseError) as invalid:
        client.group.create_or_update(
            RG, SERVICE, new_id("aad"), GroupCreateParameters(display_name="X", type="external")
        )
    assert invalid.value.status_code == 400
    assert invalid.value.error.code == "ValidationError"
    assert invalid.value.error.details[0].target == "externalId"


def test_the_built_in_groups_are_listed_and_read_only(client):
    built_in = {g.name: g for g in client.group.list_by_service(RG, SERVICE) if g.built_in}
    assert set(built_in) == {"administrators", "developers", "guests"}
    assert {g.type_properties_type for g in built_in.values()} == {"system"}
    for call, args in (
        (client.group.create_or_update, ("developers", GroupCreateParameters(display_name="Mine"))),
        (client.group.update, ("guests", "*", GroupUpdateParameters(display_name="Mine"))),
        (client.group.delete, ("administrators", "*")),
    ):
        with pytest.raises(HttpResponseError) as refused:
            call(RG, SERVICE, *args)
        assert refused.value.status_code == 405
        assert refused.value.error.code == "MethodNotAllowed"


def test_lists_page_through_next_link(client):
    prefix = f"pg{uuid.uuid4().hex[:8]}"
    ids = [f"{prefix}-{n}" for n in range(5)]
    for group_id in ids:
        client.group.create_or_update(
            RG, SERVICE, group_id, GroupCreateParameters(display_name=group_id)
        )
    pages = client.group.list_by_service(
        RG, SERVICE, filter=f"startswith(name,'{prefix}')", top=2
    ).by_page()
    assert [[g.name for g in page] for page in pages] == [ids[0:2], ids[2:4], ids[4:5]]


# --- memberships -------------------------------------------------------------------------------


def test_membership_through_the_sdk(client):
    group_id, user_id, other_id = new_id("team"), new_id("ada"), new_id("bob")
    client.group.create_or_update(RG, SERVICE, group_id, GroupCreateParameters(display_name="Team"))
    create_user(client, user_id)
    create_user(client, other_id)

    status, user, _ = client.group_user.create(
        RG, SERVICE, group_id, user_id, cls=with_status_and_etag
    )
    assert (status, user.name, user.email) == (201, user_id, f"{user_id}@example.com")
    status, again, _ = client.group_user.create(
        RG, SERVICE, group_id, user_id, cls=with_status_and_etag
    )
    assert (status, again.name) == (200, user_id)
    client.group_user.create(RG, SERVICE, group_id, other_id)

    assert client.group_user.check_entity_exists(RG, SERVICE, group_id, user_id) is True
    members = list(client.group_user.list(RG, SERVICE, group_id))
    assert [m.name for m in members] == sorted([user_id, other_id])
    pages = client.group_user.list(RG, SERVICE, group_id, top=1).by_page()
    assert [[m.name for m in page] for page in pages] == [[n] for n in sorted([user_id, other_id])]
    filtered = client.group_user.list(RG, SERVICE, group_id, filter=f"name eq '{other_id}'")
    assert [m.name for m in filtered] == [other_id]
    groups = [g.name for g in client.user_group.list(RG, SERVICE, user_id)]
    assert sorted(groups) == sorted(["developers", group_id])
    expanded = list(
        client.user.list_by_service(RG, SERVICE, filter=f"name eq '{user_id}'", expand_groups=True)
    )
    assert [g.display_name for g in expanded[0].groups] == ["Developers", "Team"]

    assert status_of(client.group_user.delete, RG, SERVICE, group_id, user_id) == 204
    assert client.group_user.check_entity_exists(RG, SERVICE, group_id, user_id) is False
    assert [g.name for g in client.user_group.list(RG, SERVICE, user_id)] == ["developers"]


def test_built_in_membership_is_managed_by_the_system(client):
    user_id = new_id("sys")
    create_user(client, user_id)
    assert client.group_user.check_entity_exists(RG, SERVICE, "developers", user_id) is True
    assert client.group_user.check_entity_exists(RG, SERVICE, "administrators", user_id) is False
    for call in (client.group_user.create, client.group_user.delete):
        with pytest.raises(HttpResponseError) as refused:
            call(RG, SERVICE, "developers", user_id)
        assert refused.value.status_code == 405
        assert "managed by the system" in refused.value.error.message


def test_deleting_a_group_or_a_user_removes_the_memberships(client):
    group_id, user_id = new_id("gone"), new_id("cy")
    client.group.create_or_update(RG, SERVICE, group_id, GroupCreateParameters(display_name="G"))
    create_user(client, user_id)
    client.group_user.create(RG, SERVICE, group_id, user_id)
    client.user.begin_delete(RG, SERVICE, user_id, if_match="*").result()
    assert list(client.group_user.list(RG, SERVICE, group_id)) == []

    create_user(client, user_id)  # the same id, a new account: not a member
    assert client.group_user.check_entity_exists(RG, SERVICE, group_id, user_id) is False
    client.group_user.create(RG, SERVICE, group_id, user_id)
    client.group.delete(RG, SERVICE, group_id, if_match="*")
    assert [g.name for g in client.user_group.list(RG, SERVICE, user_id)] == ["developers"]


# --- email templates ---------------------------------------------------------------------------


def test_templates_are_listed_and_read(client):
    everything = list(client.email_template.list_by_service(RG, SERVICE))
    assert len(everything) == 14
    assert all(re.fullmatch(r"[A-Z][A-Za-z]+", t.name) for t in everything)
    [invite] = client.email_template.list_by_service(RG, SERVICE, filter=f"name eq '{INVITE}'")
    assert invite.name == "InviteUserNotificationMessage"
    pages = list(client.email_template.list_by_service(RG, SERVICE, top=5).by_page())
    assert [len(list(p)) for p in pages] == [5, 5, 4]

    status, template, etag = client.email_template.get(
        RG, SERVICE, INVITE, cls=with_status_and_etag
    )
    assert (status, template.name, template.is_default) == (
        200,
        "InviteUserNotificationMessage",
        True,
    )
    assert "ConfirmUrl" in {p.name for p in template.parameters}
    assert etag
    assert client.email_template.get_entity_tag(RG, SERVICE, INVITE) is True


def test_a_changed_invitation_template_is_sent_and_delete_restores_the_default(
    client, live_server, reset_templates
):
    reset_templates.append(INVITE)
    status, saved, _ = client.email_template.create_or_update(
        RG,
        SERVICE,
        INVITE,
        EmailTemplateUpdateParameters(
            subject="Join $OrganizationName, $DevFirstName",
            body='<p>Dear $DevFirstName,</p><p><a href="$ConfirmUrl">Accept</a></p>',
            parameters=[
                EmailTemplateParametersContractProperties(
                    name="DevFirstName", title="First name", description="first-name"
                )
            ],
        ),
        cls=with_status_and_etag,
    )
    assert status == 201
    assert (saved.is_default, saved.subject) == (False, "Join $OrganizationName, $DevFirstName")
    assert [p.name for p in saved.parameters] == ["DevFirstName"]
    status, patched, patched_etag = client.email_template.get(
        RG, SERVICE, INVITE, cls=with_status_and_etag
    )
    updated = client.email_template.update(
        RG, SERVICE, INVITE, patched_etag, EmailTemplateUpdateParameters(title="Invitation")
    )
    assert (updated.title, updated.subject) == ("Invitation", patched.subject)

    user_id = new_id("inv")
    create_user(client, user_id, confirmation="invite", app_type="developerPortal")
    [mail] = live_server.mail_to(f"{user_id}@example.com")
    assert mail["Subject"] == "Join Contoso, Ada"
    html = mail.get_body(("html",)).get_content()
    text = mail.get_body(("plain",)).get_content()
    link = re.search(r'href="([^"]+)"', html).group(1)
    assert link.startswith(f"{live_server.base_url}/confirm/invitation?token=")
    assert "Dear Ada," in html and f"Accept: {link}" in text

    current = client.email_template.get(RG, SERVICE, INVITE, cls=with_status_and_etag)[2]
    assert status_of(client.email_template.delete, RG, SERVICE, INVITE, if_match=current) == 204
    assert client.email_template.get(RG, SERVICE, INVITE).is_default is True
    again = new_id("inv")
    create_user(client, again, confirmation="invite", app_type="developerPortal")
    [default] = live_server.mail_to(f"{again}@example.com")
    assert default["Subject"] == "You are invited to join the Contoso developer network"


def test_an_invalid_template_is_refused_with_details(client, reset_templates):
    reset_templates.append(INVITE)
    with pytest.raises(HttpResponseError) as refused:
        client.email_template.create_or_update(
            RG,
            SERVICE,
            INVITE,
            EmailTemplateUpdateParameters(
                body="<p>No link for $DevFirstName {{ ''.__class__ }}</p>"
            ),
        )
    assert refused.value.status_code == 400
    assert refused.value.error.code == "ValidationError"
    assert {d.target for d in refused.value.error.details} == {"body"}
    with pytest.raises(HttpResponseError) as stale:
        client.email_template.update(
            RG, SERVICE, INVITE, '"AAAAAAAAAAk="', EmailTemplateUpdateParameters(subject="S")
        )
    assert stale.value.status_code == 412
    with pytest.raises(ResourceNotFoundError):
        client.email_template.get(RG, SERVICE, "notATemplate")
    assert client.email_template.get(RG, SERVICE, INVITE).is_default is True
