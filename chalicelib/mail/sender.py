"""Sending mail: the Mailer seam services depend on, and its SES implementation."""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from email.headerregistry import Address
    from email.message import EmailMessage

# SES answers with these when the same message may go through later.
_RETRYABLE_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "TooManyRequestsException",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "InternalFailure",
        "InternalError",
        "RequestTimeout",
        "RequestTimeoutException",
    }
)
# Of those, the ones that mean "too fast": the same message goes through a second or two later.
THROTTLE_CODES = frozenset({"Throttling", "ThrottlingException", "TooManyRequestsException"})
# The account's maximum send rate is read this often per container (SES raises it over time).
_QUOTA_SECONDS = 3600.0
_LINK = re.compile(r"https?://[^\s<>\"'()\[\]{}]+")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")
_UNSAFE_FILE_CHARS = re.compile(r"[^A-Za-z0-9._-]")


@dataclass(frozen=True)
class OutgoingEmail:
    """One message to one recipient, already rendered."""

    to: str
    subject: str
    html: str
    text: str


class MailFailed(Exception):
    """The provider did not take the message; the message names the reason, never the body."""

    def __init__(self, reason: str, *, retryable: bool, code: str = "") -> None:
        super().__init__(reason)
        self.retryable = retryable
        self.code = code

    @property
    def throttled(self) -> bool:
        """SES refused because of the send rate: trying again in seconds will do."""
        return self.code in THROTTLE_CODES


class Mailer(Protocol):
    """What services send mail through."""

    def send(self, email: OutgoingEmail) -> str:
        """Hand the message over; returns the provider's message id or raises MailFailed."""
        ...


# Per container (module level, shared by every mailer): region -> (rate, monotonic expiry).
_send_rates: dict[str, tuple[float, float]] = {}
_send_rates_lock = threading.Lock()


# botocore alone: boto3 would add its own import and s3transfer's (through boto3.compat) to the
# first send of a container, for a client botocore makes alike (docs/performance.md, section 3).
# One botocore session per container, shared by every mailer: a session parses botocore's
# endpoint and service data once (about 150 ms for SES), and each Services built later (a test's,
# a settings reload) makes its clients from it in a few milliseconds. botocore's sessions are not
# thread-safe, so clients are made under the lock; the clients themselves are.
_session: Any = None
_session_lock = threading.Lock()


def _botocore_client(service: str, region: str, config: Any) -> Any:
    """A new botocore client (endpoint left to botocore: AWS_ENDPOINT_URL is honoured)."""
    global _session
    from botocore.session import get_session

    with _session_lock:
        if _session is None:
            _session = get_session()
        return _session.create_client(service, region_name=region, config=config)


def forget_send_rates() -> None:
    """Read the account's send rate again on next use (tests)."""
    with _send_rates_lock:
        _send_rates.clear()


class SesMailer:
    """Sends through SES ``SendRawEmail`` as multipart/alternative (text, then HTML).

    With ``drop_dir`` (the dev server) each sent message is also written there as an .eml file
    and announced on stdout with its links, so developers can follow invitation links.
    """

    def __init__(self, sender: str, region: str, drop_dir: str | None = None) -> None:
        self.sender = sender
        self.region = region
        self.drop_dir = drop_dir
        self._client: Any = None
        self._quota_client: Any = None
        self._lock = threading.Lock()

    def send(self, email: OutgoingEmail) -> str:
        """Send one message; MailFailed says whether trying again later may help."""
        message = build_message(self.sender, email)
        try:
            raw = message.as_bytes()
        except (ValueError, TypeError) as exc:
            raise MailFailed(
                f"The message cannot be built: {type(exc).__name__}", retryable=False
            ) from exc
        # The recipient as parsed for the header, so envelope and header always agree.
        message_id = self._send_raw(message["To"].addresses[0].addr_spec, raw)
        if self.drop_dir:
            self._drop(email, raw, message_id)
        return message_id

    def _ses(self) -> Any:
        # One client per mailer, made on first send: creating it costs 100-200 ms of cold start
        # that paths without mail should not pay. The endpoint is left to botocore, so
        # AWS_ENDPOINT_URL (moto server in development) is honoured.
        if self._client is None:
            with self._lock:
                if self._client is None:
                    from botocore.config import Config

                    config = Config(
                        connect_timeout=5,
                        read_timeout=15,
                        retries={"max_attempts": 3, "mode": "standard"},
                    )
                    self._client = _botocore_client("ses", self.region, config)
        return self._client

    def max_send_rate(self, fallback: float) -> float:
        """The account's maximum send rate (SESv2 ``GetAccount`` ``SendQuota.MaxSendRate``).

        Read once an hour per container, not per message. ``fallback`` (the SES_MAX_SEND_RATE
        setting) when it cannot be read: no permission, no network, or an emulator without the
        call (moto); the failure is remembered for as long, so it costs one call an hour.
        """
        import time

        now = time.monotonic()
        with _send_rates_lock:
            known = _send_rates.get(self.region)
            if known is not None and known[1] > now:
                return known[0]
        rate = self._read_send_rate()
        if rate is None:
            rate = fallback
        with _send_rates_lock:
            _send_rates[self.region] = (rate, now + _QUOTA_SECONDS)
        return rate

    def _sesv2(self) -> Any:
        # Made only when the rate is read (once an hour at most): GetAccount is SESv2's.
        if self._quota_client is None:
            from botocore.config import Config

            config = Config(connect_timeout=2, read_timeout=5, retries={"max_attempts": 2})
            self._quota_client = _botocore_client("sesv2", self.region, config)
        return self._quota_client

    def _read_send_rate(self) -> float | None:
        try:
            rate = float(self._sesv2().get_account()["SendQuota"]["MaxSendRate"])
        except Exception as exc:  # the quota is advice: sending must work without it
            from chalicelib.logs import logger

            logger().warning(
                "SES send rate unknown (%s); using the configured one", type(exc).__name__
            )
            return None
        return rate if rate > 0 else None

    def _send_raw(self, recipient: str, raw: bytes) -> str:
        from botocore.exceptions import BotoCoreError, ClientError, HTTPClientError
        from botocore.exceptions import ConnectionError as BotoConnectionError

        try:
            answer = self._ses().send_raw_email(
                Source=self.sender, Destinations=[recipient], RawMessage={"Data": raw}
            )
        except ClientError as exc:
            error = exc.response.get("Error", {})
            code = str(error.get("Code", "Unknown"))
            status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))
            retryable = code in _RETRYABLE_CODES or status >= 500
            raise MailFailed(
                f"SES refused the message: {code}", retryable=retryable, code=code
            ) from exc
        except (BotoConnectionError, HTTPClientError) as exc:
            # Connection refused, DNS, connect and read timeouts: SES may never have seen it.
            name = type(exc).__name__
            raise MailFailed(
                f"SES could not be reached: {name}", retryable=True, code=name
            ) from exc
        except BotoCoreError as exc:
            # Missing credentials, invalid parameters: the same call would fail again.
            name = type(exc).__name__
            raise MailFailed(f"SES call failed: {name}", retryable=False, code=name) from exc
        return str(answer["MessageId"])

    def _drop(self, email: OutgoingEmail, raw: bytes, message_id: str) -> None:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        name = f"{stamp}-{_UNSAFE_FILE_CHARS.sub('_', message_id)}.eml"
        lines = [f"mail to {email.to}: {_one_line(email.subject)}"]
        lines += [f"  link: {url}" for url in links_in(email.text)]
        try:
            folder = Path(self.drop_dir or ".")
            folder.mkdir(parents=True, exist_ok=True)
            (folder / name).write_bytes(raw)
        except OSError as exc:
            # The mail is sent; a full disk in development must not make the caller resend it.
            lines.append(f"  (not saved in {self.drop_dir}: {exc.strerror})")
        print("\n".join(lines), flush=True)


