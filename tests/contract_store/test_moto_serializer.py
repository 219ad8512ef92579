"""The suite's shortcut in moto's serializer (tests/moto_serializer.py) writes what moto writes."""

from __future__ import annotations

from typing import Any

import pytest
from moto.core.responses import XFormedAttributePicker
from moto.core.serialize import JSONSerializer
from moto.core.utils import get_service_model

from tests import moto_serializer
from tests.moto_serializer import moto_own_serializer

EVERY_KIND: dict[str, Any] = {
    "s": {"S": "text é ✓"},
    "empty": {"S": ""},
    "n": {"N": "-12.50"},
    "b": {"B": b"\x00\xffbytes"},
    "b_text": {"B": "c29tZSBiYXNlNjQ="},
    "ss": {"SS": ["a", "b"]},
    "ns": {"NS": ["1", "2.5"]},
    "bs": {"BS": [b"x", "eQ=="]},
    "null": {"NULL": True},
    "true": {"BOOL": True},
    "false": {"BOOL": False},
    "map": {"M": {"inner": {"S": "v"}, "deeper": {"M": {"list": {"L": [{"N": "1"}]}}}}},
    "empty_map": {"M": {}},
    "list": {"L": [{"S": "a"}, {"M": {"k": {"BOOL": False}}}, {"L": []}, {"NULL": True}]},
    "with_none": {"S": None, "N": "7"},
}


def body(service: str, operation: str, result: dict[str, Any]) -> str:
    model = get_service_model(service)
    serializer = JSONSerializer(
        model.operation_model(operation), value_picker=XFormedAttributePicker()
    )
    return serializer.serialize(result)["body"]


CASES = [
    ("dynamodb", "GetItem", {"Item": EVERY_KIND}),
    ("dynamodb", "Query", {"Items": [EVERY_KIND, {"id": {"S": "x"}}], "Count": 2}),
    (
        "dynamodbstreams",
        "GetRecords",
        {
            "Records": [
                {
                    "eventID": "1",
                    "eventName": "INSERT",
                    "dynamodb": {
                        "Keys": {"id": {"S": "x"}},
                        "NewImage": EVERY_KIND,
                        "SequenceNumber": "100",
                        "SizeBytes": 10,
                        "StreamViewType": "NEW_IMAGE",
                    },
                }
            ],
            "NextShardIterator": "it",
        },
    ),
    # Not moto's own shapes: an alias key ("l"), a number where a string goes. Slow way.
    ("dynamodb", "GetItem", {"Item": {"odd": {"l": [{"S": "x"}]}, "num": {"N": 5}}}),
]


@pytest.mark.parametrize(("service", "operation", "result"), CASES)
def test_the_shortcut_writes_the_same_bytes_as_moto(service, operation, result):
    assert moto_serializer.install()
    fast = body(service, operation, result)
    with moto_own_serializer():
        slow = body(service, operation, result)
    assert fast == slow


def test_moto_shaped_items_take_the_shortcut():
    """Otherwise the comparison above would compare moto with itself."""
    shape = get_service_model("dynamodb").shape_for("AttributeValue")
    assert all(moto_serializer._plain(value, shape) for value in EVERY_KIND.values())
    assert not moto_serializer._plain({"l": []}, shape)
    assert not moto_serializer._plain({"N": 5}, shape)
