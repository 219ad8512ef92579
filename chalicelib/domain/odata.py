"""Parse and evaluate the OData `$filter` subset that API Management accepts on list operations."""

from __future__ import annotations

import operator
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from enum import Enum
from typing import Any, Literal

FieldKind = Literal["string", "datetime", "enum", "bool"]

ALL_OPS: frozenset[str] = frozenset({"eq", "ne", "gt", "ge", "lt", "le"})
ALL_FUNCTIONS: frozenset[str] = frozenset({"startswith", "endswith", "contains", "substringof"})
EQ_ONLY: frozenset[str] = frozenset({"eq"})

MAX_FILTER_LENGTH = 2000
MAX_NESTING_DEPTH = 32

_KINDS: frozenset[str] = frozenset({"string", "datetime", "enum", "bool"})
_KIND_NAMES: dict[str, str] = {
    "string": "string",
    "datetime": "date-time",
    "enum": "enum",
    "bool": "boolean",
}
# The literal is checked against the field kind at parse time, so both sides compare.
_OPERATORS: dict[str, Callable[[Any, Any], bool]] = {
    "eq": operator.eq,
    "ne": operator.ne,
    "gt": operator.gt,
    "ge": operator.ge,
    "lt": operator.lt,
    "le": operator.le,
}
_OPS_TEXT = ", ".join(sorted(ALL_OPS))
_FUNCTIONS_TEXT = ", ".join(sorted(ALL_FUNCTIONS))


class FilterError(ValueError):
    """A ``$filter`` expression that cannot be parsed or is not allowed for the resource."""


@dataclass(frozen=True)
class FieldSpec:
    """How one record field may be filtered."""

    kind: FieldKind
    ops: frozenset[str]
    functions: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        # Callers may pass plain sets; freezing them keeps the spec hashable and immutable.
        object.__setattr__(self, "ops", frozenset(self.ops))
        object.__setattr__(self, "functions", frozenset(self.functions))
        if self.kind not in _KINDS:
            raise ValueError(f"unknown field kind {self.kind!r}")
        if not self.ops <= ALL_OPS:
            raise ValueError(f"unknown operators {sorted(self.ops - ALL_OPS)}")
        if not self.functions <= ALL_FUNCTIONS:
            raise ValueError(f"unknown functions {sorted(self.functions - ALL_FUNCTIONS)}")


# --- expression tree -------------------------------------------------------------------------


class Expr(ABC):
    """A parsed filter expression."""

    @abstractmethod
    def evaluate(self, record: Mapping[str, object]) -> bool:
        """Whether the record matches; fields missing from the record count as None."""


@dataclass(frozen=True)
class Comparison(Expr):
    """``field op literal``; ``value`` is None for a comparison with ``null``."""

    field: str
    op: str
    value: object
    kind: FieldKind

    def evaluate(self, record: Mapping[str, object]) -> bool:
        actual = record.get(self.field)
        if self.value is None:
            # The parser only lets eq and ne reach here with null.
            return (actual is None) == (self.op == "eq")
        if actual is None:
            return False
        comparable = _comparable(self.kind, actual)
        if comparable is None:
            return False
        expected = self.value.casefold() if isinstance(self.value, str) else self.value
        return _OPERATORS[self.op](comparable, expected)


@dataclass(frozen=True)
class FunctionCall(Expr):
    """``startswith``/``endswith``/``contains``/``substringof`` on a string or enum field."""

    function: str
    field: str
    value: str

    def evaluate(self, record: Mapping[str, object]) -> bool:
        actual = record.get(self.field)
        if actual is None:
            return False
        haystack = _as_text(actual).casefold()
        needle = self.value.casefold()
        if self.function == "startswith":
            return haystack.startswith(needle)
        if self.function == "endswith":
            return haystack.endswith(needle)
        return needle in haystack


@dataclass(frozen=True)
class And(Expr):
    """All operands match."""

    operands: tuple[Expr, ...]

    def evaluate(self, record: Mapping[str, object]) -> bool:
        return all(operand.evaluate(record) for operand in self.operands)


