"""The Chalice app: registers the routes and the hourly sweep; no logic lives here."""

from chalice import Chalice, Rate

from chalicelib import wiring
from chalicelib.api import groups, portal, signin, user_actions, users
from chalicelib.api.routing import install

app = Chalice(app_name="apim-users")
install(app, users.router, user_actions.router, groups.router, portal.router, signin.router)


@app.schedule(Rate(1, unit=Rate.HOURS))
def sweep(event: object) -> dict[str, int]:
    """Expire links past their expiry and retry queued emails."""
    return wiring.sweep().run().as_dict()
