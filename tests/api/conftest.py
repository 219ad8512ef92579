"""API tests, each run twice: in-process and over real HTTP.

``api[in-process]`` is chalice.test.Client against moto's mock_aws. ``api[http]`` makes the same
calls with ``requests`` to ``chalice local`` on loopback, whose DynamoDB, SES and SSM are a moto
server in a child process (the live stack of tests/integration/conftest.py, one per xdist worker).
Each http test starts from the stack's start-up state: ``POST /moto-api/reset``, then the tables,
the SES sender and the key parameter again.

The stack runs with the settings the in-process tests have where they matter: the management keys
``test-primary-key``/``test-secondary-key`` (from an SSM parameter, since .chalice/config.json's
local stage sets the keys and wins over the environment) and ``PORTAL_URL`` http://127.0.0.1:8000.
It keeps the stage's production argon2 cost, which config.json also fixes.

A test that cannot run over HTTP (it uses ``client``, ``clock``, ``wiring``, the in-process moto
backends, or changes the server's environment) carries ``@pytest.mark.in_process_only(reason=...)``
(or a module-level ``pytestmark``); its http variant is skipped with that reason, never dropped.
"""

import json
from dataclasses import replace

import boto3
import pytest
from moto import mock_aws

from chalicelib.config import get_settings
from tests.http_api import HttpApi
from tests.integration.conftest import live_stack
from tests.support import Api, RelayingClient, admin_token, unwire, wire


@pytest.fixture
def aws():
    with mock_aws():
        unwire()
        from chalicelib.keys import forget_cached_keys
        from chalicelib.store.models import create_tables

        forget_cached_keys()
        create_tables(get_settings())
        boto3.client("ses").verify_email_identity(EmailAddress="noreply@example.com")
        yield
        unwire()


@pytest.fixture
def client(aws):
    """chalice's test client; after each request the outbox relay runs over the outbox stream
    (tests/support.py: RelayingClient), so the emails a request caused have gone out."""
    from chalice.test import Client

    from app import app

    with Client(app, stage_name="test") as c:
        yield RelayingClient(c)


KEYS_PARAMETER = "/apim-users/tests/management-keys"
# Fixtures whose state lives in the pytest process: an http test that uses one tests nothing real.
IN_PROCESS_FIXTURES = frozenset({"aws", "client", "clock"})


@pytest.fixture(scope="session")
def api_live_server(tmp_path_factory):
    """The live stack of the http variant, with the in-process tests' keys and portal URL."""
    keys = json.dumps({"primary": "test-primary-key", "secondary": "test-secondary-key"})
    with live_stack(
        tmp_path_factory.mktemp("api-over-http"),
        extra_env={"APIM_KEYS_PARAMETER": KEYS_PARAMETER, "PORTAL_URL": "http://127.0.0.1:8000"},
        ssm_parameters={KEYS_PARAMETER: keys},
    ) as server:
        yield replace(server, token=admin_token(hours=4))


def _in_process_only_reason(node) -> str | None:
    marker = node.get_closest_marker("in_process_only")
    if marker is None:
        return None
    reason = marker.kwargs.get("reason") or (marker.args[0] if marker.args else "")
    if not reason:
        pytest.fail("@pytest.mark.in_process_only needs a reason", pytrace=False)
    return reason


@pytest.fixture(params=["in-process", "http"])
def api(request):
    if request.param == "in-process":
        yield Api(request.getfixturevalue("client"))
        return
    reason = _in_process_only_reason(request.node)
    if reason is not None:
        pytest.skip(f"in-process only: {reason}")
    used = sorted(IN_PROCESS_FIXTURES & set(request.node.fixturenames))
    if used:
        pytest.fail(
            f"{request.node.name} uses {', '.join(used)}, which the live server never sees: "
            "mark it @pytest.mark.in_process_only(reason=...)",
            pytrace=False,
        )
    server = request.getfixturevalue("api_live_server")
    server.reset()
    http = HttpApi(server, server.token)
    yield http
    http.close()


@pytest.fixture
def clock(aws):
    from tests.support import MovableClock

    moving = MovableClock()
    wire(clock=moving)
    return moving
