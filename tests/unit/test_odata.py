"""Tests for the OData $filter parser and evaluator."""

from __future__ import annotations

import enum
import random
from datetime import UTC, datetime, timedelta, timezone

import pytest

from chalicelib.domain.odata import (
    ALL_FUNCTIONS,
    ALL_OPS,
    EQ_ONLY,
    And,
    Comparison,
    FieldSpec,
    FilterError,
    FunctionCall,
    Or,
    equality_value,
    parse_filter,
)

FIELDS = {
    "firstName": FieldSpec("string", ALL_OPS, ALL_FUNCTIONS),
    "lastName": FieldSpec("string", ALL_OPS, ALL_FUNCTIONS),
    "email": FieldSpec("string", frozenset({"eq", "ne"}), frozenset({"contains"})),
    "state": FieldSpec("enum", EQ_ONLY),
    "registrationDate": FieldSpec("datetime", ALL_OPS),
    "isAdmin": FieldSpec("bool", frozenset({"eq", "ne"})),
}

RECORD = {
    "firstName": "Maria",
    "lastName": "O'Brien",
    "email": "Maria.OBrien@Example.com",
    "state": "active",
    "registrationDate": datetime(2024, 3, 15, 12, 30, tzinfo=UTC),
    "isAdmin": False,
}


def matches(text: str, record: dict[str, object] | None = None) -> bool:
    return parse_filter(text, FIELDS).evaluate(RECORD if record is None else record)


def filter_error(text: str) -> str:
    with pytest.raises(FilterError) as caught:
        parse_filter(text, FIELDS)
    return str(caught.value)


# --- comparisons -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("firstName eq 'Maria'", True),
        ("firstName eq 'Mario'", False),
        ("firstName ne 'Mario'", True),
        ("firstName ne 'Maria'", False),
        ("firstName gt 'Mari'", True),
        ("firstName gt 'Maria'", False),
        ("firstName ge 'Maria'", True),
        ("firstName ge 'Marib'", False),
        ("firstName lt 'Marib'", True),
        ("firstName lt 'Maria'", False),
        ("firstName le 'Maria'", True),
        ("firstName le 'Mar'", False),
    ],
)
def test_string_comparison_operators(text: str, expected: bool) -> None:
    assert matches(text) is expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("registrationDate eq 2024-03-15T12:30:00Z", True),
        ("registrationDate ne 2024-03-15T12:30:00Z", False),
        ("registrationDate gt 2024-03-15T12:29:59Z", True),
        ("registrationDate gt 2024-03-15T12:30:00Z", False),
        ("registrationDate ge 2024-03-15T12:30:00Z", True),
        ("registrationDate lt 2024-03-15T12:30:00.001Z", True),
        ("registrationDate lt 2024-03-15T12:30:00Z", False),
        ("registrationDate le 2024-03-15T12:30:00Z", True),
        ("registrationDate le 2024-03-15", False),
    ],
)
def test_datetime_comparison_operators(text: str, expected: bool) -> None:
    assert matches(text) is expected


@pytest.mark.parametrize(
    "text",
    [
        "firstName EQ 'Maria'",
        "firstName Eq 'Maria'",
        "FIRSTNAME eq 'Maria'",
        "firstname eq 'maria'",
        "firstName eq 'MARIA'",
        "StartsWith(FirstName, 'MAR')",
        "firstName eq 'x' OR firstName eq 'maria' AND isAdmin eq FALSE",
    ],
)
def test_keywords_field_names_and_values_are_case_insensitive(text: str) -> None:
    assert matches(text) is True


def test_field_name_resolves_to_spec_spelling() -> None:
    expr = parse_filter("FIRSTNAME eq 'Maria'", FIELDS)

    assert expr == Comparison("firstName", "eq", "Maria", "string")
    assert expr.evaluate({"FIRSTNAME": "Maria"}) is False


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("isAdmin eq false", True),
        ("isAdmin eq true", False),
        ("isAdmin ne true", True),
        ("isAdmin eq TRUE", False),
    ],
)
def test_bool_comparisons(text: str, expected: bool) -> None:
    assert matches(text) is expected


