"""The user entity and the validation of what callers send for it."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, TypeVar

from chalicelib.domain.odata import (
    ALL_FUNCTIONS,
    ALL_OPS,
    EQ_ONLY,
    And,
    Comparison,
    Expr,
    FieldSpec,
    FunctionCall,
    Or,
)
from chalicelib.domain.passwords import policy_problem
from chalicelib.domain.text import id_characters_problem, name_characters_problem
from chalicelib.errors import FieldProblem, ValidationFailed

ID_MAX = 80
NAME_MAX = 100
EMAIL_MAX = 254
NOTE_MAX = 1000
E = TypeVar("E", bound=StrEnum)
_FORBIDDEN_ID = re.compile(r"[*#&+:<>?/\\\x00-\x1f\x7f]")


class UserState(StrEnum):
    """APIM's user states."""

    ACTIVE = "active"
    BLOCKED = "blocked"
    PENDING = "pending"
    DELETED = "deleted"


class Confirmation(StrEnum):
    """Which confirmation email a create asks for."""

    SIGNUP = "signup"
    INVITE = "invite"


class AppType(StrEnum):
    """Which portal the links in emails point to."""

    PORTAL = "portal"
    DEVELOPER_PORTAL = "developerPortal"


@dataclass(frozen=True)
class Identity:
    """A way the user signs in; ``Basic`` is email + password, its id the email."""

    provider: str
    id: str


@dataclass(frozen=True)
class User:
    """A developer account as stored."""

    id: str
    email: str
    first_name: str
    last_name: str
    state: UserState
    note: str | None
    registration_date: datetime
    identities: tuple[Identity, ...]
    version: int
    password_hash: str | None = field(default=None, repr=False)
    token_epoch: str = field(default="", repr=False)
    # The one reset link that may still be used: a new one, a new epoch or a block replaces it
    # ("" on accounts that never had one recorded; REVOKED_RESET when none may).
    reset_link: str = field(default="", repr=False)

    @property
    def email_key(self) -> str:
        return email_key(self.email)


@dataclass(frozen=True)
class UserDraft:
    """A validated PUT body: the whole user as the caller wants it."""

    email: str
    first_name: str
    last_name: str
    state: UserState | None
    note: str | None
    note_given: bool
    identities: tuple[Identity, ...] | None
    password: str | None = field(repr=False)
    confirmation: Confirmation | None
    app_type: AppType | None


@dataclass(frozen=True)
class UserChanges:
    """A validated PATCH body: only the fields the caller sent."""

    email: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    state: UserState | None = None
    note: str | None = None
    note_given: bool = False
    identities: tuple[Identity, ...] | None = None
    password: str | None = field(default=None, repr=False)


NO_FUNCTIONS: frozenset[str] = frozenset()
USER_FILTER_FIELDS: dict[str, FieldSpec] = {
    "name": FieldSpec("string", ALL_OPS, ALL_FUNCTIONS),
    "firstName": FieldSpec("string", ALL_OPS, ALL_FUNCTIONS),
    "lastName": FieldSpec("string", ALL_OPS, ALL_FUNCTIONS),
    "email": FieldSpec("string", ALL_OPS, ALL_FUNCTIONS),
    "state": FieldSpec("enum", EQ_ONLY, NO_FUNCTIONS),
    "registrationDate": FieldSpec("datetime", ALL_OPS, NO_FUNCTIONS),
    "note": FieldSpec("string", ALL_OPS, ALL_FUNCTIONS),
}
SEARCH_WORDS = 5


def filter_record(user: User) -> dict[str, Any]:
    """The fields ``$filter`` sees, under APIM's names."""
    return {
        "name": user.id,
        "firstName": user.first_name,
        "lastName": user.last_name,
        "email": user.email,
        "state": user.state.value,
        "registrationDate": user.registration_date,
        "note": user.note,
    }


def email_is(email: str) -> Expr:
    """The filter ``email eq '<email>'``, which the store answers with one indexed query."""
    return Comparison("email", "eq", email, "string")


def search_filter(search: str, state: UserState | None) -> Expr | None:
    """A search box: every word in a name or the email, and an optional state."""
    clauses: list[Expr] = [
        Or(tuple(FunctionCall("contains", f, word) for f in ("firstName", "lastName", "email")))
        for word in search.split()[:SEARCH_WORDS]
    ]
    if state is not None:
        clauses.append(Comparison("state", "eq", state.value, "enum"))
    if not clauses:
        return None
    return clauses[0] if len(clauses) == 1 else And(tuple(clauses))


class UserSort(StrEnum):
    """The orders a user list can be read in, each from an index of its own."""

    NAME = "name"
    EMAIL = "email"
    STATE = "state"
    REGISTERED = "registered"


