"""The live dev stack: moto server + ``chalice local``, both on loopback, for the HTTP tiers.

tests/conftest.py starts one per session (per xdist worker) as ``live_server``, shared by every
test that needs real HTTP: the API's wire replay, the integration tests (Azure SDK, races), the
schemathesis runs and the browser tests. A test that needs a clean server calls
``LiveServer.reset()``, which puts the moto server back to its start-up state
(``/moto-api/reset``, then the captured tables, SES identities and SSM parameters again, through
boto3 clients given the endpoint explicitly, so the pytest process's environment never names it),
and empties the mail drop. ``live_stack(..., backend=server)`` starts one more ``chalice local``
with other settings on the same moto server (the browser's short-lived reset links).

moto runs in a child process of its own: in-process tests use ``mock_aws``, which would catch
the calls of a ThreadedMotoServer living in the pytest process. Tables and the SES sender are
created by a third, short-lived child, so neither the environment nor PynamoDB's cached
connections of the pytest process ever point at the moto server.

The moto child serves one request at a time. ``python -m moto.server`` (and ThreadedMotoServer)
run requests on parallel threads, and moto 5.2.5's TransactWriteItems is not isolated between
threads: a cancelled transaction rolls back by restoring a deep copy of each table taken when it
started, which can hold another transaction's half-done write. Under 30 racing sign-ups that
resurrects user rows of requests that were answered 409 (seen in about 1 round in 6 with boto3
alone, no service code involved). Real DynamoDB transactions are atomic, so the backend of these
tests must be too; chalice local still serves the racing requests in parallel. The server runs the
suite's shortcuts in moto, as the in-process tests do: tests/moto_transactions.py (whose undo
log needs the one-at-a-time serving as much as moto's table copies did),
tests/moto_serializer.py and tests/moto_dispatch.py.

chalice local runs no relay: the stack's third process is ``apim-users relay``, which follows the
outbox table's stream on the moto server and sends what it announces, as the stream-triggered
function does in AWS. ``LiveServer.mail_to`` first waits until it has caught up.

Other test directories reuse this machinery: ``live_stack()`` starts a stack with extra
environment (tests/api's http variant, tests/browser's short-lived links), and
``LiveServer.reset()`` puts the moto server back to its start-up state (``/moto-api/reset``, then
the captured tables, SES identities and SSM parameters again, through boto3 clients given the
endpoint explicitly, so the pytest process's environment still never names it).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import requests

from chalicelib.cli import (
    LOOPBACK,
    free_port,
    project_dir,
    stage_environment,
    start_chalice_local,
    stop_process,
    wait_for_http,
)
from chalicelib.domain.sas import management_token
from tests.fault_proxy import FaultProxy

STARTUP_TIMEOUT = 60.0
API_VERSION = "2024-05-01"
SERVICE_PATH = (
    "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/local"
    "/providers/Microsoft.ApiManagement/service/local"
)
# `apim-users create-tables`' function, its PynamoDB connections sharing one botocore session
# (tests/in_process.py says why): the child takes about a second instead of five.
CREATE_BACKEND = (
    "from tests.in_process import share_one_botocore_session; share_one_botocore_session(); "
    "from chalicelib.cli import create_backend_resources; create_backend_resources()"
)
# moto's own server app (as moto.server's main builds it), with one request served at a time,
# and the suite's shortcuts in moto (tests/moto_transactions.py, tests/moto_serializer.py,
# tests/moto_dispatch.py):
# without them the server spent more CPU than the browser in the browser tests.
SERIAL_MOTO_SERVER = """
import sys, threading
from tests import moto_dispatch, moto_serializer, moto_transactions
moto_dispatch.install()
moto_serializer.install()
moto_transactions.install()
from werkzeug.serving import run_simple
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication, MotoRequestHandler, create_backend_app,
)
app = DomainDispatcherApplication(create_backend_app)
one_at_a_time = threading.Lock()
def serialized(environ, start_response):
    with one_at_a_time:
        return list(app(environ, start_response))
run_simple(sys.argv[1], int(sys.argv[2]), serialized, threaded=True,
           request_handler=MotoRequestHandler)
