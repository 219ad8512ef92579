"""The ``apim-users`` console script: dev server, outbox relay, create-tables, sweep, token."""

from __future__ import annotations

import argparse
import errno
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from chalicelib.config import get_settings

if TYPE_CHECKING:
    from chalicelib.devserver import DevHTTPServer

LOOPBACK = "127.0.0.1"


def project_dir() -> Path:
    """The folder holding app.py and .chalice/ (the checkout this package was installed from)."""
    for candidate in (Path.cwd(), Path(__file__).resolve().parent.parent):
        if (candidate / "app.py").is_file() and (candidate / ".chalice" / "config.json").is_file():
            return candidate
    raise SystemExit("apim-users: run this from the project folder (app.py and .chalice/).")


def stage_environment(stage: str) -> dict[str, str]:
    """The environment variables a Chalice stage sets (chalice local lets them win)."""
    config = json.loads((project_dir() / ".chalice" / "config.json").read_text())
    merged = dict(config.get("environment_variables", {}))
    merged.update(config.get("stages", {}).get(stage, {}).get("environment_variables", {}))
    return {k: str(v) for k, v in merged.items()}


def apply_stage_defaults(stage: str = "local", *, override: bool = False) -> None:
    """Fill the process environment from the stage; what the shell set stays unless ``override``."""
    for key, value in stage_environment(stage).items():
        if override:
            os.environ[key] = value
        else:
            os.environ.setdefault(key, value)
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "local")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "local")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    get_settings.cache_clear()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def management_token(hours: float) -> str:
    """A management token signed with the primary key, valid for ``hours``."""
    from chalicelib.domain.sas import management_token as sign
    from chalicelib.keys import management_keys

    settings = get_settings()
    keys = management_keys(settings)
    if not keys:
        raise SystemExit("apim-users: no management key is configured (APIM_PRIMARY_KEY).")
    return sign(settings.access_id, datetime.now(UTC) + timedelta(hours=hours), keys[0])


def create_backend_resources() -> list[str]:
    """Tables at the configured endpoint, and the verified SES sender identity."""
    import boto3

    from chalicelib.store.models import create_tables

    settings = get_settings()
    created = create_tables(settings)
    ses = boto3.client("ses", region_name=settings.region)
    ses.verify_email_identity(EmailAddress=settings.sender_email)
    return created


@contextmanager
def embedded_backend(verbose: bool = False) -> Iterator[str]:
    """moto's threaded server on a loopback port, named in AWS_ENDPOINT_URL while it runs.

    Its request log (werkzeug's, one line per DynamoDB or SES call: about 55 before the dev
    server is up) is shown only when ``verbose``.
    """
    import logging

    from moto.server import ThreadedMotoServer

    if not verbose:
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
    port = free_port()
    server = ThreadedMotoServer(ip_address=LOOPBACK, port=port, verbose=False)
    server.start()
    endpoint = f"http://{LOOPBACK}:{port}"
    os.environ["AWS_ENDPOINT_URL"] = endpoint
    try:
        yield endpoint
    finally:
        server.stop()


