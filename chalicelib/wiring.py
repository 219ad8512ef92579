"""Builds the services once per container, lazily, from the settings."""

from __future__ import annotations

from functools import cache

from chalicelib.config import get_settings
from chalicelib.domain.clock import system_clock
from chalicelib.domain.passwords import HashParameters
from chalicelib.services.accounts import AccountService


def hash_parameters() -> HashParameters:
    s = get_settings()
    return HashParameters(s.argon2_memory_kib, s.argon2_time_cost, s.argon2_parallelism)


@cache
def accounts() -> AccountService:
    from chalicelib.store.users import UserRepository

    return AccountService(UserRepository(get_settings()), system_clock, hash_parameters())


def reset() -> None:
    """Forget every built service (tests that change settings or the clock)."""
    accounts.cache_clear()
    get_settings.cache_clear()
