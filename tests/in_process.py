"""The in-process app under test: moto's backends for the session, and the wiring seams.

tests/conftest.py makes fixtures of these; they live here so that helpers of test modules reach
the same objects (a conftest is not a module to import from).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from chalicelib.config import Settings
    from chalicelib.domain.clock import Clock
    from chalicelib.mail.sender import Mailer


def share_one_botocore_session() -> None:
    """PynamoDB's connections (one per model, eleven here) share one botocore session.

    PynamoDB makes a botocore session per connection, and each session parses botocore's
    endpoint and service data again: about 0.3 s per model, 3 to 8 s per test process on this
    machine. One session parses them once. Only the cost changes: the in-process tests run on
    one thread, where sharing a session is safe, and every connection still has its own client.
    """
    import botocore.session
    import pynamodb.connection.base

    shared = botocore.session.get_session()
    pynamodb.connection.base.get_session = lambda: shared  # type: ignore[attr-defined]


class MotoSession:
    """moto's in-process backends, with the tables and SES sender made once at start-up."""

    def __init__(self, settings: Settings) -> None:
        from moto.core import DEFAULT_ACCOUNT_ID

        self.account = DEFAULT_ACCOUNT_ID
        self.region = settings.region
        self.sender = settings.sender_email
        self.tables: frozenset[str] = frozenset()
        self._ses: Any = None

    def start(self, settings: Settings) -> None:
        import boto3

        from chalicelib.store.models import ALL_MODELS, create_tables

        share_one_botocore_session()
        create_tables(settings)
        self.tables = frozenset(m.Meta.table_name for m in ALL_MODELS)
        # One client for the whole session (clients cost tens of milliseconds to make).
        self._ses = boto3.client("ses", region_name=self.region)
        self._ses.verify_email_identity(EmailAddress=self.sender)

    def empty(self, settings: Settings) -> None:
        """Back to the start-up state: empty tables, the SES sender verified, nothing sent.

        Everything is done on moto's backend objects, without a request: the rows of each table
        are dropped (one dict clear per table; the tables, their indexes and every client that
        talks to them stay), SES forgets what it sent and every identity but the sender, and the
        other services' backends (SSM, when a test used it) are made again.
        """
        from moto.core.base_backend import BackendDict
        from moto.dynamodb.models import dynamodb_backends
        from moto.ses.models import ses_backends

        dynamodb = dynamodb_backends[self.account][self.region]
        if not self.tables <= set(dynamodb.tables):
            self.start(settings)  # a test dropped a table (none does today): make them again
        for table in dynamodb.tables.values():
            table.items.clear()
        ses = ses_backends[self.account][self.region]
        ses.sent_messages.clear()
        ses.sent_message_count = ses.rejected_messages_count = 0
        for identity in [i for i in ses.email_identities if i != self.sender]:
            del ses.email_identities[identity]
        if self.sender not in ses.email_identities:
            self._ses.verify_email_identity(EmailAddress=self.sender)
        for backends in list(BackendDict._instances):  # type: ignore[attr-defined]
            if backends is not dynamodb_backends and backends is not ses_backends:
                for regions in backends.values():
                    regions.reset()


class Wired:
    """The app's services as ``chalicelib.wiring`` builds them, and its seams, in one place.

    Services are built once and kept from test to test (with their AWS clients); they are built
    again only when the settings they were made from changed (a test set an environment
    variable), or when a test calls ``reload``. Every test starts with the system clock and
    SES as the mailer.
    """

    def __init__(self) -> None:
        self._clock: Clock | None = None
        self._mailer: Mailer | None = None
        self._built_with: Settings | None = None

    def fresh_start(self) -> None:
        """Before (and after) each in-process test: system clock, SES, settings as set now."""
        from chalicelib import wiring
        from chalicelib.config import get_settings
        from chalicelib.keys import forget_cached_keys

        self._clock = self._mailer = None
        get_settings.cache_clear()
        settings = get_settings()
        if settings != self._built_with:
            wiring.reset()
            self._built_with = settings
        wiring.use_clock(wiring.system_clock)
        wiring.use_mailer(None)
        forget_cached_keys()

    def reload(self) -> None:
        """Build every service again from the environment as it is now (keeps clock and mailer)."""
        from chalicelib import wiring
        from chalicelib.keys import forget_cached_keys

        wiring.reset()
        forget_cached_keys()
        self._built_with = None  # the next test builds them again from its own settings
        if self._clock is not None:
            wiring.use_clock(self._clock)
        if self._mailer is not None:
            wiring.use_mailer(self._mailer)

    def use_clock(self, clock: Clock) -> None:
        from chalicelib import wiring

        self._clock = clock
        wiring.use_clock(clock)

    def use_mailer(self, mailer: Mailer | None) -> None:
        """A failing or recording mailer; None goes back to SES."""
        from chalicelib import wiring

        self._mailer = mailer
        wiring.use_mailer(mailer)

    # The services, as the app's routes get them.
    def store(self) -> Any:
        from chalicelib import wiring

        return wiring.store()

    def mail(self) -> Any:
        from chalicelib import wiring

        return wiring.mail()

    def accounts(self) -> Any:
        from chalicelib import wiring

        return wiring.accounts()

    def groups(self) -> Any:
        from chalicelib import wiring

        return wiring.groups()

    def templates(self) -> Any:
        from chalicelib import wiring

        return wiring.templates()

    def sessions(self) -> Any:
        from chalicelib import wiring

        return wiring.sessions()

    def sweep(self) -> Any:
        from chalicelib import wiring

        return wiring.sweep()

    def audit(self) -> Any:
        from chalicelib import wiring

        return wiring.audit()


WIRED = Wired()