def start_chalice_local(port: int, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    """The API as ``chalice local --stage local --no-autoreload`` serves it, on loopback.

    It runs chalicelib.devserver, chalice's local gateway with the client's real address and a
    deep listen queue (as ``apim-users dev`` serves it), in a process group of its own.
    """
    command = [
        sys.executable,
        "-m",
        "chalicelib.devserver",
        "--stage",
        "local",
        "--host",
        LOOPBACK,
        "--port",
        str(port),
    ]
    return subprocess.Popen(
        command, cwd=project_dir(), env=env or dict(os.environ), start_new_session=True
    )


def wait_for_http(port: int, timeout: float = 30.0) -> None:
    """Until something answers on the port (chalice local starts in about a second)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((LOOPBACK, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"apim-users: nothing answered on port {port} within {timeout:.0f}s.")


def stop_process(process: subprocess.Popen[Any]) -> None:
    """Stop a child started with start_new_session, with all its children."""
    if process.poll() is None:
        try:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=10)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(process.pid, signal.SIGKILL)


def _sweep_every(seconds: float, stop: threading.Event) -> None:
    """chalice local does not run schedules, so the dev server runs the sweep itself."""
    from chalicelib.bootstrap import services

    while not stop.wait(seconds):
        try:
            report = services().sweep.run()
        except Exception as exc:  # keep the dev server up; the next minute tries again
            print(f"sweep failed: {exc}", flush=True)
            continue
        if any(report.as_dict().values()):
            print(f"sweep: {report.as_dict()}", flush=True)


def start_relay(stop: threading.Event) -> threading.Thread:
    """The outbox relay on a thread of this process, following the outbox table's stream at
    the configured endpoint (chalicelib/relay.py), as the stream-triggered function does in AWS.
    It checks for new messages 10 times a second, so an email goes out well within a second of
    the request that caused it."""
    from chalicelib.relay import StreamFollower

    thread = threading.Thread(
        target=StreamFollower().follow, args=(stop,), name="outbox-relay", daemon=True
    )
    thread.start()
    return thread


DEV_ADMIN_EMAIL = "admin@example.com"


class _LinkCatcher:
    """A mailer that keeps the text of what it sends to one address, then sends it as usual."""

    def __init__(self, address: str, forward: Any) -> None:
        self.address = address.lower()
        self.forward = forward
        self.texts: list[str] = []
        self.failed = False

    def send(self, email: Any) -> str:
        if email.to.lower() == self.address:
            self.texts.append(email.text)
        try:
            return str(self.forward.send(email))
        except Exception:
            self.failed = True
            raise


def find_user_by_email(email: str) -> Any:
    """The account with this email (one indexed read through the accounts service), or None."""
    from chalicelib.bootstrap import services
    from chalicelib.domain.paging import Cursor
    from chalicelib.domain.users import email_is
    from chalicelib.services.listing import ListQuery

    found = services().accounts.list(ListQuery(email_is(email.strip()), 1, Cursor())).items
    return found[0] if found else None


def password_link(user_id: str) -> tuple[str, bool]:
    """The admin's "Reset password" (passwords service); returns its one-time link.

    The email is recorded as for any reset but held for this process, which sends it at once
    through the relay's own path (the token exists only in the sender's memory), reading the
    link from it so it can be printed: a running relay (a dev server's) leaves a held email
    alone. The second value is False when the email could not be sent now: the sweep then
    sends it with a fresh link, and this one stops working.
    """
    import re

    from chalicelib.bootstrap import Services, services
    from chalicelib.domain.links import LINK_PATHS, LinkPurpose

    current = services()
    user = current.accounts.get(user_id)
    catcher = _LinkCatcher(user.email, current.mailer())
    sender = Services(current.settings, current.clock, catcher)
    path = LINK_PATHS[LinkPurpose.RESET]
    sender.relay.send_now(current.passwords.send_by_admin(user_id, held=True))
    for text in catcher.texts:
        for url in re.findall(r"https?://[^\s<>\"']+", text):
            if path in url:
                return url.rstrip(".,"), not catcher.failed
    raise SystemExit("apim-users: the reset email carried no link (check its template).")


def create_admin(email: str, first: str, last: str, password: str | None = None) -> Any:
    """An active account in the built-in Administrators group, through the services.

    An existing active account with this email is made an administrator as it is.
    """
    import secrets

    from chalicelib.bootstrap import services
    from chalicelib.domain.users import UserState, read_draft
    from chalicelib.errors import ValidationFailed

    user = find_user_by_email(email)
    if user is not None and user.state is not UserState.ACTIVE:
        state = user.state.value
        raise SystemExit(f"apim-users: {email} has a {state} account; activate it first.")
    if user is None:
        props = {"email": email, "firstName": first, "lastName": last}
        if password is not None:
            props["password"] = password
        try:
            draft = read_draft({"properties": props})
        except ValidationFailed as exc:
            problems = "; ".join(f"{d.target}: {d.message}" for d in exc.details)
            raise SystemExit(f"apim-users: {problems}") from None
        user, _ = services().accounts.create_or_replace(secrets.token_hex(12), draft, None)
    services().groups.add_administrator(user.id)
    return user


def ensure_dev_admin() -> str | None:
    """On a backend without administrators, admin@example.com with a random password."""
    import secrets

    from chalicelib.bootstrap import services
    from chalicelib.domain.paging import Cursor
    from chalicelib.services.listing import ListQuery

    admins = services().groups.members("administrators", ListQuery(None, 1, Cursor()))
    if admins.items:
        return None
    if find_user_by_email(DEV_ADMIN_EMAIL) is not None:
        return None
    password = "-".join(secrets.token_urlsafe(6) for _ in range(3))
    create_admin(DEV_ADMIN_EMAIL, "Dev", "Administrator", password)
    return password


def port_problem(port: int, error: OSError) -> str:
    """One line: why the dev server cannot listen on ``port``, and how to choose another."""
    other = 9000 if port != 9000 else 9001
    how = f"pick another: make dev PORT={other} (or apim-users dev --port {other})"
    if error.errno == errno.EADDRINUSE:
        return f"apim-users: port {port} on {LOOPBACK} is already in use; {how}."
    if error.errno == errno.EACCES:
        return f"apim-users: port {port} needs privileges here; {how}."
    return f"apim-users: cannot listen on {LOOPBACK}:{port} ({error.strerror}); {how}."


def _serve(server: DevHTTPServer) -> int:
    """Backend resources, the app on ``server``, the sweep; then the banner, then requests."""
    from chalicelib.devserver import attach, load_app

    port = server.server_address[1]
    base = f"http://{LOOPBACK}:{port}"
    os.environ.setdefault("PORTAL_URL", base)
    os.environ.setdefault("MAIL_DROP_DIR", str(project_dir() / "var" / "mail"))
    get_settings.cache_clear()
    created = create_backend_resources()
    admin_password = ensure_dev_admin()
    app, config = load_app(project_dir(), "local")
    attach(server, app, config)
    settings = get_settings()
    stop = threading.Event()
    threading.Thread(target=_sweep_every, args=(60.0, stop), daemon=True).start()
    start_relay(stop)
    try:
        endpoint = os.environ.get("AWS_ENDPOINT_URL")
        print(f"apim-users dev: backend at {endpoint}, {len(created)} tables created")
        print(f"API base URL:  {base}{settings.service_path}")
        print("api-version:   2024-05-01")
        print(f"Emails:        printed here, and saved as .eml files in {settings.mail_drop_dir}")
        print(f"Token (24 h):  SharedAccessSignature {management_token(24)}")
        print(f"Console:       {base}/console/")
        if admin_password:
            print(f"  sign in as   {DEV_ADMIN_EMAIL} / {admin_password}  (made now, dev only)")
        else:
            print("  sign in as an administrator (apim-users create-admin makes one)")
        # The socket has listened since before the backend started: whatever connects after
        # this line is answered as soon as the loop below runs.
        print("Press Ctrl-C to stop.", flush=True)
        server.serve_forever()
    finally:
        stop.set()
    return 0


def cmd_dev(args: argparse.Namespace) -> int:
    from chalicelib.devserver import listen

    # The port before anything else: a port in use is one line, with nothing started or shown.
    try:
        server = listen(LOOPBACK, args.port)
    except OSError as exc:
        raise SystemExit(port_problem(args.port, exc)) from None
    with server:
        # The stage wins over the shell, as it does in chalice local, so that the tables, the
        # printed token and the app all use the same settings.
        apply_stage_defaults("local", override=True)
        signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
        try:
            if os.environ.get("AWS_ENDPOINT_URL"):
                return _serve(server)
            with embedded_backend(verbose=args.verbose):
                get_settings.cache_clear()
                return _serve(server)
        except KeyboardInterrupt:  # Ctrl-C (or SIGTERM) during the start: stop without a trace
            return 0


def cmd_relay(args: argparse.Namespace) -> int:
    """Follow the outbox stream of the backend at AWS_ENDPOINT_URL and send what it announces
    (beside ``chalice local``, which runs no relay); ``--once`` sends what is there and stops."""
    # As chalice local does for the API: the stage's variables win over the shell's.
    apply_stage_defaults(os.environ.get("APIM_STAGE", "local"), override=True)
    from chalicelib.relay import StreamFollower

    if args.once:
        print(f"relay: {StreamFollower().drain()} stream records handled", flush=True)
        return 0
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    print("relay: following the outbox stream", flush=True)
    try:
        StreamFollower().follow(stop)
    except KeyboardInterrupt:
        pass
    return 0


def cmd_create_tables(_: argparse.Namespace) -> int:
    apply_stage_defaults(os.environ.get("APIM_STAGE", "local"))
    from chalicelib.store.models import create_tables

    created = create_tables(get_settings())
    print(f"created: {', '.join(created) or 'none (all tables exist)'}")
    return 0


def cmd_sweep(_: argparse.Namespace) -> int:
    apply_stage_defaults(os.environ.get("APIM_STAGE", "local"))
    from chalicelib.bootstrap import services

    print(json.dumps(services().sweep.run().as_dict()))
    return 0


def user_token_for(user_id: str, hours: float) -> str:
    """A user token for an existing user, signed as the API would sign it at sign-in."""
    from chalicelib.bootstrap import services

    user = services().store.users.require(user_id)
    return services().sessions.mint(user, datetime.now(UTC) + timedelta(hours=hours))


def cmd_token(args: argparse.Namespace) -> int:
    apply_stage_defaults(os.environ.get("APIM_STAGE", "local"))
    token = user_token_for(args.user, args.hours) if args.user else management_token(args.hours)
    print(f"SharedAccessSignature {token}")
    return 0


def cmd_create_admin(args: argparse.Namespace) -> int:
    apply_stage_defaults(os.environ.get("APIM_STAGE", "local"))
    from chalicelib.domain.users import UserState

    user = create_admin(args.email, args.first, args.last)
    print(f"{user.email} is an administrator (user id {user.id}).")
    if user.state is UserState.ACTIVE and user.password_hash:
        print("It already has a password: sign in to the console with it.")
        return 0
    link, sent = password_link(user.id)
    minutes = get_settings().reset_minutes
    print(f"Set its password within {minutes:g} minutes, once, at:\n{link}")
    if not sent:
        print("(The email with this link could not be sent now; a later retry replaces it.)")
    return 0


def cmd_remove_admin(args: argparse.Namespace) -> int:
    apply_stage_defaults(os.environ.get("APIM_STAGE", "local"))
    from chalicelib.bootstrap import services

    user = find_user_by_email(args.email)
    if user is None:
        raise SystemExit(f"apim-users: no account has the email {args.email}.")
    from chalicelib.errors import DomainError

    try:
        services().groups.remove_administrator(user.id)
    except DomainError as exc:
        raise SystemExit(f"apim-users: {exc.message}") from None
    print(f"{user.email} is no longer an administrator.")
    return 0


def cmd_fill_order_keys(_: argparse.Namespace) -> int:
    apply_stage_defaults(os.environ.get("APIM_STAGE", "local"))
    from chalicelib.bootstrap import services

    filled = services().accounts.fill_order_keys()
    print(f"{filled} account(s) given the sort keys of the console's sorted lists.")
    return 0


def tcp_port(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{value} is not a TCP port (0 to 65535)")
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="apim-users", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    dev = sub.add_parser("dev", help="serve the API locally, on an embedded backend")
    dev.add_argument("--port", type=tcp_port, default=8000, help="on 127.0.0.1 (0: any free port)")
    dev.add_argument(
        "--verbose", action="store_true", help="also print the embedded backend's request log"
    )
    dev.set_defaults(run=cmd_dev)
    relay = sub.add_parser(
        "relay",
        help="send the outbox's emails as the stream announces them (dev backends; "
        "`dev` runs one itself)",
    )
    relay.add_argument("--once", action="store_true", help="send what is there, then stop")
    relay.set_defaults(run=cmd_relay)
    tables = sub.add_parser("create-tables", help="create every table (idempotent)")
    tables.set_defaults(run=cmd_create_tables)
    sweep = sub.add_parser("sweep", help="run the scheduled sweep once")
    sweep.set_defaults(run=cmd_sweep)
    token = sub.add_parser("token", help="print a management (or, with --user, a user) token")
    token.add_argument("--hours", type=float, default=24.0)
    token.add_argument("--user", help="the id of the user the token is for")
    token.set_defaults(run=cmd_token)
    admin = sub.add_parser(
        "create-admin",
        help="create an administrator (console access) and print a link to set its password",
    )
    admin.add_argument("--email", required=True)
    admin.add_argument("--first", required=True, help="first name")
    admin.add_argument("--last", required=True, help="last name")
    admin.set_defaults(run=cmd_create_admin)
    demote = sub.add_parser("remove-admin", help="take an account out of Administrators")
    demote.add_argument("--email", required=True)
    demote.set_defaults(run=cmd_remove_admin)
    fill = sub.add_parser(
        "fill-order-keys",
        help="once after upgrading: sort keys on accounts stored before the sorted lists",
    )
    fill.set_defaults(run=cmd_fill_order_keys)
    args = parser.parse_args(argv)
    return int(args.run(args))


if __name__ == "__main__":
    sys.exit(main())
