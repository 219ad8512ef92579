"""A user's page in the console: the top bar, edit in place, subscriptions, groups, invitations.

The page offers an action only in the states where it can work: Block for active and pending
accounts, Activate for blocked ones, Reset password for active ones, Revoke only while an
invitation is pending, and neither Block nor Delete on the administrator's own account. A
refusal that still happens (someone changed the account meanwhile) is said with the user's name
and what to do, never with an internal id or an API parameter. Every change calls the service
the management API calls, with the version of what the page showed, so a page opened before
someone else's change refuses to overwrite it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from chalice import Response

from chalicelib.api.console import (
    Admin,
    field_errors,
    form,
    friendly,
    page,
    q,
    render,
    see_other,
    shown_version,
    stale_message,
)
from chalicelib.api.routing import Call, Router
from chalicelib.bootstrap import services
from chalicelib.domain.custom_groups import StoredGroup
from chalicelib.domain.etag import Expected
from chalicelib.domain.groups import Group
from chalicelib.domain.links import LinkState
from chalicelib.domain.paging import Cursor
from chalicelib.domain.subscriptions import Subscription, SubscriptionInput, SubscriptionState
from chalicelib.domain.users import User, UserChanges, UserState, read_user_changes
from chalicelib.errors import (
    EmailTaken,
    FieldProblem,
    HasSubscriptions,
    MethodNotAllowed,
    PreconditionFailed,
    ResourceNotFound,
    StateConflict,
    ValidationFailed,
)
from chalicelib.services.invitations import InvitationView
from chalicelib.services.listing import ListQuery

router = Router(management=False, documented=False)
USER = "/console/users/{userId}"
AUDIT_EVENTS = 10
SUBSCRIPTIONS_SHOWN = 50
GROUPS_LISTED = 100
PANELS = ("reset", "delete", "edit")
EDITED = ("firstName", "lastName", "email", "note")
# What a redirect after a change says; {name} is the user's name, {group} a group's.
DONE = {
    "added": "{name} was added: the account is active and a member of the Developers group.",
    "invited": "The invitation was sent. {name} stays pending until the invitation is accepted.",
    "blocked": "{name} is blocked: the account can no longer sign in or call APIs.",
    "activated": "{name} is active again.",
    "reset": "A password reset email was sent to {name}.",
    "group-added": "{name} was added to {group}.",
    "group-already": "{name} was already a member of {group}; nothing changed.",
    "group-removed": "{name} was removed from {group}.",
    "resent": "A new invitation was sent to {name}; the previous link no longer works.",
    "revoked": "The invitation was revoked; {name} stays pending.",
    "edited": "The changes to {name} were saved.",
    "readdressed": (
        "The changes to {name} were saved. Links sent to the previous email address no longer work."
    ),
    "reinvited": (
        "The changes to {name} were saved, and a new invitation was sent to the new email "
        "address; links sent to the previous one no longer work."
    ),
    "sub-approve": "The subscription {subscription} is approved and active.",
    "sub-reject": "The subscription request {subscription} is rejected.",
    "sub-suspend": "The subscription {subscription} is suspended: its keys no longer work.",
    "sub-activate": "The subscription {subscription} is active again.",
    "sub-cancel": "The subscription {subscription} is cancelled.",
}


@dataclass(frozen=True)
class SubAction:
    """A button of a subscription row: from which states, to which state."""

    label: str
    done: str
    from_states: frozenset[SubscriptionState]
    to: SubscriptionState
    danger: bool = False


SUB_ACTIONS = {
    "approve": SubAction(
        "Approve", "approved", frozenset({SubscriptionState.SUBMITTED}), SubscriptionState.ACTIVE
    ),
    "reject": SubAction(
        "Reject",
        "rejected",
        frozenset({SubscriptionState.SUBMITTED}),
        SubscriptionState.REJECTED,
        True,
    ),
    "suspend": SubAction(
        "Suspend", "suspended", frozenset({SubscriptionState.ACTIVE}), SubscriptionState.SUSPENDED
    ),
    "activate": SubAction(
        "Activate", "activated", frozenset({SubscriptionState.SUSPENDED}), SubscriptionState.ACTIVE
    ),
    "cancel": SubAction(
        "Cancel",
        "cancelled",
        frozenset({SubscriptionState.ACTIVE, SubscriptionState.SUSPENDED}),
        SubscriptionState.CANCELLED,
        True,
    ),
}


@dataclass(frozen=True)
class Offers:
    """What the page offers for this account in its current state."""

    block: bool
    activate: bool
    reset: bool
    delete: bool
    resend: bool
    revoke: bool
    is_self: bool


def name_of(user: User) -> str:
    return f"{user.first_name} {user.last_name}"


def offers_for(user: User, admin: Admin, invitations: list[InvitationView]) -> Offers:
    is_self = user.id == admin.user.id
    pending_link = any(view.state is LinkState.PENDING for view in invitations)
    return Offers(
        block=user.state in {UserState.ACTIVE, UserState.PENDING} and not is_self,
        activate=user.state is UserState.BLOCKED,
        reset=user.state is UserState.ACTIVE,
        delete=not is_self,
        resend=user.state is UserState.PENDING,
        revoke=user.state is UserState.PENDING and pending_link,
        is_self=is_self,
    )


def self_refusal(user: User) -> str:
    return (
        f"You are signed in as {name_of(user)}: you cannot block or delete your own account. "
        "Another administrator can."
    )


def state_refusal(user: User, action: str) -> str:
    """Why an action cannot work on this account now, and what to do instead."""
    name = name_of(user)
    if action == "reset":
        if user.state is UserState.BLOCKED:
            return f"{name} is blocked. Activate the account first to send a reset email."
        if user.state is UserState.PENDING:
            return (
                f"{name} has not accepted the invitation yet, so there is no password to "
                "reset. Resend the invitation instead."
            )
    if action == "resend":
        return (
            f"{name} is {user.state.value}: invitations are only sent to accounts that are pending."
        )
    if action == "revoke":
        return f"{name} has no pending invitation to revoke."
    if action == "activate":
        return f"{name} is {user.state.value}, not blocked: there is nothing to activate."
    if action == "block":
        return f"{name} is already blocked."
    return f"This cannot be done while {name} is {user.state.value}."


# --- the page ----------------------------------------------------------------------------------


def _user_id(call: Call) -> str:
    return call.params["userId"]


def _custom_groups() -> list[StoredGroup]:
    listed = services().groups.list(ListQuery(None, GROUPS_LISTED, Cursor()))
    return [g for g in listed.items if not g.group.built_in]


def _subscriptions(user_id: str) -> tuple[list[Subscription], bool, dict[str, str]]:
    """The user's subscriptions (at most SUBSCRIPTIONS_SHOWN) and their products' names."""
    owned = services().subscriptions.of_user(
        user_id, ListQuery(None, SUBSCRIPTIONS_SHOWN, Cursor())
    )
    names: dict[str, str] = {}
    for sub in owned.items:
        product_id = sub.product_id
        if product_id is None or product_id in names:
            continue
        try:
            names[product_id] = services().products.get(product_id).display_name
        except ResourceNotFound:
            names[product_id] = product_id
    return owned.items, owned.next is not None, names


def _scope_name(sub: Subscription, products: dict[str, str]) -> str:
    if sub.product_id is not None:
        return products.get(sub.product_id, sub.product_id)
    return "all APIs" if sub.scope in {"/", "/apis"} else f"the API {sub.scope.rsplit('/', 1)[-1]}"


def _events(user_id: str) -> list[Any]:
    """The user's newest audit events (the audit trail's own query, one read)."""
    return services().audit.for_user(user_id, AUDIT_EVENTS)


def _actors(events: list[Any]) -> dict[str, str]:
    """Who acted, by email where the actor is an account (one read per distinct account)."""
    names: dict[str, str] = {}
    for event in events:
        if event.actor in names or event.actor_kind not in {"user", "administrator"}:
            continue
        try:
            names[event.actor] = services().accounts.get(event.actor).email
        except ResourceNotFound:
            names[event.actor] = event.actor
    return names


def _message(
    call: Call, user: User, groups: list[Group], subs: list[Subscription], products: dict[str, str]
) -> str | None:
    template = DONE.get(call.query.get("done", ""))
    if template is None:
        return None
    group_name = "the group"
    wanted = call.query.get("g", "").lower()
    if "{group}" in template and wanted:
        known = {g.id.lower(): g.display_name for g in groups}
        if wanted in known:
            group_name = known[wanted]
        else:
            try:
                group_name = services().groups.get(wanted).group.display_name
            except ResourceNotFound:
                pass
    subscription = "of " + name_of(user)
    for sub in subs:
        if sub.id == call.query.get("s"):
            subscription = f"“{sub.display_name}” ({_scope_name(sub, products)})"
    return template.format(name=name_of(user), group=group_name, subscription=subscription)


def user_page(
    call: Call,
    admin: Admin,
    user: User | None = None,
    status: int = 200,
    *,
    panel: str | None = None,
    error: str | None = None,
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
    stale: bool = False,
) -> Response:
    """The user's page; ``panel`` opens the reset or delete confirmation or the edit form."""
    user = user or services().accounts.get(_user_id(call))
    groups = services().accounts.groups_of(user.id)
    member_of = {g.id.lower() for g in groups}
    custom = _custom_groups()
    addable = [g.group for g in custom if g.group.id.lower() not in member_of]
    invitations = services().invitations.list(user.id)
    offers = offers_for(user, admin, invitations)
    panel = panel or call.query.get("confirm") or call.query.get("panel")
    if (panel == "reset" and not offers.reset) or (panel == "delete" and not offers.delete):
        panel = None
    subs, more_subs, products = _subscriptions(user.id)
    events = _events(user.id)
    shown = values or {
        "firstName": user.first_name,
        "lastName": user.last_name,
        "email": user.email,
        "note": user.note or "",
    }
    return render(
        call,
        "user.html",
        admin,
        status,
        title=name_of(user),
        nav="users",
        user=user,
        who=name_of(user),
        version=str(user.version),
        groups=groups,
        addable=addable,
        no_custom_groups=not custom,
        invitations=invitations,
        offers=offers,
        subscriptions=subs,
        more_subscriptions=more_subs,
        products=products,
        scope_name=_scope_name,
        sub_actions={
            sub.id: [(key, act) for key, act in SUB_ACTIONS.items() if sub.state in act.from_states]
            for sub in subs
        },
        events=events,
        actors=_actors(events),
        panel=panel if panel in PANELS else None,
        values=shown,
        message=_message(call, user, groups, subs, products),
        error=stale_message("user") if stale else error,
        errors=errors or {},
        pending=UserState.PENDING,
        blocked=UserState.BLOCKED,
        active=UserState.ACTIVE,
    )


