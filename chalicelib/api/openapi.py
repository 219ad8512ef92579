"""The OpenAPI 3 document of this API, served at ``GET /openapi.json`` (no auth, no api-version).

How the document is made
------------------------
``OPERATIONS`` below has one entry per route and method that app.py installs, keyed by
``(METHOD, path)`` exactly as the route is registered (ARM routes include ``ARM_PREFIX``).
``build_document()`` turns the entries into an OpenAPI 3.0 document:

- ``apim("User_Get")`` takes an operation of APIM's contract from Microsoft's published Swagger 2.0
  document (chalicelib/openapi/apim-accounts-2024-05-01.json, shipped with the app) and converts
  it: parameters, request body, responses and every schema they reach (UserContract,
  GroupCollection, ErrorResponse...) stay APIM's own. Where we answer differently, say so in the
  entry (``responses=`` adds or replaces statuses, ``drop=`` removes some, ``params=`` adds query
  parameters) and add a line to the README's "Differences from APIM's published contract".
- ``ours(...)`` describes a route of our own (extensions, developer pages) with the helpers below
  (``ref``, ``json_response``, ``page_responses``, ``form_body``, ``errors``); schemas of our own
  live in ``OWN_SCHEMAS``. ``ref(name)`` names APIM's definitions and ours alike.
- Our document serves APIM's schemas with their optional properties nullable (we send null for a
  value never set) and with ``REFINEMENTS`` (what we check beyond them, e.g. email format).

Adding a route
--------------
Register it on its Router as usual, then add its line to ``OPERATIONS``:
``(PUT, ARM + "/groups/{groupId}"): apim("Group_CreateOrUpdate"),`` for an APIM operation, or an
``ours(...)`` entry for anything else. tests/contract/test_openapi_document.py compares the
(path, method) pairs that app.py installs with this document, both ways, and fails until they
agree; tests/contract/test_schemathesis.py then fuzzes the new operation against this document
and, for ``apim(...)`` entries, against APIM's own contract.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from chalice import Response

from chalicelib.api.routing import ARM_PREFIX as ARM
from chalicelib.api.routing import Call, Router
from chalicelib.config import SUPPORTED_API_VERSIONS
from chalicelib.domain.links import LinkPurpose, LinkState
from chalicelib.domain.messages import Delivery
from chalicelib.domain.users import UserState

router = Router(management=False)
DOCUMENT_PATH = "/openapi.json"
APIM_BUNDLE = Path(__file__).resolve().parent.parent / "openapi" / "apim-accounts-2024-05-01.json"
GET, HEAD, PUT, PATCH, POST, DELETE = "GET", "HEAD", "PUT", "PATCH", "POST", "DELETE"
JSON_TYPE = "application/json"
HTML_TYPE = "text/html"
FORM_TYPE = "application/x-www-form-urlencoded"
SAS = "SharedAccessSignature"
USER_TOKEN = "UserToken"
CONSOLE_SESSION = "ConsoleSession"
# Swagger 2.0 parameter and header keywords that are JSON Schema keywords in OpenAPI 3.
_SCHEMA_KEYWORDS = (
    "type",
    "format",
    "enum",
    "default",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "minLength",
    "maxLength",
    "pattern",
    "items",
    "minItems",
    "maxItems",
    "uniqueItems",
)


class Builder:
    """Converts APIM's Swagger 2.0 parts to OpenAPI 3 and collects the schemas they reach."""

    def __init__(self, bundle: dict[str, Any]) -> None:
        self.bundle = bundle
        self.operations = {
            op["operationId"]: op
            for item in bundle["paths"].values()
            for method, op in item.items()
            if method != "parameters"
        }
        self.used_apim: set[str] = set()

    def schema(self, value: Any) -> Any:
        """A Swagger 2.0 schema as OpenAPI 3: refs into components, no x-ms-* annotations."""
        if isinstance(value, list):
            return [self.schema(v) for v in value]
        if not isinstance(value, dict):
            return value
        ref = value.get("$ref")
        if isinstance(ref, str):
            name = ref.rsplit("/", 1)[-1]
            if ref.startswith("#/definitions/"):
                self.used_apim.add(name)
            return {"$ref": f"#/components/schemas/{name}"}
        converted = {}
        for key, inner in value.items():
            if key.startswith("x-"):
                continue
            if key in ("properties", "definitions") and isinstance(inner, dict):
                converted[key] = {name: self.schema(s) for name, s in inner.items()}
            else:
                converted[key] = self.schema(inner)
        return converted

    def parameter(self, param: dict[str, Any]) -> dict[str, Any]:
        if "$ref" in param:
            param = self.bundle["parameters"][param["$ref"].rsplit("/", 1)[-1]]
        out: dict[str, Any] = {
            "name": param["name"],
            "in": param["in"],
            "required": bool(param.get("required", False)),
            "schema": self.schema({k: param[k] for k in _SCHEMA_KEYWORDS if k in param}),
        }
        if "description" in param:
            out["description"] = param["description"]
        if param["name"] == "api-version":
            out["schema"] = {"type": "string", "enum": sorted(SUPPORTED_API_VERSIONS)}
        return out

    def response(self, response: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {"description": response.get("description", "")}
        if "schema" in response:
            out["content"] = {JSON_TYPE: {"schema": self.schema(response["schema"])}}
        headers = response.get("headers") or {}
        if headers:
            out["headers"] = {
                name: {
                    "description": h.get("description", ""),
                    "schema": {k: h[k] for k in _SCHEMA_KEYWORDS if k in h},
                }
                for name, h in headers.items()
            }
        return out

    def apim_operation(self, operation_id: str) -> dict[str, Any]:
        source = self.operations[operation_id]
        op: dict[str, Any] = {
            "operationId": operation_id,
            "tags": source.get("tags", []),
            "description": source.get("description", ""),
            "parameters": [],
            "responses": {},
            "security": [{SAS: []}],
        }
        for param in source.get("parameters", []):
            resolved = (
                self.bundle["parameters"][param["$ref"].rsplit("/", 1)[-1]]
                if ("$ref" in param)
                else param
            )
            if resolved["in"] == "body":
                op["requestBody"] = {
                    "required": bool(resolved.get("required", False)),
                    "content": {JSON_TYPE: {"schema": self.schema(resolved["schema"])}},
                }
            else:
                op["parameters"].append(self.parameter(param))
        for status, response in source["responses"].items():
            op["responses"][status] = self.response(response)
        return op


Entry = Callable[[Builder], dict[str, Any]]


@dataclass(frozen=True)
class apim:
    """An operation of APIM's contract; ``responses``/``drop``/``params`` state our differences."""

    operation_id: str
    responses: dict[str, dict[str, Any]] = field(default_factory=dict)
    drop: tuple[str, ...] = ()
    params: tuple[dict[str, Any], ...] = ()
    note: str | None = None

    def __call__(self, b: Builder) -> dict[str, Any]:
        op = b.apim_operation(self.operation_id)
        for status in self.drop:
            op["responses"].pop(status, None)
        op["responses"].update(b.schema(copy.deepcopy(self.responses)))
        op["parameters"].extend(b.parameter(p) for p in self.params)
        op["x-apim-operation"] = self.operation_id
        if self.note:
            op["description"] = f"{op['description']}\n\nDifference: {self.note}".strip()
        return op


def ours(
    operation_id: str,
    summary: str,
    *,
    responses: dict[str, dict[str, Any]],
    management: bool = False,
    params: Iterable[dict[str, Any]] = (),
    body: dict[str, Any] | None = None,
    tags: Iterable[str] = (),
    security: list[dict[str, list[str]]] | None = None,
) -> Entry:
    """An operation of our own: an extension of the management API or a developer page."""

    def make(b: Builder) -> dict[str, Any]:
        listed = [*(_instance_params() if management else []), *params]
        op: dict[str, Any] = {
            "operationId": operation_id,
            "summary": summary,
            "tags": list(tags) or (["Extensions"] if management else ["Developer pages"]),
            "parameters": [b.parameter(p) for p in listed],
            "responses": b.schema(copy.deepcopy(responses)),
            "security": [{SAS: []}] if management else (security or []),
        }
        if management:
            op["responses"].setdefault("default", b.schema(error_response("An APIM error.")))
            op["x-extension"] = True
        if body is not None:
            op["requestBody"] = b.schema(copy.deepcopy(body))
        return op

    return make


def _instance_params() -> list[dict[str, Any]]:
    return [
        {"$ref": "#/parameters/SubscriptionIdParameter"},
        {"$ref": "#/parameters/ResourceGroupNameParameter"},
        {"$ref": "#/parameters/ServiceNameParameter"},
        {"$ref": "#/parameters/ApiVersionParameter"},
    ]


def ref(name: str) -> dict[str, str]:
    """A schema of APIM's (``#/definitions/``) or of ours (``OWN_SCHEMAS``), by name."""
    return {"$ref": f"#/definitions/{name}"}


def path_param(name: str, description: str, max_length: int = 80) -> dict[str, Any]:
    schema = {"type": "string", "minLength": 1, "maxLength": max_length}
    return {"name": name, "in": "path", "required": True, "description": description, **schema}


def query_param(name: str, description: str, **schema: Any) -> dict[str, Any]:
    """A query parameter, written as in Swagger 2.0 (schema keywords beside the name)."""
    return {
        "name": name,
        "in": "query",
        "description": description,
        **(schema or {"type": "string"}),
    }


def error_response(description: str) -> dict[str, Any]:
    return {"description": description, "content": {JSON_TYPE: {"schema": ref("ErrorResponse")}}}


def errors(*statuses: str) -> dict[str, dict[str, Any]]:
    return {s: error_response(_REASONS.get(s, "An APIM error.")) for s in statuses}


def json_response(description: str, schema: dict[str, Any], **headers: str) -> dict[str, Any]:
    out: dict[str, Any] = {"description": description, "content": {JSON_TYPE: {"schema": schema}}}
    if headers:
        out["headers"] = {
            name.replace("_", "-"): {"description": text, "schema": {"type": "string"}}
            for name, text in headers.items()
        }
    return out


def page_responses(
    ok: str = "200",
    ok_json: dict[str, Any] | None = None,
    statuses: Iterable[str] = (),
) -> dict[str, dict[str, Any]]:
    """A page answers HTML; JSON callers (Content-Type or Accept JSON) get JSON and APIM errors."""
    html = {"schema": {"type": "string"}}
    out: dict[str, dict[str, Any]] = {
        ok: {"description": "The page.", "content": {HTML_TYPE: html}},
    }
    if ok_json is not None:
        out[ok]["content"][JSON_TYPE] = {"schema": ok_json}
    for status in statuses:
        out[status] = {
            "description": _REASONS.get(status, "An error."),
            "content": {HTML_TYPE: html, JSON_TYPE: {"schema": ref("ErrorResponse")}},
        }
    return out


def form_body(*fields: str, required: Iterable[str] = ()) -> dict[str, Any]:
    """A form post or the same fields as JSON."""
    schema: dict[str, Any] = {
        "type": "object",
        "properties": {f: {"type": "string"} for f in fields},
    }
    if required:
        schema["required"] = list(required)
    return {
        "required": False,
        "content": {FORM_TYPE: {"schema": schema}, JSON_TYPE: {"schema": schema}},
    }


def console(
    operation_id: str,
    summary: str,
    *,
    ids: Iterable[str] = (),
    fields: Iterable[str] | None = None,
) -> Entry:
    """A page of the admin console (``fields``: a form post), HTML only. Without a session it
    sends to the sign-in page (303); a post without the form's CSRF token is refused (403)."""
    html = {HTML_TYPE: {"schema": {"type": "string"}}}
    responses: dict[str, dict[str, Any]] = {
        "200": {"description": "The page.", "content": html},
        "303": {
            "description": "To the sign-in page (no session) or back to a page after a form.",
            "headers": {"Location": {"schema": {"type": "string"}}},
        },
    }
    for status in ("400", "401", "403", "404", "409", "410", "412", "429"):
        responses[status] = {"description": _REASONS.get(status, "Refused."), "content": html}
    body = None
    if fields is not None:  # a form post
        schema = {"type": "object", "properties": {f: {"type": "string"} for f in fields}}
        body = {"required": False, "content": {FORM_TYPE: {"schema": schema}}}
    return ours(
        operation_id,
        summary,
        tags=["Admin console"],
        params=[path_param(name, f"The {name}.", 256) for name in ids],
        body=body,
        responses=responses,
        security=[{CONSOLE_SESSION: []}],
    )


def _token_query(description: str) -> dict[str, Any]:
    return query_param("token", description, type="string")


_REASONS = {
    "400": "The request is not valid (the error lists every offending field).",
    "401": "Missing, invalid or expired credentials.",
    "404": "The entity or link does not exist.",
    "409": "The entity is not in a state that allows this.",
    "410": "The link expired, was used, revoked or replaced.",
    "412": "If-Match does not match the entity's current ETag.",
    "429": "Too many attempts; Retry-After says when to try again.",
}

OWN_SCHEMAS: dict[str, dict[str, Any]] = {
    "InvitationContract": {
        "type": "object",
        "description": "A link sent to a user (invitation or sign-up) and how its email fared.",
        "required": ["id", "purpose", "state", "sentDate", "expirationDate"],
        "properties": {
            "id": {"type": "string"},
            "purpose": {"type": "string", "enum": [p.value for p in LinkPurpose]},
            "state": {"type": "string", "enum": [s.value for s in LinkState]},
            "sentDate": {"type": "string", "format": "date-time"},
            "expirationDate": {"type": "string", "format": "date-time"},
            "endDate": {"type": "string", "format": "date-time", "nullable": True},
            "delivery": {
                "type": "object",
                "nullable": True,
                "required": ["state", "attempts"],
                "properties": {
                    "state": {"type": "string", "enum": [d.value for d in Delivery]},
                    "attempts": {"type": "integer", "minimum": 0},
                    "sentDate": {"type": "string", "format": "date-time", "nullable": True},
                    "lastError": {"type": "string", "nullable": True},
                },
            },
        },
    },
    "InvitationCollection": {
        "type": "object",
        "required": ["value", "count"],
        "properties": {
            "value": {"type": "array", "items": ref("InvitationContract")},
            "count": {"type": "integer", "minimum": 0},
        },
    },
    "Activation": {
        "type": "object",
        "description": "The account a link activated or changed.",
        "required": ["userId", "state"],
        "properties": {
            "userId": {"type": "string"},
            "state": {"type": "string", "enum": [s.value for s in UserState]},
        },
    },
    "SignInResult": {
        "type": "object",
        "required": ["value", "userId", "expiresIn"],
        "properties": {
            "value": {"type": "string", "description": "The user token (compact SAS)."},
            "userId": {"type": "string"},
            "expiresIn": {"type": "integer", "description": "Seconds the token lives."},
        },
    },
    "PasswordChanged": {
        "type": "object",
        "required": ["value", "userId"],
        "properties": {
            "value": {"type": "string", "description": "A fresh user token."},
            "userId": {"type": "string"},
        },
    },
    "EmailTemplatePreviewRequest": {
        "type": "object",
        "description": "Optional: unsaved changes to preview, and values for its parameters.",
        "properties": {
            "properties": ref("EmailTemplateUpdateParameterProperties"),
            "values": {"type": "object", "additionalProperties": {"type": "string"}},
        },
    },
    "EmailTemplatePreview": {
        "type": "object",
        "required": ["subject", "html", "text", "values"],
        "properties": {
            "subject": {"type": "string"},
            "html": {"type": "string"},
            "text": {"type": "string"},
            "values": {"type": "object", "additionalProperties": {"type": "string"}},
        },
    },
    "KeyCheckRequest": {
        "type": "object",
        "required": ["key"],
        "properties": {
            "key": {"type": "string", "description": "The subscription key the caller sent."},
            "productId": {"type": "string", "nullable": True},
            "apiId": {"type": "string", "nullable": True},
        },
    },
    "KeyCheckResult": {
        "type": "object",
        "required": ["allowed", "reason"],
        "properties": {
            "allowed": {"type": "boolean"},
            "reason": {"type": "string"},
            "userId": {"type": "string", "nullable": True},
            "subscriptionId": {"type": "string", "nullable": True},
        },
    },
    "AuditEvent": {
        "type": "object",
        "required": ["id", "time", "action", "actor", "target", "changes"],
        "properties": {
            "id": {"type": "string"},
            "time": {"type": "string", "format": "date-time"},
            "action": {"type": "string"},
            "actor": {
                "type": "object",
                "required": ["id", "kind"],
                "properties": {
                    "id": {"type": "string"},
                    "kind": {"type": "string"},
                    "address": {"type": "string", "nullable": True},
                },
            },
            "target": {
                "type": "object",
                "required": ["type", "id"],
                "properties": {
                    "type": {"type": "string"},
                    "id": {"type": "string"},
                    "email": {"type": "string", "nullable": True},
                },
            },
            "changes": {
                "type": "object",
                "description": "Per field, what it was and what it became.",
                "additionalProperties": {"type": "object"},
            },
            "requestId": {"type": "string", "nullable": True},
        },
    },
    "AuditEventCollection": {
        "type": "object",
        "required": ["value"],
        "properties": {
            "value": {"type": "array", "items": ref("AuditEvent")},
            "count": {"type": "integer", "minimum": 0},
            "nextLink": {"type": "string"},
        },
    },
    "ResetAccepted": {
        "type": "object",
        "required": ["status", "message"],
        "properties": {
            "status": {"type": "string", "enum": ["accepted"]},
            "message": {"type": "string"},
        },
    },
}

LIST_PARAMS = (
    {"$ref": "#/parameters/TopQueryParameter"},
    {"$ref": "#/parameters/SkipQueryParameter"},
    query_param("$filter", "An OData filter."),
)
USER = ARM + "/users/{userId}"
GROUP = ARM + "/groups/{groupId}"
TEMPLATE = ARM + "/templates/{templateName}"
PRODUCT = ARM + "/products/{productId}"
SUBSCRIPTION = ARM + "/subscriptions/{sid}"
USER_ID = path_param("userId", "User identifier.")
TOKEN_HEADER = 'The user token: token="...",refresh="true".'

OPERATIONS: dict[tuple[str, str], Entry] = {
    # Users (APIM's User, UserGroup, UserIdentities operations)
    (GET, ARM + "/users"): apim("User_ListByService"),
    (GET, USER): apim("User_Get"),
    (HEAD, USER): apim("User_GetEntityTag"),
    (PUT, USER): apim("User_CreateOrUpdate"),
    (PATCH, USER): apim("User_Update"),
    (DELETE, USER): apim(
        "User_Delete", drop=("202",), note="the delete is done when we answer: always 204."
    ),
    (GET, USER + "/groups"): apim("UserGroup_List"),
    (GET, USER + "/identities"): apim("UserIdentities_List"),
    (POST, USER + "/confirmations/password/send"): apim("UserConfirmationPassword_Send"),
    (POST, USER + "/token"): apim("User_GetSharedAccessToken"),
    (POST, USER + "/generateSsoUrl"): apim("User_GenerateSsoUrl"),
    # Invitations (extension)
    (GET, USER + "/invitations"): ours(
        "UserInvitations_List",
        "A user's invitation and sign-up links, newest first, with their email delivery.",
        management=True,
        params=[USER_ID],
        responses={"200": json_response("The links.", ref("InvitationCollection"))},
    ),
    (POST, USER + "/invitations/resend"): ours(
        "UserInvitations_Resend",
        "A new invitation link with a new expiry; the old link stops working.",
        management=True,
        params=[USER_ID],
        responses={"200": json_response("The new link.", ref("InvitationContract"))},
    ),
    (POST, USER + "/invitations/revoke"): ours(
        "UserInvitations_Revoke",
        "The pending links stop working; the account stays pending.",
        management=True,
        params=[USER_ID],
        responses={"200": json_response("The revoked links.", ref("InvitationCollection"))},
    ),
    # Groups and their members
    (GET, ARM + "/groups"): apim("Group_ListByService"),
    (GET, GROUP): apim("Group_Get"),
    (HEAD, GROUP): apim("Group_GetEntityTag"),
    (PUT, GROUP): apim("Group_CreateOrUpdate"),
    (PATCH, GROUP): apim("Group_Update"),
    (DELETE, GROUP): apim("Group_Delete"),
    (GET, GROUP + "/users"): apim("GroupUser_List"),
    (PUT, GROUP + "/users/{userId}"): apim("GroupUser_Create"),
    (DELETE, GROUP + "/users/{userId}"): apim("GroupUser_Delete"),
    (HEAD, GROUP + "/users/{userId}"): apim("GroupUser_CheckEntityExists"),
    # Email templates
    (GET, ARM + "/templates"): apim("EmailTemplate_ListByService"),
    (GET, TEMPLATE): apim("EmailTemplate_Get"),
    (HEAD, TEMPLATE): apim("EmailTemplate_GetEntityTag"),
    (PUT, TEMPLATE): apim("EmailTemplate_CreateOrUpdate"),
    (PATCH, TEMPLATE): apim("EmailTemplate_Update"),
    (DELETE, TEMPLATE): apim("EmailTemplate_Delete"),
    (POST, TEMPLATE + "/preview"): ours(
        "EmailTemplate_Preview",
        "The stored template, or the one in the body, rendered with sample values; nothing is "
        "saved, and a submitted template is validated as a save would validate it.",
        management=True,
        params=[{"$ref": "#/parameters/TemplateNameParameter"}],
        body={
            "required": False,
            "content": {JSON_TYPE: {"schema": ref("EmailTemplatePreviewRequest")}},
        },
        responses={"200": json_response("The rendered email.", ref("EmailTemplatePreview"))},
    ),
    # Products
    (GET, ARM + "/products"): apim("Product_ListByService"),
    (GET, PRODUCT): apim("Product_Get"),
    (HEAD, PRODUCT): apim("Product_GetEntityTag"),
    (PUT, PRODUCT): apim("Product_CreateOrUpdate"),
    (PATCH, PRODUCT): apim("Product_Update"),
    (DELETE, PRODUCT): apim("Product_Delete"),
    (GET, PRODUCT + "/groups"): apim("ProductGroup_ListByProduct"),
    (HEAD, PRODUCT + "/groups/{groupId}"): apim("ProductGroup_CheckEntityExists"),
    (PUT, PRODUCT + "/groups/{groupId}"): apim("ProductGroup_CreateOrUpdate"),
    (DELETE, PRODUCT + "/groups/{groupId}"): apim("ProductGroup_Delete"),
    # Subscriptions
    (GET, ARM + "/subscriptions"): apim("Subscription_List"),
    (GET, SUBSCRIPTION): apim("Subscription_Get"),
    (HEAD, SUBSCRIPTION): apim("Subscription_GetEntityTag"),
    (PUT, SUBSCRIPTION): apim("Subscription_CreateOrUpdate"),
    (PATCH, SUBSCRIPTION): apim("Subscription_Update"),
    (DELETE, SUBSCRIPTION): apim("Subscription_Delete"),
    (POST, SUBSCRIPTION + "/listSecrets"): apim("Subscription_ListSecrets"),
    (POST, SUBSCRIPTION + "/regeneratePrimaryKey"): apim("Subscription_RegeneratePrimaryKey"),
    (POST, SUBSCRIPTION + "/regenerateSecondaryKey"): apim("Subscription_RegenerateSecondaryKey"),
    (GET, USER + "/subscriptions"): apim("UserSubscription_List"),
    (GET, USER + "/subscriptions/{sid}"): apim("UserSubscription_Get"),
    (POST, ARM + "/gateway/check"): ours(
        "Gateway_CheckKey",
        "For gateways other than API Gateway: may this subscription key call this product or "
        "API now? (The key's subscription and its owner must both be active.)",
        management=True,
        body={"required": True, "content": {JSON_TYPE: {"schema": ref("KeyCheckRequest")}}},
        responses={"200": json_response("The decision.", ref("KeyCheckResult"))},
    ),
    # Developer pages
    (GET, "/portal.css"): ours(
        "Portal_Stylesheet",
        "The pages' stylesheet.",
        responses={
            "200": {"description": "CSS.", "content": {"text/css": {"schema": {"type": "string"}}}}
        },
    ),
    (GET, "/confirm/invitation"): ours(
        "Invitation_Show",
        "Shows who is invited and a set-password form; never consumes the token.",
        params=[_token_query("The invitation token from the email.")],
        responses=page_responses(statuses=("404", "410")),
    ),
    (POST, "/confirm/invitation"): ours(
        "Invitation_Accept",
        "Sets the password, activates the account and consumes the token.",
        body=form_body("token", "password"),
        responses=page_responses(ok_json=ref("Activation"), statuses=("400", "404", "410", "409")),
    ),
    (GET, "/confirm-v2/identities/basic/signup"): ours(
        "SignUp_Show",
        "Shows the confirmation of a self-registered address.",
        params=[_token_query("The sign-up token from the email.")],
        responses=page_responses(statuses=("404", "410")),
    ),
    (POST, "/confirm-v2/identities/basic/signup"): ours(
        "SignUp_Confirm",
        "Confirms the address, activates the account and consumes the token.",
        body=form_body("token"),
        responses=page_responses(ok_json=ref("Activation"), statuses=("400", "404", "410", "409")),
    ),
    (GET, "/signin"): ours("SignIn_Show", "The sign-in form.", responses=page_responses()),
    (POST, "/signin"): ours(
        "SignIn",
        "Signs in with email and password (JSON, form, or a Basic Authorization header): the "
        "user token in ocp-apim-sas-token and the body; a form sign-in also sets a session cookie.",
        body=form_body("email", "password"),
        responses={
            **page_responses(ok_json=ref("SignInResult"), statuses=("400", "401", "429")),
        },
    ),
    (GET, "/signin-sso"): ours(
        "SignIn_Sso",
        "The link of generateSsoUrl: signs the developer in, once, and starts a portal session.",
        params=[_token_query("The token of the single sign-on link.")],
        responses=page_responses(ok_json=ref("SignInResult"), statuses=("401",)),
    ),
    (GET, "/me"): ours(
        "Me_Get",
        "The signed-in developer's own profile.",
        security=[{USER_TOKEN: []}],
        responses={
            "200": json_response("The profile.", ref("UserContract"), ETag="Entity version."),
            **errors("401"),
        },
    ),
    (POST, "/me/password"): ours(
        "Me_ChangePassword",
        "Changes the developer's own password (current password required); every older token "
        "dies and a fresh one is answered.",
        security=[{USER_TOKEN: []}],
        body=form_body("currentPassword", "newPassword"),
        responses={
            "200": json_response(
                "The fresh token.", ref("PasswordChanged"), ocp_apim_sas_token=TOKEN_HEADER
            ),
            **errors("400", "401", "429"),
        },
    ),
    (GET, "/password-reset"): ours(
        "PasswordReset_Show", "The form asking for a reset link.", responses=page_responses()
    ),
    (POST, "/password-reset"): ours(
        "PasswordReset_Request",
        "Asks for a reset link: always 202 with the same body, in about the same time, whether "
        "or not the address has an account.",
        body=form_body("email"),
        responses=page_responses(ok="202", ok_json=ref("ResetAccepted"), statuses=("400", "429")),
    ),
    (GET, "/confirm-v2/password"): ours(
        "PasswordReset_Show_Link",
        "The reset link's page: a form to choose a new password; never consumes the token.",
        params=[_token_query("The reset token from the email.")],
        responses=page_responses(statuses=("404", "410")),
    ),
    (POST, "/confirm-v2/password"): ours(
        "PasswordReset_Confirm",
        "Sets the new password and consumes the token; other sessions are signed out.",
        body=form_body("token", "password"),
        responses=page_responses(ok_json=ref("Activation"), statuses=("400", "404", "410")),
    ),
    # Audit trail (extension)
    (GET, USER + "/events"): ours(
        "UserEvents_List",
        "A user's audit events, newest first ($filter on action, actor, targetId, targetType, "
        "time).",
        management=True,
        params=[USER_ID, *LIST_PARAMS],
        responses={"200": json_response("The events.", ref("AuditEventCollection"))},
    ),
    (GET, ARM + "/auditEvents"): ours(
        "AuditEvents_List",
        "The whole audit trail, newest first ($filter on action, actor, targetId, targetType, "
        "time: 'time ge ... and time le ...').",
        management=True,
        params=LIST_PARAMS,
        responses={"200": json_response("The events.", ref("AuditEventCollection"))},
    ),
    # Admin console (HTML for members of Administrators; session cookie + CSRF token)
    (GET, "/console"): console("Console_Home", "The console's start page."),
    (GET, "/console/console.css"): ours(
        "Console_Stylesheet",
        "The console's stylesheet.",
        responses={
            "200": {"description": "CSS.", "content": {"text/css": {"schema": {"type": "string"}}}}
        },
    ),
    (GET, "/console/signin"): console("Console_SignIn_Show", "The sign-in form."),
    (POST, "/console/signin"): console(
        "Console_SignIn", "Signs an administrator in.", fields=("email", "password", "csrf")
    ),
    (POST, "/console/signout"): console("Console_SignOut", "Ends the session.", fields=("csrf",)),
    (GET, "/console/users"): console("Console_Users", "Users: search and list."),
    (POST, "/console/users"): console(
        "Console_Users_Create", "Creates or invites a user.", fields=("csrf",)
    ),
    (GET, "/console/users/{userId}"): console("Console_User", "One user.", ids=("userId",)),
    (POST, "/console/users/{userId}"): console(
        "Console_User_Change",
        "Changes, blocks, activates or deletes a user.",
        ids=("userId",),
        fields=("csrf",),
    ),
    (GET, "/console/groups"): console("Console_Groups", "Groups."),
    (POST, "/console/groups"): console(
        "Console_Groups_Create", "Creates a group.", fields=("csrf",)
    ),
    (GET, "/console/groups/{groupId}"): console("Console_Group", "One group.", ids=("groupId",)),
    (POST, "/console/groups/{groupId}"): console(
        "Console_Group_Change",
        "Changes a group or its members.",
        ids=("groupId",),
        fields=("csrf",),
    ),
    (GET, "/console/templates"): console("Console_Templates", "Email templates."),
    (GET, "/console/templates/{templateName}"): console(
        "Console_Template", "One email template and its preview.", ids=("templateName",)
    ),
    (POST, "/console/templates/{templateName}"): console(
        "Console_Template_Change",
        "Saves or resets an email template.",
        ids=("templateName",),
        fields=("csrf",),
    ),
    # This document
    (GET, DOCUMENT_PATH): ours(
        "OpenApi_Get",
        "This OpenAPI document.",
        tags=["Meta"],
        responses={"200": json_response("The document.", {"type": "object"})},
    ),
}


def apim_operation_ids() -> list[str]:
    """The APIM operations we implement, as named in APIM's contract."""
    return sorted(entry.operation_id for entry in OPERATIONS.values() if isinstance(entry, apim))


# What we check beyond APIM's schemas, stated in our document: definition -> property ->
# keywords; the property "" refines the definition itself.
REFINEMENTS: dict[str, dict[str, dict[str, Any]]] = {
    "UserCreateParameters": {"": {"required": ["properties"]}},
    "UserUpdateParameters": {"": {"required": ["properties"]}},
    "UserCreateParameterProperties": {"email": {"format": "email"}},
    "UserUpdateParametersProperties": {"email": {"format": "email"}},
}


def _ours(name: str, definition: dict[str, Any]) -> dict[str, Any]:
    """APIM's definition as we serve it: nullable when unset, plus our refinements."""
    out = _null_when_unset(definition)
    for prop, keywords in REFINEMENTS.get(name, {}).items():
        (out["properties"][prop] if prop else out).update(keywords)
    return out


def _null_when_unset(definition: dict[str, Any]) -> dict[str, Any]:
    """APIM's schema with its optional properties nullable: we send null for a value never set.

    (APIM's Swagger declares them plain strings, booleans...; ARM clients such as the Azure SDK
    read null and absent alike. README: "Differences from APIM's published contract".)
    """
    out = copy.deepcopy(definition)
    required = set(out.get("required", []))
    for name, prop in (out.get("properties") or {}).items():
        if name not in required and "$ref" not in prop:
            prop["nullable"] = True
    return out


@cache
def _bundle() -> dict[str, Any]:
    bundle: dict[str, Any] = json.loads(APIM_BUNDLE.read_text(encoding="utf-8"))
    return bundle


def build_document() -> dict[str, Any]:
    """The whole document (without ``servers``, which depend on where it is served)."""
    bundle = _bundle()
    b = Builder(bundle)
    paths: dict[str, dict[str, Any]] = {}
    for (method, path), entry in OPERATIONS.items():
        paths.setdefault(path, {})[method.lower()] = entry(b)
    schemas: dict[str, Any] = {name: b.schema(s) for name, s in OWN_SCHEMAS.items()}
    pending = sorted(b.used_apim - set(OWN_SCHEMAS))
    while pending:
        name = pending.pop()
        if name in schemas:
            continue
        schemas[name] = b.schema(_ours(name, bundle["definitions"][name]))
        pending.extend(sorted(b.used_apim - set(schemas)))
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "apim-users",
            "version": "2024-05-01",
            "description": (
                "Developer accounts managed the way Azure API Management does it. The management "
                "API speaks APIM's REST contract (2024-05-01): operations marked x-apim-operation "
                "take their parameters and schemas from Microsoft's published contract; "
                "x-extension operations are ours. Developer pages answer HTML, or JSON to JSON "
                "callers."
            ),
        },
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": dict(sorted(schemas.items())),
            "securitySchemes": {
                SAS: {
                    "type": "apiKey",
                    "in": "header",
                    "name": "Authorization",
                    "description": (
                        "A management token: 'SharedAccessSignature uid=...&ex=...&sn=...' "
                        "(or 'Bearer <token>')."
                    ),
                },
                CONSOLE_SESSION: {
                    "type": "apiKey",
                    "in": "cookie",
                    "name": "apim_console",
                    "description": "The admin console's session (members of Administrators).",
                },
                USER_TOKEN: {
                    "type": "apiKey",
                    "in": "header",
                    "name": "Authorization",
                    "description": (
                        "A user token from sign-in: 'SharedAccessSignature <token>' "
                        "(or the session cookie a form sign-in sets)."
                    ),
                },
            },
        },
    }


@cache
def _document_text() -> str:
    return json.dumps(build_document(), separators=(",", ":"))


@router.route(DOCUMENT_PATH, GET)
def serve_document(call: Call) -> Response:
    """The document, with this deployment's base URL (API Gateway adds a stage prefix)."""
    base = call.path[: -len(DOCUMENT_PATH)] if call.path.endswith(DOCUMENT_PATH) else ""
    servers = json.dumps([{"url": f"{call.origin}{base}"}])
    body = _document_text()[:-1] + f',"servers":{servers}}}'
    return Response(
        body=body,
        status_code=200,
        headers={"Content-Type": "application/json; charset=utf-8", "Cache-Control": "no-cache"},
    )
