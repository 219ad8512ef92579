"""In-process API tests: chalice.test.Client against moto's mock_aws."""

import boto3
import pytest
from moto import mock_aws

from chalicelib import wiring
from chalicelib.config import get_settings
from tests.support import Api


@pytest.fixture
def aws():
    with mock_aws():
        wiring.reset()
        from chalicelib.keys import forget_cached_keys
        from chalicelib.store.models import create_tables

        forget_cached_keys()
        create_tables(get_settings())
        boto3.client("ses").verify_email_identity(EmailAddress="noreply@example.com")
        yield
        wiring.reset()


@pytest.fixture
def client(aws):
    from chalice.test import Client

    from app import app

    with Client(app, stage_name="test") as c:
        yield c


@pytest.fixture
def api(client) -> Api:
    return Api(client)


@pytest.fixture
def clock(aws):
    from tests.support import MovableClock

    moving = MovableClock()
    wiring.use_clock(moving)
    return moving