@router.route(USER, "GET")
@page
def user_view(call: Call, admin: Admin) -> Response:
    return user_page(call, admin)


# --- actions -----------------------------------------------------------------------------------

# One button of a user's page: (call, admin, the user as read now, form fields) -> the response.
Action = Callable[[Call, Admin, User, dict[str, str]], Response]


def _back(call: Call, user: User, done: str, **extra: str) -> Response:
    return see_other(call, f"users/{q(user.id)}?" + urlencode({"done": done, **extra}))


@router.route(USER, "POST")
@form
def user_action(call: Call, admin: Admin, fields: dict[str, str]) -> Response:
    """The top bar, edit form, subscriptions, groups and invitations; one action per POST."""
    action = fields.get("action", "")
    handler = _ACTIONS.get(action)
    user = services().accounts.get(_user_id(call))
    if handler is None:
        return user_page(call, admin, user, 400, error="Choose one of the page's buttons.")
    if action in {"block", "delete"} and user.id == admin.user.id:
        return user_page(call, admin, user, 409, error=self_refusal(user))
    try:
        return handler(call, admin, user, fields)
    except PreconditionFailed:
        return user_page(call, admin, status=409, stale=True)
    except HasSubscriptions:
        current = services().accounts.get(user.id)
        count, more = _count_subscriptions(user.id)
        problem = (
            f"{name_of(current)} has {count}{' or more' if more else ''} "
            f"subscription{'' if count == 1 else 's'}. Tick “Also delete the user's "
            "subscriptions” to delete them with the account, or cancel them first."
        )
        errors = {"deleteSubscriptions": problem}
        return user_page(call, admin, current, 409, panel="delete", errors=errors)
    except StateConflict as exc:
        current = services().accounts.get(user.id)
        # A refusal of the service's own (the last administrator) is already in plain words;
        # otherwise the account's current state says why.
        if type(exc) is StateConflict and action in {"reset", "resend", "revoke"}:
            message = state_refusal(current, action)
        else:
            message = friendly(exc.message)
        return user_page(call, admin, current, 409, error=message)


def _set_state(action: str, state: UserState, done: str) -> Action:
    def act(call: Call, admin: Admin, user: User, fields: dict[str, str]) -> Response:
        offers = offers_for(user, admin, [])
        if (state is UserState.BLOCKED and not offers.block) or (
            state is UserState.ACTIVE and not offers.activate
        ):
            return user_page(call, admin, user, 409, error=state_refusal(user, action))
        services().accounts.update(user.id, UserChanges(state=state), shown_version(fields))
        return _back(call, user, done)

    return act


def _reset(call: Call, admin: Admin, user: User, fields: dict[str, str]) -> Response:
    if user.state is not UserState.ACTIVE:
        return user_page(call, admin, user, 409, error=state_refusal(user, "reset"))
    # The reset email has no If-Match of its own; the page's version still guards it.
    services().passwords.send_by_admin(user.id, shown_version(fields))
    return _back(call, user, "reset")


def _count_subscriptions(user_id: str) -> tuple[int, bool]:
    owned = services().subscriptions.of_user(user_id, ListQuery(None, 100, Cursor()))
    return len(owned.items), owned.next is not None


def _delete(call: Call, admin: Admin, user: User, fields: dict[str, str]) -> Response:
    services().accounts.delete(
        user.id,
        shown_version(fields),
        notify=fields.get("notify") == "on",
        delete_subscriptions=fields.get("deleteSubscriptions") == "on",
    )
    return see_other(call, "users?done=deleted")


def _edit(call: Call, admin: Admin, user: User, fields: dict[str, str]) -> Response:
    values = {name: fields.get(name, "").strip() for name in EDITED}
    try:
        given = {k: v for k, v in values.items() if k != "note" or v}
        checked = read_user_changes(given)
        problems = [
            FieldProblem(name, "required")
            for name in ("firstName", "lastName", "email")
            if not values[name]
        ]
        if problems:
            raise ValidationFailed(problems)
    except ValidationFailed as exc:
        errors = field_errors(exc.details, values)
        return user_page(call, admin, user, 400, panel="edit", errors=errors, values=values)
    changes = UserChanges(
        email=checked.email,
        first_name=checked.first_name,
        last_name=checked.last_name,
        note=values["note"] or None,
        note_given=True,
    )
    try:
        updated = services().accounts.update(user.id, changes, shown_version(fields))
    except EmailTaken:
        errors = {"email": "Another account already uses this email address."}
        return user_page(call, admin, user, 409, panel="edit", errors=errors, values=values)
    except PreconditionFailed:
        # The form keeps what was typed; the version is the current one, so saving again
        # deliberately replaces the other change.
        return user_page(call, admin, None, 409, panel="edit", values=values, stale=True)
    done = "edited"
    if updated.email_key != user.email_key:
        done = "reinvited" if updated.state is UserState.PENDING else "readdressed"
    return _back(call, updated, done)


