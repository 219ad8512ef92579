"""HTML pages for developers: Jinja2 with autoescaping, strict security headers."""

from __future__ import annotations

from functools import cache
from typing import Any

from chalice import Response

from chalicelib.config import get_settings

PAGE_HEADERS = {
    "Content-Type": "text/html; charset=utf-8",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}


@cache
def _environment() -> Any:
    from jinja2 import Environment, FileSystemLoader, StrictUndefined

    from chalicelib.mail.templates import templates_dir

    return Environment(
        loader=FileSystemLoader(templates_dir() / "portal"),
        autoescape=True,
        undefined=StrictUndefined,
    )


def relative_root(route: str) -> str:
    """``../`` up to the app's root, from the route as registered (without the stage), so pages
    work under chalice local (``/``) and under API Gateway's stage (``/api/``) alike."""
    depth = route.rstrip("/").count("/") - 1
    return "../" * depth


def page(name: str, route: str, status: int = 200, **values: Any) -> Response:
    settings = get_settings()
    html = (
        _environment()
        .get_template(name)
        .render(
            organization=settings.organization_name,
            portal_url=settings.portal_url,
            root=relative_root(route),
            **values,
        )
    )
    return Response(body=html, status_code=status, headers=dict(PAGE_HEADERS))


def stylesheet() -> Response:
    from chalicelib.mail.templates import templates_dir

    css = (templates_dir() / "portal" / "portal.css").read_text(encoding="utf-8")
    return Response(
        body=css,
        status_code=200,
        headers={
            "Content-Type": "text/css; charset=utf-8",
            "Cache-Control": "public, max-age=3600",
            "X-Content-Type-Options": "nosniff",
        },
    )
