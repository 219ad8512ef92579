"""TemplateService's previews of the publisher notifications' emails, on the fakes."""

from __future__ import annotations

import pytest

from chalicelib.domain.portal import NotificationName
from chalicelib.errors import ResourceNotFound
from tests.fakes import Services
from tests.services.conftest import create_user


def add(svc: Services, name: NotificationName, *users: str, emails: tuple[str, ...] = ()) -> None:
    for user_id in users:
        assert svc.portal.add(svc.portal.user_recipient(name, user_id))
    for email in emails:
        assert svc.portal.add(svc.portal.email_recipient(name, email))


def test_the_sent_notifications_are_listed_with_their_recipients_counted(svc):
    create_user(svc, "boss", "boss@example.com")
    add(svc, NotificationName.REQUEST, "boss", emails=("ops@example.com", "sales@example.com"))
    add(svc, NotificationName.ACCOUNT_CLOSED, emails=("care@example.com",))
    add(svc, NotificationName.BCC, "boss")
    emails = svc.templates.publisher_emails()
    assert [(e.name, e.recipient_users, e.recipient_emails, e.recipients) for e in emails] == [
        (NotificationName.REQUEST, 1, 2, 3),
        (NotificationName.PURCHASE, 0, 0, 0),
        (NotificationName.ACCOUNT_CLOSED, 0, 1, 1),
    ]
    assert emails[0].title == "Subscription requests (requiring approval)"
    assert "{{ ProdName }}" in emails[0].subject  # the template's own subject, not rendered


@pytest.mark.parametrize(
    "name",
    [NotificationName.REQUEST, NotificationName.PURCHASE, NotificationName.ACCOUNT_CLOSED],
)
def test_each_preview_fills_every_parameter_with_a_sample(svc, name):
    email, rendered = svc.templates.publisher_preview(name)
    assert email.name is name
    for part in (rendered.subject, rendered.html, rendered.text):
        assert "Sample " not in part and "{{" not in part
    assert "Ada" in rendered.html and "Lovelace" in rendered.text


@pytest.mark.parametrize(
    "name", [NotificationName.BCC, NotificationName.NEW_ISSUE, NotificationName.QUOTA]
)
def test_a_notification_sent_as_no_email_of_its_own_has_no_preview(svc, name):
    with pytest.raises(ResourceNotFound):
        svc.templates.publisher_preview(name)