@dataclass(frozen=True)
class Or(Expr):
    """At least one operand matches."""

    operands: tuple[Expr, ...]

    def evaluate(self, record: Mapping[str, object]) -> bool:
        return any(operand.evaluate(record) for operand in self.operands)


def _as_text(value: object) -> str:
    if isinstance(value, Enum):
        value = value.value
    return value if isinstance(value, str) else str(value)


def _comparable(kind: FieldKind, actual: object) -> object | None:
    """The record value in the form the literal was normalised to; None if it cannot compare."""
    if kind in ("string", "enum"):
        # APIM's backing store compares strings case-insensitively.
        return _as_text(actual).casefold()
    if kind == "datetime":
        if not isinstance(actual, datetime):
            return None
        # A naive value would make the comparison raise; stored times are UTC.
        return actual if actual.tzinfo is not None else actual.replace(tzinfo=UTC)
    return actual if isinstance(actual, bool) else None


# --- public entry points ---------------------------------------------------------------------


def parse_filter(text: str, fields: Mapping[str, FieldSpec]) -> Expr:
    """Parse ``text`` against the filterable ``fields``; raises FilterError for any bad input.

    A ValueError that is not a FilterError means ``fields`` itself is inconsistent (two keys
    equal ignoring case), which is a programming error rather than a bad request.
    """
    by_folded_name: dict[str, str] = {}
    for name in fields:
        folded = name.casefold()
        if folded in by_folded_name:
            raise ValueError(f"fields {by_folded_name[folded]!r} and {name!r} differ only by case")
        by_folded_name[folded] = name
    if len(text) > MAX_FILTER_LENGTH:
        raise FilterError(
            f"filter is too long ({len(text)} characters; the maximum is {MAX_FILTER_LENGTH})"
        )
    if not text.strip():
        raise FilterError("filter is empty")
    tokens = _tokenize(text)
    return _Parser(tokens, fields, by_folded_name).parse()


def equality_value(expr: Expr, field: str) -> object | None:
    """The literal in a ``field eq <literal>`` that must hold for ``expr`` to match, else None.

    Looks through nested ``and`` operands but not into ``or``, where the comparison would not be
    required. Lets callers turn such a filter into a direct lookup.
    """
    if isinstance(expr, Comparison):
        if expr.op == "eq" and expr.field.casefold() == field.casefold():
            return expr.value
        return None
    if isinstance(expr, And):
        for operand in expr.operands:
            found = equality_value(operand, field)
            if found is not None:
                return found
    return None


# --- tokenizer -------------------------------------------------------------------------------

_TokenKind = Literal["lparen", "rparen", "comma", "ident", "string", "integer", "datetime", "end"]


@dataclass(frozen=True)
class _Token:
    kind: _TokenKind
    text: str
    value: object
    column: int

    def describe(self) -> str:
        if self.kind == "end":
            return "end of filter"
        text = self.text if len(self.text) <= 40 else self.text[:37] + "..."
        # Quoted literals already carry their quotes; wrapping them again reads as ''x''.
        shown = text if "'" in self.text else f"'{text}'"
        return f"{shown} at column {self.column}"


