"""Email templates: read, change, reset and preview APIM's 14, and preview publishers' emails.

APIM's contract has one HTML ``body``. The admin's body is stored as the HTML part and the text
part is derived from it at save time (links keep their target), so both parts always say the
same thing; a template nobody changed keeps its hand-written text part.
"""

from __future__ import annotations

import builtins
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import TYPE_CHECKING, Protocol
from urllib.parse import urlsplit

from chalicelib.config import Settings
from chalicelib.domain.audit import diff
from chalicelib.domain.clock import Clock
from chalicelib.domain.email_templates import (
    DEFAULT_VERSION,
    LINK_TEMPLATES,
    StoredTemplate,
    TemplateChanges,
    TemplateView,
    pascal_name,
)
from chalicelib.domain.etag import (
    Expected,
    check_expected,
    next_version,
    save_over_what_was_read,
)
from chalicelib.domain.links import LinkPurpose
from chalicelib.domain.paging import READ_BUDGET, Page
from chalicelib.domain.portal import (
    SENT_NOTIFICATIONS,
    NotificationName,
    Recipient,
    RecipientKind,
)
from chalicelib.errors import FieldProblem, ResourceNotFound, ValidationFailed
from chalicelib.mail.templates import (
    TEMPLATE_NAMES,
    EmailTemplate,
    canonical_name,
    default_template,
    publisher_template,
    template_parameters,
)
from chalicelib.services.audit import Audit, Target
from chalicelib.services.listing import ListQuery, bounded_page
from chalicelib.services.ports import Store, Tx

if TYPE_CHECKING:
    from chalicelib.mail.render import RenderedEmail

_DERIVED = "In the plain-text version derived from the body: "
# Rounds an unconditional save may lose to concurrent saves before it gives up (412).
_SAVE_ROUNDS = 50
_LINK_PURPOSES = {
    "inviteUserNotificationMessage": LinkPurpose.INVITE,
    "confirmSignUpIdentityDefault": LinkPurpose.SIGNUP,
    "passwordResetIdentityDefault": LinkPurpose.RESET,
}
_SAMPLES = {
    "DevFirstName": "Ada",
    "DevLastName": "Lovelace",
    "DevEmail": "ada.lovelace@example.com",
    "DevUsername": "ada.lovelace@example.com",
    "IdentityProvider": "Basic",
    "ProdName": "Starter",
    "ProdId": "starter",
    "SubStartDate": "2026-01-01",
    "SubTerm": "1 month",
    "SubId": "64f1c2a9e8b7d6c5b4a39281",
    "SubName": "Ada's mobile app",
}
# The publishers' emails in the order APIM lists its notifications.
_PUBLISHER_ORDER = tuple(n for n in NotificationName if n in SENT_NOTIFICATIONS)


@dataclass(frozen=True)
class PublisherEmail:
    """A publisher notification's email (not editable, as in APIM) and who receives it."""

    name: NotificationName
    title: str
    description: str
    subject: str
    recipient_users: int
    recipient_emails: int

    @property
    def recipients(self) -> int:
        return self.recipient_users + self.recipient_emails


def _publisher_email(name: NotificationName, recipients: list[Recipient]) -> PublisherEmail:
    template = publisher_template(name.value)
    mine = [r for r in recipients if r.notification is name]
    return PublisherEmail(
        name=name,
        title=template.title,
        description=template.description,
        subject=template.subject,
        recipient_users=sum(r.kind is RecipientKind.USER for r in mine),
        recipient_emails=sum(r.kind is RecipientKind.EMAIL for r in mine),
    )


class TemplateStore(Protocol):
    """What the service needs from the template repository."""

    def get(self, name: str) -> StoredTemplate | None: ...
    def get_many(self, names: list[str]) -> dict[str, StoredTemplate]: ...
    def stage_put(self, tx: Tx, new: StoredTemplate, old: StoredTemplate | None) -> None: ...
    def stage_delete(self, tx: Tx, old: StoredTemplate) -> None: ...


def _view(name: str, stored: StoredTemplate | None) -> TemplateView:
    if stored is None:
        default = default_template(name)
        return TemplateView(
            name=name,
            subject=default.subject,
            body=default.html,
            text=default.text,
            title=default.title,
            description=default.description,
            parameters=default.parameters,
            is_default=True,
            version=DEFAULT_VERSION,
        )
    return TemplateView(
        name=name,
        subject=stored.subject,
        body=stored.body,
        text=stored.text,
        title=stored.title,
        description=stored.description,
        parameters=stored.parameters,
        is_default=False,
        version=stored.version,
    )


def _renderable(view: TemplateView) -> EmailTemplate:
    # Rendering knows every parameter the service supplies, whatever list the admin saved.
    return EmailTemplate(
        name=view.name,
        title=view.title or "",
        description=view.description or "",
        subject=view.subject,
        html=view.body,
        text=view.text,
        parameters=template_parameters(view.name),
    )


