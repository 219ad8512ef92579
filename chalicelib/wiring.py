"""Builds the services once per container, lazily, from the settings."""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING

from chalicelib.config import get_settings
from chalicelib.domain.clock import Clock, system_clock
from chalicelib.domain.passwords import HashParameters

if TYPE_CHECKING:
    from chalicelib.mail.sender import Mailer
    from chalicelib.services.accounts import AccountService
    from chalicelib.services.audit import Audit
    from chalicelib.services.groups import GroupService
    from chalicelib.services.invitations import InvitationService
    from chalicelib.services.mailing import MailService
    from chalicelib.services.passwords import PasswordService
    from chalicelib.services.sessions import SessionService
    from chalicelib.services.subscriptions import KeyCheck, ProductService, SubscriptionService
    from chalicelib.services.sweep import SweepService
    from chalicelib.services.templates import TemplateService
    from chalicelib.services.throttle import Throttle
    from chalicelib.store.dynamo import DynamoStore

# Tests replace these two seams; nothing else is patched.
clock: Clock = system_clock
mailer_override: Mailer | None = None


def use_clock(new_clock: Clock) -> None:
    """Tests move time through this seam (no sleeping)."""
    global clock
    clock = new_clock


def use_mailer(new_mailer: Mailer | None) -> None:
    """Tests put a failing or recording mailer here; None goes back to SES."""
    global mailer_override
    mailer_override = new_mailer


def hash_parameters() -> HashParameters:
    s = get_settings()
    return HashParameters(s.argon2_memory_kib, s.argon2_time_cost, s.argon2_parallelism)


@cache
def store() -> DynamoStore:
    from chalicelib.store.dynamo import DynamoStore

    return DynamoStore(get_settings())


@cache
def _ses_mailer() -> Mailer:
    from chalicelib.mail.sender import SesMailer

    s = get_settings()
    return SesMailer(s.sender_email, s.region, s.mail_drop_dir or None)


def mailer() -> Mailer:
    return mailer_override or _ses_mailer()


@cache
def mail() -> MailService:
    from chalicelib.services.mailing import MailService

    # Each email uses the admin's version of its template, or the default.
    return MailService(store(), templates().email_template, mailer, get_settings(), lambda: clock())


@cache
def invitations() -> InvitationService:
    from chalicelib.services.invitations import InvitationService

    return InvitationService(
        store(), mail(), get_settings(), lambda: clock(), hash_parameters(), audit=audit()
    )


@cache
def accounts() -> AccountService:
    from chalicelib.services.accounts import AccountService

    return AccountService(
        store(),
        invitations(),
        mail(),
        lambda: clock(),
        hash_parameters(),
        groups=groups(),
        audit=audit(),
    )


@cache
def groups() -> GroupService:
    from chalicelib.services.groups import GroupService
    from chalicelib.store.groups import GroupRepository

    return GroupService(store(), GroupRepository(), lambda: clock(), audit=audit())


@cache
def templates() -> TemplateService:
    from chalicelib.services.templates import TemplateService
    from chalicelib.store.templates import TemplateRepository

    return TemplateService(
        store(), TemplateRepository(), get_settings(), lambda: clock(), audit=audit()
    )


@cache
def sweep() -> SweepService:
    from chalicelib.services.sweep import SweepService

    return SweepService(store(), mail(), lambda: clock(), audit=audit())


@cache
def throttle() -> Throttle:
    from chalicelib.services.throttle import Throttle

    return Throttle(store().counters, lambda: clock(), audit=audit())


def _keys() -> list[str]:
    from chalicelib.keys import management_keys

    return management_keys(get_settings())


@cache
def passwords() -> PasswordService:
    from chalicelib.services.passwords import PasswordService

    return PasswordService(
        store(),
        invitations(),
        mail(),
        throttle(),
        get_settings(),
        lambda: clock(),
        hash_parameters(),
        audit=audit(),
    )


@cache
def sessions() -> SessionService:
    from chalicelib.services.sessions import SessionService

    return SessionService(
        store(),
        invitations(),
        mail(),
        throttle(),
        _keys,
        get_settings(),
        lambda: clock(),
        hash_parameters(),
        audit=audit(),
    )


def _group_exists(group_id: str) -> bool:
    from chalicelib.errors import ResourceNotFound

    try:
        groups().get(group_id)
    except ResourceNotFound:
        return False
    return True


@cache
def products() -> ProductService:
    from chalicelib.services.subscriptions import ProductService

    return ProductService(store(), _group_exists, lambda: clock(), audit=audit())


@cache
def subscriptions() -> SubscriptionService:
    from chalicelib.services.subscriptions import SubscriptionService

    return SubscriptionService(store(), lambda: clock(), audit=audit())


@cache
def key_check() -> KeyCheck:
    from chalicelib.services.subscriptions import KeyCheck

    return KeyCheck(store())


@cache
def audit() -> Audit:
    from chalicelib.services.audit import Audit

    return Audit(store().audit, lambda: clock())


def reset() -> None:
    """Forget every built service and seam (tests that change settings, the clock or SES)."""
    global clock, mailer_override
    clock = system_clock
    mailer_override = None
    built_services = (store, _ses_mailer, mail, invitations, accounts, sweep)
    later = (throttle, passwords, sessions, groups, templates, products, subscriptions, key_check)
    audit.cache_clear()
    for built in (*built_services, *later):
        built.cache_clear()
    get_settings.cache_clear()