def links_in(text: str) -> list[str]:
    """The http(s) links of a text body, in order, without trailing punctuation."""
    return [url.rstrip(".,;:!?") for url in _LINK.findall(text)]


def build_message(sender: str, email: OutgoingEmail) -> EmailMessage:
    """The MIME message: multipart/alternative, text part first so HTML is preferred."""
    from email.message import EmailMessage
    from email.policy import SMTP
    from email.utils import format_datetime, make_msgid

    message = EmailMessage(policy=SMTP)
    try:
        message["From"] = _address(sender)
        message["To"] = _address(email.to)
        # The renderer already strips CR/LF; doing it again keeps any other caller from
        # injecting headers.
        message["Subject"] = _one_line(email.subject)
    except (ValueError, IndexError) as exc:
        raise MailFailed(
            f"The message cannot be built: invalid header ({type(exc).__name__})",
            retryable=False,
        ) from exc
    message["Date"] = format_datetime(datetime.now(UTC))
    message["Message-ID"] = make_msgid(domain=_address(sender).domain)
    # Quoted-printable keeps every line 7-bit and short, whatever the template produced.
    message.set_content(email.text, subtype="plain", charset="utf-8", cte="quoted-printable")
    message.add_alternative(email.html, subtype="html", charset="utf-8", cte="quoted-printable")
    for part in message.iter_parts():
        # add_alternative copies MIME-Version into the parts; it belongs on the top level only.
        del part["MIME-Version"]
    return message


def _address(value: str) -> Address:
    """One mailbox as a header value; an internationalized domain becomes its IDNA form."""
    from email.headerregistry import Address
    from email.utils import getaddresses

    if any(c in value for c in "\r\n"):
        raise ValueError("line break in an address")
    found = getaddresses([value])
    if len(found) != 1:
        raise ValueError("not exactly one address")
    display_name, address = found[0]
    username, at, domain = address.rpartition("@")
    if not at or not username or not domain:
        raise ValueError("not an email address")
    # SES speaks SMTP without SMTPUTF8: a domain goes in its ASCII (punycode) form, and a
    # non-ASCII local part cannot be sent at all.
    if not username.isascii():
        raise ValueError("non-ASCII local part")
    if not domain.isascii():
        domain = domain.encode("idna").decode("ascii")
    return Address(display_name=display_name, username=username, domain=domain)


def _one_line(value: str) -> str:
    return " ".join(_CONTROL.sub(" ", value).split())


class MemoryMailer:
    """A Mailer that keeps messages in memory: the fake services' tests inject."""

    def __init__(self, fail_with: MailFailed | None = None) -> None:
        self.sent: list[OutgoingEmail] = []
        self.fail_with = fail_with

    def send(self, email: OutgoingEmail) -> str:
        """Record the message, or raise ``fail_with`` when set."""
        if self.fail_with is not None:
            raise self.fail_with
        self.sent.append(email)
        return f"memory-{len(self.sent)}"
