"""The console's Email templates page: the list, editing one, and the publishers' emails.

The list says which templates this service sends, and when, then the publisher notifications'
emails (not editable, as in APIM) with their recipients, each previewable read-only. A
template's page shows every problem of what was typed at once, by field, with line numbers where
the renderer knows them. Preview shows the subject, the text and the HTML version at once: the
HTML in a sandboxed ``srcdoc`` frame, which inherits the page's Content-Security-Policy; that
response's policy allows exactly the inline styles of the rendered email (their hashes,
``'unsafe-hashes'``) and nothing else. Reset to default asks first.
"""

from __future__ import annotations

import base64
import hashlib
from html.parser import HTMLParser
from typing import Any

from chalice import Response

from chalicelib.api.console import (
    CONSOLE_HEADERS,
    Admin,
    all_field_errors,
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
from chalicelib.domain.portal import NotificationName, notification_name
from chalicelib.errors import PreconditionFailed, ResourceNotFound, ValidationFailed
from chalicelib.services.listing import ListQuery

router = Router(management=False, documented=False)
TEMPLATES = "/console/templates"
TEMPLATE = TEMPLATES + "/{templateName}"
PUBLISHER = TEMPLATES + "/publisher/{notificationName}"
DONE = {
    "saved": "The template was saved; the next email uses it.",
    "reset": "The template is back to its default.",
}
# The templates this service sends, and when (services: invitations, passwords, accounts,
# profile, subscriptions; domain/subscriptions.py's developer_mail decides the last three); the
# others exist for APIM's contract and are never sent by this service.
SENT_WHEN = {
    "inviteUserNotificationMessage": (
        "When an administrator invites a user (+ Invite, or the API), and when an invited "
        "user's invitation is resent or their pending email address is corrected."
    ),
    "confirmSignUpIdentityDefault": (
        "When a developer signs up on the portal, or a user is created through the API with "
        "confirmation “signup”: its link confirms the email address and activates the account. "
        "Sent again when such an account's link is resent or its pending address corrected."
    ),
    "passwordResetIdentityDefault": (
        "When a password reset is asked for: by the developer on the portal, or by an "
        "administrator (Reset password)."
    ),
    "newDeveloperNotificationMessage": (
        "When an account becomes active: an invitation accepted or a sign-up confirmed (and a "
        "user created through the API with notify=true)."
    ),
    "passwordResetByAdminNotificationMessage": (
        "When a password changes: set by an administrator through the API, chosen through a "
        "reset link, or changed by the developer."
    ),
    "emailChangeIdentityDefault": (
        "When a developer changes their email address on the portal: sent to the new address, "
        "whose link confirms the change (until then the account keeps the old address)."
    ),
    "accountClosedDeveloper": (
        "When a developer closes their account on the portal, and when an administrator deletes "
        "a user with “Send an email saying the account was closed” ticked (or through the API "
        "with notify=true)."
    ),
    "requestDeveloperNotificationMessage": (
        "When a developer subscribes on the portal to a product that needs approval (the "
        "subscription waits as submitted), and when a submitted subscription is created through "
        "the API with notify=true."
    ),
    "purchaseDeveloperNotificationMessage": (
        "When a subscription first becomes active: a developer subscribes on the portal to a "
        "product without approval, an administrator approves a request (Approve on the user's "
        "page, or the API with notify=true), or an active subscription is created through the "
        "API with notify=true. Not when a suspended subscription is activated again."
    ),
    "rejectDeveloperNotificationMessage": (
        "When an administrator rejects a subscription request: Reject on the user's page, or "
        "the API changing a submitted subscription to rejected with notify=true."
    ),
}
# When each publisher notification's email goes to its recipients (services/subscriptions.py
# and services/profile.py stage them through services/notifications.py).
PUBLISHER_SENT_WHEN = {
    NotificationName.REQUEST: (
        "When a developer asks for a subscription that needs approval: on the portal, or a "
        "submitted subscription created through the API with notify=true."
    ),
    NotificationName.PURCHASE: (
        "When a subscription first becomes active: a developer subscribes on the portal to a "
        "product without approval, or an administrator approves a request (Approve on the "
        "user's page, or the API with notify=true), or an active subscription is created "
        "through the API with notify=true."
    ),
    NotificationName.ACCOUNT_CLOSED: (
        "When a developer closes their account on the portal (not when an administrator "
        "deletes it)."
    ),
}
# A preview whose HTML has more distinct inline styles than this shows its HTML on request
# (a frame loaded by a button) rather than at once, to keep the page's policy header small.
MAX_STYLE_HASHES = 100


@router.route(TEMPLATES, "GET")
@page
def templates_page(call: Call, admin: Admin) -> Response:
    service = services().templates
    views = service.list(ListQuery(None, 100, Cursor())).items
    return render(
        call,
        "templates.html",
        admin,
        title="Email templates",
        nav="templates",
        templates=sorted(views, key=lambda v: (v.name not in SENT_WHEN, v.name.lower())),
        sent_when=SENT_WHEN,
        publisher_emails=service.publisher_emails(),
        publisher_sent_when=PUBLISHER_SENT_WHEN,
    )


class _Styles(HTMLParser):
    """The inline styles of an HTML document: style attributes and <style> elements."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[str] = []
        self._in_style = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.found.extend(v for k, v in attrs if k == "style" and v is not None)
        self._in_style = tag == "style"

    def handle_endtag(self, tag: str) -> None:
        self._in_style = False

    def handle_data(self, data: str) -> None:
        if self._in_style:
            self.found.append(data)


def style_hashes(document: str) -> list[str]:
    """CSP sources (``'sha256-...'``) for every distinct inline style of ``document``."""
    parser = _Styles()
    parser.feed(document)
    parser.close()
    hashes = []
    for style in dict.fromkeys(parser.found):
        digest = hashlib.sha256(style.encode("utf-8")).digest()
        hashes.append(f"'sha256-{base64.b64encode(digest).decode()}'")
    return hashes


def preview_policy(hashes: list[str]) -> str:
    """The console's policy, allowing exactly these inline styles (for the srcdoc frame)."""
    policy = CONSOLE_HEADERS["Content-Security-Policy"]
    if not hashes:
        return policy
    return policy.replace(
        "style-src 'self'", "style-src 'self' 'unsafe-hashes' " + " ".join(hashes), 1
    )


def _template_page(
    call: Call,
    admin: Admin,
    view: TemplateView,
    status: int = 200,
    *,
    values: dict[str, str] | None = None,
    version: int | None = None,
    errors: dict[str, list[str]] | None = None,
    error: str | None = None,
    preview: Any = None,
) -> Response:
    panel = call.query.get("confirm")
    hashes = style_hashes(preview.html) if preview is not None else []
    inline = preview is not None and len(hashes) <= MAX_STYLE_HASHES
    response = render(
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
        inline_preview=inline,
        panel="reset" if panel == "reset" and not view.is_default else None,
        sent_when=SENT_WHEN.get(view.name),
        message=notice(call, DONE),
    )
    if inline:
        response.headers["Content-Security-Policy"] = preview_policy(hashes)
    return response


@router.route(TEMPLATE, "GET")
@page
def template_page(call: Call, admin: Admin) -> Response:
    return _template_page(call, admin, services().templates.get(call.params["templateName"]))


@router.route(PUBLISHER, "GET")
@page
def publisher_page(call: Call, admin: Admin) -> Response:
    """A publisher notification's email with sample values, read-only (APIM offers no template
    to edit for it): subject, HTML and text at once."""
    raw = call.params["notificationName"]
    name = notification_name(raw)
    if name is None:
        raise ResourceNotFound(f"There is no publisher notification named “{raw}”.")
    email, rendered = services().templates.publisher_preview(name)
    # These emails are fixed files with a handful of inline styles, so the policy header stays
    # small and the HTML always shows at once (no fallback frame as for edited templates).
    hashes = style_hashes(rendered.html)
    response = render(
        call,
        "publisher.html",
        admin,
        title=email.title,
        nav="templates",
        email=email,
        preview=rendered,
        sent_when=PUBLISHER_SENT_WHEN[email.name],
    )
    response.headers["Content-Security-Policy"] = preview_policy(hashes)
    return response


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
        errors = all_field_errors(exc.details)
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