def template_problems(name: str, subject: str, html: str, text: str) -> list[FieldProblem]:
    """Every reason this template cannot be saved, each naming the field it is about.

    The subject, the body and the derived text are checked one by one so that each problem
    names its field, and the size limit applies to what the admin sends (subject and body).
    """
    from chalicelib.mail.render import MAX_TEMPLATE_BYTES, TemplateError, check

    size = len(subject.encode("utf-8")) + len(html.encode("utf-8"))
    if size > MAX_TEMPLATE_BYTES:
        return [
            FieldProblem(
                "body",
                f"The template is {size / 1024:.1f} KB; the subject and the body together may "
                f"have at most {MAX_TEMPLATE_BYTES // 1024} KB.",
            )
        ]
    required = ("ConfirmUrl",) if name in LINK_TEMPLATES else ()
    # check() wants a required name in both bodies; this stands in for the part not checked.
    stub = "".join(f"{{{{ {r} }}}}" for r in required)
    parameters = template_parameters(name)
    problems: list[FieldProblem] = []

    def run(target: str, template: EmailTemplate, require: tuple[str, ...], lead: str) -> bool:
        try:
            check(template, require=require)
        except TemplateError as exc:
            problems.extend(FieldProblem(target, lead + p) for p in exc.problems)
            return False
        return True

    def part(subject: str = "", html: str = "", text: str = "") -> EmailTemplate:
        return EmailTemplate(name, "", "", subject, html, text, parameters)

    run("subject", part(subject=subject), (), "")
    # The text is derived from the body: its problems would repeat the body's, so it is only
    # checked once the body passes (conversion may still lose a required link, e.g. in <head>).
    if run("body", part(html=html, text=stub), required, ""):
        run("body", part(html=stub, text=text), required, _DERIVED)
    return problems


