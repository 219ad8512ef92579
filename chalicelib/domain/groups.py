"""Groups: the three built-in ones every instance has."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Group:
    """A group of users; built-in groups are managed by the system."""

    id: str
    display_name: str
    description: str | None
    built_in: bool
    type: str
    external_id: str | None = None


BUILT_IN_GROUPS: tuple[Group, ...] = (
    Group(
        "administrators",
        "Administrators",
        "Administrators is a built-in group containing the admin email account provided at the "
        "time of service creation. Its membership is managed by the system.",
        True,
        "system",
    ),
    Group(
        "developers",
        "Developers",
        "Developers is a built-in group. Its membership is managed by the system. Signed-in "
        "users fall into this group.",
        True,
        "system",
    ),
    Group(
        "guests",
        "Guests",
        "Guests is a built-in group. Its membership is managed by the system. Unauthenticated "
        "users visiting the developer portal fall into this group.",
        True,
        "system",
    ),
)
DEVELOPERS = BUILT_IN_GROUPS[1]


def built_in(group_id: str) -> Group | None:
    """The built-in group with this id (ids compare case-insensitively, as in APIM)."""
    for group in BUILT_IN_GROUPS:
        if group.id == group_id.lower():
            return group
    return None
