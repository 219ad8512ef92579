"""Settings read from the environment once, lazily (the test client sets stage variables late)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cache
from urllib.parse import urlsplit

LOCAL_SUBSCRIPTION_ID = "00000000-0000-0000-0000-000000000000"
LOCAL_STAGE = "local"
LOCAL_BASE_URL = "http://127.0.0.1:8000"
SUPPORTED_API_VERSIONS = frozenset(
    {"2021-08-01", "2022-08-01", "2023-03-01-preview", "2023-05-01-preview", "2024-05-01"}
)


class MissingSetting(RuntimeError):
    """A setting the service cannot run without is absent or unusable; the message names it."""


@dataclass(frozen=True)
class Settings:
    """Everything the service reads from its environment."""

    stage: str
    subscription_id: str
    resource_group: str
    service_name: str
    access_id: str
    primary_key: str
    secondary_key: str
    keys_parameter: str
    users_table: str
    email_locks_table: str
    links_table: str
    outbox_table: str
    counters_table: str
    groups_table: str
    templates_table: str
    products_table: str
    subscriptions_table: str
    subscription_keys_table: str
    audit_table: str
    portal_table: str
    audit_retention_days: int
    sender_email: str
    organization_name: str
    portal_url: str
    # Where clients reach this service (e.g. https://api.example.com or API Gateway's
    # https://{id}.execute-api.{region}.amazonaws.com/api): the base of nextLink and every other
    # absolute URL. Never the request's Host header, which the client writes.
    public_url: str
    invitation_hours: float
    reset_minutes: float
    mail_drop_dir: str
    # Emails a second when SES's own figure (GetAccount's MaxSendRate) cannot be read.
    ses_max_send_rate: float
    session_hours: float
    reset_floor_ms: int
    # Wrong passwords an hour for one account from one client address, and from one address.
    signin_failures_per_account_address: int
    signin_failures_per_address: int
    # Self-service reset requests an hour for one account from one client address, and from one.
    resets_per_account_address: int
    resets_per_address: int
    region: str
    argon2_memory_kib: int
    argon2_time_cost: int
    argon2_parallelism: int
    max_body_bytes: int
    # The admin console's session ends after this long without a request.
    console_idle_minutes: float

    @property
    def service_path(self) -> str:
        """The ARM id prefix of the instance this deployment serves."""
        return (
            f"/subscriptions/{self.subscription_id}/resourceGroups/{self.resource_group}"
            f"/providers/Microsoft.ApiManagement/service/{self.service_name}"
        )


def _base_urls(stage: str) -> tuple[str, str]:
    """PUBLIC_BASE_URL and PORTAL_URL (each defaults to the other), checked.

    Outside the local stage one of them is required: the settings cannot be read without it, so
    the first request of a container answers 500 and logs this error (fail closed) rather than
    write links to a default host into emails and nextLinks.
    """
    public = os.environ.get("PUBLIC_BASE_URL", "").strip().rstrip("/")
    portal = os.environ.get("PORTAL_URL", "").strip().rstrip("/")
    if not public and not portal:
        if stage != LOCAL_STAGE:
            raise MissingSetting(
                f"PUBLIC_BASE_URL (or PORTAL_URL) must be set in the {stage!r} stage: it is the "
                "https base of every absolute link this service writes (nextLink, email links)."
            )
        public = portal = LOCAL_BASE_URL
    public, portal = public or portal, portal or public
    for name, value in (("PUBLIC_BASE_URL", public), ("PORTAL_URL", portal)):
        parts = urlsplit(value)
        schemes = {"http", "https"} if stage == LOCAL_STAGE else {"https"}
        if parts.scheme not in schemes or not parts.hostname or parts.query or parts.fragment:
            raise MissingSetting(
                f"{name} must be an absolute {' or '.join(sorted(schemes))} URL without query "
                f"(in the {stage!r} stage), not {value!r}."
            )
    return public, portal


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    return int(raw) if raw else default


def _float(name: str, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    return float(raw) if raw else default


@cache
def get_settings() -> Settings:
    """Read the settings once per process; tests call ``get_settings.cache_clear()``."""
    env = os.environ.get
    prefix = env("TABLE_PREFIX", "apim-users-local")
    stage = env("APIM_STAGE", LOCAL_STAGE)
    public_url, portal_url = _base_urls(stage)
    return Settings(
        stage=stage,
        subscription_id=env("APIM_SUBSCRIPTION_ID", LOCAL_SUBSCRIPTION_ID),
        resource_group=env("APIM_RESOURCE_GROUP", "local"),
        service_name=env("APIM_SERVICE_NAME", "local"),
        access_id=env("APIM_ACCESS_ID", "integration"),
        primary_key=env("APIM_PRIMARY_KEY", ""),
        secondary_key=env("APIM_SECONDARY_KEY", ""),
        keys_parameter=env("APIM_KEYS_PARAMETER", ""),
        users_table=env("USERS_TABLE", f"{prefix}-users"),
        email_locks_table=env("EMAIL_LOCKS_TABLE", f"{prefix}-email-locks"),
        links_table=env("LINKS_TABLE", f"{prefix}-links"),
        outbox_table=env("OUTBOX_TABLE", f"{prefix}-outbox"),
        counters_table=env("COUNTERS_TABLE", f"{prefix}-counters"),
        groups_table=env("GROUPS_TABLE", f"{prefix}-groups"),
        templates_table=env("TEMPLATES_TABLE", f"{prefix}-templates"),
        products_table=env("PRODUCTS_TABLE", f"{prefix}-products"),
        subscriptions_table=env("SUBSCRIPTIONS_TABLE", f"{prefix}-subscriptions"),
        subscription_keys_table=env("SUBSCRIPTION_KEYS_TABLE", f"{prefix}-subscription-keys"),
        audit_table=env("AUDIT_TABLE", f"{prefix}-audit"),
        portal_table=env("PORTAL_TABLE", f"{prefix}-portal"),
        audit_retention_days=_int("AUDIT_RETENTION_DAYS", 400),
        sender_email=env("SENDER_EMAIL", "noreply@example.com"),
        organization_name=env("ORGANIZATION_NAME", "Contoso"),
        portal_url=portal_url,
        public_url=public_url,
        invitation_hours=_float("INVITATION_LIFETIME_HOURS", 48.0),
        reset_minutes=_float("RESET_LIFETIME_MINUTES", 60.0),
        mail_drop_dir=env("MAIL_DROP_DIR", ""),
        # 1 a second is the SES sandbox's rate: safe for any account.
        ses_max_send_rate=_float("SES_MAX_SEND_RATE", 1.0),
        session_hours=_float("SESSION_HOURS", 8.0),
        reset_floor_ms=_int("PUBLIC_RESPONSE_FLOOR_MS", 400),
        signin_failures_per_account_address=_int("SIGNIN_FAILURES_PER_ACCOUNT_ADDRESS_HOUR", 10),
        signin_failures_per_address=_int("SIGNIN_FAILURES_PER_ADDRESS_HOUR", 1000),
        resets_per_account_address=_int("RESETS_PER_ACCOUNT_ADDRESS_HOUR", 5),
        resets_per_address=_int("RESETS_PER_ADDRESS_HOUR", 50),
        region=env("AWS_REGION") or env("AWS_DEFAULT_REGION") or "us-east-1",
        argon2_memory_kib=_int("ARGON2_MEMORY_KIB", 19456),
        argon2_time_cost=_int("ARGON2_TIME_COST", 2),
        argon2_parallelism=_int("ARGON2_PARALLELISM", 1),
        max_body_bytes=_int("MAX_BODY_BYTES", 64 * 1024),
        console_idle_minutes=_float("CONSOLE_IDLE_MINUTES", 30.0),
    )
