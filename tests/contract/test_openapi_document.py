"""The OpenAPI document names every installed route and nothing else, and is served openly."""

from __future__ import annotations

import json

import pytest
from openapi_spec_validator import validate

from chalicelib.api.docs import apim
from chalicelib.api.openapi import (
    APIM_BUNDLE,
    DOCUMENT_PATH,
    apim_operation_ids,
    build_document,
)
from chalicelib.api.routing import ARM_PREFIX, METHODS, Router, installed

pytestmark = pytest.mark.contract


def served_routes() -> set[tuple[str, str]]:
    """(path, METHOD) of every route a router installed, as the Chalice app serves it."""
    from app import app

    return {
        (path, method)
        for router in installed()
        for path, handlers in router.handlers.items()
        for method in handlers
        if METHODS[0] in app.routes.get(path, {})
    }


def documented_routes(document: dict) -> set[tuple[str, str]]:
    return {
        (path, method.upper())
        for path, item in document["paths"].items()
        for method in item
        if method.upper() in METHODS
    }


def test_every_route_but_the_consoles_pages_is_documented_and_nothing_else():
    served, documented = served_routes(), documented_routes(build_document())
    pages = {(p, m) for p, m in served if p.startswith("/console")}
    assert pages, "the console's pages are installed"
    assert documented == served - pages, _names(documented ^ (served - pages))


def test_a_documented_router_refuses_a_route_without_its_description():
    router = Router()
    with pytest.raises(TypeError, match="describe each method"):
        router.route("/things", "GET")
    pages = Router(documented=False)
    with pytest.raises(TypeError, match="not described"):
        pages.route("/page", GET=apim("User_Get"))


def _names(pairs: set[tuple[str, str]]) -> str:
    return ", ".join(f"{m} {p.replace(ARM_PREFIX, '{ARM}')}" for p, m in sorted(pairs))


def test_the_document_is_valid_openapi_3():
    document = build_document()
    validate(document)
    assert document["openapi"].startswith("3.")
    ids = [op["operationId"] for op in _operations(document)]
    assert len(ids) == len(set(ids)) == len(documented_routes(document))


def test_apim_operations_keep_apims_schemas():
    served_routes()  # imports the app, which installs the routers the document is built from
    bundle = json.loads(APIM_BUNDLE.read_text(encoding="utf-8"))
    document = build_document()
    by_id = {
        op["operationId"]: op
        for item in document["paths"].values()
        for op in item.values()
        if isinstance(op, dict) and "operationId" in op
    }
    schemas = document["components"]["schemas"]
    for operation_id in apim_operation_ids():
        assert by_id[operation_id]["x-apim-operation"] == operation_id
    for name in ("UserContract", "UserCollection", "GroupContract", "ErrorResponse"):
        assert schemas[name]["description"] == bundle["definitions"][name]["description"]
    user = by_id["User_Get"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert user == {"$ref": "#/components/schemas/UserContract"}


def test_the_document_is_served_without_credentials_or_api_version():
    from chalice.test import Client

    from app import app

    with Client(app, stage_name="test") as client:
        reply = client.http.get(DOCUMENT_PATH, headers={"host": "api.example.com"})
    assert reply.status_code == 200
    headers = {k.lower(): v for k, v in reply.headers.items()}
    assert headers["content-type"].startswith("application/json")
    served = json.loads(reply.body)
    # The configured base (PUBLIC_BASE_URL, here the local default), never the Host header.
    assert served["servers"] == [{"url": "http://127.0.0.1:8000"}]
    assert {k: v for k, v in served.items() if k != "servers"} == build_document()


def test_the_apim_bundle_is_microsofts_published_contract():
    """The copy in the repo is the 2024-05-01 bundle the contract run uses (README next to it)."""
    bundle = json.loads(APIM_BUNDLE.read_text(encoding="utf-8"))
    assert bundle["swagger"] == "2.0"
    assert bundle["info"]["version"] == "2024-05-01"
    known = {
        op
        for item in bundle["paths"].values()
        for op in (v.get("operationId") for v in item.values() if isinstance(v, dict))
        if op
    }
    assert set(apim_operation_ids()) <= known


def _operations(document: dict) -> list[dict]:
    return [
        op for item in document["paths"].values() for op in item.values() if "operationId" in op
    ]
