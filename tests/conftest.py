"""Test-wide environment, and the in-process AWS every in-process test shares.

The environment: fake AWS credentials, no endpoint, cheap hashing, fixed keys.

In-process AWS is moto's ``mock_aws``. moto is imported here, before any boto3 client exists, so
every client carries its hook; the mock is started once per session (once per xdist worker) the
first time a test asks for ``aws``, before the app makes a client or a PynamoDB connection. The
tables are created then, once, and the SES sender verified; between tests ``aws`` empties them
in moto's own backend (``Table.items``: tables, indexes and PynamoDB's connections stay) and
puts every other backend (SES, SSM) back to that start-up state. Tests that never ask for
``aws`` (unit tests, services on fakes, the live-stack tiers) never start it; clients that name
an endpoint (the moto server of tests/integration) pass through it untouched.

``aws`` builds the app's services on new in-memory fakes (tests/fakes.py) for each test, except
for tests marked ``moto`` (about the DynamoDB store, moto or SSM themselves), which get the
DynamoDB store on the mock; the mock runs for both, so nothing reaches AWS. The store itself is
the contract suite's (tests/contract_store, every repository method on both) and the live
stack's. ``APIM_TESTS_STORE=moto`` runs every in-process test on moto instead: the in-process
tier then covers the same lines of chalicelib (measured with coverage.py, 1 December), ten
times slower.

``wired`` is the one place tests reach the composition root (``chalicelib.bootstrap``): its seams
(``use_clock``, ``use_mailer``, ``reload``) and the services it builds for the in-process app.

``live_server`` is the live stack (tests/live_stack.py: moto server + ``chalice local``), one per
session (per xdist worker), shared by every test that needs real HTTP: the API's wire replay,
tests/integration, tests/contract and tests/browser. Tests that need it clean call its
``reset()``; the others use ids of their own.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest

os.environ.update(
    AWS_DEFAULT_REGION="us-east-1",
    AWS_ACCESS_KEY_ID="testing",
    AWS_SECRET_ACCESS_KEY="testing",
    APIM_PRIMARY_KEY="test-primary-key",
    APIM_SECONDARY_KEY="test-secondary-key",
    # The cheapest argon2 cost keeps hashing out of test time; production cost is in bench/.
    ARGON2_MEMORY_KIB="8",
    ARGON2_TIME_COST="1",
    ARGON2_PARALLELISM="1",
    # The enumeration floor of public endpoints is measured in bench/, not waited for in tests.
    PUBLIC_RESPONSE_FLOOR_MS="0",
    # moto has no SESv2 GetAccount, so the relay paces at this fallback; tests that are about
    # pacing set their own rate and a virtual timer (tests/support.py: wire).
    SES_MAX_SEND_RATE="1000",
)
os.environ.pop("AWS_ENDPOINT_URL", None)
os.environ.pop("APIM_KEYS_PARAMETER", None)

import moto  # noqa: F401  (moto must be imported before any boto3 client exists)

from tests.in_process import WIRED, MotoSession, Wired
from tests.live_stack import LiveServer, live_stack
from tests.support import admin_token

KEYS_PARAMETER = "/apim-users/tests/management-keys"


@pytest.fixture(scope="session")
def moto_session() -> Iterator[MotoSession]:
    """``mock_aws`` for the whole session (per xdist worker), tables made once."""
    from moto import mock_aws

    from chalicelib.config import get_settings
    from chalicelib.keys import forget_cached_keys
    from tests import moto_dispatch, moto_serializer, moto_transactions

    moto_transactions.install()  # transactions roll back what they touched, not whole tables
    moto_serializer.install()  # DynamoDB items are written to JSON without moto's alias search
    moto_dispatch.install()  # each response class's methods are listed once, not per request
    with mock_aws():
        get_settings.cache_clear()
        forget_cached_keys()
        settings = get_settings()
        session = MotoSession(settings)
        session.start(settings)
        yield session


ON_FAKES = os.environ.get("APIM_TESTS_STORE", "fakes") != "moto"


@pytest.fixture
def aws(moto_session: MotoSession, request: pytest.FixtureRequest) -> Iterator[None]:
    """In-process AWS in its start-up state, and the app's services with no seam overridden."""
    from chalicelib.config import get_settings

    WIRED.empty(on_fakes=ON_FAKES and request.node.get_closest_marker("moto") is None)
    WIRED.fresh_start()
    moto_session.empty(get_settings())
    yield
    # Leave nothing behind for tests that never ask for ``aws``: no clock or mailer of this test,
    # and settings read again from the environment (as it is once monkeypatch has undone it).
    WIRED.empty(on_fakes=False)
    WIRED.fresh_start()
    get_settings.cache_clear()


@pytest.fixture
def wired(aws: None) -> Wired:
    return WIRED


@pytest.fixture
def clock(wired: Wired) -> Any:
    """The services' clock: starts now, moves only when told."""
    from tests.support import MovableClock

    moving = MovableClock()
    wired.use_clock(moving)
    return moving


@pytest.fixture(scope="session")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """The live stack, started once per session (per xdist worker) by the first test needing it.

    Its management keys are the in-process tests' (``test-primary-key``, ``test-secondary-key``),
    from an SSM parameter: .chalice/config.json's local stage sets keys of its own, which win over
    the environment but not over ``APIM_KEYS_PARAMETER``. Links in emails point at the stack
    itself. It keeps the stage's production argon2 cost, which config.json also fixes.
    """
    keys = json.dumps({"primary": "test-primary-key", "secondary": "test-secondary-key"})
    with live_stack(
        tmp_path_factory.mktemp("live-stack"),
        extra_env={"APIM_KEYS_PARAMETER": KEYS_PARAMETER},
        ssm_parameters={KEYS_PARAMETER: keys},
    ) as server:
        yield replace(server, token=admin_token(hours=4))