class TemplateService:
    """The EmailTemplate use cases, and the template source of the mail service."""

    def __init__(
        self,
        store: Store,
        templates: TemplateStore,
        settings: Settings,
        clock: Clock,
        *,
        audit: Audit,
    ) -> None:
        self._audit = audit
        self._store = store
        self._templates = templates
        self._settings = settings
        self._clock = clock

    @staticmethod
    def _canonical(name: str) -> str:
        canonical = canonical_name(name)
        if canonical is None:
            raise ResourceNotFound(f"Email template not found: '{name}'.")
        return canonical

    def get(self, name: str) -> TemplateView:
        canonical = self._canonical(name)
        return _view(canonical, self._templates.get(canonical))

    def email_template(self, name: str) -> EmailTemplate:
        """The mail service's template source: the admin's version if any, else the default.

        One consistent GetItem per email, so a change is used from the next email on.
        KeyError for an unknown name, like ``default_template``.
        """
        canonical = canonical_name(name)
        if canonical is None:
            raise KeyError(name)
        stored = self._templates.get(canonical)
        return (
            default_template(canonical) if stored is None else _renderable(_view(canonical, stored))
        )

    def list(self, query: ListQuery) -> Page[TemplateView]:
        """The 14 templates by name; one BatchGet for the page's customizations."""
        flt = query.filter
        names = sorted(TEMPLATE_NAMES, key=str.lower)
        after = query.cursor.after
        rows = ((n, n) for n in names if after is None or n.lower() > after.lower())
        page = bounded_page(
            rows,
            query,
            READ_BUDGET,
            lambda n: flt is None or flt.evaluate({"name": pascal_name(n)}),
        )
        stored = self._templates.get_many(page.items) if page.items else {}
        views = [_view(n, stored.get(n)) for n in page.items]
        return Page(views, page.next, page.count)

    def _apply(self, current: TemplateView, changes: TemplateChanges) -> TemplateView:
        """The template after the changes, validated as a whole (ValidationFailed if not)."""
        subject = changes.subject if changes.subject is not None else current.subject
        body = changes.body if changes.body is not None else current.body
        if changes.body is not None:
            from chalicelib.mail.render import text_from_html

            text = text_from_html(changes.body)
        else:
            text = current.text
        problems = template_problems(current.name, subject, body, text)
        if problems:
            raise ValidationFailed(problems)
        return replace(
            current,
            subject=subject,
            body=body,
            text=text,
            title=changes.title if changes.title is not None else current.title,
            description=(
                changes.description if changes.description is not None else current.description
            ),
            parameters=(
                changes.parameters if changes.parameters is not None else current.parameters
            ),
        )

    def save(
        self, name: str, changes: TemplateChanges, expected: Expected | None
    ) -> tuple[TemplateView, bool]:
        """PUT or PATCH: (template, was it the default before)."""
        canonical = self._canonical(name)

        def attempt() -> tuple[TemplateView, bool]:
            stored = self._templates.get(canonical)
            current = _view(canonical, stored)
            check_expected(expected, current.version)
            updated = self._apply(current, changes)
            now = self._clock()
            version = next_version(stored.version if stored else DEFAULT_VERSION, now)
            new = StoredTemplate(
                name=canonical,
                subject=updated.subject,
                body=updated.body,
                text=updated.text,
                title=updated.title,
                description=updated.description,
                parameters=updated.parameters,
                version=version,
                updated_at=now,
            )
            tx = self._store.transaction()
            self._templates.stage_put(tx, new, stored)
            # Bodies go up to 100 KB: the event says a body changed and its size, not the text.
            audited = diff(
                {"subject": current.subject, "body": f"{len(current.body)} characters"},
                {"subject": new.subject, "body": f"{len(new.body)} characters"},
            )
            if current.body != new.body and "body" not in audited:
                audited["body"] = {"old": "(before)", "new": "(changed)"}
            self._audit.stage(tx, "template.changed", Target("template", canonical), audited)
            tx.commit()
            return _view(canonical, new), stored is None

        return save_over_what_was_read(
            expected, attempt, _SAVE_ROUNDS, "The template kept changing meanwhile; read it again."
        )

    def reset(self, name: str, expected: Expected) -> None:
        """DELETE: back to the default (isDefault true again)."""
        canonical = self._canonical(name)
        stored = self._templates.get(canonical)
        expected.check(stored.version if stored else DEFAULT_VERSION)
        if stored is None:
            return
        tx = self._store.transaction()
        self._templates.stage_delete(tx, stored)
        self._audit.stage(tx, "template.reset", Target("template", canonical))
        tx.commit()

    def sample_values(self, name: str) -> dict[str, str]:
        """Made-up values for every parameter of a template, as a real email would carry."""
        portal = self._settings.portal_url
        purpose = _LINK_PURPOSES.get(name)
        if purpose is LinkPurpose.RESET:
            lifetime = timedelta(minutes=self._settings.reset_minutes)
        else:
            lifetime = timedelta(hours=self._settings.invitation_hours)
        from chalicelib.domain.links import LINK_PATHS

        path = LINK_PATHS[purpose] if purpose else "/confirm"
        known = {
            **self._common_samples(),
            "ConfirmQuery": "token=sample-token",
            "ConfirmUrl": f"{portal}{path}?token=sample-token",
            "ExpiresAt": (self._clock() + lifetime).strftime("%Y-%m-%d %H:%M UTC"),
        }
        return {p.name: known.get(p.name, f"Sample {p.name}") for p in template_parameters(name)}

    def _common_samples(self) -> dict[str, str]:
        portal = self._settings.portal_url
        return {
            **_SAMPLES,
            "OrganizationName": self._settings.organization_name,
            "DevPortalUrl": portal,
            "DevPortalHost": urlsplit(portal).netloc,
        }

    def publisher_emails(self) -> builtins.list[PublisherEmail]:
        """The emails of the notifications this service sends, each with its number of
        recipients: one Query of every notification's recipients."""
        recipients = self._store.portal.recipients()
        return [_publisher_email(name, recipients) for name in _PUBLISHER_ORDER]

    def publisher_preview(self, name: NotificationName) -> tuple[PublisherEmail, RenderedEmail]:
        """A publisher notification's email rendered with sample values (read-only: APIM has
        no editable template for it); ResourceNotFound for a notification sent as no email."""
        from chalicelib.mail.render import render

        if name not in SENT_NOTIFICATIONS:
            raise ResourceNotFound(
                f"The notification {name.value} is not sent as an email of its own."
            )
        email = _publisher_email(name, self._store.portal.recipients(name))
        template = publisher_template(name.value)
        known = self._common_samples()
        values = {p.name: known.get(p.name, f"Sample {p.name}") for p in template.parameters}
        return email, render(template, values)

    def preview(
        self,
        name: str,
        changes: TemplateChanges | None = None,
        values: Mapping[str, str] | None = None,
    ) -> tuple[RenderedEmail, dict[str, str]]:
        """Render the stored template, or the given changes to it, with sample values.

        Nothing is saved. Changes are validated exactly as a save would; ``values`` replace
        sample values of the template's own parameters.
        """
        from chalicelib.mail.render import render

        canonical = self._canonical(name)
        current = _view(canonical, self._templates.get(canonical))
        samples = self.sample_values(canonical)
        unknown = sorted(set(values or {}) - set(samples))
        if unknown:
            raise ValidationFailed(
                [
                    FieldProblem("values", f"'{n}' is not a parameter of this template.")
                    for n in unknown
                ]
            )
        samples.update(values or {})
        if changes is not None:
            current = self._apply(current, changes)
        return render(_renderable(current), samples), samples