# ASCII classes on purpose: \d and str.isdigit accept digits from other scripts.
_IDENT_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_INTEGER_RE = re.compile(r"-?[0-9]+")
_DATETIME_RE = re.compile(
    r"(?P<year>[0-9]{4})-(?P<month>[0-9]{2})-(?P<day>[0-9]{2})"
    r"(?:[Tt](?P<hour>[0-9]{2}):(?P<minute>[0-9]{2})"
    r"(?::(?P<second>[0-9]{2})(?:\.(?P<fraction>[0-9]+))?)?"
    r"(?P<tz>[Zz]|[+-][0-9]{2}:[0-9]{2})?)?"
)
# Characters that would glue onto a number or date-time, making it malformed.
_LITERAL_TAIL_RE = re.compile(r"[A-Za-z0-9_:.+\-]*")
_TYPED_PREFIXES = frozenset({"datetime", "datetimeoffset"})
_PUNCTUATION: dict[str, _TokenKind] = {"(": "lparen", ")": "rparen", ",": "comma"}


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    pos = 0
    while pos < len(text):
        char = text[pos]
        column = pos + 1
        if char.isspace():
            pos += 1
        elif char in _PUNCTUATION:
            tokens.append(_Token(_PUNCTUATION[char], char, None, column))
            pos += 1
        elif char == "'":
            value, end = _read_string(text, pos)
            tokens.append(_Token("string", text[pos:end], value, column))
            pos = end
        elif ident := _IDENT_RE.match(text, pos):
            word = ident.group()
            end = ident.end()
            if word.casefold() in _TYPED_PREFIXES and text.startswith("'", end):
                raw, end = _read_string(text, end)
                source = text[pos:end]
                parsed = _parse_datetime(raw)
                if parsed is None:
                    raise FilterError(f"invalid date-time literal {source!r} at column {column}")
                tokens.append(_Token("datetime", source, parsed, column))
            else:
                tokens.append(_Token("ident", word, None, column))
            pos = end
        elif char == "-" or "0" <= char <= "9":
            tokens.append(_read_number_or_datetime(text, pos))
            pos += len(tokens[-1].text)
        else:
            raise FilterError(f"unexpected character {char!r} at column {column}")
    tokens.append(_Token("end", "", None, len(text) + 1))
    return tokens


def _read_string(text: str, start: int) -> tuple[str, int]:
    """The unescaped content of the quoted string at ``start`` and the index just past it."""
    parts: list[str] = []
    pos = start + 1
    while True:
        close = text.find("'", pos)
        if close == -1:
            raise FilterError(f"unterminated string literal starting at column {start + 1}")
        parts.append(text[pos:close])
        if text.startswith("'", close + 1):
            # OData escapes a quote inside a string by doubling it.
            parts.append("'")
            pos = close + 2
            continue
        return "".join(parts), close + 1


def _read_number_or_datetime(text: str, start: int) -> _Token:
    column = start + 1
    tail = _LITERAL_TAIL_RE.match(text, start)
    tail_end = tail.end() if tail else start + 1
    source = text[start:tail_end]
    match = _DATETIME_RE.match(text, start)
    if match and match.end() == tail_end:
        parsed = _datetime_from_match(match)
        if parsed is None:
            raise FilterError(f"invalid date-time {source!r} at column {column}")
        return _Token("datetime", source, parsed, column)
    match = _INTEGER_RE.match(text, start)
    if match and match.end() == tail_end:
        return _Token("integer", source, int(source), column)
    raise FilterError(f"malformed literal {source!r} at column {column}")


def _parse_datetime(text: str) -> datetime | None:
    match = _DATETIME_RE.fullmatch(text)
    return _datetime_from_match(match) if match else None


def _datetime_from_match(match: re.Match[str]) -> datetime | None:
    """An aware datetime; values without an offset are taken as UTC, as APIM stores them."""
    parts = match.groupdict()
    # Beyond microseconds (e.g. .NET's 7-digit ticks) precision is dropped, not rejected.
    fraction = (parts["fraction"] or "")[:6].ljust(6, "0")
    tz = UTC
    offset = parts["tz"]
    if offset and offset not in ("Z", "z"):
        hours, minutes = int(offset[1:3]), int(offset[4:6])
        if hours > 23 or minutes > 59:
            return None
        delta = timedelta(hours=hours, minutes=minutes)
        tz = timezone(-delta if offset[0] == "-" else delta)
    try:
        return datetime(
            int(parts["year"]),
            int(parts["month"]),
            int(parts["day"]),
            int(parts["hour"] or 0),
            int(parts["minute"] or 0),
            int(parts["second"] or 0),
            int(fraction),
            tzinfo=tz,
        )
    except ValueError:
        return None


# --- parser ----------------------------------------------------------------------------------

_LiteralKind = Literal["string", "integer", "datetime", "bool", "null"]
_LITERAL_NAMES: dict[str, str] = {
    "string": "string",
    "integer": "integer",
    "datetime": "date-time",
    "bool": "boolean",
    "null": "null",
}
_EXPECTED_LITERAL: dict[str, _LiteralKind] = {
    "string": "string",
    "enum": "string",
    "datetime": "datetime",
    "bool": "bool",
}


