"""schemathesis against chalice local + moto server: our own document, then APIM's contract.

Both runs are bounded (``MAX_EXAMPLES`` generated requests per operation and generation mode,
derandomized) and print their figures on the terminal, e.g.
``schemathesis (ours): 86 operations, 707 cases, 0 failures``.
"""

from __future__ import annotations

import sys

import pytest
import requests
import schemathesis
from schemathesis import checks as st_checks

from chalicelib.api.openapi import APIM_BUNDLE, DOCUMENT_PATH, apim_operation_ids
from tests.contract.fuzzing import (
    API_VERSION,
    Figures,
    apim_error_body,
    response_schema_null_as_absent,
    run,
)

pytestmark = [pytest.mark.integration, pytest.mark.contract]

# Every operation, in both modes, valid and invalid data alike; generating a case costs more than
# sending it (about 25 ms of hypothesis per case), so a few each: 8 doubled the run for no
# operation more.
MAX_EXAMPLES = 3
INSTANCE = {
    "subscriptionId": "00000000-0000-0000-0000-000000000000",
    "resourceGroupName": "local",
    "serviceName": "local",
}
FIXED = {"path_parameters": INSTANCE, "query": {"api-version": API_VERSION}}
CHECKS = [
    st_checks.not_a_server_error,
    st_checks.status_code_conformance,
    st_checks.content_type_conformance,
    st_checks.response_schema_conformance,
    apim_error_body,
]
# Against APIM's contract, a null property reads as an absent one (see the README's differences).
APIM_CHECKS = [
    response_schema_null_as_absent if c is st_checks.response_schema_conformance else c
    for c in CHECKS
]
# Public pages are throttled per client address; a few cases are enough for them.
FEW = {"POST /password-reset": 4, "POST /signin": 6}
# Real bugs found by these runs in code outside this suite's reach, reported to its owners:
# failure-key prefix -> what is wrong. Reported on every run, not failed on; remove the entry
# with the fix (the run then shows 0 known bugs).
KNOWN_BUGS: dict[str, str] = {}
# Deliberate differences from APIM's published contract (README: "Differences from APIM's
# published contract"): operation label -> checks that do not apply to it.
APIM_DIFFERENCES: dict[str, set[str]] = {}


def _show(request: pytest.FixtureRequest, figures: Figures) -> None:
    """Print the figures where CI shows them, whatever pytest's capture (or xdist) does."""
    capture = request.config.pluginmanager.getplugin("capturemanager")
    reporter = request.config.pluginmanager.getplugin("terminalreporter")
    with capture.global_and_fixture_disabled():
        if reporter is not None and not hasattr(request.config, "workerinput"):
            reporter.write_line("")
            reporter.write_line(figures.report())
        else:  # an xdist worker: its stderr is the controller's
            sys.stderr.write(f"\n{figures.report()}\n")
            sys.stderr.flush()


@pytest.fixture
def seeds(clean_live_server) -> dict[str, str]:
    """Entities the second pass of each run addresses by id (made again before each run)."""
    made = {
        "/users/contract-seed": {
            "email": "contract-seed@example.com",
            "firstName": "Ada",
            "lastName": "L",
        },
        "/users/contract-noted": {
            "email": "contract-noted@example.com",
            "firstName": "Grace",
            "lastName": "H",
            "note": "admiral",
        },
        "/users/contract-invitee": {
            "email": "contract-invitee@example.com",
            "firstName": "Iris",
            "lastName": "M",
            "confirmation": "invite",
        },
        "/groups/contract-group": {"displayName": "Contract group", "description": "seed"},
        "/products/contract-product": {
            "displayName": "Contract product",
            "subscriptionRequired": True,
            "approvalRequired": False,
            "state": "published",
        },
        "/subscriptions/contract-sub": {
            "displayName": "Contract subscription",
            "scope": "/products/contract-product",
            "ownerId": "/users/contract-seed",
            "state": "active",
        },
        "/groups/contract-group/users/contract-seed": None,
        "/products/contract-product/groups/contract-group": None,
        "/notifications/RequestPublisherNotificationMessage/recipientUsers/contract-seed": None,
        "/notifications/RequestPublisherNotificationMessage/recipientEmails/"
        "contract-recipient@example.com": None,
    }
    for path, props in made.items():
        reply = requests.put(
            clean_live_server.url(path),
            params={"api-version": API_VERSION},
            json={"properties": props} if props is not None else None,
            headers={"Authorization": clean_live_server.token},
            timeout=30,
        )
        assert reply.status_code in (200, 201), f"PUT {path}: {reply.status_code} {reply.text}"
    return {
        "userId": "contract-seed",
        "groupId": "contract-group",
        "productId": "contract-product",
        "sid": "contract-sub",
        "templateName": "newDeveloperNotificationMessage",
        "notificationName": "RequestPublisherNotificationMessage",
        "email": "contract-recipient@example.com",
    }


# Our document has the most operations: its run is split in two tests (two workers can share it).
SHARES = 2


@pytest.mark.parametrize("part", range(SHARES), ids=lambda p: f"share{p + 1}of{SHARES}")
def test_our_document_holds_for_every_operation(live_server, seeds, request, part):
    served = requests.get(live_server.base_url + DOCUMENT_PATH, timeout=10)
    assert served.status_code == 200, served.text
    schema = schemathesis.openapi.from_dict(served.json())
    figures = run(
        f"ours, share {part + 1} of {SHARES}",
        schema,
        base_url=live_server.base_url,
        headers={"Authorization": live_server.token},
        fixed=FIXED,
        checks=CHECKS,
        max_examples=MAX_EXAMPLES,
        seeds=seeds,
        examples_for=FEW,
        known_bugs=KNOWN_BUGS,
        share=(part, SHARES),
    )
    _show(request, figures)
    documented = sum(
        len([m for m in item if m != "parameters"]) for item in served.json()["paths"].values()
    )
    # The shares interleave the operations: each holds every SHARES-th one, together all of them.
    assert figures.operations == len(range(part, documented, SHARES))
    assert not figures.unexpected, figures.report()


def test_responses_match_apims_own_contract(live_server, seeds, request):
    if not APIM_BUNDLE.exists():
        pytest.fail(f"APIM's contract is missing: {APIM_BUNDLE} (see chalicelib/openapi/README.md)")
    import app  # noqa: F401  (installs the routes: without it the run below covered nothing)

    ids = apim_operation_ids()
    assert ids, "no APIM operation is installed"
    schema = schemathesis.openapi.from_path(str(APIM_BUNDLE)).include(operation_id=ids)
    figures = run(
        "APIM 2024-05-01",
        schema,
        base_url=live_server.base_url,
        headers={"Authorization": live_server.token},
        fixed=FIXED,
        checks=APIM_CHECKS,
        max_examples=MAX_EXAMPLES,
        seeds=seeds,
        excluded=APIM_DIFFERENCES,
        known_bugs=KNOWN_BUGS,
    )
    _show(request, figures)
    assert figures.operations == len(ids)
    assert not figures.unexpected, figures.report()
