"""Jinja2's immutable sandbox for admin-edited templates, with a work budget and size caps."""

from __future__ import annotations

import re
import string
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from functools import wraps
from typing import Any, cast

from jinja2 import StrictUndefined, nodes, pass_context, pass_eval_context
from jinja2.exceptions import TemplateRuntimeError
from jinja2.runtime import Context, markup_join, str_join
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.visitor import NodeTransformer

# One value (a string, a list, a number) may not outgrow these; nor may one rendered part.
MAX_CHARS = 1024 * 1024
# Lists are sorted, grouped and compared item by item in Python, in one call the clock cannot
# interrupt: 10,000 items keep the slowest (groupby, sort) to a few tens of milliseconds.
MAX_ITEMS = 10_000
# The same for the text filters that work word by word in Python (title, striptags, urlize...).
MAX_SLOW_FILTER_CHARS = 100_000
# Python refuses to print an int of more than 4300 digits (about 14,300 bits) anyway.
MAX_INT_BITS = 16_384
# What one email may cost, in steps: a loop iteration costs the size of its body, a call or an
# operator one step, and every value an operation produces or reads costs a step per item or
# per 32 characters, so the budget also bounds the memory a render can fill (3.2 M characters).
MAX_STEPS = 100_000
CHARS_PER_STEP = 32
# A clock stops what the steps do not price (e.g. comparing long strings in a loop). It counts
# the CPU time of the rendering thread: what the template costs, not how busy the machine is.
MAX_SECONDS = 0.5
# Reading that clock is a system call (about 2 µs), so it is read every so many steps.
_CLOCK_EVERY = 512

_STEP_FILTER = "_steps"
_CHARGE_FILTER = "_charge"
_CONCAT_FILTER = "_concat"
_PRINTF = re.compile(
    r"%(?:\((?P<key>[^)]*)\))?[#0 +\-]*(?P<width>\*|\d+)?(?:\.(?P<precision>\*|\d+))?"
    r"[hlL]?(?P<type>[diouxXeEfFgGcrsab%])"
)
_SPEC_NUMBERS = re.compile(r"\d+")
# Filters that have no use in an email and multiply what they are given (indentation per level).
_REMOVED_FILTERS = ("pprint",)
# Filters that go through a text in Python, word by word or character by character.
_SLOW_TEXT_FILTERS = frozenset(
    {"capitalize", "striptags", "title", "urlencode", "urlize", "wordcount", "wordwrap"}
)
# Filters that go through their input item by item in Python (a text: character by character).
_ITERATING_FILTERS = frozenset(
    {"batch", "dictsort", "groupby", "items", "join", "list", "map", "max", "min", "reject"}
    | {"rejectattr", "select", "selectattr", "slice", "sort", "sum", "unique"}
)
# Filters that read a list without writing it out as text (the others may call str() on it).
_READERS = frozenset(
    {"attr", "batch", "count", "d", "default", "dictsort", "first", "groupby", "items", "join"}
    | {"last", "length", "list", "map", "max", "min", "random", "reject", "rejectattr"}
    | {"reverse", "select", "selectattr", "slice", "sort", "sum", "unique"}
)

_budget: ContextVar[Budget | None] = ContextVar("email_template_budget", default=None)


class LimitExceeded(TemplateRuntimeError):
    """A template went past the work budget or a size cap; the message says which."""


class Budget:
    """What one email's render may still spend, counted in steps and in wall-clock time."""

    __slots__ = ("deadline", "limit", "next_clock", "seconds", "steps")

    def __init__(self, limit: int = MAX_STEPS, seconds: float = MAX_SECONDS) -> None:
        self.limit = limit
        self.steps = 0
        self.seconds = seconds
        self.deadline = time.thread_time() + seconds
        self.next_clock = _CLOCK_EVERY

    def charge(self, steps: int) -> None:
        self.steps += steps
        if self.steps > self.limit:
            raise LimitExceeded(
                f"it needs more than {self.limit} steps (loop iterations, calls, and "
                f"{CHARS_PER_STEP} characters produced or read per step), which is too much "
                "work for one email."
            )
        if self.steps >= self.next_clock:
            self.next_clock = self.steps + _CLOCK_EVERY
            if time.thread_time() > self.deadline:
                raise LimitExceeded(
                    f"it used more than {self.seconds} s of CPU after {self.steps} steps, which "
                    "is too long for one email."
                )


