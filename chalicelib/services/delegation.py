"""Delegation: where the portal sends a developer instead of its own page, when it is enabled.

The portal's pages ask before they act (at merge, api/portal*.py and api/signin.py)::

    target = services().delegation.redirect_for(Operation.SIGN_IN, return_url="/profile")
    if target is not None:
        return redirect(target)  # 302 to the publisher's site

``redirect_for`` answers None when delegation is off for that kind of operation (sign-in,
sign-up and account actions follow ``userRegistration.enabled``; subscribe, unsubscribe and
renew follow ``subscriptions.enabled``), or when no URL or key is set. Parameters per operation
(domain/delegation.py: SIGNED): ``return_url`` for SignIn and SignUp; ``user_id`` for
ChangePassword, ChangeProfile, CloseAccount and SignOut; ``product_id`` and ``user_id`` for
Subscribe; ``subscription_id`` for Unsubscribe and Renew. Ids are bare (``ada``). The setting
is read once a request (PortalService.setting).
"""

from __future__ import annotations

import secrets

from chalicelib.domain.delegation import SUBSCRIPTION_OPERATIONS, Operation, redirect_url
from chalicelib.domain.portal import DelegationSettings
from chalicelib.services.portal import PortalService


class DelegationService:
    """Builds the signed redirect to the publisher's delegation site."""

    def __init__(self, portal: PortalService) -> None:
        self._portal = portal

    def settings(self) -> DelegationSettings:
        return self._portal.delegation()

    def enabled_for(self, operation: Operation, settings: DelegationSettings | None = None) -> bool:
        s = settings or self.settings()
        if not s.url or not s.validation_key:
            return False
        if operation in SUBSCRIPTION_OPERATIONS:
            return s.subscriptions_enabled
        return s.user_registration_enabled

    def redirect_for(
        self,
        operation: Operation,
        *,
        return_url: str | None = None,
        user_id: str | None = None,
        product_id: str | None = None,
        subscription_id: str | None = None,
    ) -> str | None:
        """The signed URL of the publisher's site for ``operation``, or None (not delegated).

        ValueError when a parameter the operation signs is missing (a programming error).
        """
        s = self.settings()
        if not self.enabled_for(operation, s):
            return None
        assert s.url is not None and s.validation_key is not None
        given = {
            "returnUrl": return_url,
            "userId": user_id,
            "productId": product_id,
            "subscriptionId": subscription_id,
        }
        params = {k: v for k, v in given.items() if v is not None}
        # APIM's salt is a random string the site folds into the signature; 16 bytes suffice.
        return redirect_url(s.url, s.validation_key, operation, secrets.token_urlsafe(16), params)
