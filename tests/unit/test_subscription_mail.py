"""Which email a subscription's change of state sends its owner, and the portal's name rule."""

import pytest

from chalicelib.domain.subscriptions import (
    PURCHASE_MAIL,
    PURCHASE_PUBLISHER,
    REJECT_MAIL,
    REQUEST_MAIL,
    REQUEST_PUBLISHER,
    SubscriptionState,
    developer_mail,
    publisher_notice,
    read_portal_name,
)
from chalicelib.errors import ValidationFailed

S = SubscriptionState


@pytest.mark.parametrize(
    "before, after, mail",
    [
        (None, S.ACTIVE, PURCHASE_MAIL),
        (None, S.SUBMITTED, REQUEST_MAIL),
        (S.SUBMITTED, S.ACTIVE, PURCHASE_MAIL),
        (S.SUBMITTED, S.REJECTED, REJECT_MAIL),
        # Reactivation is no purchase; nothing else is announced.
        (S.SUSPENDED, S.ACTIVE, None),
        (S.ACTIVE, S.ACTIVE, None),
        (S.ACTIVE, S.SUSPENDED, None),
        (S.ACTIVE, S.CANCELLED, None),
        (S.ACTIVE, S.REJECTED, None),
        (S.REJECTED, S.ACTIVE, None),
        (None, S.CANCELLED, None),
    ],
)
def test_the_developer_hears_of_requests_purchases_and_rejections(before, after, mail):
    assert developer_mail(before, after) == mail


def test_publishers_hear_of_requests_and_purchases_only():
    assert publisher_notice(None, S.SUBMITTED) == REQUEST_PUBLISHER
    assert publisher_notice(S.SUBMITTED, S.ACTIVE) == PURCHASE_PUBLISHER
    assert publisher_notice(S.SUBMITTED, S.REJECTED) is None
    assert publisher_notice(S.SUSPENDED, S.ACTIVE) is None


def test_portal_names_are_one_trimmed_line_of_at_most_100_characters():
    assert read_portal_name("  Weather app ") == "Weather app"
    assert read_portal_name("x" * 100) == "x" * 100
    for bad in (None, "", "  ", "x" * 101, "a\nb", "a\u202eb", "\x00"):
        with pytest.raises(ValidationFailed):
            read_portal_name(bad)