@dataclass(frozen=True)
class UserOrder:
    """A sorted list: by what, which way."""

    sort: UserSort
    descending: bool = False

    def reversed(self) -> UserOrder:
        return UserOrder(self.sort, not self.descending)


# Joins the parts of a sort key; below every printable character, so "Ada" sorts before
# "Ada Lovelace", and the account id at the end makes every key unique.
SORT_SEPARATOR = "\x1f"
# A sort key stays far below DynamoDB's 1,024 bytes for a range key: names are cut to this many
# characters for sorting (ties are then ordered by id).
_SORT_NAME_CHARS = 160


def name_sort_key(first_name: str, last_name: str) -> str:
    """The name as shown ("First Last"), for sorting: case and accents ignored."""
    import unicodedata

    shown = f"{first_name} {last_name}"
    folded = unicodedata.normalize("NFKD", shown.casefold())
    plain = "".join(c for c in folded if not unicodedata.combining(c))
    return "".join(c if c >= " " else " " for c in plain)[:_SORT_NAME_CHARS]


def order_key(user: User, sort: UserSort) -> str:
    """The key the index of ``sort`` orders this user by (unique per user)."""
    sep = SORT_SEPARATOR
    if sort is UserSort.EMAIL:
        return user.email_key
    name = name_sort_key(user.first_name, user.last_name) + sep + user.id
    if sort is UserSort.NAME:
        return name
    if sort is UserSort.STATE:
        return user.state.value + sep + name
    registered = user.registration_date.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")
    return registered + sep + user.id


def state_prefix(state: UserState) -> str:
    """Where one state's users start in the state index (ordered by name within it)."""
    return state.value + SORT_SEPARATOR


def email_key(email: str) -> str:
    """The normalized form that uniqueness is enforced on."""
    return email.strip().lower()


def id_problem(value: str, target: str) -> FieldProblem | None:
    """Ids: 1 to 80 characters, none of ``*#&+:<>?/\\``, no invisible character, not a dot
    segment (``.``, ``..``); see domain/text.py."""
    if not 1 <= len(value) <= ID_MAX:
        return FieldProblem(target, f"The id must have 1 to {ID_MAX} characters.")
    if _FORBIDDEN_ID.search(value) or value.strip() != value:
        return FieldProblem(
            target,
            "The id must not contain * # & + : < > ? / \\, control characters, "
            "or leading or trailing spaces.",
        )
    reason = id_characters_problem(value)
    return FieldProblem(target, reason) if reason else None


class BodyReader:
    """Collects every problem of one body so the caller sees them all at once."""

    def __init__(self, props: dict[str, Any]) -> None:
        self.props = props
        self.problems: list[FieldProblem] = []

    def has(self, name: str) -> bool:
        return name in self.props

    def text(self, name: str, *, required: bool, max_len: int, min_len: int = 1) -> str | None:
        value = self.props.get(name)
        if value is None:
            if required:
                self.problems.append(FieldProblem(name, f"'{name}' is required."))
            return None
        if not isinstance(value, str):
            self.problems.append(FieldProblem(name, f"'{name}' must be a string."))
            return None
        if not min_len <= len(value) <= max_len:
            self.problems.append(
                FieldProblem(name, f"'{name}' must have {min_len} to {max_len} characters.")
            )
            return None
        return value

    def name(self, name: str, *, required: bool) -> str | None:
        """A person's name: one line, no control or direction-override character."""
        value = self.text(name, required=required, max_len=NAME_MAX)
        reason = name_characters_problem(value) if value is not None else None
        if reason:
            self.problems.append(FieldProblem(name, reason))
            return None
        return value

    def email(self, *, required: bool) -> str | None:
        value = self.text("email", required=required, max_len=EMAIL_MAX)
        if value is None:
            return None
        value = value.strip()
        from email_validator import EmailNotValidError, validate_email

        try:
            # SES sends without SMTPUTF8: a non-ASCII domain goes out as punycode, but a
            # non-ASCII local part (before the @) could never be sent, so it is refused here.
            validate_email(value, check_deliverability=False, allow_smtputf8=False)
        except EmailNotValidError as exc:
            self.problems.append(FieldProblem("email", f"'email' is not a valid address: {exc}"))
            return None
        return value

    def enum(self, name: str, kind: type[E]) -> E | None:
        value = self.props.get(name)
        if value is None:
            return None
        if isinstance(value, str):
            for member in kind:
                if member.value.lower() == value.lower():
                    return member
        allowed = ", ".join(m.value for m in kind)
        self.problems.append(FieldProblem(name, f"'{name}' must be one of: {allowed}."))
        return None

    def identities(self) -> tuple[Identity, ...] | None:
        value = self.props.get("identities")
        if value is None:
            return None
        ok = (
            isinstance(value, list)
            and all(
                isinstance(i, dict)
                and isinstance(i.get("provider"), str)
                and isinstance(i.get("id"), str)
                and 0 < len(i["provider"]) <= 100
                and 0 < len(i["id"]) <= EMAIL_MAX
                for i in value
            )
            and len(value) <= 20
        )
        if not ok:
            self.problems.append(
                FieldProblem("identities", "'identities' must be a list of {provider, id} strings.")
            )
            return None
        return tuple(Identity(i["provider"], i["id"]) for i in value)

    def password(self, email: str | None, first: str | None, last: str | None) -> str | None:
        value = self.props.get("password")
        if value is None:
            return None
        if not isinstance(value, str):
            self.problems.append(FieldProblem("password", "'password' must be a string."))
            return None
        reason = policy_problem(value, email or "", first or "", last or "")
        if reason:
            self.problems.append(FieldProblem("password", reason))
            return None
        return value

    def settable_state(self) -> UserState | None:
        state = self.enum("state", UserState)
        if state is UserState.DELETED:
            self.problems.append(
                FieldProblem("state", "Use DELETE to delete a user; 'deleted' cannot be set.")
            )
            return None
        return state

    def done(self) -> None:
        if self.problems:
            raise ValidationFailed(self.problems)