@contextmanager
def budget(limit: int = MAX_STEPS, seconds: float = MAX_SECONDS) -> Iterator[Budget]:
    """Run renders inside one budget (one email: subject and both bodies).

    Inside a budget already open, the renders draw on that one instead: the caller who opened
    it decides what all of them together may cost.
    """
    current = _budget.get()
    if current is not None:
        yield current
        return
    spent = Budget(limit, seconds)
    token = _budget.set(spent)
    try:
        yield spent
    finally:
        _budget.reset(token)


def _charge(steps: int) -> None:
    # No budget while compiling: constant folding runs filters once, on the template's own text.
    current = _budget.get()
    if current is not None:
        current.charge(steps)


def _length(value: Any) -> int:
    if isinstance(value, str | bytes | bytearray | list | tuple | dict | set | frozenset):
        return len(value)
    return 0


def _cost(*values: Any) -> int:
    """Steps for handling these values: one, plus one per item and per 32 characters."""
    chars = items = 0
    for value in values:
        if isinstance(value, str | bytes | bytearray):
            chars += len(value)
        elif isinstance(value, list | tuple | dict | set | frozenset):
            items += len(value)
    return 1 + items + chars // CHARS_PER_STEP


def _too_large(size: int, what: str = "characters") -> LimitExceeded:
    limit = MAX_ITEMS if what == "items" else MAX_CHARS
    return LimitExceeded(f"it would make a value of {size} {what}; at most {limit} are allowed.")


def _refuse_over(size: int, what: str = "characters") -> None:
    if size > (MAX_ITEMS if what == "items" else MAX_CHARS):
        raise _too_large(size, what)


def measured(value: Any) -> Any:
    """A value an operation produced, after checking its size; its cost is charged."""
    if isinstance(value, str | bytes | bytearray):
        _refuse_over(len(value))
    elif isinstance(value, list | tuple | dict | set | frozenset):
        _refuse_over(len(value), "items")
    elif isinstance(value, int) and value.bit_length() > MAX_INT_BITS:
        raise LimitExceeded(f"it would make a number of more than {MAX_INT_BITS} bits.")
    _charge(_cost(value))
    return value


def _bounded_list(values: Iterator[Any]) -> list[Any]:
    """An iterator's items, counted one step each, refused past MAX_ITEMS."""
    items = []
    for item in values:
        _charge(1)
        items.append(item)
        if len(items) > MAX_ITEMS:
            raise _too_large(len(items), "items")
    return items


def _text_length(value: Any) -> int:
    """How long ``str(value)`` is at most, found without writing it out."""
    if isinstance(value, str | bytes | bytearray):
        return len(value)
    return _written_size(value, MAX_CHARS)


def _written_size(value: Any, limit: int) -> int:
    # str([big] * 100000) repeats one string 100000 times: the walk stops past the limit.
    if isinstance(value, str):
        return len(value) + 2 if value.isprintable() else 10 * len(value) + 2
    if isinstance(value, bytes | bytearray):
        return 4 * len(value) + 14
    if isinstance(value, bool) or value is None:
        return 5
    if isinstance(value, int):
        return value.bit_length() // 3 + 2
    if isinstance(value, Mapping):
        size = 2
        for key, item in value.items():
            size += _written_size(key, limit) + _written_size(item, limit) + 4
            if size > limit:
                break
        return size
    if isinstance(value, list | tuple | set | frozenset):
        size = 2
        for item in value:
            size += _written_size(item, limit) + 2
            if size > limit:
                break
        return size
    # Numbers, generators, macros, loops: written out in a line.
    return 64


