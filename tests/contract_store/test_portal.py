"""The portal repository's contract, on the fakes and on DynamoDB: settings saved only over the
version read, recipients unique per notification (addresses case-insensitively) and bounded."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from chalicelib.domain.portal import (
    MAX_RECIPIENTS,
    DelegationSettings,
    NotificationName,
    Recipient,
    RecipientGone,
    RecipientKind,
    RecipientLimit,
    RecipientTaken,
    SettingName,
    SignInSettings,
    SignUpSettings,
    TermsOfService,
)
from chalicelib.errors import PreconditionFailed

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def commit(store, stage):
    tx = store.transaction()
    stage(tx)
    tx.commit()


def test_a_setting_is_created_once_and_replaced_only_over_the_version_read(backend):
    portal = backend.store.portal
    assert portal.setting(SettingName.SIGNUP) is None and portal.settings() == {}
    first = SignUpSettings(enabled=False, terms=TermsOfService("T", True, True), version=5)
    commit(backend.store, lambda tx: portal.stage_put_setting(tx, first, None, NOW))
    assert portal.setting(SettingName.SIGNUP) == first
    with pytest.raises(PreconditionFailed):
        commit(backend.store, lambda tx: portal.stage_put_setting(tx, first, None, NOW))
    second = SignUpSettings(enabled=True, terms=TermsOfService(None, False, False), version=6)
    with pytest.raises(PreconditionFailed):
        commit(backend.store, lambda tx: portal.stage_put_setting(tx, second, 4, NOW))
    commit(backend.store, lambda tx: portal.stage_put_setting(tx, second, 5, NOW))
    assert portal.setting(SettingName.SIGNUP) == second
    key = DelegationSettings("https://p.example/d", "a2V5", True, False, version=2)
    commit(backend.store, lambda tx: portal.stage_put_setting(tx, key, None, NOW))
    assert portal.settings() == {SettingName.SIGNUP: second, SettingName.DELEGATION: key}
    signin = SignInSettings(enabled=True, version=3)
    commit(backend.store, lambda tx: portal.stage_put_setting(tx, signin, None, NOW))
    assert portal.setting(SettingName.SIGNIN) == signin


def test_recipients_are_unique_listed_in_key_order_and_removed_once(backend):
    portal = backend.store.portal
    bcc = NotificationName.BCC
    ada = Recipient(bcc, RecipientKind.USER, "ada")
    ops = Recipient(bcc, RecipientKind.EMAIL, "Ops@Example.com")
    other = Recipient(NotificationName.PURCHASE, RecipientKind.EMAIL, "sales@example.com")
    for r in (ops, ada, other):
        commit(backend.store, lambda tx, r=r: portal.stage_add_recipient(tx, r))
    with pytest.raises(RecipientTaken):
        same = Recipient(bcc, RecipientKind.EMAIL, "ops@example.COM")
        commit(backend.store, lambda tx: portal.stage_add_recipient(tx, same))
    assert portal.has_recipient(Recipient(bcc, RecipientKind.EMAIL, "OPS@example.com"))
    assert portal.recipients(bcc) == [ops, ada]
    assert portal.recipients() == [ops, ada, other]
    commit(backend.store, lambda tx: portal.stage_remove_recipient(tx, ada))
    with pytest.raises(RecipientGone):
        commit(backend.store, lambda tx: portal.stage_remove_recipient(tx, ada))
    assert portal.recipients(bcc) == [ops]


def test_a_notification_has_at_most_max_recipients(backend):
    portal = backend.store.portal
    name = NotificationName.ACCOUNT_CLOSED
    for n in range(MAX_RECIPIENTS):
        r = Recipient(name, RecipientKind.EMAIL, f"r{n}@example.com")
        commit(backend.store, lambda tx, r=r: portal.stage_add_recipient(tx, r))
    extra = Recipient(name, RecipientKind.USER, "ada")
    with pytest.raises(RecipientLimit):
        commit(backend.store, lambda tx: portal.stage_add_recipient(tx, extra))
    gone = Recipient(name, RecipientKind.EMAIL, "r0@example.com")
    commit(backend.store, lambda tx: portal.stage_remove_recipient(tx, gone))
    commit(backend.store, lambda tx: portal.stage_add_recipient(tx, extra))
    assert len(portal.recipients(name)) == MAX_RECIPIENTS
