"""A publisher's delegation site, for tests: checks APIM's signature, signs in through SSO.

What a publisher writes (api-management-howto-setup-delegation): the portal redirects a developer
to ``GET {url}?operation=SignIn&returnUrl=...&salt=...&sig=...``; the site recomputes ``sig``
with the validation key and refuses a mismatch (403), signs the developer in with its own
accounts (here: whoever ``visitor`` names, mapped to an APIM user id), asks the management API
for ``POST users/{id}/generateSsoUrl``, and redirects (302) to that URL with ``returnUrl``
appended. Other operations are only verified and recorded (``handled``): a real site would
change the profile or create the subscription through the management API.

It is a WSGI app, served on loopback by ``serve``; ``generate_sso_url`` is how it reaches the
management API (the in-process test client, or HTTP to a live stack), so the site never holds
more than a callable.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, quote
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from chalicelib.domain.delegation import Operation, verify


@dataclass
class DelegationSite:
    """The publisher's endpoint; ``accounts`` maps its visitors to APIM user ids."""

    validation_key: str
    generate_sso_url: Callable[[str], str]
    accounts: dict[str, str]
    visitor: str | None = None
    handled: list[dict[str, str]] = field(default_factory=list)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        query = dict(parse_qsl(environ.get("QUERY_STRING", ""), keep_blank_values=True))
        if not verify(self.validation_key, query):
            return self._reply(start_response, "403 Forbidden", b"The signature does not match.")
        self.handled.append(query)
        if query["operation"] not in (Operation.SIGN_IN, Operation.SIGN_UP):
            return self._reply(start_response, "200 OK", b"Done.")
        user_id = self.accounts.get(self.visitor or "")
        if user_id is None:
            return self._reply(start_response, "401 Unauthorized", b"Sign in to the site first.")
        target = self.generate_sso_url(user_id)
        target += f"&returnUrl={quote(query['returnUrl'], safe='')}"
        start_response("302 Found", [("Location", target), ("Content-Length", "0")])
        return [b""]

    @staticmethod
    def _reply(start_response: Callable[..., Any], status: str, body: bytes) -> list[bytes]:
        start_response(status, [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
        return [body]


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def serve(site: DelegationSite) -> Iterator[str]:
    """The site on an ephemeral loopback port; yields its delegation URL."""
    server: WSGIServer = make_server("127.0.0.1", 0, site, handler_class=_Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/delegate"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