# --- predictions: how large a result would be, computed before it is allocated ----------------


def _int_arg(value: Any) -> int:
    return value if isinstance(value, int) else 0


def _largest(values: list[Any], quoted: bool) -> int:
    # repr() may write a character as \\U0001f600: ten times longer.
    return max((_text_length(v) * (10 if quoted else 1) for v in values), default=0)


def _printf_size(template: str | bytes, args: Any) -> int:
    """An upper bound of ``template % args``; ``*`` widths are refused (they hide the size)."""
    text = template.decode("latin-1") if isinstance(template, bytes) else template
    if isinstance(args, Mapping):
        values = list(args.values())
    elif isinstance(args, tuple):
        values = list(args)
    else:
        values = [args]
    fields = list(_PRINTF.finditer(text))
    largest = _largest(values, any(f.group("type") in "ra" for f in fields))
    size = len(text)
    for field in fields:
        if "*" in (field.group("width") or "") + (field.group("precision") or ""):
            raise LimitExceeded("a '*' width in a % format is not allowed in email templates.")
        size += int(field.group("width") or 0) + int(field.group("precision") or 0) + largest
        if size > MAX_CHARS:
            break
    return size


def _format_size(template: str, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> int:
    """An upper bound of ``template.format(...)``: every field may be the largest argument."""
    fields = list(string.Formatter().parse(template))
    quoted = any(conversion in ("r", "a") for *_, conversion in fields)
    # A field may also name an attribute of an argument, e.g. a method: a short text.
    largest = _largest([*args, *kwargs.values()], quoted) + 64
    size = 0
    for literal, field, spec, _conversion in fields:
        size += len(literal)
        if field is None:
            continue
        if "{" in (spec or ""):
            raise LimitExceeded("a nested field in a format spec is not allowed in templates.")
        size += largest + sum(int(n) for n in _SPEC_NUMBERS.findall(spec or ""))
        if size > MAX_CHARS:
            break
    return size


def _join_size(separator: str | bytes, items: list[Any]) -> int:
    size = len(separator) * max(len(items) - 1, 0)
    for item in items:
        size += _text_length(item)
        if size > MAX_CHARS:
            break
    return size


def _replace_size(s: str | bytes, old: Any, new: Any, count: Any = -1) -> int:
    if not isinstance(old, str | bytes) or not isinstance(new, str | bytes):
        return len(s)
    pattern: Any = old
    found = len(s) + 1 if not old else s.count(pattern)
    if isinstance(count, int) and count >= 0:
        found = min(found, count)
    return len(s) + found * max(len(new) - len(old), 0)


def _translate_size(s: str | bytes, table: Any, *_: Any) -> int:
    longest = 1
    if isinstance(table, Mapping):
        longest = max((_length(v) for v in table.values()), default=1) or 1
    return len(s) * longest


def _method_size(owner: str | bytes, name: str, args: tuple[Any, ...], kwargs: Any) -> int | None:
    """The size bound of the str or bytes methods whose result can outgrow their input."""
    if name in {"center", "ljust", "rjust", "zfill"}:
        return max(len(owner), _int_arg(args[0] if args else kwargs.get("width")))
    if name == "expandtabs":
        tab: Any = "\t" if isinstance(owner, str) else b"\t"
        return len(owner) + owner.count(tab) * _int_arg(args[0] if args else kwargs.get("tabsize"))
    if name == "replace" and len(args) >= 2:
        return _replace_size(owner, *args[:3])
    if name == "translate" and args:
        return _translate_size(owner, args[0])
    if name == "format" and isinstance(owner, str):
        return _format_size(owner, args, kwargs)
    if name == "format_map" and isinstance(owner, str) and args:
        return _format_size(owner, (), args[0] if isinstance(args[0], Mapping) else {})
    return None


def _filter_checks() -> dict[str, Callable[..., None]]:
    """Size checks of the built-in filters that can multiply what they are given; each takes
    the filter's own arguments and raises LimitExceeded before the filter allocates."""

    def center(value: Any, width: Any = 80) -> None:
        _refuse_over(max(_text_length(value), _int_arg(width)))

    def indent(s: Any, width: Any = 4, first: Any = False, blank: Any = False) -> None:
        text = str(s)
        step = len(width) if isinstance(width, str) else _int_arg(width)
        _refuse_over(len(text) + (text.count("\n") + 1) * step)

    def wordwrap(
        s: Any,
        width: Any = 79,
        break_long_words: Any = True,
        wrapstring: Any = None,
        break_on_hyphens: Any = True,
    ) -> None:
        # At worst one line per character, each ended by the wrap string.
        text = str(s)
        _refuse_over(len(text) + (len(text) + 1) * len(str(wrapstring or "\n")))

    def join(value: Any, d: Any = "", attribute: Any = None) -> None:
        items = list(value) if isinstance(value, str | list | tuple | Mapping | set) else []
        # An attribute of an item is never longer than the item written out, plus a method's name.
        slack = 0 if attribute is None else 64 * len(items)
        _refuse_over(_join_size(str(d), items) + slack)

    def replace(s: Any, old: Any, new: Any, count: Any = None) -> None:
        _refuse_over(_replace_size(str(s), str(old), str(new), -1 if count is None else count))

    def format_(value: Any, *args: Any, **kwargs: Any) -> None:
        _refuse_over(_printf_size(str(value), kwargs or args))

    def batch(value: Any, linecount: Any, fill_with: Any = None) -> None:
        _refuse_over(_length(value) + _int_arg(linecount), "items")

    def slice_(value: Any, slices: Any, fill_with: Any = None) -> None:
        _refuse_over(_length(value) + _int_arg(slices), "items")

    def round_(value: Any, precision: Any = 0, method: Any = "common") -> None:
        # round(5, -10**9) computes 10**(10**9) before it answers.
        if abs(_int_arg(precision)) > MAX_INT_BITS // 4:
            raise LimitExceeded(f"round's precision may be at most {MAX_INT_BITS // 4} digits.")

    def urlize(value: Any, *args: Any, **kwargs: Any) -> None:
        extra = sum(len(v) for v in (*args, *kwargs.values()) if isinstance(v, str))
        text = str(value)
        _refuse_over(3 * len(text) + (len(text) // 4 + 1) * (40 + extra))

    def tojson(value: Any, indent: Any = None) -> None:
        if indent is not None:
            raise LimitExceeded("tojson's indent is not available in email templates.")

    def sum_(iterable: Any, attribute: Any = None, start: Any = 0) -> None:
        if not isinstance(start, int | float):
            raise LimitExceeded("sum adds numbers only in email templates.")

    return {
        "center": center,
        "indent": indent,
        "wordwrap": wordwrap,
        "join": join,
        "replace": replace,
        "format": format_,
        "batch": batch,
        "slice": slice_,
        "round": round_,
        "urlize": urlize,
        "tojson": tojson,
        "sum": sum_,
    }


def _bounded(
    function: Callable[..., Any],
    check: Callable[..., None] | None = None,
    *,
    writes: bool = False,
    slow_text: bool = False,
    iterates: bool = False,
) -> Callable[..., Any]:
    """A filter or test that checks its input first, then the size of what it returns.

    ``writes``: it turns its arguments into text, so a list's written size counts.
    ``slow_text``: it goes through its text in Python, so the text is capped lower.
    ``iterates``: it goes through its input item by item (a text: character by character).
    """
    skip = 1 if getattr(function, "jinja_pass_arg", None) is not None else 0

    @wraps(function)  # keeps jinja_pass_arg: the context still comes first
    def bounded(*args: Any, **kwargs: Any) -> Any:
        if len(args) > skip and isinstance(args[skip], Iterator):
            # A generator (map, select...) is counted as it is read.
            args = (*args[:skip], _bounded_list(args[skip]), *args[skip + 1 :])
        values = (*args[skip:], *kwargs.values())
        _charge(_cost(*values))
        if writes:
            for value in values:
                if not isinstance(value, str | bytes):
                    _refuse_over(_text_length(value))
        if slow_text and len(args) > skip and _text_length(args[skip]) > MAX_SLOW_FILTER_CHARS:
            raise LimitExceeded(
                f"{function.__name__.removeprefix('do_')} takes at most "
                f"{MAX_SLOW_FILTER_CHARS} characters in email templates."
            )
        if iterates and len(args) > skip:
            _refuse_over(_length(args[skip]), "items")
        if check is not None:
            check(*args[skip:], **kwargs)
        return measured(function(*args, **kwargs))

    return bounded


@pass_context
def _steps(context: Context, values: Any, weight: int) -> Iterator[Any]:
    """A loop's iterable, charged ``weight`` (the static size of the loop body) per item."""
    for value in values:
        _charge(weight)
        yield value


@pass_context
def _charge_filter(context: Context, weight: int) -> str:
    """Charged at the start of a macro, a call block or a block, whose bodies run per call."""
    _charge(weight)
    return ""


@pass_eval_context
def _concat(eval_context: Any, parts: list[Any]) -> str:
    """``a ~ b ~ c``, refused before joining when the result would be too large."""
    size = 0
    for part in parts:
        size += _text_length(part)
        _refuse_over(size)
    _charge(1 + size // CHARS_PER_STEP)
    return markup_join(parts) if eval_context.autoescape else str_join(parts)


def _weight(body: list[nodes.Node]) -> int:
    """The steps one run of a body costs at most, counted on the tree: its nodes and text."""
    weight = 1
    for top in body:
        for node in (top, *top.find_all(nodes.Node)):
            weight += 1
            if isinstance(node, nodes.TemplateData):
                weight += len(node.data) // CHARS_PER_STEP
            elif isinstance(node, nodes.Const) and isinstance(node.value, str):
                weight += len(node.value) // CHARS_PER_STEP
    return weight


class _Metering(NodeTransformer):
    """Rewrites a parsed template so that loops, macros and ``~`` pay for what they do."""

    # generic_visit rewrites the children in place and returns the node itself.

    def visit_For(self, node: nodes.For) -> nodes.Node:
        self.generic_visit(node)
        weight = _weight(node.body) + (_weight([node.test]) if node.test else 0)
        node.iter = nodes.Filter(
            node.iter, _STEP_FILTER, [nodes.Const(weight)], [], None, None, lineno=node.lineno
        )
        return node

    def _charged(self, node: nodes.Macro | nodes.CallBlock | nodes.Block) -> nodes.Node:
        self.generic_visit(node)
        charge = nodes.Filter(
            nodes.Const(_weight(node.body)), _CHARGE_FILTER, [], [], None, None, lineno=node.lineno
        )
        node.body.insert(0, nodes.ExprStmt(charge, lineno=node.lineno))
        return node

    visit_Macro = _charged
    visit_CallBlock = _charged
    visit_Block = _charged

    def visit_Concat(self, node: nodes.Concat) -> nodes.Node:
        self.generic_visit(node)
        return nodes.Filter(
            nodes.List(node.nodes, lineno=node.lineno),
            _CONCAT_FILTER,
            [],
            [],
            None,
            None,
            lineno=node.lineno,
        )


def metered(tree: nodes.Template, environment: Any) -> nodes.Template:
    """The same template, paying for loops, macro calls and concatenation from the budget."""
    _Metering().visit(tree)
    tree.set_environment(environment)
    return tree


class EmailSandbox(ImmutableSandboxedEnvironment):
    """The immutable sandbox, where operators, calls, filters and output draw on the budget."""

    intercepted_binops = frozenset({"*", "**", "+", "%"})

    def __init__(self, autoescape: bool) -> None:
        super().__init__(
            autoescape=autoescape,
            undefined=StrictUndefined,
            auto_reload=False,
            finalize=_finalize,
        )
        # A template sees its parameters and nothing else (no range, cycler, lipsum, namespace...).
        self.globals.clear()
        checks = _filter_checks()
        for name in _REMOVED_FILTERS:
            self.filters.pop(name, None)
        self.filters = {
            name: _bounded(
                function,
                checks.get(name),
                writes=name not in _READERS,
                slow_text=name in _SLOW_TEXT_FILTERS,
                iterates=name in _ITERATING_FILTERS,
            )
            for name, function in self.filters.items()
        }
        tests = cast(dict[str, Callable[..., Any]], self.tests)
        self.tests = {name: _bounded(test) for name, test in tests.items()}
        self.filters[_STEP_FILTER] = _steps
        self.filters[_CHARGE_FILTER] = _charge_filter
        self.filters[_CONCAT_FILTER] = _concat

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        _charge(_cost(left, right))
        _refuse_over(*_binop_size(operator, left, right))
        return measured(super().call_binop(context, operator, left, right))

    def getitem(self, obj: Any, argument: Any) -> Any:
        _charge(1)  # also what rejectattr, sort(attribute=...) and map(attribute=...) do per item
        value = super().getitem(obj, argument)
        # A slice copies; an index or a key only points.
        return measured(value) if isinstance(argument, slice) else value

    def getattr(self, obj: Any, attribute: str) -> Any:
        _charge(1)
        return super().getattr(obj, attribute)

    def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        _charge(_cost(*args, *kwargs.values()))
        method = getattr(__obj, "__wrapped__", __obj)  # str.format, as the sandbox wraps it
        owner = getattr(method, "__self__", None)
        name = getattr(method, "__name__", "")
        if isinstance(owner, str | bytes):
            if name == "join" and args:
                parts = _bounded_list(iter(args[0]))
                _refuse_over(_join_size(owner, parts))
                args = (parts, *args[1:])
            else:
                size = _method_size(owner, name, args, kwargs)
                if size is not None:
                    _refuse_over(size)
        elif isinstance(owner, int) and name == "to_bytes":
            _refuse_over(_int_arg(args[0] if args else kwargs.get("length", 1)))
        return measured(super().call(__context, __obj, *args, **kwargs))


def _finalize(value: Any) -> Any:
    """Every ``{{ }}`` passes here: its size is charged (captured output builds up in memory)."""
    size = _text_length(value)
    _refuse_over(size)
    _charge(1 + size // CHARS_PER_STEP)
    return value


def _binop_size(operator: str, left: Any, right: Any) -> tuple[int, str]:
    """The size of ``left <operator> right`` before it is computed, and what it counts."""
    sequences = (str, bytes, list, tuple)
    if operator == "*":
        for sequence, count in ((left, right), (right, left)):
            if isinstance(sequence, sequences) and isinstance(count, int):
                what = "characters" if isinstance(sequence, str | bytes) else "items"
                return len(sequence) * max(count, 0), what
        if isinstance(left, int) and isinstance(right, int):
            return _bits(left.bit_length() + right.bit_length())
    elif operator == "**":
        if isinstance(left, int) and isinstance(right, int) and right > 0:
            return _bits(left.bit_length() * right)
    elif operator == "+":
        if isinstance(left, sequences) and isinstance(right, sequences):
            what = "characters" if isinstance(left, str | bytes) else "items"
            return len(left) + len(right), what
    elif operator == "%" and isinstance(left, str | bytes):
        return _printf_size(left, right), "characters"
    return 0, "characters"


def _bits(bits: int) -> tuple[int, str]:
    if bits > MAX_INT_BITS:
        raise LimitExceeded(f"it would make a number of more than {MAX_INT_BITS} bits.")
    return 0, "characters"
