"""`apim-users dev` as a developer runs it: its console output, client addresses, bursts."""

from __future__ import annotations

import http.client
import json
import os
import re
import socket
import struct
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from chalicelib.cli import LOOPBACK, free_port, project_dir, stop_process

pytestmark = pytest.mark.integration

STARTUP_TIMEOUT = 120.0  # the whole start on a busy 2-core machine; a healthy start takes seconds
BANNER_START = "apim-users dev:"
BANNER_END = "Press Ctrl-C to stop."
# werkzeug's access line, as the embedded moto server writes it: `... "POST / HTTP/1.1" 200 -`
BACKEND_LOG = re.compile(r'"POST / HTTP/1\.1.*" \d{3} ')
API = "api-version=2024-05-01"
BURST = 50


def _script() -> list[str]:
    """The installed console script, as `make dev` runs it."""
    script = Path(sys.executable).with_name("apim-users")
    return [str(script)] if script.exists() else [sys.executable, "-m", "chalicelib.cli"]


def _shell_env(mail_dir: Path) -> dict[str, str]:
    """A developer's shell: none of the test session's AWS or service settings."""
    keep = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "PYTHONDONTWRITEBYTECODE")
    env = {k: os.environ[k] for k in keep if k in os.environ}
    # A terminal is line-buffered; a pipe is not unless asked, and the order of lines is tested.
    env["PYTHONUNBUFFERED"] = "1"
    env["MAIL_DROP_DIR"] = str(mail_dir)
    return env