class State(enum.Enum):
    ACTIVE = "active"
    BLOCKED = "blocked"


@pytest.mark.parametrize(
    ("value", "expected"),
    [("active", True), ("Active", True), (State.ACTIVE, True), (State.BLOCKED, False)],
)
def test_enum_values_compare_case_insensitively_as_strings(value: object, expected: bool) -> None:
    assert matches("state eq 'ACTIVE'", {"state": value}) is expected


# --- functions -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("startswith(firstName, 'mar')", True),
        ("startswith(firstName, 'ria')", False),
        ("endswith(firstName, 'RIA')", True),
        ("endswith(firstName, 'Mar')", False),
        ("contains(firstName, 'ARI')", True),
        ("contains(firstName, 'xyz')", False),
        ("substringof('ARI', firstName)", True),
        ("substringof('xyz', firstName)", False),
        ("contains(email, '@example.')", True),
        ("startswith(lastName, 'O''B')", True),
        ("startswith(firstName, '')", True),
    ],
)
def test_functions(text: str, expected: bool) -> None:
    assert matches(text) is expected


def test_substringof_takes_the_value_first() -> None:
    assert parse_filter("substringof('ari', firstName)", FIELDS) == FunctionCall(
        "substringof", "firstName", "ari"
    )
    message = filter_error("substringof(firstName, 'ari')")
    assert "substringof" in message
    assert "'firstName' at column 13" in message
    assert "value first" in message


# --- and / or / parentheses ------------------------------------------------------------------


def test_and_binds_tighter_than_or() -> None:
    text = "firstName eq 'Maria' or firstName eq 'x' and state eq 'blocked'"
    expr = parse_filter(text, FIELDS)

    assert isinstance(expr, Or)
    assert isinstance(expr.operands[1], And)
    assert expr.evaluate(RECORD) is True


def test_parentheses_override_precedence() -> None:
    text = "(firstName eq 'Maria' or firstName eq 'x') and state eq 'blocked'"
    expr = parse_filter(text, FIELDS)

    assert isinstance(expr, And)
    assert expr.evaluate(RECORD) is False


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("firstName eq 'Maria' and state eq 'active'", True),
        ("firstName eq 'Maria' and state eq 'blocked'", False),
        ("firstName eq 'x' or state eq 'active'", True),
        ("firstName eq 'x' or state eq 'blocked'", False),
        ("((firstName eq 'Maria'))", True),
        ("(firstName eq 'x' or (state eq 'active' and (isAdmin eq false)))", True),
        ("firstName eq 'a' or firstName eq 'b' or firstName eq 'maria'", True),
    ],
)
def test_boolean_combinations(text: str, expected: bool) -> None:
    assert matches(text) is expected


@pytest.mark.parametrize(
    "text",
    [
        "firstName eq 'Maria'",
        "   firstName   eq   'Maria'   ",
        "\tfirstName\neq\r\n'Maria'",
        "(firstName eq'Maria')and(state eq'active')",
        "startswith( firstName ,'Mar' )",
        "startswith(firstName,'Mar')",
    ],
)
def test_whitespace_between_tokens_is_optional_or_any_amount(text: str) -> None:
    assert matches(text) is True


# --- literals --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("literal", "value"),
    [
        ("'O''Brien'", "O'Brien"),
        ("''''", "'"),
        ("''", ""),
        ("'a''''b'", "a''b"),
        ("'it''s ( and ) or eq'", "it's ( and ) or eq"),
    ],
)
def test_doubled_quotes_escape_a_quote(literal: str, value: str) -> None:
    expr = parse_filter(f"lastName eq {literal}", FIELDS)

    assert expr == Comparison("lastName", "eq", value, "string")
    assert expr.evaluate({"lastName": value.upper()}) is True


