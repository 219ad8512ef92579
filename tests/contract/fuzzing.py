"""A bounded, seeded schemathesis run over every operation of a schema, with its figures.

Each operation gets ``max_examples`` generated requests per generation mode (valid data, then
data that breaks the schema), derandomized so a run is the same every time. Every response goes
through the chosen checks; a failing case is recorded and the run goes on, so one run reports
every distinct failure (operation + check + status) instead of stopping at the first.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import hypothesis
import requests
from hypothesis import HealthCheck, Phase
from schemathesis import GenerationMode, Response
from schemathesis import checks as st_checks
from schemathesis.core.failures import FailureGroup

API_VERSION = "2024-05-01"


@dataclass
class Figures:
    """What a run did: operations, cases sent, and each distinct failure with one example."""

    name: str
    operations: int = 0
    cases: int = 0
    failures: dict[str, str] = field(default_factory=dict)
    statuses: dict[str, set[int]] = field(default_factory=dict)

    known: Mapping[str, str] = field(default_factory=dict)

    def is_known(self, key: str) -> bool:
        return any(key.startswith(prefix) for prefix in self.known)

    @property
    def unexpected(self) -> dict[str, str]:
        """Failures not listed as known bugs: each one fails the test."""
        return {k: v for k, v in self.failures.items() if not self.is_known(k)}

    def line(self) -> str:
        known = len(self.failures) - len(self.unexpected)
        return (
            f"schemathesis ({self.name}): {self.operations} operations, {self.cases} cases, "
            f"{len(self.failures)} failures" + (f" ({known} known bugs)" if known else "")
        )

    def report(self) -> str:
        parts = [self.line()]
        for key, example in sorted(self.failures.items()):
            reason = next((r for p, r in self.known.items() if key.startswith(p)), None)
            parts.append(f"--- {key}" + (f" (known bug: {reason})" if reason else ""))
            parts.append(example)
        return "\n".join(parts)


def _is_json(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or media.endswith("+json")


def apim_error_body(ctx: Any, response: Any, case: Any) -> None:
    """Every 4xx/5xx is APIM's error body, as JSON: ``{"error": {code, message, details}}``.

    Developer pages answer HTML errors to browsers by design; they owe the APIM body only to
    JSON callers (a JSON body or ``Accept: application/json``), which is what this checks there.
    The admin console is HTML only. Whatever the route, an error answered as JSON is APIM's.
    """
    if response.status_code < 400 or case.method.upper() == "HEAD":
        return
    content_type = response.headers.get("content-type", [""])
    content_type = content_type[0] if isinstance(content_type, list) else content_type
    management = case.path.startswith("/subscriptions/")
    # The admin console is HTML for browsers only; any JSON error anywhere is the APIM body.
    console = case.path.startswith("/console")
    if not (management or _is_json(content_type) or (_asked_for_json(response) and not console)):
        return
    assert _is_json(content_type), f"error {response.status_code} is {content_type!r}, not JSON"
    try:
        body = json.loads(response.content)
    except ValueError as exc:
        raise AssertionError(f"error {response.status_code} body is not JSON: {exc}") from None
    error = body.get("error") if isinstance(body, dict) else None
    assert isinstance(error, dict), f"error {response.status_code} body has no 'error' object"
    for key in ("code", "message"):
        assert isinstance(error.get(key), str) and error[key], f"error.{key} missing or empty"
    details = error.get("details")
    assert isinstance(details, list), "error.details is not a list"
    for detail in details:
        assert isinstance(detail, dict) and all(
            isinstance(detail.get(k), str) for k in ("code", "target", "message")
        ), f"error.details item {detail!r} lacks code/target/message strings"


def _without_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return value


def response_schema_null_as_absent(ctx: Any, response: Any, case: Any) -> bool | None:
    """response_schema_conformance, reading a null property as an absent one (as ARM clients do).

    For APIM's contract, whose optional properties are never nullable while we send null for a
    value never set (README: "Differences from APIM's published contract").
    """
    try:
        body = json.loads(response.content)
    except ValueError:
        return st_checks.response_schema_conformance(ctx, response, case)
    stripped = Response(
        status_code=response.status_code,
        headers=response.headers,
        content=json.dumps(_without_nulls(body)).encode(),
        request=response.request,
        elapsed=response.elapsed,
        verify=response.verify,
        message=response.message,
        http_version=response.http_version,
        encoding=response.encoding,
    )
    return st_checks.response_schema_conformance(ctx, stripped, case)


def _asked_for_json(response: Any) -> bool:
    sent = response.request.headers
    content = (sent.get("content-type") or "").lower()
    accept = (sent.get("accept") or "").lower()
    return "json" in content or ("application/json" in accept and "text/html" not in accept)


def fixed_parameters(operation: Any, values: Mapping[str, Mapping[str, str]]) -> dict[str, Any]:
    """The fixed values of ``values`` (by location) that this operation declares."""
    declared = {
        "path_parameters": {p.name for p in operation.path_parameters},
        "query": {p.name for p in operation.query},
        "headers": {p.name for p in operation.headers},
    }
    return {
        location: {k: v for k, v in values.get(location, {}).items() if k in names}
        for location, names in declared.items()
    }


def run(
    name: str,
    schema: Any,
    *,
    base_url: str,
    headers: Mapping[str, str],
    fixed: Mapping[str, Mapping[str, str]],
    checks: list[Callable[..., Any]],
    max_examples: int,
    seeds: Mapping[str, str] | None = None,
    seeded_examples: int = 2,
    excluded: Mapping[str, set[str]] | None = None,
    examples_for: Mapping[str, int] | None = None,
    known_bugs: Mapping[str, str] | None = None,
    share: tuple[int, int] = (0, 1),
) -> Figures:
    """Fuzz every operation of ``schema`` against ``base_url``; never raises on a failure.

    Two passes. The first generates every parameter (ids included: mostly unknown entities).
    The second fixes the path's ids to ``seeds`` (entities made before the run), so responses
    about real entities are checked too; its DELETEs run last. ``excluded`` maps an operation
    label (``"DELETE /path"``) to the names of checks skipped for it (deliberate differences);
    ``examples_for`` lowers ``max_examples`` for labels starting with its keys; ``known_bugs``
    maps failure-key prefixes (``"POST /path ["``) to a reason: reported, not unexpected.
    ``share=(k, n)`` runs the k-th of n interleaved shares of the operations (in the schema's
    order), so n tests (on as many workers) cover every operation once between them.
    """
    figures = Figures(name, known=dict(known_bugs or {}))
    session = requests.Session()
    # A fresh connection per request: with keep-alive, chalice local's separate writes of
    # headers and body meet delayed ACKs, and every response with a body waits ~40 ms.
    headers = {**headers, "Connection": "close"}
    excluded = excluded or {}
    every = [result.ok() for result in schema.get_all_operations()]
    part, parts = share
    operations = [op for n, op in enumerate(every) if n % parts == part]
    figures.operations = len(operations)
    seeded = []
    for operation in operations:
        ids = {p.name for p in operation.path_parameters} - set(fixed.get("path_parameters", {}))
        if ids and seeds and ids <= set(seeds):
            seeded.append(operation)
    seeded.sort(key=lambda op: op.method.upper() == "DELETE")
    seeded_fixed = {
        **fixed,
        "path_parameters": {**fixed.get("path_parameters", {}), **(seeds or {})},
    }
    passes = [(op, fixed, max_examples) for op in operations]
    passes += [(op, seeded_fixed, seeded_examples) for op in seeded]
    for operation, values, limit in passes:
        label = operation.label
        skipped = excluded.get(label, set())
        op_checks = [c for c in checks if c.__name__ not in skipped]
        for prefix, fewer in (examples_for or {}).items():
            if label.startswith(prefix):
                limit = min(limit, fewer)
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            strategy = operation.as_strategy(
                generation_mode=mode, **fixed_parameters(operation, values)
            )
            _fuzz_one(figures, label, strategy, session, base_url, headers, op_checks, limit)
    return figures


def _fuzz_one(
    figures: Figures,
    label: str,
    strategy: Any,
    session: requests.Session,
    base_url: str,
    headers: Mapping[str, str],
    checks: list[Callable[..., Any]],
    limit: int,
) -> None:
    @hypothesis.settings(
        max_examples=limit,
        derandomize=True,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
        verbosity=hypothesis.Verbosity.quiet,
    )
    @hypothesis.given(case=strategy)
    def test(case: Any) -> None:
        figures.cases += 1
        try:
            response = case.call(base_url=base_url, session=session, headers=dict(headers))
        except requests.RequestException as exc:
            figures.failures.setdefault(f"{label} [connection]", repr(exc))
            return
        figures.statuses.setdefault(label, set()).add(response.status_code)
        try:
            case.validate_response(
                response,
                checks=checks,
                headers=dict(headers),
                transport_kwargs={"base_url": base_url},
            )
        except FailureGroup as group:
            for failure in group.exceptions:
                key = f"{label} [{failure.title}] {response.status_code}"
                figures.failures.setdefault(key, str(group)[:3000])
        except AssertionError as exc:  # a custom check outside a FailureGroup
            key = f"{label} [{exc}] {response.status_code}"
            figures.failures.setdefault(key, case.as_curl_command(headers=dict(headers)))

    try:
        test()
    except hypothesis.errors.Unsatisfiable:
        pass  # nothing to break in this operation (negative mode without parameters or body)
