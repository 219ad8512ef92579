"""Reading ``$filter``, ``$top``, ``$skip`` and ``$skiptoken`` of a list request."""

from __future__ import annotations

from collections.abc import Mapping

from chalicelib.api.routing import Call
from chalicelib.domain.odata import FieldSpec, FilterError, parse_filter
from chalicelib.domain.paging import DEFAULT_TOP, MAX_TOP, Cursor, decode_cursor, parse_int
from chalicelib.errors import FieldProblem, ValidationFailed
from chalicelib.services.listing import ListQuery

INT32_MAX = 2**31 - 1


def list_query(call: Call, fields: Mapping[str, FieldSpec]) -> ListQuery:
    """A validated ListQuery; every bad parameter is reported at once."""
    problems: list[FieldProblem] = []
    flt = None
    raw_filter = call.query.get("$filter")
    if raw_filter:
        try:
            flt = parse_filter(raw_filter, fields)
        except FilterError as exc:
            problems.append(FieldProblem("$filter", str(exc)))
    top = skip = 0
    cursor = Cursor()
    for name, default, low, high in (("$top", DEFAULT_TOP, 1, MAX_TOP), ("$skip", 0, 0, INT32_MAX)):
        try:
            value = parse_int(call.query.get(name), name, default, low, high)
        except ValidationFailed as exc:
            problems.extend(exc.details)
            continue
        if name == "$top":
            top = value
        else:
            skip = value
    token = call.query.get("$skiptoken")
    try:
        cursor = decode_cursor(token) if token else Cursor(None, skip)
    except ValidationFailed as exc:
        problems.extend(exc.details)
    if problems:
        raise ValidationFailed(problems)
    return ListQuery(flt, top, cursor)
