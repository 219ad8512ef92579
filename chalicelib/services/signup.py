"""Self-service sign-up on the portal: a pending account and its confirmSignUpIdentityDefault."""

from __future__ import annotations

import secrets
from dataclasses import replace

from chalicelib.domain.portal import SignUpSettings
from chalicelib.domain.users import AppType, Confirmation, UserDraft, email_key
from chalicelib.errors import FieldProblem, SignUpClosed, ValidationFailed
from chalicelib.services.accounts import AccountService
from chalicelib.services.portal import PortalService
from chalicelib.services.throttle import Limit, Throttle

# Sign-ups an hour from one client address: each mails an address the visitor names.
SIGNUPS_PER_ADDRESS_HOUR = 20
# Sign-ups an hour for one email address, whatever its state: each may mail it a new link, so
# nobody can flood an inbox by signing it up again and again.
SIGNUPS_PER_EMAIL_HOUR = 3
CONSENT = "You must agree to the terms of use."


class SignUpService:
    """Sign-up as ``portalsettings/signup`` allows it; the account rules are the admin's own."""

    def __init__(self, accounts: AccountService, portal: PortalService, throttle: Throttle) -> None:
        self._accounts = accounts
        self._portal = portal
        self._throttle = throttle

    def settings(self) -> SignUpSettings:
        return self._portal.sign_up()

    def sign_up(self, draft: UserDraft, consented: bool, client: str) -> None:
        """A pending account whose link (confirmSignUpIdentityDefault), followed with the
        password chosen here, makes it active.

        The same outcome whatever the address's state: an account still waiting for its sign-up
        link gets the new password and a fresh link (the old one dies); any other account
        changes nothing and mails nothing, so the page cannot tell which addresses are
        registered. SignUpClosed when the settings disable sign-up; ValidationFailed
        (``consent``) when the terms must be accepted and were not: APIM checks consent only
        in the browser. Throttled past the hourly limits per client address and per email.
        """
        settings = self.settings()
        if not settings.enabled:
            raise SignUpClosed("Sign-up is closed: accounts are made by the administrators.")
        terms = settings.terms
        if terms.enabled and terms.consent_required and not consented:
            raise ValidationFailed([FieldProblem("consent", CONSENT)])
        self._throttle.count(
            [
                Limit("signup:address", client or "-", SIGNUPS_PER_ADDRESS_HOUR),
                Limit("signup:email", email_key(draft.email), SIGNUPS_PER_EMAIL_HOUR),
            ],
            refuse=True,
        )
        pending = replace(
            draft,
            state=None,
            confirmation=Confirmation.SIGNUP,
            app_type=AppType.DEVELOPER_PORTAL,
        )
        # A fresh id like APIM's (24 hex digits); the email lock decides uniqueness.
        self._accounts.sign_up(secrets.token_hex(12), pending)
