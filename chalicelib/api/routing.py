"""Route registration: every path answers every method, with APIM errors for the wrong ones."""

from __future__ import annotations

import ipaddress
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlencode

from chalice import Chalice, Response

from chalicelib import context
from chalicelib.api.auth import authenticate_management
from chalicelib.api.errors import error_response, internal_error_response
from chalicelib.config import LOCAL_STAGE, SUPPORTED_API_VERSIONS, MissingSetting, get_settings
from chalicelib.domain.etag import Expected, expected_from_if_match
from chalicelib.errors import (
    DomainError,
    FieldProblem,
    MalformedRequest,
    MethodNotAllowed,
    MissingApiVersion,
    ResourceNotFound,
    UnsupportedApiVersion,
    ValidationFailed,
)
from chalicelib.logs import logger

log = logger()

METHODS = ["GET", "HEAD", "PUT", "PATCH", "POST", "DELETE"]
ARM_PREFIX = (
    "/subscriptions/{subscriptionId}/resourceGroups/{resourceGroupName}"
    "/providers/Microsoft.ApiManagement/service/{serviceName}"
)
_INSTANCE_PARAMS = ("subscriptionId", "resourceGroupName", "serviceName")
# API Gateway and chalice local have no greedy route that works in both; a catch-all per depth
# gives unknown paths APIM's error body instead of the gateway's own.
_CATCH_ALL_DEPTH = 16


@dataclass
class Call:
    """One parsed request, as handlers see it."""

    params: dict[str, str]
    query: dict[str, str]
    headers: dict[str, str]
    raw_body: bytes
    origin: str
    path: str
    request_id: str
    source_ip: str
    # The route as registered (no API Gateway stage, ids as {placeholders}): pages compute
    # their relative links from it, since ``path`` carries the stage behind API Gateway.
    route: str = ""
    actor: str = ""
    method: str = "GET"
    _json: Any = field(default=None, repr=False)

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    def id_param(self, name: str) -> str:
        """A path id, checked: 1 to 80 characters, none of APIM's forbidden ones."""
        from chalicelib.domain.users import id_problem

        value = self.params[name]
        problem = id_problem(value, name)
        if problem:
            raise ValidationFailed([problem])
        return value

    def json(self) -> Any:
        """The body as JSON; an empty body is ``{}``.

        Every string in it is text that can be stored, hashed and sent: JSON's ``\\ud800``
        (half of a surrogate pair, alone) is refused here, once for every route, rather than
        failing as UTF-8 wherever the value happens to be encoded first.
        """
        if self._json is None:
            if len(self.raw_body) > get_settings().max_body_bytes:
                raise MalformedRequest("The request body is too large.")
            if not self.raw_body.strip():
                self._json = {}
            else:
                self._json = _parse_json(self.raw_body)
        return self._json

    def if_match(self) -> Expected | None:
        """If-Match as the version a change expects; None when the header is absent."""
        raw = self.header("if-match")
        return expected_from_if_match(raw) if raw is not None and raw.strip() else None

    def require_if_match(self) -> Expected:
        """If-Match, which PATCH and DELETE need (the ETag, or ``*``)."""
        expected = self.if_match()
        if expected is None:
            raise ValidationFailed(
                [FieldProblem("If-Match", "The If-Match header is required: the ETag, or '*'.")]
            )
        return expected

    def flag(self, name: str) -> bool:
        """A boolean query parameter (``true``/``false``, any case)."""
        raw = self.query.get(name)
        if raw is None or raw == "":
            return False
        if raw.lower() in {"true", "false"}:
            return raw.lower() == "true"
        raise ValidationFailed([FieldProblem(name, f"'{name}' must be true or false.")])

    def link(self, **changes: str | None) -> str:
        """An absolute URL of this path, with query changes, on the public base URL."""
        query = {k: v for k, v in self.query.items() if k not in changes}
        query.update({k: v for k, v in changes.items() if v is not None})
        return f"{self.public_root()}{self.route_path()}?{urlencode(query)}"

    def route_path(self) -> str:
        """This request's path without what precedes the app (API Gateway's stage, a custom
        domain's base path): the last as many segments as the route has."""
        depth = self.route.strip("/").count("/") + 1 if self.route.strip("/") else 0
        segments = self.path.rstrip("/").split("/")
        return "/" + "/".join(segments[len(segments) - depth :]) if depth else "/"

    def public_root(self) -> str:
        """Where clients reach the app: the configured public base URL (PUBLIC_BASE_URL).

        The request's own origin (Host, X-Forwarded-Proto) is kept only in the local stage and
        only for a loopback host, where the dev server may listen on any port; a Host header
        naming anything else gets the configured base, so a forged Host cannot send a client
        following nextLink, with its token, to another server.
        """
        settings = get_settings()
        if settings.stage == LOCAL_STAGE and _is_loopback(self.header("host") or "localhost"):
            return self.origin + self.path[: len(self.path) - len(self.route_path().rstrip("/"))]
        return settings.public_url


