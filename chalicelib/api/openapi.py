"""The OpenAPI 3 document of this API, served at ``GET /openapi.json`` (no auth, no api-version).

``build_document()`` reads the route registry (``routing.installed()``): every route of a
documented router carries its description where it is registered (api/docs.py says how to write
one), so the document names exactly the routes app.py installs. The admin console's pages are not
described. Our document serves APIM's schemas with their optional properties nullable (we send
null for a value never set) and with ``REFINEMENTS`` (what we check beyond them, e.g. email
format).
"""

from __future__ import annotations

import copy
import json
from functools import cache
from pathlib import Path
from typing import Any

from chalice import Response

from chalicelib.api.docs import (
    OWN_SCHEMAS,
    SAS,
    USER_TOKEN,
    Builder,
    apim,
    json_result,
    ours,
)
from chalicelib.api.routing import Call, Router, installed

router = Router(management=False)
DOCUMENT_PATH = "/openapi.json"
APIM_BUNDLE = Path(__file__).resolve().parent.parent / "openapi" / "apim-accounts-2024-05-01.json"


def apim_operation_ids() -> list[str]:
    """The APIM operations we implement, as named in APIM's contract."""
    return sorted(
        entry.operation_id
        for router in installed()
        for described in router.docs.values()
        for entry in described.values()
        if isinstance(entry, apim)
    )


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
    for router in installed():
        for path, described in router.docs.items():
            for method, entry in described.items():
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


@router.route(
    DOCUMENT_PATH,
    GET=ours(
        "OpenApi_Get",
        "This OpenAPI document.",
        tags=["Meta"],
        responses={"200": json_result("The document.", {"type": "object"})},
    ),
)
def serve_document(call: Call) -> Response:
    """The document, with this deployment's public base URL (never the request's Host)."""
    servers = json.dumps([{"url": call.public_root()}])
    body = _document_text()[:-1] + f',"servers":{servers}}}'
    return Response(
        body=body,
        status_code=200,
        headers={"Content-Type": "application/json; charset=utf-8", "Cache-Control": "no-cache"},
    )
