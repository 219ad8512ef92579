"""Helpers shared by the API tests: a management client and APIM error-body checks."""

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from chalicelib.config import get_settings
from chalicelib.domain.sas import management_token

API_VERSION = "2024-05-01"


def admin_token(key: str = "test-primary-key", hours: float = 1) -> str:
    expiry = datetime.now(UTC) + timedelta(hours=hours)
    return "SharedAccessSignature " + management_token("integration", expiry, key)


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def etag(self) -> str | None:
        return {k.lower(): v for k, v in self.headers.items()}.get("etag")


class Verbs:
    """The shortcuts both API clients offer; each defines ``call``."""

    def call(self, method: str, path: str, body: Any = None, **kw: Any) -> Reply:
        raise NotImplementedError

    def get(self, path: str, **kw: Any) -> Reply:
        return self.call("GET", path, **kw)

    def put(self, path: str, body: Any = None, **kw: Any) -> Reply:
        return self.call("PUT", path, body, **kw)

    def patch(self, path: str, body: Any = None, **kw: Any) -> Reply:
        return self.call("PATCH", path, body, **kw)

    def delete(self, path: str, **kw: Any) -> Reply:
        return self.call("DELETE", path, **kw)

    def head(self, path: str, **kw: Any) -> Reply:
        return self.call("HEAD", path, **kw)

    def create_user(self, user_id: str, email: str | None = None, **props: Any) -> Reply:
        properties = {
            "email": email or f"{user_id}@example.com",
            "firstName": props.pop("firstName", "Ada"),
            "lastName": props.pop("lastName", "Lovelace"),
            **props,
        }
        reply = self.put(f"/users/{user_id}", {"properties": properties})
        assert reply.status in (200, 201), reply.body
        return reply


class Api(Verbs):
    """Management calls with auth and api-version filled in, paths relative to the instance."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.base = get_settings().service_path
        self.token = admin_token()

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        headers: dict[str, str] | None = None,
        api_version: str | None = API_VERSION,
        raw: bytes | str | None = None,
        absolute: bool = False,
    ) -> Reply:
        url = path if absolute else self.base + path
        if url.startswith(("http://", "https://")):
            # A link the service built: send its path, to its host, as a real client would.
            from urllib.parse import urlsplit

            parts = urlsplit(url)
            url = parts.path + (f"?{parts.query}" if parts.query else "")
            headers = {"Host": parts.netloc, **(headers or {})}
        if api_version is not None:
            url += ("&" if "?" in url else "?") + f"api-version={api_version}"
        sent = {"Authorization": self.token, "Content-Type": "application/json"}
        sent.update(headers or {})
        sent = {k: v for k, v in sent.items() if v is not None}
        payload = raw if raw is not None else (json.dumps(body) if body is not None else b"")
        r = self.client.http.request(method, url, headers=sent, body=payload)
        return Reply(r.status_code, dict(r.headers), r.body or b"")


def error_of(reply: Reply) -> dict[str, Any]:
    """The APIM error object, after checking the body has exactly its shape."""
    body = reply.json
    assert set(body) == {"error"}
    assert {"code", "message", "details"} <= set(body["error"])
    assert reply.headers.get("Content-Type", "").startswith("application/json")
    return body["error"]


@dataclass
class Mail:
    """One message SES accepted, parsed."""

    to: str
    subject: str
    html: str
    text: str

    def link(self, path: str) -> str:
        """The first link in the text part that goes to ``path``."""
        import re

        for url in re.findall(r"https?://\S+", self.text):
            if path in url:
                return url.rstrip(".,)>")
        raise AssertionError(f"no link to {path} in: {self.text}")

    def token(self, path: str) -> str:
        from urllib.parse import parse_qs, urlsplit

        return parse_qs(urlsplit(self.link(path)).query)["token"][0]


def sent_mail() -> list[Mail]:
    """Every message the in-process moto SES accepted (the fake mailer took, on the fakes),
    oldest first, once the relay has run over what the outbox stream holds (unless a test
    holds it back)."""
    from email import message_from_string, policy

    from tests.in_process import WIRED

    if not _relay["paused"]:
        relay()
    if WIRED.on_fakes:
        return [Mail(m.to, m.subject, m.html, m.text) for m in WIRED.fakes()[3].sent]

    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.ses.models import ses_backends

    found = []
    for raw in ses_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].sent_messages:
        if not hasattr(raw, "raw_data"):
            continue
        msg = message_from_string(raw.raw_data, policy=policy.default)
        html = msg.get_body(("html",))
        text = msg.get_body(("plain",))
        found.append(
            Mail(
                to=str(msg["To"]),
                subject=str(msg["Subject"]),
                html=html.get_content() if html else "",
                text=text.get_content() if text else "",
            )
        )
    return found


def mail_to(address: str) -> list[Mail]:
    return [m for m in sent_mail() if address in m.to]


class MovableClock:
    """The services' clock in tests: starts now, moves only when told."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