Handler = Callable[[Call], Response]


def _parse_json(raw: bytes) -> Any:
    try:
        parsed = json.loads(raw)
        # Only a lone surrogate makes a parsed string unencodable as UTF-8.
        json.dumps(parsed, ensure_ascii=False).encode("utf-8")
    except RecursionError:
        # json recurses once per [ or {: 20,000 of them exhaust the stack.
        raise MalformedRequest(
            "The request body nests arrays or objects too deeply.",
            [FieldProblem("body", "Nested too deeply.")],
        ) from None
    except UnicodeEncodeError:
        raise MalformedRequest(
            "The request body has a lone surrogate (such as \\ud800), which is not text.",
            [FieldProblem("body", "A \\uXXXX escape between D800 and DFFF without its pair.")],
        ) from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise MalformedRequest(
            "The request body is not valid JSON.",
            [FieldProblem("body", str(exc)[:200])],
        ) from None
    return parsed


# An operation's OpenAPI description (api/docs.py: ``apim(...)``, ``ours(...)``).
Described = Callable[[Any], dict[str, Any]]


class Router:
    """Collects handlers by (path, method), each with its description; ``install`` registers them.

    A documented router names each method with its description
    (``route(USER, GET=apim("User_Get"))``), so the OpenAPI document is built from the routes
    themselves; the console's pages are not described (``documented=False``, plain methods).
    """

    def __init__(self, prefix: str = "", management: bool = True, documented: bool = True) -> None:
        self.prefix = prefix
        self.management = management
        self.documented = documented
        self.handlers: dict[str, dict[str, Handler]] = {}
        self.docs: dict[str, dict[str, Described]] = {}
        self.fallbacks: dict[str, Handler] = {}

    def unknown(self, segment: str) -> Callable[[Handler], Handler]:
        """The handler of every unknown path below ``/<segment>`` (e.g. the console's own
        HTML 404), instead of APIM's JSON error."""

        def register(handler: Handler) -> Handler:
            self.fallbacks[segment] = handler
            return handler

        return register

    def route(
        self, path: str, *methods: str, **described: Described
    ) -> Callable[[Handler], Handler]:
        if self.documented and methods:
            raise TypeError(f"{path}: describe each method, e.g. GET=apim('...')")
        if not self.documented and described:
            raise TypeError(f"{path}: this router's routes are not described")
        full = self.prefix + path

        def register(handler: Handler) -> Handler:
            table = self.handlers.setdefault(full, {})
            for method in (*methods, *described):
                table[method] = handler
            self.docs.setdefault(full, {}).update(described)
            return handler

        return register


_installed: list[Router] = []
_fallbacks: dict[str, tuple[Handler, bool]] = {}


def installed() -> list[Router]:
    """The routers ``install`` registered: the one registry of routes and their descriptions."""
    return list(_installed)


def _is_loopback(host: str) -> bool:
    """127.0.0.0/8, ::1 or localhost, with or without a port."""
    name = host.strip().lower()
    if name.startswith("["):
        name = name[1 : name.find("]")] if "]" in name else ""
    elif name.count(":") == 1:
        name = name.partition(":")[0]
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def _origin(request: Any) -> str:
    headers = request.headers
    proto = headers.get("x-forwarded-proto", "http").split(",")[0].strip()
    host = headers.get("host", "localhost")
    return f"{proto}://{host}"


def _make_call(request: Any, params: dict[str, str], route: str = "") -> Call:
    context = request.context or {}
    query = dict(request.query_params or {})
    return Call(
        params={k: unquote(v) for k, v in params.items()},
        query=query,
        headers={k.lower(): v for k, v in request.headers.items()},
        raw_body=request.raw_body or b"",
        origin=_origin(request),
        path=context.get("path") or request.path,
        request_id=context.get("requestId") or str(uuid.uuid4()),
        source_ip=(context.get("identity") or {}).get("sourceIp", ""),
        route=route,
        method=str(getattr(request, "method", None) or "GET").upper(),
    )


