"""The in-process app under test: moto's backends for the session, the fakes, the wiring seams.

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
        talks to them stay), a table with a stream gets a new one (``renew_stream``), SES forgets
        what it sent and every identity but the sender, and the other services' backends (SSM,
        the Streams API's iterators, when a test used them) are made again.
        """
        from moto.core.base_backend import BackendDict
        from moto.dynamodb.models import dynamodb_backends
        from moto.ses.models import ses_backends

        dynamodb = dynamodb_backends[self.account][self.region]
        if not self.tables <= set(dynamodb.tables):
            self.start(settings)  # a test dropped a table (none does today): make them again
        for table in dynamodb.tables.values():
            table.items.clear()
            if table.stream_shard is not None:
                renew_stream(table)
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


def renew_stream(table: Any) -> None:
    """A new stream for a moto table, as disabling and enabling it again gives in DynamoDB.

    The next test's stream then holds only that test's records. The old one kept every record
    of the session (each test's rows were emptied, their records never): a reader from its
    start (``stream_records`` in tests/support.py) went through all of them, and the worker's
    memory held them. The new stream has a new label, hence a new ``LatestStreamArn``, which is
    how a follower (chalicelib/store/stream.py) knows to start again from its beginning.
    """
    label = table.latest_stream_label
    spec = dict(table.stream_specification)
    table.set_stream_specification(spec)
    # moto's label is the time the stream was made: two in one microsecond would look like one.
    while table.latest_stream_label == label:
        table.set_stream_specification(spec)


class Wired:
    """The app's services as ``chalicelib.bootstrap`` builds them, and the tests' seams.

    Every test starts with the system clock and SES as the mailer; ``use_clock`` and
    ``use_mailer`` install a ``Services`` built with them (``bootstrap.use``, the one seam). A test
    ``on_fakes`` gets the same services built on its own in-memory fakes (tests/fakes.py), whose
    fake mailer stands in for SES.
    """

    def __init__(self) -> None:
        self._seams: dict[str, Any] = {}
        self.on_fakes = False
        self._fakes: tuple[Any, ...] | None = None

    def empty(self, on_fakes: bool) -> None:
        """A new test: on the fakes (new and empty ones) or on moto."""
        self.on_fakes = on_fakes
        self._fakes = None

    def fakes(self) -> tuple[Any, ...]:
        """This test's fake store, groups, templates and mailer (made on first use)."""
        from tests import fakes

        if self._fakes is None:
            self._fakes = (
                fakes.FakeStore(),
                fakes.FakeGroups(),
                fakes.FakeTemplates(),
                fakes.FakeMailer(),
            )
        return self._fakes

    def _install(self) -> None:
        from chalicelib.bootstrap import Services, use
        from chalicelib.domain.clock import system_clock

        seams = self._seams
        if self.on_fakes:
            from tests import fakes

            store, groups, templates, mailer = self.fakes()
            built = fakes.Services(
                settings=None,  # type: ignore[arg-type]  (read in the request, as the app's)
                clock=seams.get("clock") or system_clock,
                store=store,
                group_store=groups,
                template_store=templates,
                mailer=seams.get("mailer") or mailer,
            )
            built.given_timer = seams.get("timer")
            built.given_send_rate = seams.get("send_rate")
            use(built)
            return
        use(
            Services(
                clock=seams.get("clock") or system_clock,
                mailer=seams.get("mailer"),
                timer=seams.get("timer"),
                send_rate=seams.get("send_rate"),
            )
        )

    def use(self, **seams: Any) -> None:
        """Services with these seams (``clock``, ``mailer``, the relay's ``timer`` and
        ``send_rate``); the others keep what an earlier call set."""
        self._seams.update(seams)
        self._install()

    def fresh_start(self) -> None:
        """Before (and after) each in-process test: system clock, SES, settings as set now."""
        from chalicelib.bootstrap import use
        from chalicelib.config import get_settings
        from chalicelib.keys import forget_cached_keys

        self._seams = {}
        get_settings.cache_clear()
        forget_cached_keys()
        use(None)
        if self.on_fakes:
            self._install()

    def reload(self) -> None:
        """Build every service again from the environment as it is now (keeps clock and mailer)."""
        from chalicelib.config import get_settings
        from chalicelib.keys import forget_cached_keys

        get_settings.cache_clear()
        forget_cached_keys()
        self._install()

    def use_clock(self, clock: Clock) -> None:
        self.use(clock=clock)

    def use_mailer(self, mailer: Mailer | None) -> None:
        """A failing or recording mailer; None goes back to SES."""
        self.use(mailer=mailer)

    # The services, as the app's routes get them.
    def _services(self) -> Any:
        from chalicelib.bootstrap import services

        return services()

    def store(self) -> Any:
        return self._services().store

    def mail(self) -> Any:
        return self._services().mail

    def accounts(self) -> Any:
        return self._services().accounts

    def groups(self) -> Any:
        return self._services().groups

    def templates(self) -> Any:
        return self._services().templates

    def sessions(self) -> Any:
        return self._services().sessions

    def sweep(self) -> Any:
        return self._services().sweep

    def audit(self) -> Any:
        return self._services().audit


WIRED = Wired()
