"""A live dev stack for integration tests: moto server + ``chalice local``, both on loopback.

moto runs in a child process of its own: in-process tests elsewhere use ``mock_aws``, which resets
moto's in-process backends and would wipe a ThreadedMotoServer living in the pytest process.
Tables and the SES sender are created by a third, short-lived child, so neither the environment
nor PynamoDB's cached connections of the pytest process ever point at the moto server.

The moto child serves one request at a time. ``python -m moto.server`` (and ThreadedMotoServer)
run requests on parallel threads, and moto 5.2.5's TransactWriteItems is not isolated between
threads: a cancelled transaction rolls back by restoring a deep copy of each table taken when it
started, which can hold another transaction's half-done write. Under 30 racing sign-ups that
resurrects user rows of requests that were answered 409 (seen in about 1 round in 6 with boto3
alone, no service code involved). Real DynamoDB transactions are atomic, so the backend of these
tests must be too; chalice local still serves the racing requests in parallel.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

import pytest
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

STARTUP_TIMEOUT = 60.0
API_VERSION = "2024-05-01"
SERVICE_PATH = (
    "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/local"
    "/providers/Microsoft.ApiManagement/service/local"
)
CREATE_BACKEND = "from chalicelib.cli import create_backend_resources; create_backend_resources()"
# moto's own server app (as moto.server's main builds it), with one request served at a time.
SERIAL_MOTO_SERVER = """
import sys, threading
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

    def mail_to(self, address: str) -> list[EmailMessage]:
        """Every message sent to ``address``, oldest first, parsed."""
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


@pytest.fixture(scope="session")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    logs = tmp_path_factory.mktemp("live-server")
    moto_log, chalice_log = logs / "moto.log", logs / "chalice.log"
    started = time.monotonic()
    deadline = started + STARTUP_TIMEOUT
    with ExitStack() as cleanup:
        moto_port = free_port()
        endpoint = f"http://{LOOPBACK}:{moto_port}"
        moto = _start_moto(moto_port, moto_log)
        cleanup.callback(stop_process, moto)
        _wait_for_moto(moto, endpoint, deadline, moto_log)

        env = _child_env(endpoint)
        env["MAIL_DROP_DIR"] = str(logs / "mail")
        _create_backend(env, deadline, moto_log)

        port = free_port()
        env["PORTAL_URL"] = f"http://{LOOPBACK}:{port}"
        with _fds_to(chalice_log):
            chalice = start_chalice_local(port, env=env)
        cleanup.callback(stop_process, chalice)
        _wait_for_chalice(chalice, port, deadline, chalice_log)

        yield LiveServer(
            base_url=f"http://{LOOPBACK}:{port}",
            service_path=SERVICE_PATH,
            token=_sign_token(),
            startup_seconds=time.monotonic() - started,
            mail_dir=logs / "mail",
        )
