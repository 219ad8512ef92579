"""Developer sign-in, user tokens, SSO links and console sessions (each a kind of its own)."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from functools import cache
from urllib.parse import quote

from chalicelib.config import Settings
from chalicelib.domain.audit import REDACTED
from chalicelib.domain.clock import Clock
from chalicelib.domain.etag import next_version
from chalicelib.domain.links import LinkPurpose
from chalicelib.domain.messages import PASSWORD_CHANGED as CHANGED
from chalicelib.domain.passwords import (
    HashParameters,
    hash_password,
    verify_password,
)
from chalicelib.domain.sas import NONCE_BYTES, Sealed, TokenKind, bound_to, seal, unseal
from chalicelib.domain.users import (
    REVOKED_RESET,
    User,
    UserState,
    checked_password,
    email_key,
    new_token_epoch,
)
from chalicelib.errors import FieldProblem, NotAuthenticated, StateConflict, ValidationFailed
from chalicelib.services.audit import Audit, Target, user_target
from chalicelib.services.invitations import InvitationService
from chalicelib.services.mailing import MailService
from chalicelib.services.ports import Store
from chalicelib.services.throttle import Limit, Throttle

MAX_TOKEN_LIFETIME = timedelta(days=30)
SSO_LIFETIME = timedelta(minutes=10)
SIGN_IN_FAILED = "The email or password is not correct."
NOT_THE_SIGNUP_PASSWORD = (
    "This is not the password chosen when this account was signed up. If you did not sign up, "
    "you can sign up yourself with a password of your own: this link then stops working."
)
# One message per kind for every refusal (forged, expired, revoked, used, inactive user):
# no oracle for which check failed.
REFUSED = {
    TokenKind.USER: "The user token is invalid or expired.",
    TokenKind.SSO: "The sign-in link is invalid, expired or already used.",
    TokenKind.CONSOLE: "The console session has ended.",
}


@dataclass(frozen=True)
class ConsoleSession:
    """An administrator's console session: whose, and its id (the CSRF tokens are bound to it)."""

    user: User
    sid: str


@cache
def _dummy_hash(params: HashParameters) -> str:
    """Unknown emails are checked against this, so they take as long as known ones."""
    return hash_password("not a real password, only here to spend time", params)