def _add_group(call: Call, admin: Admin, user: User, fields: dict[str, str]) -> Response:
    group_id = fields.get("group", "")
    if not group_id:
        return user_page(call, admin, user, 400, error="Choose a group to add the user to.")
    try:
        _, added = services().groups.add_member(group_id, user.id)
    except ResourceNotFound:
        return user_page(call, admin, user, 409, error="That group no longer exists.")
    except MethodNotAllowed:
        return user_page(
            call,
            admin,
            user,
            409,
            error="The membership of built-in groups is managed by the system.",
        )
    return _back(call, user, "group-added" if added else "group-already", g=group_id)


def _remove_group(call: Call, admin: Admin, user: User, fields: dict[str, str]) -> Response:
    group_id = fields.get("group", "")
    try:
        services().groups.remove_member(group_id, user.id)
    except ResourceNotFound:
        return user_page(call, admin, user, 409, error="That group no longer exists.")
    except MethodNotAllowed:
        return user_page(
            call,
            admin,
            user,
            409,
            error="The membership of built-in groups is managed by the system.",
        )
    return _back(call, user, "group-removed", g=group_id)


def _resend(call: Call, admin: Admin, user: User, fields: dict[str, str]) -> Response:
    if user.state is not UserState.PENDING:
        return user_page(call, admin, user, 409, error=state_refusal(user, "resend"))
    services().invitations.resend(user.id)
    return _back(call, user, "resent")


def _revoke(call: Call, admin: Admin, user: User, fields: dict[str, str]) -> Response:
    services().invitations.revoke(user.id)
    return _back(call, user, "revoked")


def _subscription(call: Call, admin: Admin, user: User, fields: dict[str, str]) -> Response:
    """Approve, reject, suspend, activate or cancel one of this user's subscriptions."""
    verb = fields.get("change", "")
    wanted = SUB_ACTIONS.get(verb)
    if wanted is None:
        return user_page(call, admin, user, 400, error="Choose one of the page's buttons.")
    try:
        sub = services().subscriptions.get(fields.get("subscription", ""), owner_id=user.id)
    except ResourceNotFound:
        return user_page(call, admin, user, 409, error="That subscription no longer exists.")
    raw = fields.get("version", "")
    expected = Expected(int(raw)) if raw.isdigit() and int(raw) < 2**63 else Expected(-1)
    if sub.state not in wanted.from_states:
        return user_page(
            call,
            admin,
            user,
            409,
            error=(
                f"The subscription “{sub.display_name}” is {sub.state.value}: it cannot be "
                f"{wanted.done} now. The page shows its current state."
            ),
        )
    try:
        # The console always tells the developer, as APIM's own portal does.
        services().subscriptions.update(
            sub.id, SubscriptionInput(state=wanted.to), expected, notify=True
        )
    except PreconditionFailed:
        return user_page(
            call,
            admin,
            user,
            409,
            error=(
                f"The subscription “{sub.display_name}” was changed by someone else after you "
                "opened the page, so nothing was changed. The page now shows its current state."
            ),
        )
    return _back(call, user, f"sub-{verb}", s=sub.id)


_ACTIONS: dict[str, Action] = {
    "block": _set_state("block", UserState.BLOCKED, "blocked"),
    "activate": _set_state("activate", UserState.ACTIVE, "activated"),
    "reset": _reset,
    "delete": _delete,
    "edit": _edit,
    "add-group": _add_group,
    "remove-group": _remove_group,
    "resend": _resend,
    "revoke": _revoke,
    "subscription": _subscription,
}
