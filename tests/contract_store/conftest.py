"""One contract for two stores: every test here runs on the fakes and on DynamoDB (moto).

``backend`` is parametrized ``fake`` / ``dynamo``. The fakes (tests/fakes.py) stand in for the
DynamoDB store in the services' tests; these tests are what keeps them honest: the same writes,
the same answers, the same domain errors, the same all-or-nothing transactions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest


@dataclass
class Backend:
    name: str
    store: Any  # users, links, outbox, counters, products, subscriptions, audit; transaction()
    groups: Any  # a GroupStore
    templates: Any  # a TemplateStore


@pytest.fixture(params=["fake", pytest.param("dynamo", marks=pytest.mark.moto)])
def backend(request) -> Backend:
    if request.param == "fake":
        from tests.fakes import FakeGroups, FakeStore, FakeTemplates

        return Backend("fake", FakeStore(), FakeGroups(), FakeTemplates())
    from chalicelib.store.groups import GroupRepository
    from chalicelib.store.templates import TemplateRepository

    wired = request.getfixturevalue("wired")
    return Backend("dynamo", wired.store(), GroupRepository(), TemplateRepository())
