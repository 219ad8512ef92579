"""The official Azure SDK client pointed at the live dev server, shared by the SDK test modules."""

from __future__ import annotations

from azure.core.credentials import AccessToken
from azure.core.pipeline.policies import SansIOHTTPPolicy
from azure.mgmt.apimanagement import ApiManagementClient

SUBSCRIPTION_ID = "00000000-0000-0000-0000-000000000000"
RG = "local"
SERVICE = "local"
FAR_FUTURE = 4102444800  # 2100-01-01, as epoch seconds


class AllowPlainHttpPolicy(SansIOHTTPPolicy):
    """Lets the SDK's own bearer policy send its token to a plain-http loopback server."""

    def on_request(self, request):
        request.context["enforce_https"] = False


class SasCredential:
    """Hands the SDK our management token, which it then sends as ``Bearer uid=...``."""

    def __init__(self, token: str) -> None:
        self._token = token

    def get_token(self, *scopes, **kwargs):
        return AccessToken(self._token, FAR_FUTURE)


def sdk_client(live_server) -> ApiManagementClient:
    """An unmodified client: no retries and no polling delay, so tests are fast and exact."""
    credential = SasCredential(live_server.token.removeprefix("SharedAccessSignature "))
    return ApiManagementClient(
        credential,
        SUBSCRIPTION_ID,
        base_url=live_server.base_url,
        per_call_policies=[AllowPlainHttpPolicy()],
        retry_total=0,
        polling_interval=0,
    )


def with_status_and_etag(response, model, headers):
    """A ``cls=`` callback: the status code, the parsed entity and its ETag header."""
    return response.http_response.status_code, model, headers.get("ETag")
