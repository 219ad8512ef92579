"""The Chalice app: registers the routes; no logic lives here."""

from chalice import Chalice

from chalicelib.api import groups, users
from chalicelib.api.routing import install

app = Chalice(app_name="apim-users")
install(app, users.router, groups.router)
