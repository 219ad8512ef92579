"""A fault-injecting HTTP proxy between the service and its AWS backend (moto server), on loopback.

Modes, switched while it runs:
- ``pass``: forward every request;
- ``refuse``: close each connection without an answer (the backend is unreachable);
- ``drop_answer``: forward the request, then close the connection instead of answering (the
  change may have happened; the caller never hears of it);
- ``lose_after_commit``: forward, and once a TransactWriteItems succeeded, answer it and refuse
  everything after (the backend is lost right after a commit);
- ``delay``: wait ``delay_seconds`` before forwarding.

``log`` records each request's target (e.g. ``DynamoDB_20120810.GetItem``) and what was done.
"""

from __future__ import annotations

import http.client
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "proxy-connection", "upgrade"}


class FaultProxy:
    """A running proxy: ``url`` is what the service is pointed at."""

    def __init__(self, backend: str) -> None:
        parts = urlsplit(backend)
        self.backend_host, self.backend_port = parts.hostname or "127.0.0.1", parts.port or 80
        self.mode = "pass"
        self.delay_seconds = 0.0
        self.log: list[tuple[str, str]] = []
        self._lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                return

            def _relay(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                target = self.headers.get("X-Amz-Target") or f"{self.command} {self.path}"
                mode = proxy.mode
                if mode == "refuse":
                    proxy._record(target, "refused")
                    self.close_connection = True
                    self.connection.close()
                    return
                if mode == "delay":
                    time.sleep(proxy.delay_seconds)
                status, headers, answer = proxy._forward(
                    self.command, self.path, self.headers, body
                )
                if mode == "drop_answer":
                    proxy._record(target, "answer dropped")
                    self.close_connection = True
                    self.connection.close()
                    return
                if mode == "lose_after_commit" and target.endswith("TransactWriteItems"):
                    if status == 200:
                        proxy.mode = "refuse"
                proxy._record(target, str(status))
                self.send_response(status)
                for name, value in headers:
                    if name.lower() not in _HOP_BY_HOP | {"content-length"}:
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = _relay

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def _record(self, target: str, outcome: str) -> None:
        with self._lock:
            self.log.append((target, outcome))

    def _forward(
        self, method: str, path: str, headers: object, body: bytes
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        connection = http.client.HTTPConnection(self.backend_host, self.backend_port, timeout=30)
        try:
            sent = {k: v for k, v in headers.items() if k.lower() not in _HOP_BY_HOP}  # type: ignore[attr-defined]
            connection.request(method, path, body=body, headers=sent)
            reply = connection.getresponse()
            return reply.status, reply.getheaders(), reply.read()
        finally:
            connection.close()

    def targets(self, outcome: str) -> list[str]:
        with self._lock:
            return [t for t, o in self.log if o == outcome]

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
