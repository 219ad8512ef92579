"""Delegation's redirect URL and APIM's signature of it (HMAC-SHA512 over salt and parameters)."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from enum import StrEnum
from urllib.parse import urlencode, urlsplit


class Operation(StrEnum):
    """What the portal hands to the publisher's site."""

    SIGN_IN = "SignIn"
    SIGN_UP = "SignUp"
    CHANGE_PASSWORD = "ChangePassword"
    CHANGE_PROFILE = "ChangeProfile"
    CLOSE_ACCOUNT = "CloseAccount"
    SIGN_OUT = "SignOut"
    SUBSCRIBE = "Subscribe"
    UNSUBSCRIBE = "Unsubscribe"
    RENEW = "Renew"


# The query parameters each operation carries, in the order they are signed (after the salt).
SIGNED: dict[Operation, tuple[str, ...]] = {
    Operation.SIGN_IN: ("returnUrl",),
    Operation.SIGN_UP: ("returnUrl",),
    Operation.CHANGE_PASSWORD: ("userId",),
    Operation.CHANGE_PROFILE: ("userId",),
    Operation.CLOSE_ACCOUNT: ("userId",),
    Operation.SIGN_OUT: ("userId",),
    Operation.SUBSCRIBE: ("productId", "userId"),
    Operation.UNSUBSCRIBE: ("subscriptionId",),
    Operation.RENEW: ("subscriptionId",),
}
# Which switch of the delegation settings governs an operation.
SUBSCRIPTION_OPERATIONS = frozenset({Operation.SUBSCRIBE, Operation.UNSUBSCRIBE, Operation.RENEW})


def signature(validation_key: str, salt: str, *values: str) -> str:
    """APIM's ``sig``: Base64(HMAC-SHA512(Base64Decode(key), UTF-8(salt + "\\n" + values...))).

    The values are the URL-decoded parameters, joined by newlines in SIGNED's order.
    """
    key = base64.b64decode(validation_key, validate=True)
    message = "\n".join((salt, *values)).encode("utf-8")
    return base64.b64encode(hmac.new(key, message, hashlib.sha512).digest()).decode("ascii")


def redirect_url(
    url: str, validation_key: str, operation: Operation, salt: str, params: Mapping[str, str]
) -> str:
    """``{url}?operation=...&{parameters}&salt=...&sig=...``; ValueError for a missing parameter.

    ``params`` must hold the operation's parameters (SIGNED); bare ids (``ada``, not
    ``/users/ada``), as the portal strips them.
    """
    names = SIGNED[operation]
    missing = [n for n in names if not params.get(n)]
    if missing:
        raise ValueError(f"{operation.value} needs {', '.join(missing)}")
    values = [params[n] for n in names]
    query = urlencode(
        [
            ("operation", operation.value),
            *zip(names, values, strict=True),
            ("salt", salt),
            ("sig", signature(validation_key, salt, *values)),
        ]
    )
    separator = "&" if urlsplit(url).query else "?"
    return f"{url}{separator}{query}"


def verify(validation_key: str, query: Mapping[str, str]) -> bool:
    """What the publisher's site does: recompute ``sig`` from a redirect's (decoded) query."""
    try:
        operation = Operation(query.get("operation", ""))
    except ValueError:
        return False
    values = [query.get(n) for n in SIGNED[operation]]
    salt, sig = query.get("salt"), query.get("sig")
    if salt is None or sig is None or any(v is None for v in values):
        return False
    expected = signature(validation_key, salt, *(v or "" for v in values))
    return hmac.compare_digest(expected.encode("ascii"), sig.encode("ascii", "replace"))
