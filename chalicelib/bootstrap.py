"""The composition root: one Services object per container, built from the settings."""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING

from chalicelib.config import Settings, get_settings
from chalicelib.domain.clock import Clock, system_clock
from chalicelib.domain.passwords import HashParameters

if TYPE_CHECKING:
    from chalicelib.mail.pacing import SendPacer, Timer
    from chalicelib.mail.sender import Mailer, SesMailer
    from chalicelib.mail.templates import EmailTemplate
    from chalicelib.services.accounts import AccountService
    from chalicelib.services.audit import Audit
    from chalicelib.services.delegation import DelegationService
    from chalicelib.services.groups import GroupService, GroupStore
    from chalicelib.services.invitations import InvitationService
    from chalicelib.services.mailing import MailService
    from chalicelib.services.notifications import NotificationService
    from chalicelib.services.passwords import PasswordService
    from chalicelib.services.portal import PortalService
    from chalicelib.services.profile import ProfileService
    from chalicelib.services.relay import OutboxRelay
    from chalicelib.services.sessions import SessionService
    from chalicelib.services.signup import SignUpService
    from chalicelib.services.subscriptions import KeyCheck, ProductService, SubscriptionService
    from chalicelib.services.sweep import SweepService
    from chalicelib.services.templates import TemplateService, TemplateStore
    from chalicelib.services.throttle import Throttle
    from chalicelib.store.dynamo import DynamoStore


