"""Test-wide environment: fake AWS credentials, no endpoint, cheap hashing, fixed keys."""

import os

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
