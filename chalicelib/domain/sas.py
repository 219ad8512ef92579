"""SharedAccessSignature tokens: APIM's management tokens, and our own kinds in compact shape."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from urllib.parse import quote, unquote

# The uid is written %-encoded (see compact_token), so it never holds & or a space.
_COMPACT = re.compile(r"^([^&\s]+)&(\d{12})&(.+)$")
# What a compact token leaves unencoded in its uid: letters, digits, - . _ ~ and @.
_UID_SAFE = "@"


@dataclass(frozen=True)
class SasToken:
    """A parsed token: who, until when, and the signature over the exact signed text."""

    uid: str
    expiry: datetime
    signed_text: str
    signature: str


def long_expiry(expiry: datetime) -> str:
    """.NET round-trip format with seconds zeroed, as APIM's token generators write it."""
    return expiry.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:00.0000000Z")


def signature(key: str, uid: str, expiry_text: str) -> str:
    """base64(HMAC-SHA512(key as UTF-8, uid + newline + expiry))."""
    mac = hmac.new(key.encode("utf-8"), f"{uid}\n{expiry_text}".encode(), hashlib.sha512)
    return base64.b64encode(mac.digest()).decode("ascii")


def management_token(uid: str, expiry: datetime, key: str) -> str:
    """The long form ``uid=...&ex=...&sn=...`` used on the management API."""
    ex = long_expiry(expiry)
    return f"uid={uid}&ex={ex}&sn={signature(key, uid, ex)}"


def compact_token(uid: str, expiry: datetime, key: str) -> str:
    """The compact form ``{uid}&{yyyyMMddHHmm}&{signature}`` (user tokens, SSO links).

    The uid is %-encoded beyond ASCII letters, digits and ``-._~@`` (the signature covers the
    uid itself): an id may hold a space, ``' , ; " %`` or any letter, and the token must still
    travel unchanged in a header, ``token="..."``, a cookie and a URL.
    """
    minute = expiry.astimezone(UTC).strftime("%Y%m%d%H%M")
    encoded = quote(uid, safe=_UID_SAFE)
    return f"{encoded}&{minute}&{signature(key, uid, long_expiry(expiry))}"


def _parse_expiry(text: str) -> datetime | None:
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        return None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def parse_token(text: str) -> SasToken | None:
    """Parse either form; None when it is not a token at all."""
    text = text.strip()
    if text.startswith("token="):
        text = text[len("token=") :].split(",", 1)[0].strip().strip('"')
    compact = _COMPACT.match(text)
    if compact:
        encoded, minute, sig = compact.groups()
        try:
            uid = unquote(encoded, errors="strict")
        except UnicodeDecodeError:
            return None
        if quote(uid, safe=_UID_SAFE) != encoded:
            # One spelling per token: "%64ev" is not another way to write "dev".
            return None
        try:
            expiry = datetime.strptime(minute, "%Y%m%d%H%M").replace(tzinfo=UTC)
        except ValueError:
            return None
        return SasToken(uid, expiry, long_expiry(expiry), sig)
    fields: dict[str, str] = {}
    for part in text.split("&"):
        name, sep, value = part.partition("=")
        if not sep:
            return None
        fields[name.strip().lower()] = value.strip()
    if not {"uid", "ex", "sn"} <= fields.keys():
        return None
    parsed = _parse_expiry(fields["ex"])
    if parsed is None:
        return None
    return SasToken(fields["uid"], parsed, fields["ex"], fields["sn"])


def token_from_authorization(header: str) -> SasToken | None:
    """Accept ``SharedAccessSignature <token>`` and ``Bearer <token>`` (the Azure SDK's form)."""
    scheme, _, rest = header.strip().partition(" ")
    if scheme.lower() not in {"sharedaccesssignature", "bearer"}:
        return None
    return parse_token(rest)


def is_valid(token: SasToken, keys: list[str], now: datetime) -> bool:
    """Signed by one of the keys (constant-time compare) and not expired."""
    if now > token.expiry:
        return False
    valid = False
    for key in keys:
        if key:
            expected = signature(key, token.uid, token.signed_text)
            # Check every key without short-circuit so timing does not tell which key matched.
            valid |= hmac.compare_digest(expected.encode(), token.signature.encode())
    return valid


