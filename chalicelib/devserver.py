"""The API's local HTTP server: chalice's local gateway, with real client addresses and bursts."""

from __future__ import annotations

import argparse
import functools
import logging
import os
import socket
import sys
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from socketserver import BaseServer
from typing import Any

from chalice.app import Chalice
from chalice.config import Config
from chalice.local import (
    ChaliceRequestHandler,
    CustomLocalChalice,
    LambdaEventConverter,
    LocalChalice,
    RouteMatcher,
    ThreadedHTTPServer,
)

# Pending connections the kernel holds for us. socketserver's default is 5: past it Linux drops
# the SYNs of new connections (the clients try again after 1, 3, 7... seconds, or time out) and
# other systems reset them, so a browser opening a page's assets, or 30 racing clients, stall.
LISTEN_QUEUE = 128


class PeerEventConverter(LambdaEventConverter):
    """chalice's Lambda event, with the connection's TCP peer as ``identity.sourceIp``.

    chalice local writes 127.0.0.1 for every client; API Gateway reports the real peer, and
    limits per (account, client address) can only be tried locally with the real one.
    """

    def __init__(
        self, route_matcher: RouteMatcher, binary_types: list[str], source_ip: str
    ) -> None:
        super().__init__(route_matcher, binary_types)
        self.source_ip = source_ip

    def create_lambda_event(
        self, method: str, path: str, headers: dict[str, str], body: bytes | None = None
    ) -> dict[str, Any]:
        event: dict[str, Any] = super().create_lambda_event(method, path, headers, body)
        event["requestContext"]["identity"]["sourceIp"] = self.source_ip
        return event


class PeerAddressHandler(ChaliceRequestHandler):
    """chalice's request handler, whose gateway reports the peer of its connection."""

    # The handler writes a response's headers and body in separate sends. On a kept-alive
    # connection (browsers, requests' sessions, the SDKs) Nagle's algorithm then holds the body
    # until the client's delayed ACK: 40 ms added to every request after a connection's first.
    disable_nagle_algorithm = True

    def __init__(
        self,
        request: socket.socket,
        client_address: tuple[str, int],
        server: BaseServer,
        app_object: Chalice,
        config: Config,
    ) -> None:
        self._app_object = app_object
        super().__init__(request, client_address, server, app_object, config)  # type: ignore[arg-type]

    def setup(self) -> None:
        # chalice makes one gateway per connection and serves the connection from inside its
        # constructor; setup() runs between the two, when the peer is known.
        super().setup()
        app = self._app_object
        self.local_gateway.event_converter = PeerEventConverter(
            RouteMatcher(list(app.routes)), app.api.binary_types, self.client_address[0]
        )


class DevHTTPServer(ThreadedHTTPServer):
    """chalice local's server (a thread per connection) with a listen queue for bursts."""

    request_queue_size = LISTEN_QUEUE


def listen(host: str, port: int) -> DevHTTPServer:
    """Bind and listen now, before the app is loaded; ``attach`` gives it the app later.

    A port in use fails here, first. Connections made before ``serve_forever`` runs wait in
    the listen queue and are answered once it does.
    """
    return DevHTTPServer((host, port), BaseHTTPRequestHandler)


def load_app(project: Path, stage: str) -> tuple[Chalice, Config]:
    """The app and its stage's config, loaded as ``chalice local`` loads them.

    As in chalice local, the stage's ``environment_variables`` are written into ``os.environ``,
    over what the shell set.
    """
    from chalice.cli.factory import CLIFactory
    from chalice.deploy.validate import validate_routes

    config = CLIFactory(str(project), environ=os.environ).create_config_obj(
        chalice_stage_name=stage
    )
    app: Chalice = config.chalice_app
    validate_routes(app.routes)
    return app, config


def attach(server: DevHTTPServer, app: Chalice, config: Config) -> None:
    """Serve ``app`` on the server's connections."""
    if not isinstance(app, LocalChalice):
        # What chalice.local.create_local_server does: requests run on threads of their own,
        # so app.current_request has to be one per thread.
        CustomLocalChalice.__bases__ = (LocalChalice, app.__class__)
        app.__class__ = CustomLocalChalice
    server.RequestHandlerClass = functools.partial(
        PeerAddressHandler, app_object=app, config=config
    )


def main(argv: list[str] | None = None) -> int:
    """``chalice local --no-autoreload`` with this server: the test stack runs the API so."""
    parser = argparse.ArgumentParser(prog="python -m chalicelib.devserver", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--stage", default="local")
    args = parser.parse_args(argv)
    try:
        server = listen(args.host, args.port)
    except OSError as exc:
        raise SystemExit(f"cannot listen on {args.host}:{args.port}: {exc.strerror}") from None
    with server:
        app, config = load_app(Path.cwd(), args.stage)
        attach(server, app, config)
        # As chalice local: the root logger on stdout at INFO, where Lambda's logs would be.
        logging.basicConfig(stream=sys.stdout, level=logging.INFO, format="%(message)s")
        print(f"Serving on http://{args.host}:{server.server_address[1]}", flush=True)
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
