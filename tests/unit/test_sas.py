"""SharedAccessSignature tokens: signing, parsing both forms, expiry, forgery."""

from datetime import UTC, datetime, timedelta

import pytest

from chalicelib.domain.sas import (
    compact_token,
    is_valid,
    management_token,
    parse_token,
    signature,
    token_from_authorization,
)

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
KEYS = ["primary", "secondary"]


def test_signature_is_hmac_sha512_over_uid_newline_expiry():
    # Computed independently of the module, with the standard library.
    import base64
    import hashlib
    import hmac

    expected = base64.b64encode(
        hmac.new(b"key", b"integration\n2014-08-04T22:03:00.0000000Z", hashlib.sha512).digest()
    ).decode()
    assert signature("key", "integration", "2014-08-04T22:03:00.0000000Z") == expected


def test_long_form_round_trip_with_seconds_zeroed():
    token = management_token("integration", NOW + timedelta(hours=1, seconds=42), "primary")
    assert "ex=2026-11-28T13:00:00.0000000Z" in token
    parsed = parse_token(token)
    assert parsed is not None
    assert parsed.uid == "integration"
    assert parsed.expiry == NOW + timedelta(hours=1)
    assert is_valid(parsed, KEYS, NOW)


def test_compact_form_round_trip():
    token = compact_token("user-1", NOW + timedelta(minutes=5), "secondary")
    assert token.startswith("user-1&202611281205&")
    parsed = parse_token(token)
    assert parsed is not None and parsed.uid == "user-1"
    assert is_valid(parsed, KEYS, NOW)


def test_portal_token_equals_form():
    token = compact_token("u", NOW + timedelta(minutes=5), "primary")
    parsed = token_from_authorization(f'SharedAccessSignature token="{token}",refresh="true"')
    assert parsed is not None and is_valid(parsed, KEYS, NOW)


def test_expired_and_forged_tokens_are_invalid():
    parsed = parse_token(management_token("integration", NOW + timedelta(minutes=1), "primary"))
    assert parsed is not None
    assert not is_valid(parsed, KEYS, NOW + timedelta(minutes=2))
    assert not is_valid(parsed, ["other"], NOW)
    tampered = parse_token(
        management_token("integration", NOW + timedelta(days=1), "primary").replace(
            "ex=2026-11-29", "ex=2027-11-29"
        )
    )
    assert tampered is not None and not is_valid(tampered, KEYS, NOW)


def test_empty_keys_never_validate():
    parsed = parse_token(management_token("integration", NOW + timedelta(hours=1), ""))
    assert parsed is not None
    assert not is_valid(parsed, ["", ""], NOW)


@pytest.mark.parametrize(
    "header",
    [
        "",
        "Basic abc",
        "SharedAccessSignature",
        "SharedAccessSignature uid=a&ex=notadate&sn=x",
        "SharedAccessSignature uid=a&sn=x",
        "Bearer a&209913011200&",
        "SharedAccessSignature a&202613991200&sig",
    ],
)
def test_malformed_headers_do_not_parse(header):
    assert token_from_authorization(header) is None