UTC_MIDNIGHT = datetime(2024, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("literal", "value"),
    [
        ("2024-01-01T00:00:00Z", UTC_MIDNIGHT),
        ("2024-01-01t00:00:00z", UTC_MIDNIGHT),
        ("2024-01-01T00:00Z", UTC_MIDNIGHT),
        ("2024-01-01T00:00:00", UTC_MIDNIGHT),
        ("2024-01-01", UTC_MIDNIGHT),
        ("2024-01-01T00:00:00.123Z", UTC_MIDNIGHT + timedelta(milliseconds=123)),
        ("2024-01-01T00:00:00.1234567Z", UTC_MIDNIGHT + timedelta(microseconds=123456)),
        ("2024-01-01T02:00:00+02:00", UTC_MIDNIGHT),
        ("2023-12-31T19:00:00-05:00", UTC_MIDNIGHT),
        ("datetime'2024-01-01T00:00:00Z'", UTC_MIDNIGHT),
        ("DateTime'2024-01-01'", UTC_MIDNIGHT),
        ("datetimeoffset'2024-01-01T01:00:00+01:00'", UTC_MIDNIGHT),
        ("'2024-01-01T00:00:00Z'", UTC_MIDNIGHT),
    ],
)
def test_datetime_literal_forms(literal: str, value: datetime) -> None:
    expr = parse_filter(f"registrationDate eq {literal}", FIELDS)

    assert equality_value(expr, "registrationDate") == value
    assert expr.evaluate({"registrationDate": value}) is True


def test_datetime_literal_keeps_its_offset() -> None:
    value = equality_value(
        parse_filter("registrationDate eq 2024-01-01T02:00:00+02:00", FIELDS), "registrationDate"
    )

    assert value == datetime(2024, 1, 1, 2, tzinfo=timezone(timedelta(hours=2)))
    assert isinstance(value, datetime)
    assert value.utcoffset() == timedelta(hours=2)


def test_naive_record_datetime_is_treated_as_utc() -> None:
    assert matches("registrationDate eq 2024-01-01", {"registrationDate": datetime(2024, 1, 1)})


# --- null ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "when_none", "when_set"),
    [
        ("lastName eq null", True, False),
        ("lastName ne null", False, True),
        ("lastName eq 'x'", False, True),
        ("lastName ne 'y'", False, True),
        ("lastName gt 'a'", False, True),
        ("lastName le 'z'", False, True),
        ("startswith(lastName, 'x')", False, True),
        ("endswith(lastName, '')", False, True),
        ("contains(lastName, 'x')", False, True),
        ("substringof('x', lastName)", False, True),
        ("registrationDate eq null", True, False),
        ("registrationDate lt 2030-01-01", False, True),
        ("isAdmin ne null", False, True),
    ],
)
def test_null_handling(text: str, when_none: bool, when_set: bool) -> None:
    expr = parse_filter(text, FIELDS)
    set_record = {"lastName": "x", "registrationDate": UTC_MIDNIGHT, "isAdmin": True}

    assert expr.evaluate({"lastName": None, "registrationDate": None, "isAdmin": None}) is when_none
    assert expr.evaluate({}) is when_none
    assert expr.evaluate(set_record) is when_set


