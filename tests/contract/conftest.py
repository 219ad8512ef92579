"""Contract tests reuse the live stack of the integration tests (moto server + chalice local).

The fixture is re-exported, not moved: pytest gives this directory its own session-scoped
instance, so the fuzzing runs against a server of their own, whose data and sign-in/reset
throttling counters no integration test shares.
"""

from tests.integration.conftest import live_server

__all__ = ["live_server"]