class TokenKind(StrEnum):
    """What a token of ours opens. Each kind has keys of its own, so none passes for another."""

    USER = "user"  # the developer's data plane (/me): sign-in, POST /users/{id}/token, the CLI
    SSO = "sso"  # generateSsoUrl's link: signs in once, for 10 minutes
    CONSOLE = "console"  # the admin console's session; its nonce is the session id


_MAC_BYTES = 32
# A user token is deterministic, as APIM's are; a link or a session carries a random nonce, so
# each one issued is a different token that can be used up or ended on its own.
NONCE_BYTES = {TokenKind.USER: 0, TokenKind.SSO: 16, TokenKind.CONSOLE: 16}


@dataclass(frozen=True)
class Sealed:
    """A token whose kind MAC checked out (nothing read yet): who, until when, its nonce.

    ``bind`` is the second MAC, under a key derived from the user's token epoch, which only the
    stored user can check.
    """

    kind: TokenKind
    uid: str
    expiry: datetime
    nonce: bytes
    signed_text: str
    bind: bytes


def _mac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode("utf-8"), hashlib.sha256).digest()


def _kind_key(key: str, kind: TokenKind) -> bytes:
    return _mac(key.encode("utf-8"), f"apim-users\n{kind.value}")


def _bound_key(key: str, kind: TokenKind, uid: str, epoch: str) -> bytes:
    return _mac(key.encode("utf-8"), f"apim-users\n{kind.value}\n{uid}\n{epoch}")


def _signed_text(uid: str, expiry_text: str, nonce: bytes) -> str:
    return f"{uid}\n{expiry_text}\n{nonce.hex()}"


def seal(
    kind: TokenKind, uid: str, epoch: str, expiry: datetime, key: str, nonce: bytes = b""
) -> str:
    """A token of this kind in APIM's compact shape ``{uid}&{yyyyMMddHHmm}&{base64}``, the uid
    %-encoded beyond ASCII letters, digits and ``-._~@`` (see compact_token).

    The base64 part is the nonce, then two MACs over uid, expiry and nonce: one under a key of
    the kind (checked before anything is read, so a forgery costs the same whatever id it
    names), one under a key of the kind, the user and their token epoch (so a block, a delete
    or a new password, which renew the epoch, kill every older token).
    """
    if len(nonce) != NONCE_BYTES[kind]:
        raise ValueError(f"a {kind.value} token takes a nonce of {NONCE_BYTES[kind]} bytes")
    minute = expiry.astimezone(UTC).strftime("%Y%m%d%H%M")
    text = _signed_text(uid, long_expiry(expiry), nonce)
    raw = nonce + _mac(_kind_key(key, kind), text) + _mac(_bound_key(key, kind, uid, epoch), text)
    # The uid %-encoded, as in compact_token: the token travels in headers, cookies and URLs.
    encoded = quote(uid, safe=_UID_SAFE)
    return f"{encoded}&{minute}&{base64.b64encode(raw).decode('ascii')}"


def unseal(text: str, kind: TokenKind, keys: list[str], now: datetime) -> Sealed | None:
    """The token, if it is of this kind, signed with one of the keys, and not expired."""
    token = parse_token(text)
    if token is None:
        return None
    try:
        raw = base64.b64decode(token.signature, validate=True)
    except (binascii.Error, ValueError):
        return None
    size = NONCE_BYTES[kind]
    if len(raw) != size + 2 * _MAC_BYTES:
        return None
    nonce, gate, bind = raw[:size], raw[size : size + _MAC_BYTES], raw[size + _MAC_BYTES :]
    signed_text = _signed_text(token.uid, token.signed_text, nonce)
    valid = False
    for key in keys:
        if key:
            # Every key, without short-circuit: timing does not tell which one matched.
            valid |= hmac.compare_digest(_mac(_kind_key(key, kind), signed_text), gate)
    if not valid or now > token.expiry:
        return None
    return Sealed(kind, token.uid, token.expiry, nonce, signed_text, bind)


def bound_to(sealed: Sealed, epoch: str, keys: list[str]) -> bool:
    """Whether the token was issued under this token epoch of its user."""
    valid = False
    for key in keys:
        if key:
            expected = _mac(_bound_key(key, sealed.kind, sealed.uid, epoch), sealed.signed_text)
            valid |= hmac.compare_digest(expected, sealed.bind)
    return valid