# --- errors ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "fragments"),
    [
        ("", ["empty"]),
        ("   \t ", ["empty"]),
        ("nickname eq 'x'", ["unknown field 'nickname'", "column 1", "firstName", "isAdmin"]),
        ("startswith(nickname, 'x')", ["unknown field 'nickname'"]),
        ("state gt 'active'", ["'gt'", "'state'", "allowed operators: eq"]),
        ("startswith(email, 'x')", ["'startswith'", "'email'", "allowed functions: contains"]),
        ("contains(state, 'x')", ["'contains'", "'state'"]),
        ("firstName eq 'Maria'))", ["unbalanced ')'", "column 21"]),
        ("((firstName eq 'Maria')", ["missing ')'", "column 1"]),
        ("(firstName eq 'Maria'", ["missing ')'", "end of filter"]),
        (")", ["')'", "column 1"]),
        ("()", ["')' at column 2"]),
        ("firstName eq 'Maria' state eq 'x'", ["'state' at column 22", "'and', 'or'"]),
        ("firstName eq 'Maria' 'x'", ["'x' at column 22"]),
        ("firstName eq 'Maria", ["unterminated string", "column 14"]),
        ("startswith(firstName, 'Ma)", ["unterminated string", "column 23"]),
        ("firstName eq", ["after 'eq'", "end of filter"]),
        ("firstName", ["comparison operator", "'firstName'", "end of filter"]),
        ("firstName 'x'", ["comparison operator", "'x' at column 11"]),
        ("firstName like 'x'", ["comparison operator", "'like' at column 11"]),
        ("firstName eq lastName", ["literal", "'lastName' at column 14"]),
        ("firstName eq 'a' and", ["end of filter", "column 21"]),
        ("firstName eq 'a' or or lastName eq 'b'", ["missing operand", "'or' at column 21"]),
        ("and firstName eq 'a'", ["missing operand", "'and' at column 1"]),
        ("tolower(firstName) eq 'a'", ["unknown function 'tolower'", "substringof"]),
        ("not firstName eq 'a'", ["'not'", "not supported"]),
        ("not(firstName eq 'a')", ["'not'", "not supported"]),
        ("true", ["field name", "'true' at column 1"]),
        ("'Maria' eq firstName", ["'Maria' at column 1"]),
        ("startswith(firstName 'x')", ["','", "'x' at column 22"]),
        ("startswith(firstName, 'x'", ["')'", "end of filter"]),
        ("startswith(firstName, lastName)", ["quoted string", "'lastName' at column 23"]),
        ("startswith('x', firstName)", ["field name", "'x' at column 12"]),
        ("startswith(firstName, null)", ["quoted string", "'null'"]),
        ("firstName eq 'a' # x", ["unexpected character '#'", "column 18"]),
        ('firstName eq "Maria"', ["unexpected character '\"'", "column 14"]),
        ("firstName eq 1abc", ["malformed literal '1abc'", "column 14"]),
        ("registrationDate eq 2024-13-01", ["invalid date-time '2024-13-01'"]),
        ("registrationDate eq 2024-01-01T25:00:00Z", ["invalid date-time"]),
        ("registrationDate eq 2024-01-01T00:00:00+24:00", ["invalid date-time"]),
        ("registrationDate eq 2024-01-01T00:00:00Zulu", ["malformed literal"]),
        ("registrationDate eq datetime'yesterday'", ["invalid date-time literal", "column 21"]),
        ("registrationDate eq datetime'2024-01-01", ["unterminated string"]),
    ],
)
def test_malformed_or_disallowed_filters_raise_filter_error(
    text: str, fragments: list[str]
) -> None:
    message = filter_error(text)

    for fragment in fragments:
        assert fragment in message


@pytest.mark.parametrize(
    ("text", "fragments"),
    [
        ("firstName eq 5", ["'firstName'", "string", "'5' at column 14", "integer"]),
        ("firstName eq true", ["'firstName'", "string", "boolean"]),
        ("firstName eq 2024-01-01", ["'firstName'", "date-time"]),
        ("state eq true", ["'state'", "enum"]),
        ("registrationDate eq 'soon'", ["'registrationDate'", "date-time", "'soon' at column 21"]),
        ("registrationDate gt 20240101", ["'registrationDate'", "integer"]),
        ("isAdmin eq 'true'", ["'isAdmin'", "boolean", "'true' at column 12", "string"]),
        ("isAdmin eq 1", ["'isAdmin'", "boolean", "integer"]),
        ("firstName gt null", ["null", "'firstName'", "'gt'"]),
        ("registrationDate le null", ["null", "'registrationDate'", "'le'"]),
    ],
)
def test_literal_type_mismatch_raises_filter_error(text: str, fragments: list[str]) -> None:
    message = filter_error(text)

    for fragment in fragments:
        assert fragment in message