class DevProcess:
    """A running ``apim-users dev``, with every line it prints (stdout and stderr, in order)."""

    def __init__(self, args: list[str], mail_dir: Path) -> None:
        self.process = subprocess.Popen(
            [*_script(), "dev", *args],
            cwd=project_dir(),
            env=_shell_env(mail_dir),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.lines: list[str] = []
        self._changed = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for raw in self.process.stdout:
            with self._changed:
                self.lines.append(raw.decode(errors="replace").rstrip("\n"))
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    def wait_for(self, text: str, timeout: float = STARTUP_TIMEOUT) -> int:
        """The index of the first line equal to ``text`` (or starting with it)."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for i, line in enumerate(self.lines):
                    if line.startswith(text):
                        return i
                left = deadline - time.monotonic()
                if left <= 0 or self.process.poll() is not None:
                    output = "\n".join(self.lines[-40:])
                    pytest.fail(f"no line {text!r} (exit code {self.process.poll()}):\n{output}")
                self._changed.wait(min(left, 0.5))

    def value(self, label: str) -> str:
        """The value printed after ``label`` in the banner."""
        for line in self.lines:
            if line.startswith(label):
                return line[len(label) :].strip()
        raise AssertionError(f"the banner has no {label!r} line:\n" + "\n".join(self.lines))

    def stop(self) -> None:
        stop_process(self.process)


@pytest.fixture(scope="module")
def dev(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[DevProcess, list[str]]]:
    """The dev server on a free port, and what it printed until its start was over.

    "Over" is the banner plus a quiet second and a half: whatever it prints at start but after
    its banner shows up there.
    """
    port = free_port()
    server = DevProcess(["--port", str(port)], tmp_path_factory.mktemp("dev-mail"))
    try:
        server.wait_for(BANNER_END)
        time.sleep(1.5)
        yield server, list(server.lines)
    finally:
        server.stop()


class Api:
    """Requests to the dev server's management API, from a chosen loopback address."""

    def __init__(self, server: DevProcess) -> None:
        base = urlsplit(server.value("API base URL:"))
        self.host, self.port = base.hostname or LOOPBACK, base.port or 80
        self.path = base.path
        self.auth = server.value("Token (24 h):")

    def call(
        self, method: str, path: str, body: object = None, source: str = LOOPBACK
    ) -> tuple[int, object]:
        conn = http.client.HTTPConnection(
            self.host, self.port, timeout=30, source_address=(source, 0)
        )
        try:
            payload = None if body is None else json.dumps(body)
            headers = {"Authorization": self.auth, "Content-Type": "application/json"}
            conn.request(method, f"{self.path}{path}?{API}", body=payload, headers=headers)
            answer = conn.getresponse()
            text = answer.read()
            return answer.status, json.loads(text) if text else None
        finally:
            conn.close()


def _events_addresses(api: Api, user_id: str) -> set[str | None]:
    status, events = api.call("GET", f"/users/{user_id}/events")
    assert status == 200, events
    assert isinstance(events, dict) and events["value"], events
    return {event["actor"]["address"] for event in events["value"]}


def _new_user(api: Api, source: str) -> str:
    user_id = f"peer-{uuid.uuid4().hex[:12]}"
    body = {"properties": {"email": f"{user_id}@example.com", "firstName": "P", "lastName": "Q"}}
    status, answer = api.call("PUT", f"/users/{user_id}", body, source=source)
    assert status == 201, answer
    return user_id


def test_a_port_in_use_is_one_line_and_a_failure_before_anything_starts(tmp_path):
    with socket.socket() as taken:
        taken.bind((LOOPBACK, 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [*_script(), "dev", "--port", str(port)],
            cwd=project_dir(),
            env=_shell_env(tmp_path),
            capture_output=True,
            text=True,
            timeout=STARTUP_TIMEOUT,
        )
    output = (done.stdout + done.stderr).strip()
    assert done.returncode != 0, output
    assert "Traceback" not in output
    assert "SharedAccessSignature" not in output and "sign in as" not in output, output
    assert len(output.splitlines()) == 1, output
    assert str(port) in output and "PORT=" in output, output


def test_the_banner_comes_last_after_a_quiet_start(dev):
    server, startup = dev
    first = next(i for i, line in enumerate(startup) if line.startswith(BANNER_START))
    assert first < 10, "\n".join(startup[:first])
    assert not [line for line in startup if BACKEND_LOG.search(line)], "\n".join(startup)
    assert startup[-1] == BANNER_END, "\n".join(startup)
    # Ready when it says so: the console answers (a redirect to its sign-in page).
    console = urlsplit(server.value("Console:"))
    conn = http.client.HTTPConnection(console.hostname or LOOPBACK, console.port, timeout=30)
    try:
        conn.request("GET", console.path)
        assert conn.getresponse().status < 500
    finally:
        conn.close()


def test_verbose_shows_the_embedded_backend_requests(tmp_path):
    server = DevProcess(["--port", str(free_port()), "--verbose"], tmp_path)
    try:
        end = server.wait_for(BANNER_END)
        assert [line for line in server.lines[:end] if BACKEND_LOG.search(line)]
    finally:
        server.stop()


def test_the_source_ip_of_a_request_is_its_tcp_peer(dev):
    server, _ = dev
    api = Api(server)
    from_two = _new_user(api, source="127.0.0.2")
    from_one = _new_user(api, source="127.0.0.1")
    assert _events_addresses(api, from_two) == {"127.0.0.2"}
    assert _events_addresses(api, from_one) == {"127.0.0.1"}


def _retransmissions(sock: socket.socket) -> int:
    """TCP segments this connection sent again (Linux ``tcp_info.tcpi_total_retrans``).

    On loopback nothing is lost on the wire: a retransmission means the server's listen queue
    was full and the kernel dropped the SYN or the handshake's last ACK. The client then waits
    1, 3, 7... seconds, or (on other systems) is reset.
    """
    info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 104)
    return int(struct.unpack_from("I", info, 100)[0])  # offset fixed by the kernel's ABI


@pytest.mark.skipif(not hasattr(socket, "TCP_INFO"), reason="reads Linux's tcp_info")
def test_fifty_new_connections_at_the_same_moment_are_all_answered_at_once(dev):
    """No connection is opened in advance: each thread connects after the barrier releases.

    "At once" is not a time limit (this machine is shared): no connection needed a second
    try at the TCP level, which only a full listen queue causes on loopback.
    """
    server, _ = dev
    api = Api(server)
    barrier = threading.Barrier(BURST)
    answers: dict[int, tuple[int, int] | BaseException] = {}

    def one(n: int) -> None:
        conn = http.client.HTTPConnection(api.host, api.port, timeout=30)
        try:
            barrier.wait(timeout=30)
            # http.client connects on the first request: now, together with the 49 others.
            conn.request(
                "GET", f"{api.path}/users/absent-{n}?{API}", headers={"Authorization": api.auth}
            )
            answer = conn.getresponse()
            answer.read()
            assert conn.sock is not None  # a keep-alive answer leaves the connection open
            answers[n] = (answer.status, _retransmissions(conn.sock))
        except (OSError, http.client.HTTPException) as exc:
            answers[n] = exc
        finally:
            conn.close()

    threads = [threading.Thread(target=one, args=(n,)) for n in range(BURST)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=90)
    failed = {n: a for n, a in answers.items() if not isinstance(a, tuple)}
    assert not failed, f"{len(failed)}/{BURST} connections got no answer: {failed}"
    assert sorted(answers) == list(range(BURST))
    assert {status for status, _ in answers.values()} == {404}, answers
    retried = {n: r for n, (_, r) in answers.items() if r}
    assert not retried, f"{len(retried)}/{BURST} connections were dropped and retried: {retried}"


def test_an_invitation_is_printed_by_the_relay_with_a_link_that_opens(dev):
    """The request only records the email; the dev process's relay, following the embedded
    backend's stream, sends it and prints it with its link (as the stream-triggered function
    sends it in AWS)."""
    server, _ = dev
    api = Api(server)
    user_id = f"inv-{uuid.uuid4().hex[:12]}"
    body = {
        "properties": {
            "email": f"{user_id}@example.com",
            "firstName": "Ivy",
            "lastName": "Invitee",
            "confirmation": "invite",
        }
    }
    status, answer = api.call("PUT", f"/users/{user_id}", body)
    assert status == 201, answer
    start = server.wait_for(f"mail to {user_id}@example.com: ", timeout=60)
    # The link is printed on the next line, which the reader may not have taken in yet.
    deadline = time.monotonic() + 10
    while len(server.lines) <= start + 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    link_line = server.lines[start + 1]
    assert link_line.startswith("  link: http://127.0.0.1:")
    link = urlsplit(link_line.split("link: ", 1)[1])
    assert link.path == "/confirm/invitation"
    conn = http.client.HTTPConnection(link.hostname or LOOPBACK, link.port or 80, timeout=30)
    try:
        conn.request("GET", f"{link.path}?{link.query}")
        page = conn.getresponse()
        assert page.status == 200
        assert f"{user_id}@example.com" in page.read().decode()
    finally:
        conn.close()
    status, views = api.call("GET", f"/users/{user_id}/invitations")
    assert status == 200 and isinstance(views, dict)
    assert views["value"][0]["delivery"]["state"] == "sent"
