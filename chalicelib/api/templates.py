"""Email templates: APIM's EmailTemplate operations, plus a preview."""

from __future__ import annotations

import json
from typing import Any

from chalice import Response

from chalicelib.api.docs import JSON_TYPE, apim, json_result, ours, ref
from chalicelib.api.envelope import collection, empty, json_response
from chalicelib.api.lists import list_query
from chalicelib.api.routing import ARM_PREFIX, Call, Router
from chalicelib.bootstrap import services
from chalicelib.config import get_settings
from chalicelib.domain.email_templates import (
    TemplateChanges,
    TemplateView,
    pascal_name,
    read_template_changes,
)
from chalicelib.domain.odata import ALL_FUNCTIONS, ALL_OPS, FieldSpec
from chalicelib.errors import FieldProblem, MalformedRequest, ResourceNotFound, ValidationFailed
from chalicelib.mail.templates import canonical_name, template_parameters

router = Router(ARM_PREFIX)
TEMPLATE = "/templates/{templateName}"
TEMPLATE_TYPE = "Microsoft.ApiManagement/service/templates"
TEMPLATE_FILTER_FIELDS = {"name": FieldSpec("string", ALL_OPS, ALL_FUNCTIONS)}
# A template may have 100 KB (refused with a clear reason past that), which JSON escaping can
# triple; the general request limit is smaller than that.
_TEMPLATE_REQUEST_MAX = 512 * 1024


def template_entity(view: TemplateView) -> dict[str, Any]:
    """APIM's EmailTemplateContract; ``name`` and ``id`` in PascalCase, as APIM answers."""
    name = pascal_name(view.name)
    return {
        "id": f"{get_settings().service_path}/templates/{name}",
        "type": TEMPLATE_TYPE,
        "name": name,
        "properties": {
            "subject": view.subject,
            "body": view.body,
            "title": view.title,
            "description": view.description,
            "isDefault": view.is_default,
            "parameters": [
                {"name": p.name, "title": p.title, "description": p.description}
                for p in view.parameters
            ],
        },
    }


def _body(call: Call) -> Any:
    """The JSON body, with room for a whole template (Call.json stops at MAX_BODY_BYTES)."""
    raw = call.raw_body
    if len(raw) > _TEMPLATE_REQUEST_MAX:
        raise ValidationFailed(
            [FieldProblem("body", "The request is too large; a template may have at most 100 KB.")]
        )
    if not raw.strip():
        return {}
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise MalformedRequest(
            "The request body is not valid JSON.", [FieldProblem("body", str(exc)[:200])]
        ) from None


def _changes(call: Call, body: Any) -> TemplateChanges:
    """The body's properties as changes to the template the path names (404 if none)."""
    name = call.params["templateName"]
    canonical = canonical_name(name)
    if canonical is None:
        raise ResourceNotFound(f"Email template not found: '{name}'.")
    return read_template_changes(body, template_parameters(canonical))


def _values(given: Any) -> dict[str, str]:
    """The preview's ``values``: parameter names to strings."""
    if given is None:
        return {}
    if not isinstance(given, dict) or not all(isinstance(v, str) for v in given.values()):
        raise ValidationFailed(
            [FieldProblem("values", "'values' must map parameter names to strings.")]
        )
    return given


@router.route(
    "/templates",
    GET=apim("EmailTemplate_ListByService"),
)
def list_templates(call: Call) -> Response:
    page = services().templates.list(list_query(call, TEMPLATE_FILTER_FIELDS))
    return json_response(collection([template_entity(v) for v in page.items], page, call.link))


@router.route(
    TEMPLATE,
    GET=apim("EmailTemplate_Get"),
    HEAD=apim("EmailTemplate_GetEntityTag"),
)
def get_template(call: Call) -> Response:
    view = services().templates.get(call.params["templateName"])
    return json_response(template_entity(view), etag_version=view.version)


@router.route(
    TEMPLATE,
    PUT=apim("EmailTemplate_CreateOrUpdate"),
)
def put_template(call: Call) -> Response:
    changes = _changes(call, _body(call))
    view, created = services().templates.save(call.params["templateName"], changes, call.if_match())
    return json_response(template_entity(view), 201 if created else 200, view.version)


@router.route(
    TEMPLATE,
    PATCH=apim("EmailTemplate_Update"),
)
def patch_template(call: Call) -> Response:
    expected = call.require_if_match()
    changes = _changes(call, _body(call))
    view, _ = services().templates.save(call.params["templateName"], changes, expected)
    return json_response(template_entity(view), etag_version=view.version)


@router.route(
    TEMPLATE,
    DELETE=apim("EmailTemplate_Delete"),
)
def reset_template(call: Call) -> Response:
    """Resets the template to its default (APIM's DELETE); isDefault is true again."""
    services().templates.reset(call.params["templateName"], call.require_if_match())
    return empty(204)


@router.route(
    TEMPLATE + "/preview",
    POST=ours(
        "EmailTemplate_Preview",
        "The stored template, or the one in the body, rendered with sample values; nothing is "
        "saved, and a submitted template is validated as a save would validate it.",
        management=True,
        params=[{"$ref": "#/parameters/TemplateNameParameter"}],
        body={
            "required": False,
            "content": {JSON_TYPE: {"schema": ref("EmailTemplatePreviewRequest")}},
        },
        responses={"200": json_result("The rendered email.", ref("EmailTemplatePreview"))},
    ),
)
def preview_template(call: Call) -> Response:
    """Extension: the stored template, or the one in the body, rendered with sample values.

    Body (optional): ``{"properties": {subject?, body?}, "values": {Name: value}}``.
    Nothing is saved; a submitted template is validated as a save would validate it.
    """
    body = _body(call) or {}
    if not isinstance(body, dict):
        raise ValidationFailed([FieldProblem("body", "The body must be a JSON object.")])
    changes = _changes(call, body) if body.get("properties") is not None else None
    rendered, values = services().templates.preview(
        call.params["templateName"], changes, _values(body.get("values"))
    )
    return json_response(
        {
            "subject": rendered.subject,
            "html": rendered.html,
            "text": rendered.text,
            "values": values,
        }
    )
