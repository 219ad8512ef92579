"""Password policy and hashing; ETags; continuation tokens."""

from datetime import UTC, datetime

import pytest

from chalicelib.domain.etag import etag_of, next_version, version_from_if_match
from chalicelib.domain.paging import Cursor, decode_cursor, encode_cursor
from chalicelib.domain.passwords import (
    HashParameters,
    hash_password,
    policy_problem,
    verify_password,
)
from chalicelib.errors import PreconditionFailed, ValidationFailed

CHEAP = HashParameters(memory_kib=8, time_cost=1, parallelism=1)


@pytest.mark.parametrize(
    "password",
    ["correct horse battery", "x" * 128, "x" * 256, "ünïcødé-päss", "        ", "Tr0ub4dor&3-long"],
)
def test_accepted_passwords(password):
    assert policy_problem(password, "ada@example.com", "Ada", "Lovelace") is None


@pytest.mark.parametrize(
    ("password", "reason"),
    [
        ("short", "at least 8"),
        ("x" * 257, "at most 256"),
        ("password", "common"),
        ("12345678", "common"),
        ("Iloveyou1", "common"),
        ("ada@example.com", "email address or name"),
        ("ADA@EXAMPLE.COM", "email address or name"),
        ("adalovelace", "email address or name"),
        ("Ada Lovelace", "email address or name"),
    ],
)
def test_refused_passwords_name_the_reason(password, reason):
    problem = policy_problem(password, "ada@example.com", "Ada", "Lovelace")
    assert problem is not None and reason in problem


def test_no_truncation_long_passwords_differ_at_the_end():
    base = "a-long-passphrase " * 10
    stored = hash_password(base + "1", CHEAP)
    assert verify_password(stored, base + "1", CHEAP)
    assert not verify_password(stored, base + "2", CHEAP)


def test_hash_is_argon2id_phc_and_normalized():
    stored = hash_password("ﬁve-five-five", CHEAP)
    assert stored.startswith("$argon2id$v=19$m=8,t=1,p=1$")
    # NFKC: the ligature "ﬁ" and "fi" are the same password.
    assert verify_password(stored, "five-five-five", CHEAP)
    assert not verify_password("not-a-hash", "x", CHEAP)


def test_default_hash_parameters_are_owasp():
    assert HashParameters() == HashParameters(memory_kib=19456, time_cost=2, parallelism=1)


def test_etag_round_trip_and_versions_grow():
    now = datetime(2026, 1, 1, tzinfo=UTC)
    v1 = next_version(0, now)
    v2 = next_version(v1, now)
    assert v2 == v1 + 1
    assert next_version(v2, datetime(2027, 1, 1, tzinfo=UTC)) > v2
    tag = etag_of(v2)
    assert version_from_if_match(tag) == v2
    assert version_from_if_match(tag.strip('"')) == v2
    assert version_from_if_match("W/" + tag) == v2
    assert version_from_if_match("*") is None
    with pytest.raises(PreconditionFailed):
        version_from_if_match('"nonsense"')


def test_cursor_round_trip_and_tampering():
    cursor = Cursor("user-9", 3)
    assert decode_cursor(encode_cursor(cursor)) == cursor
    for bad in ["", "!!!", "eyJhIjo1fQ", encode_cursor(Cursor(None, 0))[:-2]]:
        with pytest.raises(ValidationFailed):
            decode_cursor(bad)
