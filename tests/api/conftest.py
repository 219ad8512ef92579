"""API tests: in-process by default, replayed over real HTTP where the wire matters.

``api`` is chalice.test.Client on the app in this process (tests/conftest.py): routing, views
and services run here, on the in-memory fakes of tests/fakes.py, with nothing between the test
and the app but the test client's event; the tests marked ``moto`` (stored items, request
counts, transactions) run on the DynamoDB store and moto's ``mock_aws``. That covers every
behaviour except what a real HTTP stack changes.

A test marked ``@pytest.mark.wire`` runs twice: ``[in-process]``, and ``[http]``, the same calls
made with ``requests`` to ``chalice local`` on loopback, whose DynamoDB, SES and SSM are a moto
server in a child process (``live_server`` of tests/conftest.py, one per xdist worker, shared
with the other HTTP tiers; each http test starts from its start-up state). The http variants
carry the ``integration`` marker, so ``make test-fast`` leaves them out. What the wire changes,
and the tests that say so:

- status lines and bodies that HTTP shapes: HEAD answers with no body, 204 with none,
  405 and 404 for routes the local gateway never matched (test_users, test_groups,
  test_templates, test_errors_and_auth);
- headers as they cross the wire: ETag and If-Match (quoted, unquoted, weak), Authorization in
  every form, Host and X-Forwarded-Proto in nextLink, x-ms-request-id (test_users,
  test_user_lists, test_errors_and_auth, test_audit);
- encodings: percent-encoded ids and ``$filter`` values quoted by requests, query strings with
  several parameters, bytes that are not UTF-8, bodies past the 64 KB limit and templates just
  under 100 KB (test_errors_and_auth, test_groups, test_user_lists, test_templates);
- concurrency is tested over HTTP in tests/integration (races), never in-process.

The stack has the in-process tests' management keys (``test-primary-key``,
``test-secondary-key``); its links point at itself, not at http://127.0.0.1:8000, so no wire
test reads a link. A wire test may not use ``client``, ``clock``, ``wired`` or ``aws``: the live
server never sees them (its http variant fails and says so).
"""

import pytest

from tests.http_api import HttpApi
from tests.support import Api, RelayingClient

# Fixtures whose state lives in the pytest process: an http test that uses one tests nothing real.
IN_PROCESS_FIXTURES = frozenset({"aws", "client", "clock", "wired"})


@pytest.fixture(scope="session")
def chalice_client():
    from chalice.test import Client

    from app import app

    with Client(app, stage_name="test") as c:
        yield RelayingClient(c)


@pytest.fixture
def client(aws, chalice_client):
    """chalice.test.Client on the in-process app (one for the session; it keeps no state);
    after each request the outbox relay runs over the outbox stream (tests/support.py:
    RelayingClient), so the emails a request caused have gone out, as in AWS within a second."""
    return RelayingClient(chalice_client)


def pytest_generate_tests(metafunc):
    if "api" in metafunc.fixturenames and metafunc.definition.get_closest_marker("wire"):
        metafunc.parametrize(
            "api",
            [
                pytest.param("in-process", id="in-process"),
                pytest.param("http", id="http", marks=pytest.mark.integration),
            ],
            indirect=True,
        )


@pytest.fixture
def api(request):
    if getattr(request, "param", "in-process") == "in-process":
        return Api(request.getfixturevalue("client"))
    used = sorted(IN_PROCESS_FIXTURES & set(request.node.fixturenames))
    if used:
        pytest.fail(
            f"{request.node.name} uses {', '.join(used)}, which the live server never sees: "
            "a @pytest.mark.wire test talks to the app through `api` only",
            pytrace=False,
        )
    server = request.getfixturevalue("live_server")
    server.reset()
    http = HttpApi(server, server.token)
    request.addfinalizer(http.close)
    return http
