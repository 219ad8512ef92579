"""Admin-edited templates cannot hang or exhaust a worker: a work budget and size caps."""

import tracemalloc

import pytest

from chalicelib.mail.render import TemplateError, check, render
from chalicelib.mail.sandbox import MAX_CHARS, MAX_ITEMS, MAX_STEPS, budget
from chalicelib.mail.templates import (
    TEMPLATE_NAMES,
    EmailTemplate,
    TemplateParameter,
    default_template,
)

STEPS = f"more than {MAX_STEPS} steps"
# Each of these kept a thread busy for seconds to minutes (two nested 100,000-step loops: more
# than 5 minutes at 100% CPU), with no output that the output cap could stop.
CPU_BOMBS = [
    "{% for a in 'x'*100000 %}{% for b in 'x'*100000 %}{% endfor %}{% endfor %}",
    "{% for a in 'x'*3000 %}{% for b in 'x'*3000 %}{% endfor %}{% endfor %}",
    "{% set s = 'x'*1000 %}{% for a in s %}{% for b in s %}{% for c in s %}{% endfor %}"
    "{% endfor %}{% endfor %}",
    # A loop whose condition is never true still iterates.
    "{% for a in 'x'*100000 %}{% for b in 'x'*100000 if b == 'y' %}{% endfor %}{% endfor %}",
    # Output captured by {% set %} never reaches the output cap.
    "{% set s = 'x'*100000 %}{% set x %}{% for a in s %}{{ s }}{% endfor %}{% endset %}",
    "{% set s = 'x'*100000 %}{% for a in s %}{% set t = s[1:] %}{% endfor %}",
    "{% macro m(s) %}{% for c in s %}{{ c }}{% endfor %}{% endmacro %}"
    "{% for a in 'x'*100000 %}{{ m('y'*1000) }}{% endfor %}",
    "{% set s = 'x'*10000 %}{{ s|map('center', 1000000)|list|length }}",
]
# Each of these allocated about 1 GB (Lambda has 512 MB) before any check could look at it.
MEMORY_BOMBS = [
    ("{{ 'x'.center(10**9) }}", "1000000000 characters"),
    ("{{ 'x'|center(1000000000) }}", "1000000000 characters"),
    ("{{ '%999999999s' % 'x' }}", "characters"),
    ("{{ '{:>999999999}'.format('x') }}", "characters"),
    ("{{ (1).to_bytes(1000000000, 'big') }}", "1000000000 characters"),
    (
        "{% set a = 'x'*100000 %}{% set b = a~a~a~a~a~a~a~a~a~a %}{% set c = b~b~b~b~b~b~b~b~b~b %}"
        "{% set d = c~c~c~c~c~c~c~c~c~c %}{% set e = d~d~d~d~d~d~d~d~d~d %}{{ e|length }}",
        "characters",
    ),
    ("{% set s = 'x'*100000 %}{{ s.replace('', s) }}", "characters"),
    ("{% set s = 'x'*100000 %}{{ s|replace('', s) }}", "characters"),
    ("{% set s = 'x'*100000 %}{{ s.join(s) }}", "items"),
    ("{% set s = 'x'*100000 %}{{ [s] * 10000 }}", "characters"),
    ("{% set s = 'x'*10000 %}{{ ('{0}'*30000).format(s) }}", "characters"),
    ("{{ [1]|batch(1000000000, 'x')|list }}", "items"),
    ("{% set s = ('x\n'*50000) %}{{ s|indent(1000) }}", "characters"),
]


def template(html: str, subject: str = "Hello", text: str = "Hi") -> EmailTemplate:
    return EmailTemplate(
        name="accountClosedDeveloper",
        title="",
        description="",
        subject=subject,
        html=html,
        text=text,
        parameters=(TemplateParameter("DevFirstName", "", ""),),
    )


def problems_of(html: str) -> str:
    with pytest.raises(TemplateError) as caught:
        check(template(html))
    return " ".join(caught.value.problems)


@pytest.mark.parametrize("bomb", CPU_BOMBS)
def test_a_template_that_works_too_long_is_stopped_by_the_step_budget(bomb):
    assert STEPS in problems_of(bomb)
    with pytest.raises(TemplateError, match=STEPS):
        render(template(bomb), {"DevFirstName": "Ada"})


@pytest.mark.parametrize(("bomb", "unit"), MEMORY_BOMBS)
def test_a_value_too_large_is_refused_before_it_is_allocated(bomb, unit):
    tracemalloc.start()
    try:
        message = problems_of(bomb)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert "would make a" in message and unit in message, message
    # Less than a single oversized value: the refusal came before the allocation.
    assert peak < 32 * MAX_CHARS, f"{peak / 2**20:.0f} MiB"


def test_a_value_just_under_the_caps_is_fine():
    assert render(template("{{ ('x'*1000).center(1048000)|length }}"), {}).html == "1048000"
    assert render(template(f"{{{{ ('x'*{MAX_ITEMS})|list|length }}}}"), {}).html == str(MAX_ITEMS)


@pytest.mark.parametrize(
    "deep",
    [
        "{{ " + "(" * 3000 + "1" + ")" * 3000 + " }}",
        "{{ " + "[" * 3000 + "1" + "]" * 3000 + " }}",
        "{{ 1" + " + 1" * 20000 + " }}",
        "{% if 1 %}" * 200 + "{% endif %}" * 200,
        "{% for a in 'ab' %}" * 30 + "{% endfor %}" * 30,
    ],
)
def test_nesting_too_deep_for_the_parser_or_python_is_a_template_problem(deep):
    assert "nests tags or expressions too deeply" in problems_of(deep)


@pytest.mark.parametrize(
    "slow",
    [
        "{% set s = 'x '*200000 %}{{ s|wordwrap(1) }}",
        "{% set s = '<a>'*300000 %}{{ s|striptags }}",
        "{% set s = 'x'*1000000 %}{{ s|title }}",
        "{% set s = 'x'*1000000 %}{{ s|reject|list }}",
        "{% set s = 'x'*100000 %}{{ s|sort|first }}",
    ],
)
def test_filters_that_work_item_by_item_in_python_take_bounded_input(slow):
    assert "at most" in problems_of(slow)


def test_a_recursive_loop_is_refused():
    assert "recursive loop" in problems_of(
        "{% for a in 'ab' recursive %}{{ loop('ab') }}{% endfor %}"
    )


def test_a_template_error_of_any_kind_is_a_template_problem():
    assert "cannot be rendered" in problems_of("{{ 'text'|dictsort }}")


def test_subject_and_bodies_share_one_budget():
    loop = "{% for a in 'x'*60000 %}{% endfor %}"
    render(template(loop), {})
    render(template("<p>Hi</p>", subject=loop), {})
    with pytest.raises(TemplateError, match=STEPS):
        render(template(loop, subject=loop), {})


def test_a_clock_stops_what_the_steps_do_not_price():
    # The CPU clock is read every few hundred steps; with no time left, the first reading stops.
    with budget(seconds=0.0), pytest.raises(TemplateError, match="s of CPU after"):
        render(template("{% for a in 'x'*10000 %}{% endfor %}"), {})


@pytest.mark.parametrize("name", TEMPLATE_NAMES)
def test_the_defaults_use_a_tiny_part_of_the_budget(name):
    default = default_template(name)
    values = {p.name: f"{p.name} value" for p in default.parameters}
    with budget() as spent:
        render(default, values)
    assert 0 < spent.steps < MAX_STEPS // 1000
