"""Password policy (NIST 800-63B / ASVS 6.2) and argon2id hashing; heavy imports happen on use."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from argon2 import PasswordHasher

MIN_LENGTH = 8
MAX_LENGTH = 256


def normalize(password: str) -> str:
    """NFKC, so that the same password typed on different keyboards hashes the same (NIST)."""
    return unicodedata.normalize("NFKC", password)


@cache
def _common_passwords() -> frozenset[str]:
    # zxcvbn ships a maintained frequency list of the 30,000 most common leaked passwords.
    from zxcvbn.frequency_lists import FREQUENCY_LISTS

    return frozenset(FREQUENCY_LISTS["passwords"])


def policy_problem(password: str, email: str, first_name: str, last_name: str) -> str | None:
    """Why this password is refused, or None. No composition rules, never truncated."""
    value = normalize(password)
    if len(value) < MIN_LENGTH:
        return f"The password must have at least {MIN_LENGTH} characters."
    if len(value) > MAX_LENGTH:
        return f"The password must have at most {MAX_LENGTH} characters."
    folded = value.casefold()
    if folded in _common_passwords():
        return "The password is one of the most common passwords; choose another."
    local_part = email.split("@", 1)[0]
    context = {
        email,
        local_part,
        first_name,
        last_name,
        f"{first_name}{last_name}",
        f"{first_name} {last_name}",
    }
    if folded in {c.casefold() for c in context if c}:
        return "The password must not be the account's email address or name."
    return None


@dataclass(frozen=True)
class HashParameters:
    """argon2id cost; the defaults are OWASP's m=19 MiB, t=2, p=1."""

    memory_kib: int = 19456
    time_cost: int = 2
    parallelism: int = 1


@cache
def _hasher(params: HashParameters) -> PasswordHasher:
    from argon2 import PasswordHasher, Type

    return PasswordHasher(
        time_cost=params.time_cost,
        memory_cost=params.memory_kib,
        parallelism=params.parallelism,
        hash_len=32,
        salt_len=16,
        type=Type.ID,
    )


def hash_password(password: str, params: HashParameters) -> str:
    """The PHC string (``$argon2id$v=19$m=...``) of the normalized password."""
    return _hasher(params).hash(normalize(password))


def verify_password(password_hash: str, password: str, params: HashParameters) -> bool:
    """True when the password matches; False for any mismatch or unreadable hash."""
    from argon2.exceptions import InvalidHashError, VerificationError

    try:
        return _hasher(params).verify(password_hash, normalize(password))
    except (VerificationError, InvalidHashError):
        return False
