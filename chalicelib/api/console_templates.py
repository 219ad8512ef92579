"""The console's Email templates page: the list, and editing one with a preview and a reset."""

from __future__ import annotations

from typing import Any

from chalice import Response

from chalicelib.api.console import (
    Admin,
    field_errors,
    form,
    notice,
    page,
    render,
    see_other,
    shown_version,
    stale_message,
)
from chalicelib.api.routing import Call, Router
from chalicelib.bootstrap import services
from chalicelib.domain.email_templates import TemplateChanges, TemplateView, read_template_fields
from chalicelib.domain.etag import NEVER
from chalicelib.domain.paging import Cursor
from chalicelib.errors import PreconditionFailed, ValidationFailed
from chalicelib.services.listing import ListQuery

router = Router(management=False, documented=False)
TEMPLATES = "/console/templates"
TEMPLATE = TEMPLATES + "/{templateName}"
DONE = {
    "saved": "The template was saved; the next email uses it.",
    "reset": "The template is back to its default.",
}


@router.route(TEMPLATES, "GET")
@page
def templates_page(call: Call, admin: Admin) -> Response:
    views = services().templates.list(ListQuery(None, 100, Cursor())).items
    return render(
        call, "templates.html", admin, title="Email templates", nav="templates", templates=views
    )


def _template_page(
    call: Call,
    admin: Admin,
    view: TemplateView,
    status: int = 200,
    *,
    values: dict[str, str] | None = None,
    version: int | None = None,
    errors: dict[str, str] | None = None,
    error: str | None = None,
    preview: Any = None,
) -> Response:
    return render(
        call,
        "template.html",
        admin,
        status,
        title=view.title or view.name,
        nav="templates",
        view=view,
        version=str(view.version if version is None else version),
        values=values or {"subject": view.subject, "body": view.body},
        errors=errors or {},
        error=error,
        preview=preview,
        message=notice(call, DONE),
    )


@router.route(TEMPLATE, "GET")
@page
def template_page(call: Call, admin: Admin) -> Response:
    return _template_page(call, admin, services().templates.get(call.params["templateName"]))


def _changes(view: TemplateView, values: dict[str, str]) -> TemplateChanges:
    """The form's subject and body as changes, validated as the API validates them."""
    return read_template_fields(dict(values), view.parameters)


def _email_document(service: Any, view: TemplateView, values: dict[str, str]) -> Response:
    """The HTML part of a preview, alone, for the page's frame.

    Emails carry inline styles, which the console's own policy forbids, so this document has a
    policy of its own: a sandbox (no script, an origin of its own), inline styles, no fetches.
    """
    try:
        rendered, _ = service.preview(view.name, _changes(view, values))
        body = rendered.html
    except ValidationFailed:
        body = "<p>The template has errors; they are shown next to its fields.</p>"
    return Response(
        body=body,
        status_code=200,
        headers={
            "Content-Type": "text/html; charset=utf-8",
            "Content-Security-Policy": (
                "sandbox; default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
                "frame-ancestors 'self'; form-action 'none'; base-uri 'none'"
            ),
            "X-Frame-Options": "SAMEORIGIN",
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
            "Cache-Control": "no-store",
        },
    )


@router.route(TEMPLATE, "POST")
@form
def template_action(call: Call, admin: Admin, fields: dict[str, str]) -> Response:
    """Preview (nothing saved; ``render``: its HTML part alone), Save (If-Match: the page's
    version), Reset to default."""
    service = services().templates
    view = service.get(call.params["templateName"])
    action = fields.get("action", "")
    expected = shown_version(fields)
    values = {"subject": fields.get("subject", ""), "body": fields.get("body", "")}
    shown = view.version if expected is NEVER or expected.version is None else expected.version
    try:
        if action == "reset":
            service.reset(view.name, expected)
            return see_other(call, f"templates/{view.name}?done=reset")
        if action == "render":
            return _email_document(service, view, values)
        if action == "preview":
            rendered, _ = service.preview(view.name, _changes(view, values))
            return _template_page(call, admin, view, values=values, version=shown, preview=rendered)
        if action == "save":
            service.save(view.name, _changes(view, values), expected)
            return see_other(call, f"templates/{view.name}?done=saved")
    except ValidationFailed as exc:
        errors = field_errors(exc.details)
        return _template_page(call, admin, view, 400, values=values, version=shown, errors=errors)
    except PreconditionFailed:
        # The admin's text is kept; the form now carries the current version, so saving again
        # deliberately replaces the other change.
        message = (
            "This template was changed by someone else after you opened it, so your change was "
            "not saved. Your text is below; save again to replace their change, or open the "
            "page again to see it."
        )
        if action == "reset":
            message = stale_message("template")
            return _template_page(call, admin, view, 409, error=message)
        return _template_page(call, admin, view, 409, values=values, error=message)
    return _template_page(call, admin, view, 400, error="Choose one of the page's buttons.")
