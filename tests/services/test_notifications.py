"""Publisher notifications on fakes: what ``notifications.stage`` records, what the relay sends,
and the BCC copies of developer emails."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from chalicelib.domain.messages import Delivery
from chalicelib.domain.portal import MAX_RECIPIENTS, NotificationName, RecipientKind
from chalicelib.domain.subscriptions import Product, Subscription, SubscriptionState
from chalicelib.errors import ResourceNotFound, StateConflict, ValidationFailed
from chalicelib.mail.render import render
from chalicelib.mail.templates import PUBLISHER_TEMPLATE_NAMES, publisher_template
from tests.fakes import Services
from tests.services.conftest import create_user

PRODUCT = Product(id="starter", display_name="Starter <plan>")
START = datetime(2026, 3, 4, 5, 6, tzinfo=UTC)


def subscription(owner: str = "dev") -> Subscription:
    return Subscription(
        id="sub-1",
        scope="/products/starter",
        display_name="My key",
        state=SubscriptionState.SUBMITTED,
        owner_id=owner,
        created_date=START,
        primary_key="p" * 32,
        secondary_key="s" * 32,
        version=1,
    )


def send_all(svc: Services) -> None:
    """What the stream hands the relay: every message not yet sent (copies it adds too)."""
    while True:
        waiting = [m for m in svc.store.outbox.rows.values() if m.state is Delivery.QUEUED]
        waiting = [m for m in waiting if m.attempts == 0]
        if not waiting:
            return
        for message in waiting:
            svc.relay.send_now(message.id)


def recipients(svc: Services, name: NotificationName, *users: str, emails: tuple[str, ...] = ()):
    for user_id in users:
        assert svc.portal.add(svc.portal.user_recipient(name, user_id))
    for email in emails:
        assert svc.portal.add(svc.portal.email_recipient(name, email))


def stage(svc: Services, name: NotificationName, developer, **about):
    tx = svc.store.transaction()
    staged = svc.notifications.stage(tx, name, developer, **about)
    tx.commit()
    return staged


def test_a_request_notification_stages_one_email_per_recipient_address_with_its_template(svc):
    dev = create_user(svc, "dev", firstName="Dana", lastName="Dev")
    create_user(svc, "boss", "boss@example.com")
    recipients(
        svc, NotificationName.REQUEST, "boss", emails=("ops@example.com", "BOSS@example.com")
    )
    staged = stage(svc, NotificationName.REQUEST, dev, product=PRODUCT, subscription=subscription())
    # boss@example.com is both a user's address and a plain one: one email.
    assert sorted(m.to_email for m in staged) == ["boss@example.com", "ops@example.com"]
    assert all(m.publisher and m.template == NotificationName.REQUEST.value for m in staged)
    send_all(svc)
    [mail] = svc.fake_mailer.to("ops@example.com")
    assert mail.subject == "Subscription request for the Starter <plan> product"
    assert "Dana Dev (dev@example.com)" in mail.text
    assert "Starter &lt;plan&gt;" in mail.html and "sub-1" in mail.text
    assert len(svc.fake_mailer.to("boss@example.com")) == 1


def test_a_purchase_says_when_it_started_and_a_closed_account_reaches_its_recipients(svc):
    dev = create_user(svc, "dev")
    recipients(svc, NotificationName.PURCHASE, emails=("sales@example.com",))
    recipients(svc, NotificationName.ACCOUNT_CLOSED, emails=("care@example.com",))
    active = Subscription(**{**vars(subscription()), "start_date": START})
    stage(svc, NotificationName.PURCHASE, dev, product=PRODUCT, subscription=active)
    stage(svc, NotificationName.ACCOUNT_CLOSED, dev)
    send_all(svc)
    [purchase] = svc.fake_mailer.to("sales@example.com")
    assert "Started: 2026-03-04" in purchase.text
    [closed] = svc.fake_mailer.to("care@example.com")
    assert closed.subject == "A developer closed their account"


def test_a_plain_address_is_mailed_even_after_the_developer_it_is_about_is_gone(svc):
    dev = create_user(svc, "dev")
    recipients(svc, NotificationName.ACCOUNT_CLOSED, emails=("care@example.com",))
    tx = svc.store.transaction()
    svc.notifications.stage(tx, NotificationName.ACCOUNT_CLOSED, dev)
    svc.store.users.stage_delete(tx, dev)
    tx.commit()
    send_all(svc)
    assert len(svc.fake_mailer.to("care@example.com")) == 1


@pytest.mark.parametrize(
    "name",
    [
        NotificationName.NEW_APPLICATION,
        NotificationName.NEW_ISSUE,
        NotificationName.QUOTA,
        NotificationName.BCC,
    ],
)
def test_notifications_about_what_we_do_not_model_are_stored_but_never_staged(svc, name):
    dev = create_user(svc, "dev")
    recipients(svc, name, emails=("ops@example.com",))
    assert stage(svc, name, dev) == []
    assert [v.emails for v in svc.portal.notifications() if v.name is name] == [
        ("ops@example.com",)
    ]


def test_a_notification_without_recipients_stages_nothing(svc):
    dev = create_user(svc, "dev")
    assert stage(svc, NotificationName.PURCHASE, dev, product=PRODUCT) == []


def test_a_deleted_recipient_user_is_skipped(svc):
    dev = create_user(svc, "dev")
    gone = create_user(svc, "gone")
    recipients(svc, NotificationName.ACCOUNT_CLOSED, "gone", emails=("ops@example.com",))
    tx = svc.store.transaction()
    svc.store.users.stage_delete(tx, gone)
    tx.commit()
    assert [m.to_email for m in stage(svc, NotificationName.ACCOUNT_CLOSED, dev)] == [
        "ops@example.com"
    ]


def test_recipients_must_exist_be_addresses_and_stay_within_the_limit(svc):
    with pytest.raises(ResourceNotFound, match="nobody"):
        svc.portal.add(svc.portal.user_recipient(NotificationName.BCC, "nobody"))
    with pytest.raises(ValidationFailed):
        svc.portal.email_recipient(NotificationName.BCC, "not an address")
    for n in range(MAX_RECIPIENTS):
        assert svc.portal.add(svc.portal.email_recipient(NotificationName.BCC, f"r{n}@example.com"))
    with pytest.raises(StateConflict, match="remove one first"):
        svc.portal.add(svc.portal.email_recipient(NotificationName.BCC, "one-more@example.com"))
    # Adding one that is there already is no change; removing one makes room.
    assert not svc.portal.add(svc.portal.email_recipient(NotificationName.BCC, "R0@example.com"))
    assert svc.portal.remove(svc.portal.email_recipient(NotificationName.BCC, "r0@example.com"))
    assert not svc.portal.remove(svc.portal.email_recipient(NotificationName.BCC, "r0@example.com"))
    assert svc.portal.add(svc.portal.email_recipient(NotificationName.BCC, "one-more@example.com"))
    emails = svc.portal.recipients(NotificationName.BCC, RecipientKind.EMAIL)
    assert len(emails) == MAX_RECIPIENTS


def test_every_developer_email_sent_is_copied_once_to_each_bcc_recipient_without_its_link(svc):
    create_user(svc, "admin", "admin@example.com")
    recipients(svc, NotificationName.BCC, "admin", emails=("audit@example.com",))
    create_user(svc, "ivy", confirmation="invite")
    send_all(svc)
    [original] = svc.fake_mailer.to("ivy@example.com")
    token = original.token("/confirm/invitation")
    copies = svc.fake_mailer.to("admin@example.com") + svc.fake_mailer.to("audit@example.com")
    assert len(copies) == 2
    for copy in copies:
        assert copy.subject == original.subject
        assert token not in copy.text and token not in copy.html
        assert "token=withheld-in-copies" in copy.text
    # Handing the original to the relay again sends nothing more, and copies are not copied.
    for message in list(svc.store.outbox.rows.values()):
        svc.relay.send_now(message.id)
    assert len(svc.fake_mailer.sent) == 3


def test_publisher_notifications_themselves_get_no_bcc_copy(svc):
    dev = create_user(svc, "dev")
    recipients(svc, NotificationName.BCC, emails=("audit@example.com",))
    recipients(svc, NotificationName.ACCOUNT_CLOSED, emails=("care@example.com",))
    stage(svc, NotificationName.ACCOUNT_CLOSED, dev)
    send_all(svc)
    assert len(svc.fake_mailer.to("care@example.com")) == 1
    assert svc.fake_mailer.to("audit@example.com") == []


@pytest.mark.parametrize("name", PUBLISHER_TEMPLATE_NAMES)
def test_each_publisher_email_renders_in_the_sandbox_with_its_parameters(name):
    template = publisher_template(name)
    values = {p.name: f"<{p.name}>" for p in template.parameters}
    rendered = render(template, values)
    assert "\n" not in rendered.subject
    # Every value is escaped in HTML, and each parameter the template declares is used.
    assert "<DevFirstName>" not in rendered.html and "&lt;DevFirstName&gt;" in rendered.html
    for p in template.parameters:
        assert f"<{p.name}>" in rendered.text, p.name