class Services:
    """Every service, each built on first use with its dependencies named here.

    Lazy, so a request imports only what its path uses (argon2, Jinja2 and SES stay out of the
    cold start of a route that needs none of them; no request path sends mail at all). Tests
    build one with their own clock, mailer, timer (what the send pacer sleeps on) and send rate,
    and install it with ``use``; nothing else is patched.
    """

    def __init__(
        self,
        settings: Settings | None = None,
        clock: Clock = system_clock,
        mailer: Mailer | None = None,
        timer: Timer | None = None,
        send_rate: float | None = None,
    ) -> None:
        self._settings = settings
        self.clock = clock
        self.given_mailer = mailer
        self.given_timer = timer
        self.given_send_rate = send_rate
        self._ses: SesMailer | None = None

    @cached_property
    def settings(self) -> Settings:
        # Read on first use: Chalice's test client sets stage variables only during a request.
        return self._settings or get_settings()

    @property
    def hashing(self) -> HashParameters:
        s = self.settings
        return HashParameters(s.argon2_memory_kib, s.argon2_time_cost, s.argon2_parallelism)

    @cached_property
    def store(self) -> DynamoStore:
        from chalicelib.store.dynamo import DynamoStore
        from chalicelib.store.models import bind_tables

        # The PynamoDB models name their tables per stage: bound here, once, in plain sight.
        bind_tables(self.settings)
        return DynamoStore(self.settings)

    def mailer(self) -> Mailer:
        """The given mailer, or SES (its client is made on the first email, not before)."""
        if self.given_mailer is not None:
            return self.given_mailer
        return self._ses_mailer()

    def _ses_mailer(self) -> SesMailer:
        if self._ses is None:
            from chalicelib.mail.sender import SesMailer

            s = self.settings
            self._ses = SesMailer(s.sender_email, s.region, s.mail_drop_dir or None)
        return self._ses

    def max_send_rate(self) -> float:
        """Emails a second: the given rate, else SES's (read once an hour per container), else
        the SES_MAX_SEND_RATE setting (also what a given mailer gets)."""
        if self.given_send_rate is not None:
            return self.given_send_rate
        fallback = self.settings.ses_max_send_rate
        if self.given_mailer is not None:
            return fallback
        return self._ses_mailer().max_send_rate(fallback)

    @cached_property
    def pacer(self) -> SendPacer:
        from chalicelib.mail.pacing import SendPacer, SystemTimer

        # One per container: the relay and the sweep share the account's rate.
        return SendPacer(self.max_send_rate, self.given_timer or SystemTimer())

    def management_keys(self) -> list[str]:
        from chalicelib.keys import management_keys

        return management_keys(self.settings)

    @cached_property
    def audit(self) -> Audit:
        from chalicelib.services.audit import Audit

        return Audit(self.store.audit, self.clock)

    @cached_property
    def mail(self) -> MailService:
        from chalicelib.services.mailing import MailService

        return MailService(self.store, self.settings, self.clock)

    @cached_property
    def relay(self) -> OutboxRelay:
        from chalicelib.services.relay import OutboxRelay

        # Each email uses the admin's version of its template, or the default; each developer
        # email sent is copied to the BCC notification's recipients.
        return OutboxRelay(
            self.store,
            self.email_template,
            self.mailer,
            self.pacer,
            self.settings,
            self.clock,
            bcc=self.notifications,
            # Read when a task comes: the accounts service is built then, not with the relay.
            clean_up=lambda *task: self.accounts.clean_up_deleted(*task),
        )

    def email_template(self, name: str) -> EmailTemplate:
        """The relay's template source: a publisher notification's email, or APIM's template
        (the admin's version, or the default)."""
        from chalicelib.mail.templates import PUBLISHER_TEMPLATE_NAMES, publisher_template

        if name in PUBLISHER_TEMPLATE_NAMES:
            return publisher_template(name)
        return self.templates.email_template(name)

    @cached_property
    def portal(self) -> PortalService:
        from chalicelib.services.portal import PortalService

        return PortalService(self.store, self.clock, audit=self.audit)

    @cached_property
    def notifications(self) -> NotificationService:
        from chalicelib.services.notifications import NotificationService

        return NotificationService(self.store, self.settings, self.clock)

    @cached_property
    def delegation(self) -> DelegationService:
        from chalicelib.services.delegation import DelegationService

        return DelegationService(self.portal)

    @cached_property
    def invitations(self) -> InvitationService:
        from chalicelib.services.invitations import InvitationService

        return InvitationService(
            self.store, self.mail, self.settings, self.clock, self.hashing, audit=self.audit
        )

    @cached_property
    def accounts(self) -> AccountService:
        from chalicelib.services.accounts import AccountService

        return AccountService(
            self.store,
            self.invitations,
            self.mail,
            self.clock,
            self.hashing,
            groups=self.groups,
            audit=self.audit,
        )

    @cached_property
    def groups(self) -> GroupService:
        from chalicelib.services.groups import GroupService

        return GroupService(self.store, self.group_repository, self.clock, audit=self.audit)

    @cached_property
    def group_repository(self) -> GroupStore:
        from chalicelib.store.groups import GroupRepository

        return GroupRepository()

    @cached_property
    def template_repository(self) -> TemplateStore:
        from chalicelib.store.templates import TemplateRepository

        return TemplateRepository()

    @cached_property
    def templates(self) -> TemplateService:
        from chalicelib.services.templates import TemplateService

        return TemplateService(
            self.store, self.template_repository, self.settings, self.clock, audit=self.audit
        )

    @cached_property
    def sweep(self) -> SweepService:
        from chalicelib.services.sweep import SweepService

        return SweepService(self.store, self.relay, self.clock, audit=self.audit)

    @cached_property
    def throttle(self) -> Throttle:
        from chalicelib.services.throttle import Throttle

        return Throttle(self.store.counters, self.clock, audit=self.audit)

    @cached_property
    def passwords(self) -> PasswordService:
        from chalicelib.services.passwords import PasswordService

        return PasswordService(
            self.store,
            self.invitations,
            self.mail,
            self.throttle,
            self.settings,
            self.clock,
            self.hashing,
            audit=self.audit,
        )

    @cached_property
    def sessions(self) -> SessionService:
        from chalicelib.services.sessions import SessionService

        return SessionService(
            self.store,
            self.invitations,
            self.mail,
            self.throttle,
            self.management_keys,
            self.settings,
            self.clock,
            self.hashing,
            audit=self.audit,
        )

    @cached_property
    def profile(self) -> ProfileService:
        from chalicelib.services.profile import ProfileService

        return ProfileService(
            self.store,
            self.accounts,
            self.invitations,
            self.throttle,
            self.clock,
            audit=self.audit,
            notifications=self.notifications,
        )

    @cached_property
    def signup(self) -> SignUpService:
        from chalicelib.services.signup import SignUpService

        return SignUpService(self.accounts, self.portal, self.throttle)

    @cached_property
    def products(self) -> ProductService:
        from chalicelib.services.subscriptions import ProductService

        return ProductService(self.store, self.groups.exists, self.clock, audit=self.audit)

    @cached_property
    def subscriptions(self) -> SubscriptionService:
        from chalicelib.services.subscriptions import SubscriptionService

        return SubscriptionService(
            self.store,
            self.clock,
            audit=self.audit,
            mail=self.mail,
            groups_of=self.groups.groups_of,
            publishers=self.notifications,
        )

    @cached_property
    def key_check(self) -> KeyCheck:
        from chalicelib.services.subscriptions import KeyCheck

        return KeyCheck(self.store)


_current: Services | None = None


def services() -> Services:
    """This container's services, built on first use from the settings."""
    global _current
    if _current is None:
        _current = Services()
    return _current


def use(replacement: Services | None) -> None:
    """The one seam tests use: install their own Services, or None to build afresh."""
    global _current
    _current = replacement