"""


@dataclass(frozen=True)
class LiveServer:
    """Where the running API is and how to call it."""

    base_url: str
    service_path: str
    token: (
        str  # the whole Authorization header value: "SharedAccessSignature uid=...&ex=...&sn=..."
    )
    startup_seconds: float
    mail_dir: Path  # the dev-server mail drop: every email the service sends, as .eml
    moto_endpoint: str = ""  # the moto server behind the stack (AWS_ENDPOINT_URL of chalice local)
    baseline: Baseline | None = field(default=None, repr=False, compare=False)
    # Between the service and moto when asked for (live_stack(fault_proxy=True)).
    proxy: FaultProxy | None = field(default=None, repr=False, compare=False)
    settings: Mapping[str, str] = field(default_factory=dict)  # the extra_env it started with

    def reset(self) -> None:
        """Back to the state the stack started in: empty tables, the SES sender, no mail.

        moto's own reset wipes every backend of the moto server; the tables (with their TTL
        settings), the verified SES identities and the SSM parameters captured at start-up are
        then created again, and the mail drop is emptied. chalice local keeps running.
        """
        if self.baseline is None:
            raise RuntimeError("this LiveServer was made without a baseline; it cannot reset")
        # What the last test caused is sent first, so no late email lands in the next one's.
        self.relay_settled()
        requests.post(f"{self.moto_endpoint}/moto-api/reset", timeout=30).raise_for_status()
        self.baseline.restore(self.moto_endpoint)
        for path in self.mail_dir.glob("*.eml"):
            path.unlink(missing_ok=True)

    def relay_settled(self, timeout: float = 30.0) -> None:
        """Until the relay has handled every message the outbox holds: none is waiting for its
        first attempt or in the middle of one (those that failed wait for the sweep)."""
        dynamodb = _aws_client(self.moto_endpoint, "dynamodb")
        deadline = time.monotonic() + timeout
        while True:
            busy = 0
            for name in dynamodb.list_tables()["TableNames"]:
                if not name.endswith("-outbox"):
                    continue
                for page in dynamodb.get_paginator("scan").paginate(TableName=name):
                    busy += sum(
                        1
                        for item in page["Items"]
                        if item["state"]["S"] == "queued" and "last_error" not in item
                    )
            if not busy:
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"the relay left {busy} emails unsent for {timeout:.0f}s")
            time.sleep(0.05)

    def mail_to(self, address: str) -> list[EmailMessage]:
        """Every message sent to ``address``, oldest first, parsed (once the relay is done)."""
        self.relay_settled()
        found = []
        for path in sorted(self.mail_dir.glob("*.eml")):
            message = message_from_bytes(path.read_bytes(), policy=policy.default)
            if address.lower() in str(message["To"]).lower():
                found.append(message)
        return found

    @property
    def api_url(self) -> str:
        return self.base_url + self.service_path

    def url(self, path: str) -> str:
        """The absolute URL of a path below the service, e.g. ``/users/u1``."""
        return self.api_url + path

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": self.token}


class StartupError(RuntimeError):
    """The stack did not come up; the message carries the children's output."""


def _aws_client(endpoint: str, service: str) -> Any:
    """A boto3 client of the moto server, by explicit endpoint.

    Neither the process environment nor PynamoDB's connections learn the endpoint, so the
    in-process tests' ``mock_aws`` stays the only AWS they see.
    """
    import boto3

    env = _child_env(endpoint)
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name=env["AWS_DEFAULT_REGION"],
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
    )


def _create_table_args(table: Mapping[str, Any]) -> dict[str, Any]:
    """CreateTable arguments that rebuild a table as DescribeTable shows it."""
    billing = table.get("BillingModeSummary", {}).get("BillingMode", "PROVISIONED")

    def throughput(source: Mapping[str, Any]) -> dict[str, int]:
        given = source.get("ProvisionedThroughput") or {}
        return {
            "ReadCapacityUnits": int(given.get("ReadCapacityUnits") or 1),
            "WriteCapacityUnits": int(given.get("WriteCapacityUnits") or 1),
        }

    args: dict[str, Any] = {
        "TableName": table["TableName"],
        "KeySchema": table["KeySchema"],
        "AttributeDefinitions": table["AttributeDefinitions"],
        "BillingMode": billing,
    }
    if billing == "PROVISIONED":
        args["ProvisionedThroughput"] = throughput(table)
    for kind in ("GlobalSecondaryIndexes", "LocalSecondaryIndexes"):
        indexes = []
        for index in table.get(kind) or []:
            spec = {key: index[key] for key in ("IndexName", "KeySchema", "Projection")}
            if kind == "GlobalSecondaryIndexes" and billing == "PROVISIONED":
                spec["ProvisionedThroughput"] = throughput(index)
            indexes.append(spec)
        if indexes:
            args[kind] = indexes
    if table.get("StreamSpecification"):
        args["StreamSpecification"] = table["StreamSpecification"]
    return args


