"""SharedAccessSignature tokens: signing, parsing both forms, expiry, forgery."""

from datetime import UTC, datetime, timedelta

import pytest

from chalicelib.domain.sas import (
    TokenKind,
    bound_to,
    compact_token,
    is_valid,
    management_token,
    parse_token,
    seal,
    signature,
    token_from_authorization,
    unseal,
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


# Our own kinds of tokens (user, SSO link, console session)


def sealed(kind=TokenKind.USER, uid="dev", epoch="e1", key="primary", nonce=b""):
    return seal(kind, uid, epoch, NOW + timedelta(hours=1), key, nonce)


def test_a_token_of_one_kind_opens_only_that_kind():
    nonce = bytes(16)
    tokens = {
        TokenKind.USER: sealed(),
        TokenKind.SSO: sealed(TokenKind.SSO, nonce=nonce),
        TokenKind.CONSOLE: sealed(TokenKind.CONSOLE, nonce=nonce),
    }
    for kind, token in tokens.items():
        assert token.startswith("dev&202611281300&")
        for other in TokenKind:
            opened = unseal(token, other, KEYS, NOW)
            assert (opened is not None) is (other is kind)
    opened = unseal(tokens[TokenKind.SSO], TokenKind.SSO, KEYS, NOW)
    assert opened is not None and opened.uid == "dev" and opened.nonce == nonce


def test_the_epoch_binds_a_token_to_its_user_until_it_changes():
    opened = unseal(sealed(key="secondary"), TokenKind.USER, KEYS, NOW)
    assert opened is not None
    assert bound_to(opened, "e1", KEYS)
    assert not bound_to(opened, "e2", KEYS)


def test_forged_expired_and_altered_tokens_do_not_open():
    token = sealed()
    assert unseal(token, TokenKind.USER, ["another key"], NOW) is None
    assert unseal(token, TokenKind.USER, KEYS, NOW + timedelta(hours=2)) is None
    assert unseal(token.replace("dev&", "ada&"), TokenKind.USER, KEYS, NOW) is None
    # APIM's own compact token, signed with the management key, is not a user token of ours.
    assert (
        unseal(compact_token("dev", NOW + timedelta(hours=1), "primary"), TokenKind.USER, KEYS, NOW)
        is None
    )
    assert unseal("dev&202611281300&not base64!", TokenKind.USER, KEYS, NOW) is None


def test_a_link_or_session_needs_its_nonce():
    with pytest.raises(ValueError):
        sealed(TokenKind.SSO)
    with pytest.raises(ValueError):
        sealed(TokenKind.USER, nonce=bytes(16))
