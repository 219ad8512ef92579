"""Custom and external groups and their memberships: ids, PUT and PATCH bodies, stored form."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from chalicelib.domain.groups import Group
from chalicelib.domain.text import id_characters_problem
from chalicelib.domain.users import User, properties_of
from chalicelib.errors import FieldProblem, ValidationFailed

GROUP_ID_MAX = 256
DISPLAY_NAME_MAX = 300
DESCRIPTION_MAX = 1000
EXTERNAL_ID_MAX = 1000
CUSTOM = "custom"
EXTERNAL = "external"
SYSTEM = "system"
# Built-in groups never change, so their ETag is a constant version.
BUILT_IN_VERSION = 1
_SETTABLE_TYPES = (CUSTOM, EXTERNAL)
_FORBIDDEN_ID = re.compile(r"[*#&+:<>?/\\\x00-\x1f\x7f]")


@dataclass(frozen=True)
class StoredGroup:
    """A group with its version (the ETag) and its generation.

    The generation is fixed when the group is created and copied into every membership, so a
    group deleted and created again under the same id never inherits the old members, whatever
    clean-up of the old memberships is still pending.
    """

    group: Group
    version: int
    generation: int

    @property
    def key(self) -> str:
        return group_key(self.group.id)


@dataclass(frozen=True)
class Membership:
    """A user in a custom group, stamped with what it was made for.

    ``user_since`` is the registration date of the account it was made for: a membership left
    behind by a deleted account never applies to a new account with the same id.
    """

    group_key: str
    group_id: str
    user_id: str
    generation: int
    user_since: datetime
    added_at: datetime

    def applies_to(self, group: StoredGroup, user: User) -> bool:
        """Whether this row still means "user is in group" (not left over from a former one)."""
        return group.generation == self.generation and user.registration_date == self.user_since


@dataclass(frozen=True)
class GroupChanges:
    """The validated fields of a PUT or PATCH body; ``given`` names the ones that were sent."""

    display_name: str | None
    description: str | None
    type: str | None
    external_id: str | None
    given: frozenset[str]


def group_key(group_id: str) -> str:
    """Group ids compare case-insensitively, as in APIM (and as the built-in ids do)."""
    return group_id.lower()


def group_id_problem(value: str, target: str = "groupId") -> FieldProblem | None:
    """Group ids: 1 to 256 characters, none of ``*#&+:<>?/\\`` nor control characters."""
    if not 1 <= len(value) <= GROUP_ID_MAX:
        return FieldProblem(target, f"The group id must have 1 to {GROUP_ID_MAX} characters.")
    if _FORBIDDEN_ID.search(value) or value.strip() != value:
        return FieldProblem(
            target,
            "The group id must not contain * # & + : < > ? / \\, control characters, "
            "or leading or trailing spaces.",
        )
    reason = id_characters_problem(value)
    return FieldProblem(target, reason) if reason else None


def _text(
    props: dict[str, Any],
    name: str,
    max_len: int,
    problems: list[FieldProblem],
    *,
    min_len: int = 0,
    required: bool = False,
) -> str | None:
    value = props.get(name)
    if value is None:
        if required:
            problems.append(FieldProblem(name, f"'{name}' is required."))
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


def read_group_changes(body: Any, *, require_display_name: bool) -> GroupChanges:
    """Validate the ``properties`` of a PUT (displayName required) or PATCH body."""
    return read_group_fields(properties_of(body), require_display_name=require_display_name)


def read_group_fields(props: dict[str, Any], *, require_display_name: bool) -> GroupChanges:
    """Validate a group's fields (an ARM body's properties, or a form's fields)."""
    problems: list[FieldProblem] = []
    display_name = _text(
        props,
        "displayName",
        DISPLAY_NAME_MAX,
        problems,
        min_len=1,
        required=require_display_name,
    )
    if "displayName" in props and props["displayName"] is None and not require_display_name:
        problems.append(FieldProblem("displayName", "'displayName' cannot be null."))
    description = _text(props, "description", DESCRIPTION_MAX, problems)
    external_id = _text(props, "externalId", EXTERNAL_ID_MAX, problems, min_len=1)
    group_type = None
    raw_type = props.get("type")
    if raw_type is not None:
        if isinstance(raw_type, str) and raw_type.lower() in _SETTABLE_TYPES:
            group_type = raw_type.lower()
        elif isinstance(raw_type, str) and raw_type.lower() == SYSTEM:
            problems.append(FieldProblem("type", "'system' is reserved for the built-in groups."))
        else:
            problems.append(FieldProblem("type", "'type' must be one of: custom, external."))
    if problems:
        raise ValidationFailed(problems)
    given = frozenset(k for k in ("displayName", "description", "type", "externalId") if k in props)
    return GroupChanges(display_name, description, group_type, external_id, given)


def apply_group_changes(group_id: str, current: Group | None, changes: GroupChanges) -> Group:
    """The group after the changes; fields not sent are kept (defaults for a new group).

    An external group needs an externalId; a custom group has none.
    """
    type_ = changes.type or (current.type if current else CUSTOM)
    if "externalId" in changes.given:
        external_id = changes.external_id
    else:
        # A group that stops being external loses the id it mirrored.
        external_id = current.external_id if current and type_ == EXTERNAL else None
    problems = []
    if type_ == EXTERNAL and not external_id:
        problems.append(
            FieldProblem(
                "externalId", "An external group needs 'externalId' (the group it mirrors)."
            )
        )
    if type_ == CUSTOM and external_id:
        problems.append(
            FieldProblem(
                "externalId", "Only external groups have an 'externalId'; use type external."
            )
        )
    if problems:
        raise ValidationFailed(problems)
    display_name = changes.display_name or (current.display_name if current else None)
    assert display_name is not None  # required on create, validated by read_group_changes
    description = (
        changes.description
        if "description" in changes.given
        else (current.description if current else None)
    )
    return Group(
        id=current.id if current else group_id,
        display_name=display_name,
        description=description,
        built_in=False,
        type=type_,
        external_id=external_id,
    )


def group_record(group: Group) -> dict[str, object]:
    """The fields ``$filter`` sees on groups, under APIM's names."""
    return {
        "name": group.id,
        "displayName": group.display_name,
        "description": group.description,
        "externalId": group.external_id,
    }