def properties_of(body: Any) -> dict[str, Any]:
    """The ``properties`` object of an ARM body, or a validation error saying what is wrong."""
    if not isinstance(body, dict):
        raise ValidationFailed([FieldProblem("body", "The body must be a JSON object.")])
    props = body.get("properties")
    if not isinstance(props, dict):
        raise ValidationFailed(
            [FieldProblem("properties", "The body must have a 'properties' object.")]
        )
    return props


def read_draft(body: Any) -> UserDraft:
    """Validate a PUT body; raises ValidationFailed listing every problem."""
    return read_user_fields(properties_of(body))


def read_user_fields(props: dict[str, Any]) -> UserDraft:
    """Validate a whole user (an ARM body's properties, or a form's fields)."""
    r = BodyReader(props)
    email = r.email(required=True)
    first = r.name("firstName", required=True)
    last = r.name("lastName", required=True)
    note = r.text("note", required=False, max_len=NOTE_MAX, min_len=0)
    state = r.settable_state()
    identities = r.identities()
    confirmation = r.enum("confirmation", Confirmation)
    app_type = r.enum("appType", AppType)
    password = r.password(email, first, last)
    r.done()
    assert email is not None and first is not None and last is not None
    return UserDraft(
        email=email,
        first_name=first,
        last_name=last,
        state=state,
        note=note,
        note_given=r.has("note"),
        identities=identities,
        password=password,
        confirmation=confirmation,
        app_type=app_type,
    )


def read_changes(body: Any) -> UserChanges:
    """Validate a PATCH body; the service checks a password against the names it ends up with."""
    return read_user_changes(properties_of(body))


def read_user_changes(props: dict[str, Any]) -> UserChanges:
    """Validate the fields sent to change a user (an ARM body's properties, or a form's)."""
    r = BodyReader(props)
    email = r.email(required=False)
    first = r.name("firstName", required=False)
    last = r.name("lastName", required=False)
    note = r.text("note", required=False, max_len=NOTE_MAX, min_len=0)
    state = r.settable_state()
    identities = r.identities()
    password = r.password(email, first, last)
    r.done()
    return UserChanges(
        email=email,
        first_name=first,
        last_name=last,
        state=state,
        note=note,
        note_given=r.has("note"),
        identities=identities,
        password=password,
    )


def basic_identities(email: str, given: tuple[Identity, ...] | None) -> tuple[Identity, ...]:
    """The user's identities: the given non-Basic ones plus a Basic one whose id is the email."""
    others = tuple(i for i in (given or ()) if i.provider.lower() != "basic")
    return (Identity("Basic", email), *others)


# Recorded as the account's reset link when no reset link may be used any more.
REVOKED_RESET = "-"


def new_token_epoch() -> str:
    """A fresh epoch: user tokens signed under the previous one stop verifying."""
    import secrets

    return secrets.token_hex(8)


def checked_password(password: str | None, user: User, target: str = "password") -> str:
    """The password, if the policy accepts it for this user; else ValidationFailed saying why."""
    reason = (
        "A password is required."
        if not password
        else policy_problem(password, user.email, user.first_name, user.last_name)
    )
    if reason or password is None:
        raise ValidationFailed([FieldProblem(target, reason or "A password is required.")])
    return password
