"""The management API over real HTTP: an ``Api`` (tests/support.py) that calls a live stack.

``HttpApi`` has the methods, arguments and replies of ``Api``, but sends each call with
``requests`` to ``chalice local`` on loopback, whose DynamoDB and SES are a moto server
(tests/live_stack.py). What a test sees is what went through a real HTTP stack:
requests' URL quoting, http.server's parsing, headers as they cross the wire.

Absolute URLs (a ``nextLink``) are sent to the live server whatever their host, with that host in
the ``Host`` header, as a client reaching the service through a gateway would: in the local stage
the service builds its links from a loopback ``Host``, so the next link again names that host.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

import requests

from tests.support import API_VERSION, Reply, Verbs

if TYPE_CHECKING:
    from tests.live_stack import LiveServer


class HttpApi(Verbs):
    """Management calls with auth and api-version filled in, paths relative to the instance."""

    def __init__(self, server: LiveServer, token: str) -> None:
        self.server = server
        self.base = server.service_path
        self.token = token
        self.session = requests.Session()

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        headers: dict[str, str | None] | None = None,
        api_version: str | None = API_VERSION,
        raw: bytes | str | None = None,
        absolute: bool = False,
    ) -> Reply:
        url = path if absolute else self.base + path
        if api_version is not None:
            url += ("&" if "?" in url else "?") + f"api-version={api_version}"
        sent: dict[str, str | None] = {
            "Authorization": self.token,
            "Content-Type": "application/json",
        }
        sent.update(headers or {})
        parts = urlsplit(url)
        if parts.scheme or parts.netloc:
            if not any(k.lower() == "host" for k in sent):
                sent["Host"] = parts.netloc
            url = urlunsplit(("", "", parts.path, parts.query, ""))
        if raw is not None:
            payload = raw.encode() if isinstance(raw, str) else raw
        else:
            payload = json.dumps(body).encode() if body is not None else b""
        response = self.session.request(
            method,
            self.server.base_url + url,
            headers={k: v for k, v in sent.items() if v is not None},
            data=payload,
            allow_redirects=False,
            timeout=30,
        )
        return Reply(response.status_code, dict(response.headers), response.content)

    def close(self) -> None:
        self.session.close()