def test_functions_on_non_string_fields_are_rejected_even_if_configured() -> None:
    fields = {"registrationDate": FieldSpec("datetime", ALL_OPS, ALL_FUNCTIONS)}

    with pytest.raises(FilterError, match="'registrationDate' is a date-time field"):
        parse_filter("startswith(registrationDate, '2024')", fields)


def test_filter_length_is_capped() -> None:
    at_limit = "firstName eq '" + "a" * 1985 + "'"
    assert len(at_limit) == 2000
    parse_filter(at_limit, FIELDS)

    message = filter_error(at_limit + " ")
    assert "too long" in message
    assert "2001" in message


def test_nesting_is_capped_at_32_parentheses() -> None:
    assert matches("(" * 32 + "firstName eq 'Maria'" + ")" * 32)

    message = filter_error("(" * 33 + "firstName eq 'Maria'" + ")" * 33)
    assert "nested too deeply" in message
    assert "column 33" in message


@pytest.mark.parametrize("text", ["(" * 1000, "(" * 990 + "firstName eq 'x'" + ")" * 990])
def test_deep_nesting_never_hits_the_recursion_limit(text: str) -> None:
    assert "nested too deeply" in filter_error(text)


def test_filter_error_is_a_value_error() -> None:
    assert issubclass(FilterError, ValueError)


def test_fields_differing_only_by_case_are_a_configuration_error() -> None:
    fields = {"name": FieldSpec("string", EQ_ONLY), "Name": FieldSpec("string", EQ_ONLY)}

    with pytest.raises(ValueError, match="differ only by case") as caught:
        parse_filter("name eq 'x'", fields)
    assert not isinstance(caught.value, FilterError)


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"kind": "number", "ops": EQ_ONLY}, "kind"),
        ({"kind": "string", "ops": frozenset({"like"})}, "like"),
        ({"kind": "string", "ops": EQ_ONLY, "functions": frozenset({"tolower"})}, "tolower"),
    ],
)
def test_field_spec_rejects_unknown_kinds_ops_and_functions(
    kwargs: dict[str, object], fragment: str
) -> None:
    with pytest.raises(ValueError, match=fragment):
        FieldSpec(**kwargs)  # type: ignore[arg-type]


def test_field_spec_freezes_plain_sets() -> None:
    spec = FieldSpec("string", {"eq"}, {"contains"})  # type: ignore[arg-type]

    assert spec.ops == EQ_ONLY
    assert isinstance(spec.functions, frozenset)
    assert hash(spec) == hash(FieldSpec("string", EQ_ONLY, frozenset({"contains"})))


# --- equality_value --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("email eq 'Maria@Example.com'", "Maria@Example.com"),
        ("EMAIL eq 'Maria@Example.com'", "Maria@Example.com"),
        ("firstName eq 'a' and email eq 'M@x.io'", "M@x.io"),
        ("firstName eq 'a' and (state eq 'active' and (email eq 'M@x.io'))", "M@x.io"),
        ("(email eq 'O''Brien@x.io') and firstName eq 'a'", "O'Brien@x.io"),
        ("email eq 'M@x.io' or firstName eq 'a'", None),
        ("firstName eq 'a' and (email eq 'M@x.io' or state eq 'active')", None),
        ("email ne 'M@x.io'", None),
        ("contains(email, 'M@x.io')", None),
        ("firstName eq 'M@x.io'", None),
        ("email eq null", None),
    ],
)
def test_equality_value(text: str, expected: object) -> None:
    assert equality_value(parse_filter(text, FIELDS), "email") == expected


