"""Who is acting in the current request: set by the routing layer, read by the audit trail."""

from __future__ import annotations

from contextvars import ContextVar, Token
from dataclasses import dataclass


@dataclass(frozen=True)
class RequestContext:
    """The request being served (or the scheduled sweep)."""

    request_id: str
    actor: str
    actor_kind: str  # management, user, system or anonymous
    address: str


SYSTEM = RequestContext(request_id="", actor="system", actor_kind="system", address="")
_current: ContextVar[RequestContext] = ContextVar("request_context", default=SYSTEM)


def current() -> RequestContext:
    return _current.get()


def enter(context: RequestContext) -> Token[RequestContext]:
    return _current.set(context)


def leave(token: Token[RequestContext]) -> None:
    _current.reset(token)


def act_as(actor: str, kind: str) -> None:
    """Name the authenticated actor of the current request (a developer, an administrator)."""
    now = _current.get()
    _current.set(RequestContext(now.request_id, actor, kind, now.address))