def _check_management(call: Call) -> None:
    """Auth, then api-version, then the instance named in the path."""
    call.actor = authenticate_management(call.header("authorization"))
    version = call.query.get("api-version")
    if not version:
        raise MissingApiVersion(
            "The api-version query parameter (?api-version=) is required for all requests."
        )
    if version not in SUPPORTED_API_VERSIONS:
        supported = ", ".join(sorted(SUPPORTED_API_VERSIONS))
        raise UnsupportedApiVersion(
            f"The api-version '{version}' is invalid. The supported versions are: {supported}."
        )
    s = get_settings()
    wanted = (s.subscription_id, s.resource_group, s.service_name)
    given = tuple(call.params.pop(p, "") for p in _INSTANCE_PARAMS)
    if any(g.lower() != w.lower() for g, w in zip(given, wanted, strict=True)):
        raise ResourceNotFound("The API Management service named in the path does not exist.")


def _dispatch(
    handlers: dict[str, Handler], management: bool, call: Call, method: str, route: str
) -> Response:
    started = time.monotonic()
    entered = context.enter(
        context.RequestContext(call.request_id, "anonymous", "anonymous", call.source_ip)
    )
    try:
        if management:
            _check_management(call)
            context.act_as(call.actor, "management")
        handler = handlers.get(method)
        if handler is None:
            raise MethodNotAllowed(f"The method {method} is not allowed on this resource.")
        response = handler(call)
    except DomainError as exc:
        response = error_response(exc)
    except MissingSetting as exc:
        # Fails closed, saying what the operator must set; no request works until then.
        log.error("configuration error: %s", exc, extra={"request_id": call.request_id})
        response = internal_error_response(call.request_id, f"The service is not configured: {exc}")
    except Exception:
        log.exception("unhandled error", extra={"request_id": call.request_id})
        response = internal_error_response(call.request_id)
    finally:
        actor = context.current().actor
        context.leave(entered)
    response.headers.setdefault("x-ms-request-id", call.request_id)
    if method == "HEAD":
        response.body = ""
    log.info(
        "request",
        extra={
            "request_id": call.request_id,
            "route": route,
            "method": method,
            "status": response.status_code,
            "duration_ms": round((time.monotonic() - started) * 1000, 1),
            "actor": actor,
            "address": call.source_ip or None,
        },
    )
    return response


def install(app: Chalice, *routers: Router) -> None:
    """Register every path once with every method, and the catch-alls for unknown paths."""
    _installed[:] = routers
    _fallbacks.clear()
    for router in routers:
        for segment, handler in router.fallbacks.items():
            _fallbacks[segment] = (handler, router.management)
    for router in routers:
        for path, handlers in router.handlers.items():
            _register(app, path, handlers, router.management)
    if not any("/" in router.handlers for router in routers):
        _register(app, "/", {}, False)
    for depth in range(1, _CATCH_ALL_DEPTH + 1):
        path = "".join(f"/{{p{i}}}" for i in range(depth))
        _register(app, path, {}, False)


def _register(app: Chalice, path: str, handlers: dict[str, Handler], management: bool) -> None:
    def view(**params: str) -> Response:
        request = app.current_request
        if request is None:
            raise RuntimeError("a Chalice view ran outside a request")
        call = _make_call(request, params, path)
        if not handlers:
            fallback = _fallbacks.get(call.params.get("p0", ""))
            if fallback is not None:
                unknown, guarded = fallback
                every = dict.fromkeys(METHODS, unknown)
                return _dispatch(every, guarded, call, request.method.upper(), path)
            return _dispatch_unknown(call)
        return _dispatch(handlers, management, call, request.method.upper(), path)

    name = "route_" + ("".join(c if c.isalnum() else "_" for c in path) or "root")
    app.route(path, methods=METHODS, content_types=["*/*"], name=name)(view)


def _dispatch_unknown(call: Call) -> Response:
    response = error_response(ResourceNotFound("No resource exists at this path."))
    response.headers["x-ms-request-id"] = call.request_id
    return response