class RecordingMailer:
    """A Mailer that keeps what it is given: shows whether (and when) anything was sent."""

    def __init__(self) -> None:
        self.sent: list[Any] = []

    def send(self, email: Any) -> str:
        self.sent.append(email)
        return f"recorded-{len(self.sent)}"


class ThrottlingMailer(RecordingMailer):
    """SES as it answers past the account's maximum send rate: a send that would make more
    than ``limit`` in the last second (by ``now``) is refused with SES's Throttling error."""

    def __init__(self, limit: int, now: Any) -> None:
        super().__init__()
        self.limit = limit
        self.now = now
        self.times: list[float] = []
        self.refused = 0

    def send(self, email: Any) -> str:
        from chalicelib.mail.sender import MailFailed

        now = self.now()
        # A hair under a second, so that sends spaced exactly 1/limit apart are never refused
        # for a rounding error.
        recent = [t for t in self.times[-self.limit :] if now - t < 1.0 - 1e-6]
        if len(recent) >= self.limit:
            self.refused += 1
            raise MailFailed(
                "SES refused the message: Throttling", retryable=True, code="Throttling"
            )
        self.times.append(now)
        return super().send(email)


class VirtualTimer:
    """What the send pacer sleeps on, in tests: a monotonic time that moves only when slept,
    so pacing 500 emails at 14 a second takes no real time."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept = 0.0

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += max(seconds, 0.0)
        self.slept += max(seconds, 0.0)


def wire(**seams: Any) -> None:
    """The tests' one seam: services with this ``clock`` and/or ``mailer`` (None: SES), and for
    the relay's pacing a ``timer`` (a VirtualTimer) and a ``send_rate`` (emails a second).

    Seams not named keep what an earlier call set.
    """
    from tests.in_process import WIRED

    for name in ("clock", "mailer", "timer", "send_rate"):
        if name in seams:
            WIRED.use(**{name: seams[name]})


def unwire() -> None:
    """Forget the test's clock, mailer and settings: the next request builds afresh."""
    from tests.in_process import WIRED

    WIRED.fresh_start()
    # The stream follower stays: it notices the next test's new stream and reads it from its start.
    _relay["paused"] = False


# -- the outbox relay, in process -------------------------------------------------------------

# Under mock_aws the Streams API answers only at its own endpoint, named explicitly.
STREAMS_ENDPOINT = "https://streams.dynamodb.us-east-1.amazonaws.com"
# ``seen``: the outbox stream as the last look found it; ``failed``: the last drain raised.
# ``fakes``: the fake outbox of the test on the fakes and its follower.
_relay: dict[str, Any] = {
    "follower": None,
    "paused": False,
    "seen": None,
    "failed": False,
    "fakes": None,
}


def relay() -> int:
    """Run the outbox relay over what the outbox table's stream gained since the last run.

    The records are read from moto's DynamoDB Streams API and handed, in batches of the event
    source mapping's size, to ``outbox_relay`` (app.py): the Lambda function AWS invokes. Returns
    how many records it read.

    Most requests record no email, and a drain is three Streams and DynamoDB calls through
    botocore and moto: so the stream is first looked at in moto's backend, and the drain is
    skipped when, since the last look, it gained no record the event source mapping hands over
    (a new message: the relay's own claims and sends are filtered out, in AWS and by the
    follower), unless the last drain was handed records back to retry or raised.
    """
    from app import outbox_relay
    from chalicelib.relay import HANDED_EVENTS, StreamFollower
    from tests.in_process import WIRED

    if WIRED.on_fakes:
        # The fake outbox is its own stream; one follower per test's outbox keeps its retries.
        outbox = WIRED.fakes()[0].outbox
        if _relay["fakes"] is None or _relay["fakes"][0] is not outbox:
            _relay["fakes"] = (outbox, StreamFollower(outbox_relay, stream=outbox))
        fake_count: int = _relay["fakes"][1].drain()
        return fake_count
    if _relay["follower"] is None:
        _relay["follower"] = StreamFollower(outbox_relay, endpoint_url=STREAMS_ENDPOINT)
    follower = _relay["follower"]
    seen, before = _outbox_stream_mark(), _relay["seen"]
    _relay["seen"] = seen
    if not follower.retrying() and not _relay["failed"] and _same_stream(seen, before):
        gained = seen[3][before[4] : seen[4]]  # type: ignore[index]
        if all(record.record["eventName"] not in HANDED_EVENTS for record in gained):
            return 0
    _relay["failed"] = True  # a drain that raises is tried again by the next call
    count: int = follower.drain()
    _relay["failed"] = False
    return count