def test_equality_value_for_other_kinds() -> None:
    expr = parse_filter("isAdmin eq true and state eq 'Active'", FIELDS)

    assert equality_value(expr, "isAdmin") is True
    assert equality_value(expr, "state") == "Active"
    assert equality_value(expr, "firstName") is None


# --- robustness ------------------------------------------------------------------------------

FUZZ_PIECES = [
    "(", ")", ",", "'", "''", " ", " ", "\t", "-", ":", ".", "+", "Z", "T", "#", "\"", "é", "٣",
    "eq", "NE", "gt", "ge", "lt", "le", "and", "OR", "not", "true", "false", "null",
    "firstName", "FIRSTNAME", "state", "registrationDate", "isAdmin", "email", "unknown",
    "startswith", "endswith", "contains", "substringof", "tolower",
    "'Maria'", "'O''Brien'", "2024-01-01", "2024-01-01T00:00:00Z", "12:30:00", "+02:00",
    "datetime", "datetime'", "datetime'2024-01-01'", "0", "42", "-7", "99999999999999999999",
]  # fmt: skip


FUZZ_SEEDS = [
    "firstName eq 'Maria' and (state eq 'active' or isAdmin eq true)",
    "substringof('ari', firstName) or startswith(lastName, 'O''B')",
    "registrationDate ge datetime'2024-01-01T00:00:00Z' and email ne null",
]


def fuzz_inputs(rng: random.Random, count: int) -> list[str]:
    """Pure junk, plus valid filters with pieces inserted, dropped or swapped (nearly valid)."""
    inputs = []
    for _ in range(count // 2):
        inputs.append("".join(rng.choice(FUZZ_PIECES) for _ in range(rng.randint(0, 14))))
    for _ in range(count - count // 2):
        text = rng.choice(FUZZ_SEEDS)
        for _ in range(rng.randint(1, 3)):
            at = rng.randrange(len(text) + 1)
            action = rng.choice(["insert", "drop", "replace"])
            if action == "insert":
                text = text[:at] + rng.choice(FUZZ_PIECES) + text[at:]
            elif action == "drop":
                text = text[:at] + text[at + rng.randint(1, 4) :]
            else:
                text = text[:at] + rng.choice(FUZZ_PIECES) + text[at + rng.randint(1, 4) :]
        inputs.append(text)
    return inputs


def test_random_junk_only_ever_raises_filter_error() -> None:
    outcomes = {"parsed": 0, "rejected": 0}
    for text in fuzz_inputs(random.Random(20240101), 5000):
        try:
            expr = parse_filter(text, FIELDS)
        except FilterError as error:
            outcomes["rejected"] += 1
            assert str(error)
            continue
        outcomes["parsed"] += 1
        assert isinstance(expr.evaluate(RECORD), bool)
        assert isinstance(expr.evaluate({}), bool)
        equality_value(expr, "firstName")
    # Guards against the generator degenerating into only one kind of input.
    assert outcomes["parsed"] > 50
    assert outcomes["rejected"] > 2500


def test_random_nested_filters_match_python_boolean_logic() -> None:
    rng = random.Random(7)
    atoms = [
        "firstName eq 'Maria'",
        "startswith(lastName, 'o''b')",
        "substringof('RI', firstName)",
        "registrationDate ge 2025-01-01",
        "isAdmin eq true",
        "state eq null",
    ]
    truth = {atom: matches(atom) for atom in atoms}
    assert set(truth.values()) == {True, False}

    def build(depth: int) -> tuple[str, bool]:
        if depth == 0 or rng.random() < 0.3:
            atom = rng.choice(atoms)
            return atom, truth[atom]
        (left, left_value), (right, right_value) = build(depth - 1), build(depth - 1)
        if rng.random() < 0.5:
            return f"({left} and {right})", left_value and right_value
        return f"({left} or {right})", left_value or right_value

    for _ in range(300):
        text, expected = build(5)
        assert matches(text) is expected
