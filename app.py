"""The Chalice app: registers the routes, the outbox relay and the hourly sweep; no logic here."""

from typing import Any

from chalice import Chalice, Rate

from chalicelib.api import (
    audit,
    authorizer,
    console,
    console_groups,
    console_templates,
    console_user,
    console_users,
    developer_settings,
    groups,
    notifications,
    openapi,
    portal,
    portal_home,
    portal_profile,
    portal_signup,
    portal_subscriptions,
    signin,
    subscriptions,
    templates,
    user_actions,
    users,
)
from chalicelib.api.routing import install
from chalicelib.bootstrap import services

app = Chalice(app_name="apim-users")
install(
    app,
    users.router,
    audit.router,
    user_actions.router,
    groups.router,
    templates.router,
    subscriptions.router,
    developer_settings.router,
    notifications.router,
    portal.router,
    portal_subscriptions.router,
    portal_signup.router,
    portal_home.router,
    portal_profile.router,
    signin.router,
    openapi.router,
    console.router,
    console_users.router,
    console_user.router,
    console_groups.router,
    console_templates.router,
)


@app.schedule(Rate(1, unit=Rate.HOURS))
def sweep(event: object) -> dict[str, int]:
    """Expire links past their expiry and retry queued emails."""
    return services().sweep.run().as_dict()


@app.lambda_function(name="outbox_relay")
def outbox_relay(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """The outbox table's stream (an event source mapping in the prod template): sends each new
    email once, at SES's rate; answers the records to hand over again (batch item failures)."""
    from chalicelib.relay import handle_stream_event

    return handle_stream_event(event, context)


@app.lambda_function(name="subscription_key_authorizer")
def subscription_key_authorizer(event: dict[str, Any], context: object) -> dict[str, Any]:
    """API Gateway REQUEST authorizer: allows a call only with an active key of an active owner."""
    return authorizer.authorize(event)