def _outbox_stream_mark() -> tuple[Any, ...] | None:
    """Where the outbox table's stream stands in the in-process moto: the table, its stream
    (label and shard), and how many records the shard holds; None when there is none."""
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.dynamodb.models import dynamodb_backends

    from chalicelib.store.models import OutboxItem

    # The table the store is bound to (bind_tables), not the settings: a test may make those
    # unreadable on purpose (tests/api/test_public_links.py), and the relay still follows it.
    region = getattr(OutboxItem.Meta, "region", None)
    if region is None:
        return None
    table = dynamodb_backends[DEFAULT_ACCOUNT_ID][region].tables.get(OutboxItem.Meta.table_name)
    shard = table.stream_shard if table is not None else None
    if shard is None:
        return None
    return (table, table.latest_stream_label, shard, shard.items, len(shard.items))


def _same_stream(now: tuple[Any, ...] | None, before: tuple[Any, ...] | None) -> bool:
    """The same stream, which may have gained records since (never lost any)."""
    # The same objects (not equal ones: moto's rollback of old put copies in their place).
    if now is None or before is None:
        return False
    same = now[0] is before[0] and now[2] is before[2] and now[3] is before[3]
    return same and now[1] == before[1] and now[4] >= before[4]


def stream_records() -> list[dict[str, Any]]:
    """Every record of this test's messages the outbox table's stream holds, read afresh from its
    start (what an event source mapping would hand the relay function)."""
    from chalicelib.bootstrap import services
    from chalicelib.store.stream import OutboxStream

    outbox = services().store.outbox
    records = OutboxStream(get_settings().region, STREAMS_ENDPOINT).read()
    # Each test has a stream of its own (tests/in_process.py: renew_stream); of its records,
    # those that announce a message still in the outbox.
    current = [r for r in records if (m := outbox.message_in(r)) and outbox.get(m.id)]
    return current


@contextmanager
def relay_paused() -> Iterator[None]:
    """Requests in this block are not followed by the relay: what a request did by itself
    can be seen (e.g. that it called no mailer). ``relay()`` runs it afterwards."""
    _relay["paused"] = True
    try:
        yield
    finally:
        _relay["paused"] = False


class RelayingHTTP:
    """chalice's test HTTP client; after each request the relay runs over the outbox stream,
    as the stream-triggered function does in AWS within about a second of the commit."""

    def __init__(self, http: Any) -> None:
        self._http = http

    def request(self, method: str, path: str, headers: Any = None, body: Any = b"") -> Any:
        response = self._http.request(method, path, headers=headers, body=body)
        if not _relay["paused"]:
            relay()
        return response

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> Any:
        return self.request("POST", path, **kwargs)

    def put(self, path: str, **kwargs: Any) -> Any:
        return self.request("PUT", path, **kwargs)

    def patch(self, path: str, **kwargs: Any) -> Any:
        return self.request("PATCH", path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> Any:
        return self.request("DELETE", path, **kwargs)

    def head(self, path: str, **kwargs: Any) -> Any:
        return self.request("HEAD", path, **kwargs)

    def options(self, path: str, **kwargs: Any) -> Any:
        return self.request("OPTIONS", path, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._http, name)


class RelayingClient:
    """chalice.test.Client whose ``http`` runs the relay after each request (RelayingHTTP)."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.http = RelayingHTTP(client.http)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


@contextmanager
def from_address(client: Any, address: str) -> Iterator[None]:
    """The in-process client's requests in this block come from ``address``.

    ``chalice.test.Client`` has no parameter for it: its gateway's event converter writes the
    class attribute ``LOCAL_SOURCE_IP`` (127.0.0.1) into every event. Shadowing it on this one
    client's converter is the only way in; chalice's code and other clients are untouched.
    """
    converter = client.http._local_gateway.event_converter
    converter.LOCAL_SOURCE_IP = address
    try:
        yield
    finally:
        del converter.LOCAL_SOURCE_IP
