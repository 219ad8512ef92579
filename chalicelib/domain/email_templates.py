"""Editable email templates: stored form, APIM names, and what PUT and PATCH may send."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from chalicelib.domain.users import properties_of
from chalicelib.errors import FieldProblem, ValidationFailed


@dataclass(frozen=True)
class TemplateParameter:
    """A placeholder a template offers; ``name`` is what the template writes as ``{{ Name }}``."""

    name: str
    title: str
    description: str


# A template nobody changed has this version, so its ETag names the default content, whatever
# happened before (a reset template is the default again, byte for byte).
DEFAULT_VERSION = 1
SUBJECT_MAX = 1000
TITLE_MAX = 4096
DESCRIPTION_MAX = 4096
PARAMETER_NAME_MAX = 256
PARAMETER_TITLE_MAX = 4096
PARAMETER_DESCRIPTION_MAX = 256
MAX_PARAMETERS = 100
_PARAMETER_PATTERN = re.compile(r"[A-Za-z0-9\-._]+")
# Templates whose whole purpose is a link: saving one without ConfirmUrl is refused.
LINK_TEMPLATES = frozenset(
    {
        "inviteUserNotificationMessage",
        "confirmSignUpIdentityDefault",
        "passwordResetIdentityDefault",
        "emailChangeIdentityDefault",
    }
)


@dataclass(frozen=True)
class StoredTemplate:
    """A customized template as saved; ``text`` is derived from ``body`` (the HTML)."""

    name: str
    subject: str
    body: str
    text: str
    title: str | None
    description: str | None
    parameters: tuple[TemplateParameter, ...]
    version: int
    updated_at: datetime


@dataclass(frozen=True)
class TemplateView:
    """A template as the API shows it, customized or default."""

    name: str
    subject: str
    body: str
    text: str
    title: str | None
    description: str | None
    parameters: tuple[TemplateParameter, ...]
    is_default: bool
    version: int


@dataclass(frozen=True)
class TemplateChanges:
    """The validated fields of a PUT, PATCH or preview body; None means not sent."""

    subject: str | None = None
    body: str | None = None
    title: str | None = None
    description: str | None = None
    parameters: tuple[TemplateParameter, ...] | None = None


def pascal_name(name: str) -> str:
    """APIM answers with PascalCase names (``InviteUserNotificationMessage``)."""
    return name[:1].upper() + name[1:]


def _text(
    props: dict[str, Any], name: str, max_len: int, problems: list[FieldProblem], min_len: int = 0
) -> str | None:
    value = props.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        problems.append(FieldProblem(name, f"'{name}' must be a string."))
        return None
    if not min_len <= len(value) <= max_len:
        problems.append(
            FieldProblem(name, f"'{name}' must have {min_len} to {max_len} characters.")
        )
        return None
    return value


def _parameters(
    value: Any, known: tuple[TemplateParameter, ...], problems: list[FieldProblem]
) -> tuple[TemplateParameter, ...] | None:
    if value is None:
        return None
    if not isinstance(value, list) or len(value) > MAX_PARAMETERS:
        problems.append(
            FieldProblem("parameters", "'parameters' must be a list of {name, title, description}.")
        )
        return None
    known_names = {p.name.lower(): p for p in known}
    result: list[TemplateParameter] = []
    for index, entry in enumerate(value):
        target = f"parameters[{index}]"
        name = entry.get("name") if isinstance(entry, dict) else None
        if not isinstance(name, str) or not _PARAMETER_PATTERN.fullmatch(name):
            problems.append(
                FieldProblem(f"{target}.name", "A parameter needs a name (A-Z a-z 0-9 - . _).")
            )
            continue
        offered = known_names.get(name.lower())
        if offered is None:
            allowed = ", ".join(p.name for p in known)
            problems.append(
                FieldProblem(
                    f"{target}.name",
                    f"'{name}' is not a parameter of this template; it offers: {allowed}.",
                )
            )
            continue
        title = entry.get("title")
        description = entry.get("description")
        if title is not None and (
            not isinstance(title, str) or not 1 <= len(title) <= PARAMETER_TITLE_MAX
        ):
            problems.append(
                FieldProblem(
                    f"{target}.title", f"A title has 1 to {PARAMETER_TITLE_MAX} characters."
                )
            )
            continue
        if description is not None and (
            not isinstance(description, str)
            or len(description) > PARAMETER_DESCRIPTION_MAX
            or not _PARAMETER_PATTERN.fullmatch(description)
        ):
            problems.append(
                FieldProblem(
                    f"{target}.description",
                    f"A description has 1 to {PARAMETER_DESCRIPTION_MAX} characters "
                    "from A-Z a-z 0-9 - . _ (APIM's pattern).",
                )
            )
            continue
        result.append(
            TemplateParameter(
                offered.name,
                title if title is not None else offered.title,
                description if description is not None else offered.description,
            )
        )
    return tuple(result)


def read_template_changes(body: Any, known: tuple[TemplateParameter, ...]) -> TemplateChanges:
    """Validate the ``properties`` of a template body; every problem is reported at once."""
    return read_template_fields(properties_of(body), known)


def read_template_fields(
    props: dict[str, Any], known: tuple[TemplateParameter, ...]
) -> TemplateChanges:
    """Validate a template's fields (an ARM body's properties, or a form's fields).

    ``isDefault`` is read-only and ignored, as APIM does; a null field counts as not sent.
    """
    problems: list[FieldProblem] = []
    changes = TemplateChanges(
        subject=_text(props, "subject", SUBJECT_MAX, problems, min_len=1),
        body=_text(props, "body", 10 * 1024 * 1024, problems, min_len=1),
        title=_text(props, "title", TITLE_MAX, problems),
        description=_text(props, "description", DESCRIPTION_MAX, problems),
        parameters=_parameters(props.get("parameters"), known, problems),
    )
    if problems:
        raise ValidationFailed(problems)
    return changes
