"""The suite's cache of moto's response-class inspection answers what moto's own would."""

from __future__ import annotations

import inspect

from moto.core import responses
from moto.dynamodb.responses import DynamoHandler
from moto.ses.responses import EmailResponse

from tests import moto_dispatch


def test_the_cached_listing_is_moto_s_own_and_every_request_sees_it():
    assert moto_dispatch.install()
    for clazz in (DynamoHandler, EmailResponse):
        own = [name for name, _ in inspect.getmembers(clazz, predicate=inspect.isfunction)]
        assert responses.method_names_from_class(clazz) == own
        assert "get_item" in own or "send_raw_email" in own
