"""The management key pair: from the stage configuration locally, from SSM when deployed."""

from __future__ import annotations

import json
import time
from functools import cache
from typing import Any

from chalicelib.config import Settings

# Keys fetched from SSM are reused this long, so a rotation reaches every container within it.
_SSM_CACHE_SECONDS = 300
_cached: tuple[float, list[str]] | None = None


@cache
def _ssm_client(region: str) -> Any:
    # botocore alone, once per container: boto3 would add its own import, s3transfer's (through
    # boto3.compat) and a session wrapper to the first request for one call (docs/performance.md,
    # section 3). The endpoint is left to botocore, so AWS_ENDPOINT_URL is honoured.
    from botocore.session import get_session

    return get_session().create_client("ssm", region_name=region)


def management_keys(settings: Settings) -> list[str]:
    """[primary, secondary]; a token signed with either is accepted."""
    global _cached
    if not settings.keys_parameter:
        return [k for k in (settings.primary_key, settings.secondary_key) if k]
    now = time.monotonic()
    if _cached is None or now - _cached[0] > _SSM_CACHE_SECONDS:
        response = _ssm_client(settings.region).get_parameter(
            Name=settings.keys_parameter, WithDecryption=True
        )
        data = json.loads(response["Parameter"]["Value"])
        _cached = (now, [k for k in (data.get("primary"), data.get("secondary")) if k])
    return _cached[1]


def forget_cached_keys() -> None:
    """Drop the cached SSM keys (tests, and after a rotation)."""
    global _cached
    _cached = None
