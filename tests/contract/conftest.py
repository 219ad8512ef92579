"""Contract tests run against the session's live stack (tests/conftest.py: ``live_server``).

The fuzzing starts from a clean server (no data and no sign-in or reset counters of other tests)
and leaves one behind: what it created (templates changed, users, throttling counters) must not
reach the tests that share the stack after it.
"""

import pytest


@pytest.fixture
def clean_live_server(live_server):
    live_server.reset()
    yield live_server
    live_server.reset()
