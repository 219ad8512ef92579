"""Management authentication: APIM SharedAccessSignature tokens, also sent as Bearer."""

from __future__ import annotations

from chalicelib.config import get_settings
from chalicelib.domain.clock import system_clock
from chalicelib.domain.sas import is_valid, token_from_authorization
from chalicelib.errors import NotAuthenticated
from chalicelib.keys import management_keys


def authenticate_management(authorization: str | None) -> str:
    """The token's uid when it is a valid management token; NotAuthenticated otherwise."""
    if not authorization:
        raise NotAuthenticated(
            "Authorization header is missing: send 'SharedAccessSignature uid=...&ex=...&sn=...'."
        )
    token = token_from_authorization(authorization)
    if token is None:
        raise NotAuthenticated("The Authorization header is not a SharedAccessSignature token.")
    settings = get_settings()
    if token.uid != settings.access_id or not is_valid(
        token, management_keys(settings), system_clock()
    ):
        # One message for forged, expired and foreign tokens: no oracle for which part failed.
        raise NotAuthenticated("The access token is invalid or expired.")
    return token.uid


def user_token_text(authorization: str | None, cookie: str) -> str:
    """A user token from ``SharedAccessSignature ...``, a bare token, or the session cookie."""
    header = (authorization or "").strip()
    scheme, _, rest = header.partition(" ")
    if scheme.lower() in {"sharedaccesssignature", "bearer"}:
        rest = rest.strip()
        if rest.startswith("token="):
            rest = rest[len("token=") :].split(",", 1)[0].strip().strip('"')
        return rest
    return header or cookie