class _Parser:
    """Recursive descent: ``or`` of ``and`` of primaries, so ``and`` binds tighter."""

    def __init__(
        self,
        tokens: list[_Token],
        fields: Mapping[str, FieldSpec],
        by_folded_name: Mapping[str, str],
    ) -> None:
        self._tokens = tokens
        self._pos = 0
        self._depth = 0
        self._fields = fields
        self._by_folded_name = by_folded_name

    def parse(self) -> Expr:
        expr = self._or()
        token = self._peek()
        if token.kind == "rparen":
            raise FilterError(f"unbalanced ')' at column {token.column}: no matching '('")
        if token.kind != "end":
            raise FilterError(
                f"unexpected {token.describe()}: expected 'and', 'or' or the end of the filter"
            )
        return expr

    def _peek(self) -> _Token:
        return self._tokens[self._pos]

    def _advance(self) -> _Token:
        token = self._tokens[self._pos]
        # The trailing end token is sticky so lookahead past it is always safe.
        if token.kind != "end":
            self._pos += 1
        return token

    def _at_keyword(self, keyword: str) -> bool:
        token = self._peek()
        return token.kind == "ident" and token.text.casefold() == keyword

    def _or(self) -> Expr:
        operands = [self._and()]
        while self._at_keyword("or"):
            self._advance()
            operands.append(self._and())
        return operands[0] if len(operands) == 1 else Or(tuple(operands))

    def _and(self) -> Expr:
        operands = [self._primary()]
        while self._at_keyword("and"):
            self._advance()
            operands.append(self._primary())
        return operands[0] if len(operands) == 1 else And(tuple(operands))

    def _primary(self) -> Expr:
        token = self._advance()
        if token.kind == "lparen":
            return self._group(token)
        if token.kind == "ident":
            word = token.text.casefold()
            if word in ("and", "or"):
                raise FilterError(f"missing operand before '{token.text}' at column {token.column}")
            if word == "not":
                raise FilterError(f"'not' (column {token.column}) is not supported")
            if self._peek().kind == "lparen":
                return self._function(token)
            if word in ("true", "false", "null"):
                raise FilterError(
                    f"expected a field name but found literal {token.describe()}; "
                    "write comparisons as 'field op value'"
                )
            return self._comparison(token)
        if token.kind == "end":
            raise FilterError(
                f"unexpected end of filter at column {token.column}: "
                "expected a comparison, a function call or '('"
            )
        raise FilterError(
            f"expected a comparison, a function call or '(' but found {token.describe()}"
        )

    def _group(self, opening: _Token) -> Expr:
        self._depth += 1
        if self._depth > MAX_NESTING_DEPTH:
            raise FilterError(
                f"parentheses nested too deeply at column {opening.column} "
                f"(the maximum is {MAX_NESTING_DEPTH})"
            )
        inner = self._or()
        closing = self._advance()
        if closing.kind != "rparen":
            raise FilterError(
                f"missing ')' for the '(' at column {opening.column}; found {closing.describe()}"
            )
        self._depth -= 1
        return inner

    def _function(self, name_token: _Token) -> Expr:
        name = name_token.text.casefold()
        if name not in ALL_FUNCTIONS:
            raise FilterError(
                f"unknown function '{name_token.text}' at column {name_token.column}; "
                f"supported functions: {_FUNCTIONS_TEXT}"
            )
        self._advance()
        # substringof keeps OData v3's argument order: the value comes first.
        if name == "substringof":
            value_token = self._function_value(name, "first")
            self._expect("comma", "','", name)
            key = self._function_field(name, name_token)
        else:
            key = self._function_field(name, name_token)
            self._expect("comma", "','", name)
            value_token = self._function_value(name, "second")
        self._expect("rparen", "')'", name)
        return FunctionCall(name, key, str(value_token.value))

    def _function_field(self, name: str, name_token: _Token) -> str:
        token = self._advance()
        if token.kind != "ident":
            raise FilterError(
                f"function '{name}' expects a field name but found {token.describe()}"
            )
        key, spec = self._resolve_field(token)
        if name not in spec.functions:
            allowed = ", ".join(sorted(spec.functions)) or "none"
            raise FilterError(
                f"function '{name}' is not allowed on field '{key}' "
                f"(column {name_token.column}); allowed functions: {allowed}"
            )
        if spec.kind not in ("string", "enum"):
            raise FilterError(
                f"function '{name}' applies only to string fields; "
                f"'{key}' is a {_KIND_NAMES[spec.kind]} field"
            )
        return key

    def _function_value(self, name: str, position: str) -> _Token:
        token = self._advance()
        if token.kind != "string":
            hint = " (substringof takes the value first)" if name == "substringof" else ""
            raise FilterError(
                f"function '{name}' expects a quoted string as its {position} argument "
                f"but found {token.describe()}{hint}"
            )
        return token

    def _expect(self, kind: _TokenKind, shown: str, function: str) -> None:
        token = self._advance()
        if token.kind != kind:
            raise FilterError(
                f"expected {shown} in the call to '{function}' but found {token.describe()}"
            )

    def _resolve_field(self, token: _Token) -> tuple[str, FieldSpec]:
        key = self._by_folded_name.get(token.text.casefold())
        if key is None:
            allowed = ", ".join(sorted(self._fields, key=str.casefold)) or "none"
            raise FilterError(
                f"unknown field '{token.text}' at column {token.column}; "
                f"fields that can be filtered: {allowed}"
            )
        return key, self._fields[key]

    def _comparison(self, field_token: _Token) -> Expr:
        key, spec = self._resolve_field(field_token)
        op_token = self._advance()
        op = op_token.text.casefold()
        if op_token.kind != "ident" or op not in ALL_OPS:
            raise FilterError(
                f"expected a comparison operator ({_OPS_TEXT}) after field '{key}' "
                f"but found {op_token.describe()}"
            )
        if op not in spec.ops:
            allowed = ", ".join(sorted(spec.ops)) or "none"
            raise FilterError(
                f"operator '{op}' is not allowed on field '{key}' (column {op_token.column}); "
                f"allowed operators: {allowed}"
            )
        literal_token = self._advance()
        literal_kind, value = self._literal(literal_token, op)
        value = self._check_type(key, spec, op, literal_token, literal_kind, value)
        return Comparison(key, op, value, spec.kind)

    def _literal(self, token: _Token, op: str) -> tuple[_LiteralKind, object]:
        if token.kind == "string":
            return "string", token.value
        if token.kind == "integer":
            return "integer", token.value
        if token.kind == "datetime":
            return "datetime", token.value
        if token.kind == "ident":
            word = token.text.casefold()
            if word in ("true", "false"):
                return "bool", word == "true"
            if word == "null":
                return "null", None
        raise FilterError(f"expected a literal value after '{op}' but found {token.describe()}")

    def _check_type(
        self,
        key: str,
        spec: FieldSpec,
        op: str,
        token: _Token,
        literal_kind: _LiteralKind,
        value: object,
    ) -> object:
        if literal_kind == "null":
            if op not in ("eq", "ne"):
                raise FilterError(
                    f"null at column {token.column} can only be compared with eq or ne "
                    f"(field '{key}' uses '{op}')"
                )
            return None
        if spec.kind == "datetime" and literal_kind == "string":
            parsed = _parse_datetime(str(value))
            if parsed is not None:
                return parsed
            raise FilterError(
                f"field '{key}' is a date-time field but {token.describe()} "
                "is not an ISO 8601 date-time"
            )
        expected = _EXPECTED_LITERAL[spec.kind]
        if literal_kind != expected:
            raise FilterError(
                f"field '{key}' is a {_KIND_NAMES[spec.kind]} field and needs a "
                f"{_LITERAL_NAMES[expected]} value, but {token.describe()} "
                f"is a {_LITERAL_NAMES[literal_kind]}"
            )
        return value