class Baseline:
    """What the moto server holds right after start-up, so ``LiveServer.reset`` can rebuild it:
    the tables (empty) and their TTL settings, the SES identities, the SSM parameters."""

    def __init__(
        self,
        tables: list[dict[str, Any]],
        ttl: list[tuple[str, str]],
        identities: list[str],
        parameters: list[tuple[str, str, str]],
    ) -> None:
        self.tables = tables
        self.ttl = ttl
        self.identities = identities
        self.parameters = parameters
        self._clients: dict[tuple[str, str], Any] = {}

    def _client(self, endpoint: str, service: str) -> Any:
        if (endpoint, service) not in self._clients:
            self._clients[endpoint, service] = _aws_client(endpoint, service)
        return self._clients[endpoint, service]

    @classmethod
    def capture(cls, endpoint: str) -> Baseline:
        baseline = cls([], [], [], [])  # its clients are made once, and kept for restore
        dynamodb = baseline._client(endpoint, "dynamodb")
        for name in sorted(dynamodb.list_tables()["TableNames"]):
            table = dynamodb.describe_table(TableName=name)["Table"]
            baseline.tables.append(_create_table_args(table))
            state = dynamodb.describe_time_to_live(TableName=name)["TimeToLiveDescription"]
            if state.get("TimeToLiveStatus") in {"ENABLED", "ENABLING"}:
                baseline.ttl.append((name, state["AttributeName"]))
        ses = baseline._client(endpoint, "ses")
        baseline.identities.extend(ses.list_identities()["Identities"])
        ssm = baseline._client(endpoint, "ssm")
        for page in ssm.get_paginator("describe_parameters").paginate():
            for meta in page["Parameters"]:
                found = ssm.get_parameter(Name=meta["Name"], WithDecryption=True)["Parameter"]
                baseline.parameters.append((meta["Name"], meta["Type"], found["Value"]))
        return baseline

    def restore(self, endpoint: str) -> None:
        """Create it all again on a moto server that was just reset."""
        dynamodb = self._client(endpoint, "dynamodb")
        for args in self.tables:
            dynamodb.create_table(**args)
        for name, attribute in self.ttl:
            dynamodb.update_time_to_live(
                TableName=name,
                TimeToLiveSpecification={"Enabled": True, "AttributeName": attribute},
            )
        ses = self._client(endpoint, "ses")
        for identity in self.identities:
            if "@" in identity:
                ses.verify_email_identity(EmailAddress=identity)
            else:
                ses.verify_domain_identity(Domain=identity)
        ssm = self._client(endpoint, "ssm")
        for name, kind, value in self.parameters:
            ssm.put_parameter(Name=name, Type=kind, Value=value, Overwrite=True)


def _tail(log: Path, limit: int = 8000) -> str:
    text = log.read_text(errors="replace") if log.exists() else ""
    return text[-limit:] or "(no output)"


def _fail(what: str, log: Path) -> StartupError:
    return StartupError(f"{what}\n--- output of the child ({log}) ---\n{_tail(log)}")


def _child_env(endpoint: str) -> dict[str, str]:
    """The pytest process's environment (fake credentials) plus the moto endpoint."""
    env = dict(os.environ)
    env.setdefault("AWS_ACCESS_KEY_ID", "testing")
    env.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    env.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    env["AWS_ENDPOINT_URL"] = endpoint
    return env


