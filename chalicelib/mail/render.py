"""Rendering email templates in Jinja2's sandbox, with APIM's ``$Name`` placeholders accepted."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache, lru_cache
from typing import TYPE_CHECKING, Any

from chalicelib.mail.templates import EmailTemplate

if TYPE_CHECKING:
    from jinja2 import Environment, Template, nodes

MAX_TEMPLATE_BYTES = 100 * 1024
MAX_SUBJECT_CHARS = 998
# A template may loop and repeat; this bounds what one part may grow to (memory, SES's 10 MB).
# What one email may cost in time and memory is bounded in sandbox.py.
MAX_RENDERED_CHARS = 1024 * 1024

# What the immutable sandbox refuses to call on lists, sets, dicts and deques.
_MUTATING_METHODS = frozenset(
    {
        "add",
        "append",
        "appendleft",
        "clear",
        "difference_update",
        "discard",
        "extend",
        "extendleft",
        "insert",
        "intersection_update",
        "pop",
        "popitem",
        "popleft",
        "remove",
        "reverse",
        "rotate",
        "setdefault",
        "sort",
        "symmetric_difference_update",
        "update",
    }
)

_PARTS = ("subject", "html", "text")
_PART_LABELS = {"subject": "subject", "html": "HTML body", "text": "text body"}

_PLACEHOLDER = re.compile(
    r"""
    (?P<keep>
        \{%-?\s*raw\s*-?%\}.*?\{%-?\s*endraw\s*-?%\}   # raw blocks stay raw
      | \{\{.*?\}\} | \{%.*?%\} | \{\#.*?\#\}          # existing Jinja2 tags stay as they are
    )
    | (?P<dollar>\$\$)
    | \$\{(?P<braced>[A-Za-z][A-Za-z0-9_]*)\}
    | \$(?P<bare>[A-Za-z][A-Za-z0-9_]*)
    """,
    re.VERBOSE | re.DOTALL,
)
# APIM's Velocity logic (#if, #foreach...) has no automatic translation; say so instead of
# sending the directive as text.
_VELOCITY_DIRECTIVE = re.compile(r"#\{?(if|elseif|foreach|set)\}?\s*\(")
_JINJA_FOR = {"foreach": "for", "elseif": "elif"}
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")
_SPACES = re.compile(r"\s+")


@dataclass(frozen=True)
class RenderedEmail:
    """What a template produced: a one-line subject and the two bodies."""

    subject: str
    html: str
    text: str


class TemplateError(ValueError):
    """A template that cannot be used; ``problems`` lists every reason, readable by an admin."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def to_jinja(source: str) -> str:
    """Turn APIM's Velocity placeholders (``$Name``, ``${Name}``) into ``{{ Name }}``.

    ``$$`` is a literal ``$``; a ``$`` before anything else stays as it is, and text inside
    existing ``{{ }}``, ``{% %}``, ``{# #}`` and raw blocks is not touched.
    """

    def replace(match: re.Match[str]) -> str:
        if match.group("keep") is not None:
            return match.group("keep")
        if match.group("dollar") is not None:
            return "$"
        return "{{ " + (match.group("braced") or match.group("bare")) + " }}"

    return _PLACEHOLDER.sub(replace, source)


def clean_subject(subject: str) -> str:
    """One header-safe line: control characters (CR, LF...) become spaces, at most 998 chars."""
    line = _SPACES.sub(" ", _CONTROL.sub(" ", subject)).strip()
    return line[:MAX_SUBJECT_CHARS].rstrip()


def human_utc(moment: datetime) -> str:
    """A time as the templates show it, e.g. ``Sunday 30 November 2025, 14:05 UTC``."""
    utc = moment.astimezone(UTC)
    return f"{utc:%A} {utc.day} {utc:%B %Y, %H:%M} UTC"


def text_from_html(source: str) -> str:
    """A text body for an HTML template source, for callers that only get HTML (APIM's ``body``).

    Tags go, paragraphs and line breaks stay, and every link keeps its target, so that
    ``<a href="{{ ConfirmUrl }}">Accept</a>`` becomes ``Accept: {{ ConfirmUrl }}``.
    """
    from html.parser import HTMLParser

    blocks = {"p", "div", "h1", "h2", "h3", "h4", "h5", "h6", "ul", "ol", "blockquote", "table"}
    blocks |= {"tr", "section", "article", "header", "footer", "hr", "pre"}
    hidden = {"head", "title", "style", "script"}

    class _Text(HTMLParser):
        def __init__(self) -> None:
            super().__init__(convert_charrefs=True)
            self.out: list[str] = []
            self.hidden = 0
            self.links: list[tuple[str, int]] = []

        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            if tag in hidden:
                self.hidden += 1
            elif tag in blocks:
                self.out.append("\n\n")
            elif tag == "br":
                self.out.append("\n")
            elif tag == "li":
                self.out.append("\n- ")
            elif tag == "a":
                self.links.append((dict(attrs).get("href") or "", len(self.out)))

        def handle_endtag(self, tag: str) -> None:
            if tag in hidden:
                self.hidden = max(0, self.hidden - 1)
            elif tag in blocks:
                self.out.append("\n\n")
            elif tag == "a" and self.links:
                href, start = self.links.pop()
                label = " ".join("".join(self.out[start:]).split())
                if href and not href.startswith(("#", "mailto:")) and label != href.strip():
                    self.out.append(f": {href}" if label else href)

        def handle_data(self, data: str) -> None:
            if not self.hidden:
                self.out.append(re.sub(r"[ \t\r\n]+", " ", data))

    parser = _Text()
    parser.feed(source)
    parser.close()
    text = re.sub(r" *\n *", "\n", "".join(parser.out))
    return re.sub(r"\n{3,}", "\n\n", text).strip() + "\n"


def render(template: EmailTemplate, values: Mapping[str, str]) -> RenderedEmail:
    """Fill a template; every value is escaped in the HTML body.

    Raises TemplateError for any problem of the template: syntax, a name without a value,
    an attempt to leave the sandbox, output too large, too much work (sandbox.py's budget,
    shared by the subject and both bodies, so one email costs at most that much).
    """
    from chalicelib.mail.sandbox import budget

    context = dict(values)
    with budget():
        subject = _render_part("subject", template.subject, context)
        html = _render_part("html", template.html, context)
        text = _render_part("text", template.text, context)
    return RenderedEmail(subject=clean_subject(subject), html=html, text=text)


def check(template: EmailTemplate, *, require: Iterable[str] = ()) -> None:
    """Validate a template before it is saved; TemplateError lists every problem found.

    Checks: size, syntax, sandbox escapes, names not among the template's parameters, required
    parameters (e.g. ConfirmUrl) present in both bodies, and a trial render with sample values.
    """
    from jinja2 import TemplateSyntaxError, meta

    problems: list[str] = []
    size = sum(len(getattr(template, part).encode("utf-8")) for part in _PARTS)
    if size > MAX_TEMPLATE_BYTES:
        problems.append(
            f"The template is {size / 1024:.1f} KB; subject and bodies together may have at most "
            f"{MAX_TEMPLATE_BYTES // 1024} KB."
        )
    known = {p.name for p in template.parameters}
    used: dict[str, set[str]] = {}
    for part in _PARTS:
        label = _PART_LABELS[part]
        source = getattr(template, part)
        for directive in sorted(set(_VELOCITY_DIRECTIVE.findall(source))):
            problems.append(
                f"The {label} uses the Velocity directive #{directive}, which is not supported; "
                f"use Jinja2's {{% {_JINJA_FOR.get(directive, directive)} %}} instead."
            )
        try:
            tree = _environment(part == "html").parse(to_jinja(source))
            # Compiles too, which is where unknown filters and tests are found.
            names = meta.find_undeclared_variables(tree)
            unsafe = _unsafe(tree)
        except TemplateSyntaxError as exc:
            problems.append(f"Syntax error in the {label}, line {exc.lineno}: {exc.message}")
            continue
        except (RecursionError, SyntaxError):
            problems.append(_too_deep(label))
            continue
        problems.extend(f"The {label} {reason}" for reason in unsafe)
        used[part] = names
        problems.extend(
            f"The {label} uses {name}{_on_lines(tree, name)}, which is not a parameter of "
            "this template."
            for name in sorted(names - known)
        )
    for name in dict.fromkeys(require):
        for part in ("html", "text"):
            if part in used and name not in used[part]:
                problems.append(f"The {_PART_LABELS[part]} must use the parameter {name}.")
    if not problems:
        # What passes the static checks must also render: catches runtime refusals such as
        # a format string reaching for an attribute, or a division by zero.
        samples = {name: _sample_value(name) for name in known}
        try:
            render(template, samples)
        except TemplateError as exc:
            problems.extend(exc.problems)
    if problems:
        raise TemplateError(problems)


def _on_lines(tree: nodes.Template, name: str) -> str:
    """`` on line 3`` or `` on lines 3, 7``: where a template uses a name."""
    from jinja2 import nodes

    lines = sorted({n.lineno for n in tree.find_all(nodes.Name) if n.name == name})
    if not lines:
        return ""
    shown = ", ".join(str(n) for n in lines[:5]) + (" and more" if len(lines) > 5 else "")
    return f" on line{'s' if len(lines) > 1 else ''} {shown}"


def _sample_value(name: str) -> str:
    if name.endswith("Url"):
        return "https://example.com/sample"
    return f"Sample {name}"


def _render_part(part: str, source: str, context: dict[str, Any]) -> str:
    from jinja2 import TemplateError as JinjaError

    label = _PART_LABELS[part]
    compiled = _compile(part == "html", to_jinja(source), label)
    chunks: list[str] = []
    size = 0
    try:
        # Streaming lets a runaway loop stop at the limit instead of filling memory.
        for chunk in compiled.generate(context):
            size += len(chunk)
            if size > MAX_RENDERED_CHARS:
                break
            chunks.append(chunk)
    except JinjaError as exc:
        raise TemplateError([f"The {label} cannot be rendered: {exc.message}"]) from exc
    except RecursionError as exc:
        reason = f"The {label} cannot be rendered: it calls itself too deeply."
        raise TemplateError([reason]) from exc
    except Exception as exc:
        # Python errors of the template's own expressions, e.g. {{ 1 / 0 }}, {{ "a" + 1 }} or
        # {{ "text" | dictsort }} (AttributeError): whatever the template does is its problem.
        raise TemplateError([f"The {label} cannot be rendered: {exc}"]) from exc
    if size > MAX_RENDERED_CHARS:
        raise TemplateError([f"The {label} renders to more than {MAX_RENDERED_CHARS} characters."])
    return "".join(chunks)


@lru_cache(maxsize=256)
def _compile(autoescape: bool, source: str, label: str) -> Template:
    # Cached per source: a warm container sends the same few templates again and again.
    from jinja2 import TemplateSyntaxError

    from chalicelib.mail.sandbox import metered

    env = _environment(autoescape)
    try:
        tree = env.parse(source)
        # The sandbox already refuses these at run time; refusing them up front means a
        # template that tries is never rendered at all, not even partly.
        problems = [f"The {label} {reason}" for reason in _unsafe(tree)]
        if not problems:
            return env.from_string(metered(tree, env))
    except TemplateSyntaxError as exc:
        # Also raised by compiling: unknown filters and tests.
        raise TemplateError(
            [f"Syntax error in the {label}, line {exc.lineno}: {exc.message}"]
        ) from exc
    except (RecursionError, SyntaxError) as exc:
        raise TemplateError([_too_deep(label)]) from exc
    raise TemplateError(problems)


def _too_deep(label: str) -> str:
    # Parsing and compiling recurse once per level of nesting, e.g. ((((...)))) or 1 + 1 + ...;
    # Python refuses generated code nested over 100 levels (or 20 loops) with a SyntaxError.
    return f"The {label} nests tags or expressions too deeply."


@cache
def _environment(autoescape: bool) -> Environment:
    """One sandbox per kind (HTML escapes, subject and text do not), built on first use."""
    from chalicelib.mail.sandbox import EmailSandbox

    return EmailSandbox(autoescape)


def _unsafe(tree: nodes.Template) -> list[str]:
    """Sandbox escape attempts found in a parsed template, as reasons."""
    from jinja2 import nodes
    from jinja2.sandbox import (
        UNSAFE_ASYNC_GENERATOR_ATTRIBUTES,
        UNSAFE_COROUTINE_ATTRIBUTES,
        UNSAFE_FUNCTION_ATTRIBUTES,
        UNSAFE_GENERATOR_ATTRIBUTES,
        UNSAFE_METHOD_ATTRIBUTES,
    )

    unsafe_attributes = (
        UNSAFE_FUNCTION_ATTRIBUTES
        | UNSAFE_METHOD_ATTRIBUTES
        | UNSAFE_GENERATOR_ATTRIBUTES
        | UNSAFE_COROUTINE_ATTRIBUTES
        | UNSAFE_ASYNC_GENERATOR_ATTRIBUTES
        | {"mro"}
    )

    def forbidden(attribute: str) -> bool:
        return any(
            part.startswith("_") or part in unsafe_attributes for part in attribute.split(".")
        )

    reasons: list[str] = []
    for node in tree.find_all((nodes.Name, nodes.Getattr, nodes.Getitem, nodes.Call)):
        if isinstance(node, nodes.Name) and node.name.startswith("_"):
            reasons.append(f"uses the name {node.name}, which is not allowed.")
        elif isinstance(node, nodes.Getattr) and forbidden(node.attr):
            reasons.append(f"reads the attribute {node.attr}, which is not allowed.")
        elif (
            isinstance(node, nodes.Getitem)
            and isinstance(node.arg, nodes.Const)
            and isinstance(node.arg.value, str)
            and forbidden(node.arg.value)
        ):
            reasons.append(f"reads the item {node.arg.value}, which is not allowed.")
        elif (
            isinstance(node, nodes.Call)
            and isinstance(node.node, nodes.Getattr)
            and node.node.attr in _MUTATING_METHODS
        ):
            reasons.append(f"calls the method {node.node.attr}, which is not allowed.")
    for node in tree.find_all((nodes.Filter, nodes.Test)):
        # attr, map, selectattr, sort... take attribute names as strings.
        arguments = [*node.args, *(kw.value for kw in node.kwargs)]
        for arg in arguments:
            if isinstance(arg, nodes.Const) and isinstance(arg.value, str) and forbidden(arg.value):
                reasons.append(f"passes {arg.value} to {node.name}, which is not allowed.")
    for loop in tree.find_all(nodes.For):
        if loop.recursive:
            # loop(...) would run the body again on any list, outside the loop's own count.
            reasons.append("uses a recursive loop, which email templates cannot use.")
    tags: dict[type[nodes.Node], str] = {
        nodes.Extends: "extends",
        nodes.Include: "include",
        nodes.Import: "import",
    }
    tags[nodes.FromImport] = "from ... import"
    for tagged in tree.find_all(tuple(tags)):
        reasons.append(f"uses {{% {tags[type(tagged)]} %}}, which email templates cannot use.")
    return list(dict.fromkeys(reasons))
