"""The API Gateway REQUEST authorizer other APIs of the publisher attach: a key, or no call."""

from __future__ import annotations

from typing import Any

from chalicelib.bootstrap import services

KEY_HEADER = "ocp-apim-subscription-key"
KEY_QUERY = "subscription-key"


def _key(event: dict[str, Any]) -> str:
    headers = {k.lower(): v for k, v in (event.get("headers") or {}).items()}
    query = event.get("queryStringParameters") or {}
    return headers.get(KEY_HEADER) or query.get(KEY_QUERY) or ""


def _target(event: dict[str, Any]) -> tuple[str | None, str | None]:
    """The product or API being called: stage variables name them; else the REST API's id."""
    stage = event.get("stageVariables") or {}
    product_id = stage.get("apimProductId")
    api_id = stage.get("apimApiId")
    if not product_id and not api_id:
        arn = str(event.get("methodArn", ""))
        api_id = arn.split(":")[-1].split("/")[0] or None
    return product_id, api_id


def authorize(event: dict[str, Any]) -> dict[str, Any]:
    """An IAM policy allowing or denying this method, with the user and subscription in context."""
    product_id, api_id = _target(event)
    decision = services().key_check.check(_key(event), product_id, api_id)
    return {
        "principalId": decision.user_id or "anonymous",
        "policyDocument": {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Action": "execute-api:Invoke",
                    "Effect": "Allow" if decision.allowed else "Deny",
                    "Resource": event.get("methodArn", "*"),
                }
            ],
        },
        "context": {
            "userId": decision.user_id or "",
            "subscriptionId": decision.subscription_id or "",
            "reason": decision.reason,
        },
    }
