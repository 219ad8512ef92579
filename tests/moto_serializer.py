"""moto's JSON responses with a fast path for DynamoDB's AttributeValue, the same bytes out.

moto 5.2.5 serializes every response by walking botocore's output shape, and finds each member of
each structure by trying its aliases (the key, its snake_case, the shape's name...) on the value.
A DynamoDB item is a map of AttributeValue structures of ten members each, so an item of twenty
attributes costs about two hundred alias searches: in-process, that was about 40% of the CPU of
the fast tier (every GetItem, Query, BatchGetItem and stream record goes through it).

``install()`` puts a shortcut in front of the JSON serializer's structure method: when the value
is an AttributeValue of DynamoDB or DynamoDB Streams made of plain dicts, lists, strings and
booleans whose keys are the members' own names (what moto's backends produce), no alias can
match, so the output is the members present, in the shape's order, strings as they are, blobs in
base64, booleans as they are: what moto's walk writes. Anything else (another shape, a key that
is no member's name, a value of another type, a response with key transformers) goes the slow
way. ``APIM_TESTS_CHECK_MOTO_SERIALIZER=1`` makes every shortcut compare itself with moto's walk
and fail on a difference: run the suite with it after upgrading moto or botocore.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

MOTO_VERSION = "5.2.5"
_SERVICES = frozenset({"dynamodb", "dynamodbstreams"})
_original: Any = None


def _plain(value: Any, shape: Any) -> bool:
    """Whether ``value`` is built only of what the shortcut writes exactly as moto would."""
    kind = shape.type_name
    if kind == "structure":
        members = shape.members
        return type(value) is dict and all(
            name in members and (item is None or _plain(item, members[name]))
            for name, item in value.items()
        )
    if kind == "string":
        return type(value) is str
    if kind == "boolean":
        return type(value) is bool
    if kind == "blob":
        return type(value) in (str, bytes)
    if kind == "list":
        return type(value) is list and all(_plain(item, shape.member) for item in value)
    if kind == "map":
        # An empty key would make moto write the member's fields into the map itself.
        return type(value) is dict and all(
            type(k) is str and k and _plain(v, shape.value) for k, v in value.items()
        )
    return False


def _write(serializer: Any, value: Any, shape: Any) -> Any:
    """What moto's JSON serializer makes of a ``_plain`` value of this shape."""
    kind = shape.type_name
    if kind == "structure":
        # Members in the shape's order; a member that is None is left out.
        return {
            name: _write(serializer, value[name], member)
            for name, member in shape.members.items()
            if value.get(name) is not None
        }
    if kind == "list":
        return [_write(serializer, item, shape.member) for item in value]
    if kind == "map":
        return {k: _write(serializer, v, shape.value) for k, v in value.items()}
    if kind == "blob":
        return serializer._base64(value)
    return value  # a str or a bool, which moto writes unchanged


def _serialize_type_structure(self: Any, serialized: Any, value: Any, shape: Any, key: str) -> None:
    if (
        key
        and shape.name == "AttributeValue"
        and self.service_model.service_name in _SERVICES
        and not getattr(self._value_picker, "response_transformers", None)
        and _plain(value, shape)
    ):
        fast = _write(self, value, shape)
        if _CHECK:
            slow: dict[str, Any] = {}
            _original(self, slow, value, shape, key)
            expected = slow[self.get_serialized_name(shape, key)]
            assert fast == expected, f"moto serializer shortcut: {fast!r} != {expected!r}"
        self._default_serialize(serialized, fast, shape, key)
        return
    _original(self, serialized, value, shape, key)


_CHECK = os.environ.get("APIM_TESTS_CHECK_MOTO_SERIALIZER") == "1"


def install() -> bool:
    """Put the shortcut in (idempotent). False on another moto release, which keeps its own."""
    global _original
    import warnings

    import moto
    from moto.core.serialize import BaseJSONSerializer

    if _original is not None:
        return True
    if moto.__version__ != MOTO_VERSION:
        warnings.warn(
            f"tests/moto_serializer.py was written for moto {MOTO_VERSION}, not "
            f"{moto.__version__}: responses keep moto's own serializer (correct, but slow)",
            stacklevel=2,
        )
        return False
    _original = BaseJSONSerializer._serialize_type_structure
    BaseJSONSerializer._serialize_type_structure = _serialize_type_structure
    return True


@contextmanager
def moto_own_serializer() -> Iterator[None]:
    """moto's own walk inside this block: what tests compare the shortcut with."""
    from moto.core.serialize import BaseJSONSerializer

    patched = BaseJSONSerializer._serialize_type_structure
    BaseJSONSerializer._serialize_type_structure = _original or patched
    try:
        yield
    finally:
        BaseJSONSerializer._serialize_type_structure = patched