class SessionService:
    """Signs developers in and checks their tokens; blocked, pending or deleted users never pass."""

    def __init__(
        self,
        store: Store,
        invitations: InvitationService,
        mail: MailService,
        throttle: Throttle,
        keys: Callable[[], list[str]],
        settings: Settings,
        clock: Clock,
        hashing: HashParameters,
        *,
        audit: Audit,
    ) -> None:
        self._audit = audit
        self._store = store
        self._invitations = invitations
        self._mail = mail
        self._throttle = throttle
        self._keys = keys
        self._settings = settings
        self._clock = clock
        self._hashing = hashing

    def _key(self, key_type: str = "primary") -> str:
        keys = self._keys()
        return keys[1] if key_type == "secondary" and len(keys) > 1 else keys[0]

    def mint(self, user: User, expiry: datetime, key_type: str = "primary") -> str:
        """A user token: the developer's data plane (``/me``), never an SSO link or a console."""
        return seal(TokenKind.USER, user.id, user.token_epoch, expiry, self._key(key_type))

    def _guesses(self, account: str, client: str) -> list[Limit]:
        """Wrong passwords are counted per (account, client address) and per address.

        No count is per account alone: one that refused the right password would let anyone
        lock the owner out, and one that accepted it would stop nobody. An address that keeps
        guessing one account is stopped; the owner, from any other address, still gets in.
        """
        s = self._settings
        return [
            Limit("signin:pair", account, s.signin_failures_per_account_address, client),
            Limit("signin:address", client, s.signin_failures_per_address),
        ]

    def sign_in(self, email: str, password: str, client: str) -> tuple[User, str, datetime]:
        """A user token for the right email and password of an active account; else 401."""
        key = email_key(email)
        limits = self._guesses(key, client)
        self._throttle.check(limits)
        user = self._store.users.find_by_email(key) if key else None
        stored = user.password_hash if user and user.password_hash else None
        matches = verify_password(stored or _dummy_hash(self._hashing), password, self._hashing)
        if user is None or stored is None or not matches or user.state is not UserState.ACTIVE:
            self._throttle.count(limits, refuse=False)
            target = user_target(user) if user else Target("email", key)
            self._audit.record("signin.failed", target)
            raise NotAuthenticated(SIGN_IN_FAILED)
        expiry = self._clock() + timedelta(hours=self._settings.session_hours)
        return user, self.mint(user, expiry), expiry

    def issue(self, user_id: str, key_type: str | None, expiry_text: object) -> str:
        """The admin's ``POST /users/{id}/token``: expiry required, at most 30 days ahead."""
        problems = []
        if key_type not in {None, "primary", "secondary"}:
            problems.append(FieldProblem("keyType", "'keyType' must be primary or secondary."))
        expiry = _parse_expiry(expiry_text)
        now = self._clock()
        if expiry is None:
            problems.append(FieldProblem("expiry", "'expiry' must be an ISO 8601 date-time."))
        elif not now < expiry <= now + MAX_TOKEN_LIFETIME:
            problems.append(
                FieldProblem("expiry", "'expiry' must be in the future, at most 30 days ahead.")
            )
        if problems:
            raise ValidationFailed(problems)
        user = self._store.users.require(user_id)
        assert expiry is not None
        self._audit.record("user.token_issued", user_target(user))
        return self.mint(user, expiry, key_type or "primary")

    def sso_url(self, user_id: str) -> str:
        """A link that signs an active developer in to the portal, once, within 10 minutes."""
        user = self._store.users.require(user_id)
        if user.state is not UserState.ACTIVE:
            raise StateConflict(
                f"User '{user_id}' is {user.state.value}; only active users can sign in."
            )
        nonce = secrets.token_bytes(NONCE_BYTES[TokenKind.SSO])
        expiry = self._clock() + SSO_LIFETIME
        token = seal(TokenKind.SSO, user.id, user.token_epoch, expiry, self._key(), nonce)
        return f"{self._settings.portal_url}/signin-sso?token={quote(token, safe='')}"

    def sign_in_sso(self, token_text: str, client: str) -> tuple[User, str, datetime]:
        """Use an SSO link: a user token for its developer, the first time only."""
        user, sealed = self._verified(TokenKind.SSO, token_text, client)
        # Single use: one atomic counter per link (its nonce is random and signed); exactly one
        # request, even among concurrent ones, sees the first count.
        used = f"sso:{hashlib.sha256(sealed.nonce).hexdigest()}"
        if self._store.counters.add(used, sealed.expiry) != 1:
            raise NotAuthenticated(REFUSED[TokenKind.SSO])
        expiry = self._clock() + timedelta(hours=self._settings.session_hours)
        return user, self.mint(user, expiry), expiry

    def authenticate(self, token_text: str, client: str) -> User:
        """The active user a user token belongs to; refused on the next request after a block."""
        user, _ = self._verified(TokenKind.USER, token_text, client)
        return user

    def _verified(self, kind: TokenKind, token_text: str, client: str) -> tuple[User, Sealed]:
        """The active user a token of this kind was issued to, under their current epoch.

        The kind's MAC is checked before anything is read: a forgery is refused without a read
        or a write, alike whether the id it names exists or not (no oracle, nothing recorded).
        """
        keys = self._keys()
        sealed = unseal(token_text, kind, keys, self._clock()) if token_text else None
        if sealed is None:
            raise NotAuthenticated(REFUSED[kind])
        user = self._store.users.get(sealed.uid)
        if user is None:
            raise NotAuthenticated(REFUSED[kind])
        if not bound_to(sealed, user.token_epoch, keys) or user.state is not UserState.ACTIVE:
            # A token we issued, now revoked (block, new password) or of an inactive user: worth
            # an event, but once an hour per address, so replaying it cannot flood the trail.
            if self._throttle.first(f"token.refused:{kind.value}", user.id, client):
                self._audit.record("token.refused", user_target(user))
            raise NotAuthenticated(REFUSED[kind])
        return user, sealed

    def _console_token(self, user: User, nonce: bytes) -> str:
        expiry = self._clock() + timedelta(minutes=self._settings.console_idle_minutes)
        return seal(TokenKind.CONSOLE, user.id, user.token_epoch, expiry, self._key(), nonce)

    def open_console(self, user: User) -> str:
        """A new console session for an administrator who just signed in: its token."""
        return self._console_token(user, secrets.token_bytes(NONCE_BYTES[TokenKind.CONSOLE]))

    def renew_console(self, session: ConsoleSession) -> str:
        """The session's token again, living the idle time from now (re-issued every request)."""
        return self._console_token(session.user, bytes.fromhex(session.sid))

    def console_session(self, token_text: str, client: str) -> ConsoleSession:
        """The live console session a token belongs to: of its kind, not signed out."""
        user, sealed = self._verified(TokenKind.CONSOLE, token_text, client)
        sid = sealed.nonce.hex()
        if self._store.counters.read([_ended(sid)])[_ended(sid)]:
            raise NotAuthenticated(REFUSED[TokenKind.CONSOLE])
        return ConsoleSession(user, sid)

    def end_console(self, session: ConsoleSession) -> None:
        """Sign out: the session's every token, even a copy kept from before, stops working.

        Recorded server-side by session id until the last token it issued has expired (each
        lives the idle time at most); DynamoDB TTL removes the record a day later.
        """
        idle = timedelta(minutes=self._settings.console_idle_minutes)
        self._store.counters.add(_ended(session.sid), self._clock() + idle)

    def _check_password(
        self, user: User, given: str | None, client: str, field: str, message: str
    ) -> None:
        """ValidationFailed (``field``) unless ``given`` is the account's password.

        Wrong passwords count as sign-in failures of the account from that address (the same
        keys): neither form becomes an unlimited password oracle beside the other.
        """
        limits = self._guesses(email_key(user.email), client)
        self._throttle.check(limits)
        if (
            not given
            or not user.password_hash
            or not verify_password(user.password_hash, given, self._hashing)
        ):
            self._throttle.count(limits, refuse=False)
            raise ValidationFailed([FieldProblem(field, message)])

    def confirm_sign_up(self, token: str, password: str | None, client: str) -> tuple[User, str]:
        """Follow a sign-up link: with the password chosen at sign-up, the account becomes
        active and its developer is signed in (a user token).

        The link alone is not enough: whoever signs up with someone else's address picks the
        password, and the owner, who receives the link, must not activate an account whose
        password another person knows (pre-registration). Wrong passwords are throttled like
        sign-in; nothing changes until the right one.
        """
        link, user = self._invitations.open(token, LinkPurpose.SIGNUP)
        try:
            self._check_password(user, password, client, "password", NOT_THE_SIGNUP_PASSWORD)
        except ValidationFailed:
            self._audit.record("signup.confirm_failed", user_target(user))
            raise
        active = self._invitations.confirm_signup(link, user)
        expiry = self._clock() + timedelta(hours=self._settings.session_hours)
        return active, self.mint(active, expiry)

    def change_password(self, user: User, current: str | None, new: str | None, client: str) -> str:
        """The developer's own change: the current password is required; older tokens die."""
        self._check_password(
            user, current, client, "currentPassword", "The current password is not correct."
        )
        new = checked_password(new, user, "newPassword")
        now = self._clock()
        changed = replace(
            user,
            password_hash=hash_password(new, self._hashing),
            # The new epoch kills every link issued before; no reset link may be used now.
            token_epoch=new_token_epoch(),
            reset_link=REVOKED_RESET,
            version=next_version(user.version, now),
        )
        tx = self._store.transaction()
        self._store.users.stage_replace(tx, user, changed)
        self._mail.stage(tx, CHANGED, changed)
        secret = {"password": {"old": None, "new": REDACTED}}
        self._audit.stage(tx, "password.changed", user_target(user), secret, by_user=user.id)
        tx.commit()
        return self.mint(changed, now + timedelta(hours=self._settings.session_hours))


def _ended(sid: str) -> str:
    return f"console-ended:{sid}"


def _parse_expiry(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed
