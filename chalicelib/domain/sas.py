"""APIM SharedAccessSignature tokens (HMAC-SHA512 over uid and expiry), long and compact forms."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from dataclasses import dataclass
from datetime import UTC, datetime

_COMPACT = re.compile(r"^([\w\-.@]+)&(\d{12})&(.+)$")


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
    """The compact form ``{uid}&{yyyyMMddHHmm}&{signature}`` (user tokens, SSO links)."""
    minute = expiry.astimezone(UTC).strftime("%Y%m%d%H%M")
    return f"{uid}&{minute}&{signature(key, uid, long_expiry(expiry))}"


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
        uid, minute, sig = compact.groups()
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


def user_key(key: str, user_id: str, epoch: str) -> str:
    """The key a user's tokens are signed with: derived from a management key and the user's
    token epoch, so changing the epoch (block, delete, new password) kills every older token."""
    mac = hmac.new(key.encode("utf-8"), f"user\n{user_id}\n{epoch}".encode(), hashlib.sha512)
    return base64.b64encode(mac.digest()).decode("ascii")


def user_token(user_id: str, epoch: str, expiry: datetime, key: str) -> str:
    """APIM's compact user token ``{userId}&{yyyyMMddHHmm}&{signature}``."""
    return compact_token(user_id, expiry, user_key(key, user_id, epoch))