@contextmanager
def _fds_to(log: Path) -> Iterator[None]:
    """Point fds 1 and 2 at ``log`` while a child is spawned, so the child writes there."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = (os.dup(1), os.dup(2))
    try:
        with log.open("ab") as sink:
            os.dup2(sink.fileno(), 1)
            os.dup2(sink.fileno(), 2)
        yield
    finally:
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        os.close(saved[0])
        os.close(saved[1])


def _remaining(deadline: float) -> float:
    return max(0.1, deadline - time.monotonic())


def _start_moto(port: int, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as sink:
        return subprocess.Popen(
            [sys.executable, "-c", SERIAL_MOTO_SERVER, LOOPBACK, str(port)],
            cwd=project_dir(),  # where ``tests`` is imported from
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def _wait_for_moto(process: subprocess.Popen[bytes], endpoint: str, deadline: float, log: Path):
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise _fail(f"moto server exited with code {process.returncode}.", log)
        try:
            if requests.get(f"{endpoint}/moto-api/", timeout=1).ok:
                return
        except requests.RequestException:
            pass
        time.sleep(0.1)
    raise _fail(f"moto server did not answer at {endpoint} within {STARTUP_TIMEOUT:.0f}s.", log)


def _create_backend(env: dict[str, str], deadline: float, log: Path) -> None:
    # The stage's table names and sender, as chalice local will see them.
    child_env = {**env, **stage_environment("local")}
    with log.open("ab") as sink:
        try:
            done = subprocess.run(
                [sys.executable, "-c", CREATE_BACKEND],
                cwd=project_dir(),
                env=child_env,
                stdout=sink,
                stderr=subprocess.STDOUT,
                timeout=_remaining(deadline),
            )
        except subprocess.TimeoutExpired:
            raise _fail("creating the tables and the SES sender timed out.", log) from None
    if done.returncode != 0:
        raise _fail(f"creating the tables failed (exit code {done.returncode}).", log)


def _start_relay(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """``apim-users relay``: the outbox relay beside chalice local, on the same backend."""
    with log.open("ab") as sink:
        return subprocess.Popen(
            [sys.executable, "-m", "chalicelib.cli", "relay"],
            cwd=project_dir(),
            env={**env, "PYTHONUNBUFFERED": "1"},
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def _wait_for_chalice(process: subprocess.Popen[bytes], port: int, deadline: float, log: Path):
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise _fail(f"chalice local exited with code {process.returncode}.", log)
        try:
            wait_for_http(port, timeout=1.0)
            return
        except SystemExit:  # the helper's way of saying "not yet"
            continue
    raise _fail(f"chalice local did not answer on port {port} within {STARTUP_TIMEOUT:.0f}s.", log)


def _sign_token() -> str:
    stage = stage_environment("local")
    expiry = datetime.now(UTC) + timedelta(hours=2)
    signed = management_token(stage["APIM_ACCESS_ID"], expiry, stage["APIM_PRIMARY_KEY"])
    return f"SharedAccessSignature {signed}"


@contextmanager
def live_stack(
    logs: Path,
    extra_env: Mapping[str, str] | None = None,
    ssm_parameters: Mapping[str, str] | None = None,
    fault_proxy: bool = False,
    backend: LiveServer | None = None,
) -> Iterator[LiveServer]:
    """moto server + ``chalice local`` on loopback, until the block ends; logs go to ``logs``.

    ``extra_env`` is added last to the children's environment (it may replace ``PORTAL_URL``); in
    chalice local the keys that .chalice/config.json's local stage lists still win over it.
    ``ssm_parameters`` (name to value) are put into the moto server as SecureStrings before
    chalice local starts. ``fault_proxy`` puts a FaultProxy (tests/fault_proxy.py) between the
    service and moto (the server's ``proxy``); set-up and ``reset`` still reach moto directly.
    With ``backend``, no moto server is started: this ``chalice local``
    uses that stack's (its tables, SES and SSM, and its ``reset``), and only its own settings
    and mail drop differ.
    """
    moto_log, chalice_log = logs / "moto.log", logs / "chalice.log"
    started = time.monotonic()
    deadline = started + STARTUP_TIMEOUT
    with ExitStack() as cleanup:
        if backend is None:
            moto_port = free_port()
            endpoint = f"http://{LOOPBACK}:{moto_port}"
            moto = _start_moto(moto_port, moto_log)
            cleanup.callback(stop_process, moto)
            _wait_for_moto(moto, endpoint, deadline, moto_log)
        else:
            endpoint = backend.moto_endpoint

        env = _child_env(endpoint)
        # Stacks on one backend share its relay (one follower of the stream) and its mail drop.
        mail_dir = logs / "mail" if backend is None else backend.mail_dir
        env["MAIL_DROP_DIR"] = str(mail_dir)
        if backend is None:
            _create_backend({**env, **(extra_env or {})}, deadline, moto_log)
        if ssm_parameters:
            ssm = _aws_client(endpoint, "ssm")
            for name, value in ssm_parameters.items():
                ssm.put_parameter(Name=name, Type="SecureString", Value=value, Overwrite=True)
        baseline = Baseline.capture(endpoint) if backend is None else backend.baseline

        proxy = None
        if fault_proxy:
            proxy = FaultProxy(endpoint)
            cleanup.callback(proxy.close)
            env["AWS_ENDPOINT_URL"] = proxy.url
        port = free_port()
        env["PORTAL_URL"] = f"http://{LOOPBACK}:{port}"
        env.update(extra_env or {})
        with _fds_to(chalice_log):
            chalice = start_chalice_local(port, env=env)
        cleanup.callback(stop_process, chalice)
        relay = _start_relay(env, logs / "relay.log") if backend is None else None
        if relay is not None:
            cleanup.callback(stop_process, relay)
        _wait_for_chalice(chalice, port, deadline, chalice_log)
        if relay is not None and relay.poll() is not None:
            raise _fail(f"the relay exited with code {relay.returncode}.", logs / "relay.log")

        yield LiveServer(
            base_url=f"http://{LOOPBACK}:{port}",
            service_path=SERVICE_PATH,
            token=_sign_token(),
            startup_seconds=time.monotonic() - started,
            mail_dir=mail_dir,
            moto_endpoint=endpoint,
            baseline=baseline,
            proxy=proxy,
            settings=dict(extra_env or {}),
        )
