"""How the API's routes are described in OpenAPI: APIM's operations, and ours.

Each route states its description where it is registered, by method:
``@router.route(USER, GET=apim("User_Get"), HEAD=apim("User_GetEntityTag"))``.

- ``apim("User_Get")`` takes an operation of APIM's contract from Microsoft's published Swagger 2.0
  document (chalicelib/openapi/apim-accounts-2024-05-01.json, shipped with the app) and converts
  it: parameters, request body, responses and every schema they reach (UserContract,
  GroupCollection, ErrorResponse...) stay APIM's own. Where we answer differently, say so in the
  entry (``responses=`` adds or replaces statuses, ``drop=`` removes some, ``params=`` adds query
  parameters) and add a line to the README's "Differences from APIM's published contract".
- ``ours(...)`` describes a route of our own (extensions, developer pages) with the helpers below
  (``ref``, ``json_response``, ``page_responses``, ``form_body``, ``errors``); schemas of our own
  live in ``OWN_SCHEMAS``. ``ref(name)`` names APIM's definitions and ours alike.

``chalicelib/api/openapi.py`` builds the document from the routes installed (the route registry);
tests/contract/test_schemathesis.py fuzzes every described operation.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from chalicelib.config import SUPPORTED_API_VERSIONS
from chalicelib.domain.links import LinkPurpose, LinkState
from chalicelib.domain.messages import Delivery
from chalicelib.domain.users import UserState

JSON_TYPE = "application/json"
HTML_TYPE = "text/html"
FORM_TYPE = "application/x-www-form-urlencoded"
SAS = "SharedAccessSignature"
USER_TOKEN = "UserToken"
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


def json_result(description: str, schema: dict[str, Any], **headers: str) -> dict[str, Any]:
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


def redirects(where: str) -> dict[str, dict[str, Any]]:
    """A page's 303 See Other (no body): where the browser goes next."""
    return {
        "303": {
            "description": where,
            "headers": {"Location": {"schema": {"type": "string"}, "description": "Relative."}},
        }
    }


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


def token_query(description: str) -> dict[str, Any]:
    return query_param("token", description, type="string")


_REASONS = {
    "400": "The request is not valid (the error lists every offending field).",
    "401": "Missing, invalid or expired credentials.",
    "404": "The entity or link does not exist.",
    "409": "The entity is not in a state that allows this.",
    "410": "The link expired, was used, revoked or replaced.",
    "412": "If-Match does not match the entity's current ETag.",
    "429": "Too many attempts; Retry-After says when to try again.",
    "403": "The form did not carry its page's security token; nothing was changed.",
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
USER_ID = path_param("userId", "User identifier.")
TOKEN_HEADER = 'The user token: token="...",refresh="true".'
