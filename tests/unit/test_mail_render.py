"""Email templates: the 14 defaults, APIM placeholders, escaping, and what check() refuses."""

import re
import xml.etree.ElementTree as ET
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from chalicelib.mail.render import (
    MAX_SUBJECT_CHARS,
    RenderedEmail,
    TemplateError,
    check,
    clean_subject,
    human_utc,
    render,
    text_from_html,
    to_jinja,
)
from chalicelib.mail.templates import (
    TEMPLATE_NAMES,
    EmailTemplate,
    TemplateParameter,
    canonical_name,
    default_template,
    templates_dir,
)

LINK_TEMPLATES = {
    "inviteUserNotificationMessage",
    "confirmSignUpIdentityDefault",
    "passwordResetIdentityDefault",
    "emailChangeIdentityDefault",
}
# The contract's pattern for parameter names and descriptions.
PARAMETER_PATTERN = re.compile(r"^[A-Za-z0-9-._]+$")


def sample_values(template: EmailTemplate) -> dict[str, str]:
    values = {p.name: f"{p.name} value" for p in template.parameters}
    for name in ("ConfirmUrl", "DevPortalUrl"):
        if name in values:
            values[name] = f"https://portal.example.com/{name.lower()}?token=abc&x=1"
    return values


def custom(html: str = "<p>Hi</p>", text: str = "Hi", subject: str = "Hello", **kw):
    names = kw.pop("parameters", ("DevFirstName", "ConfirmUrl", "OrganizationName"))
    return EmailTemplate(
        name="inviteUserNotificationMessage",
        title="Invite user",
        description="test",
        subject=subject,
        html=html,
        text=text,
        parameters=tuple(TemplateParameter(n, n, n) for n in names),
    )


def problems_of(template: EmailTemplate, **kw) -> list[str]:
    with pytest.raises(TemplateError) as caught:
        check(template, **kw)
    assert caught.value.problems
    return caught.value.problems


# --- the default set -------------------------------------------------------------------------


def test_there_are_the_fourteen_apim_names():
    assert len(TEMPLATE_NAMES) == 14 == len(set(TEMPLATE_NAMES))
    assert "inviteUserNotificationMessage" in TEMPLATE_NAMES
    assert all(name[0].islower() for name in TEMPLATE_NAMES)


@pytest.mark.parametrize("name", TEMPLATE_NAMES)
def test_every_default_passes_check_and_renders(name):
    template = default_template(name)
    assert template.name == name
    assert template.title and template.description
    require = ["ConfirmUrl"] if name in LINK_TEMPLATES else []
    check(template, require=require)

    mail = render(template, sample_values(template))

    assert isinstance(mail, RenderedEmail)
    assert mail.html.strip() and mail.text.strip() and mail.subject
    assert "\r" not in mail.subject and "\n" not in mail.subject
    assert "{{" not in mail.html + mail.text + mail.subject
    assert "OrganizationName value" in mail.text
    assert '<html lang="en"' in mail.html
    # Inline styles only: no external resources, no images.
    assert not re.search(r"<(img|link|script|style)\b|src=|url\(", mail.html, re.I)
    link = "ConfirmUrl" if name in LINK_TEMPLATES else "DevPortalUrl"
    url = sample_values(template)[link]
    assert url in mail.text
    assert f'href="{url.replace("&", "&amp;")}"' in mail.html


@pytest.mark.parametrize("name", TEMPLATE_NAMES)
def test_default_html_is_well_formed_xml_as_apim_requires(name):
    ET.fromstring(default_template(name).html)


@pytest.mark.parametrize("name", TEMPLATE_NAMES)
def test_default_parameters_fit_the_contract(name):
    for p in default_template(name).parameters:
        assert PARAMETER_PATTERN.match(p.name) and len(p.name) <= 256
        assert PARAMETER_PATTERN.match(p.description) and len(p.description) <= 256
        assert 1 <= len(p.title) <= 4096


@pytest.mark.parametrize("name", sorted(LINK_TEMPLATES))
def test_link_templates_show_the_expiry(name):
    template = default_template(name)
    assert "ExpiresAt" in {p.name for p in template.parameters}
    values = sample_values(template) | {"ExpiresAt": "Sunday 30 November 2025, 14:05 UTC"}
    mail = render(template, values)
    assert "30 November 2025, 14:05 UTC" in mail.html
    assert "30 November 2025, 14:05 UTC" in mail.text


def test_the_invitation_says_who_invites_what_the_link_does_and_until_when():
    template = default_template("inviteUserNotificationMessage")
    values = sample_values(template) | {"OrganizationName": "Contoso", "ExpiresAt": "1 Dec"}
    mail = render(template, values)
    assert mail.subject == "You are invited to join the Contoso developer network"
    for part in (mail.html, mail.text):
        assert "Contoso has invited you" in part
        assert "password" in part and "activates your account" in part
        assert "until 1 Dec" in part


def test_the_admin_reset_mail_never_carries_a_password():
    template = default_template("passwordResetByAdminNotificationMessage")
    assert "DevPassword" not in {p.name for p in template.parameters}
    for source in (template.subject, template.html, template.text):
        assert "DevPassword" not in source
    mail = render(template, sample_values(template))
    text = " ".join(mail.text.split())
    assert "password of your" in text and "does not contain the password" in text
    assert "contact the OrganizationName value administrators" in text
    assert "Forgot your password?" in text


def test_subjects_are_apims_defaults():
    subject = default_template("accountClosedDeveloper").subject
    assert subject == "Thank you for using the {{ OrganizationName }} API!"
    assert default_template("passwordResetByAdminNotificationMessage").subject == (
        "Your password was reset"
    )


def test_canonical_name_ignores_case():
    assert canonical_name("NewIssueNotificationMessage") == "newIssueNotificationMessage"
    assert canonical_name("INVITEUSERNOTIFICATIONMESSAGE") == "inviteUserNotificationMessage"
    assert canonical_name("inviteUser") is None
    assert canonical_name("") is None


def test_default_template_takes_any_case_and_refuses_unknown_names():
    assert default_template("InviteUserNotificationMessage").name == "inviteUserNotificationMessage"
    with pytest.raises(KeyError):
        default_template("nope")


def test_templates_dir_is_the_top_level_folder():
    assert (templates_dir() / "email" / "inviteUserNotificationMessage.html").is_file()


def test_human_utc():
    moment = datetime(2025, 11, 30, 14, 5, tzinfo=UTC)
    assert human_utc(moment) == "Sunday 30 November 2025, 14:05 UTC"


# --- APIM placeholders ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("Hi $DevFirstName!", "Hi {{ DevFirstName }}!"),
        ("Hi ${DevFirstName}x", "Hi {{ DevFirstName }}x"),
        ("$A_b9 and $b", "{{ A_b9 }} and {{ b }}"),
        ("costs $$5", "costs $5"),
        ("costs $$Name", "costs $Name"),
        ("costs $5", "costs $5"),
        ("a $ b, $_x, ${ Name }", "a $ b, $_x, ${ Name }"),
        ("{{ '$Name' }} $Name", "{{ '$Name' }} {{ Name }}"),
        ("{% if x == '$Y' %}$Z{% endif %}", "{% if x == '$Y' %}{{ Z }}{% endif %}"),
        ("{# $Note #}", "{# $Note #}"),
        ("{% raw %}$Keep{% endraw %}", "{% raw %}$Keep{% endraw %}"),
        (
            '<a href="$ConfirmUrl">$ConfirmUrl.</a>',
            '<a href="{{ ConfirmUrl }}">{{ ConfirmUrl }}.</a>',
        ),
    ],
)
def test_to_jinja(source, expected):
    assert to_jinja(source) == expected


def test_a_template_pasted_from_apim_renders():
    template = custom(
        subject="You are invited to join the $OrganizationName developer network",
        html='<p>Dear $DevFirstName,</p><p><a href="$ConfirmUrl">claim it</a>: ${ConfirmUrl}</p>',
        text="Dear $DevFirstName, claim it: $ConfirmUrl",
    )
    check(template, require=["ConfirmUrl"])
    values = {
        "DevFirstName": "Ada",
        "ConfirmUrl": "https://p.example/confirm?t=1&u=2",
        "OrganizationName": "Contoso",
    }
    mail = render(template, values)
    assert mail.subject == "You are invited to join the Contoso developer network"
    assert mail.html == (
        '<p>Dear Ada,</p><p><a href="https://p.example/confirm?t=1&amp;u=2">claim it</a>: '
        "https://p.example/confirm?t=1&amp;u=2</p>"
    )
    assert mail.text == "Dear Ada, claim it: https://p.example/confirm?t=1&u=2"


def test_velocity_directives_are_reported():
    template = custom(html="<p>#if ($DevFirstName)Hi#end</p>", text="#foreach ($a in $B)x#end")
    found = " ".join(problems_of(template))
    assert "#if" in found and "#foreach" in found


# --- escaping and headers -------------------------------------------------------------------


def test_values_are_escaped_in_html_but_not_in_text():
    template = custom(html="<p>{{ DevFirstName }}</p>", text="{{ DevFirstName }}")
    mail = render(template, {"DevFirstName": "<script>alert(1)</script>"})
    assert mail.html == "<p>&lt;script&gt;alert(1)&lt;/script&gt;</p>"
    assert mail.text == "<script>alert(1)</script>"


def test_a_default_template_escapes_names():
    template = default_template("inviteUserNotificationMessage")
    values = sample_values(template) | {"DevFirstName": '<script>alert("x")</script>'}
    mail = render(template, values)
    assert "<script>" not in mail.html
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in mail.html


def test_subject_loses_cr_lf():
    template = custom(subject="Welcome {{ DevFirstName }}")
    mail = render(template, {"DevFirstName": "Ada\r\nBcc: x@y"})
    assert mail.subject == "Welcome Ada Bcc: x@y"
    assert "\r" not in mail.subject and "\n" not in mail.subject


def test_subject_is_not_html_escaped_and_has_a_length_cap():
    template = custom(subject="{{ DevFirstName }}")
    assert render(template, {"DevFirstName": "Tom & Jerry <3"}).subject == "Tom & Jerry <3"
    long = render(template, {"DevFirstName": "x" * 2000}).subject
    assert len(long) == MAX_SUBJECT_CHARS


def test_clean_subject_removes_every_control_character():
    assert clean_subject(" a\tb\x00c\u2028d\x85e \n") == "a b c d e"


def test_a_missing_value_is_a_template_error():
    template = custom(html="<p>{{ DevFirstName }} {{ DevLastName }}</p>")
    with pytest.raises(TemplateError) as caught:
        render(template, {"DevFirstName": "Ada"})
    assert "DevLastName" in str(caught.value)


def test_runtime_errors_become_template_errors():
    with pytest.raises(TemplateError):
        render(custom(html="{{ 1 / 0 }}"), {})
    with pytest.raises(TemplateError):
        render(custom(html="{{ 'x' * 100000000 }}"), {})
    with pytest.raises(TemplateError):
        render(custom(html="{{ 9 ** 99999999 }}"), {})


# --- check() --------------------------------------------------------------------------------


def test_check_reports_unknown_parameters():
    template = custom(
        html="<p>{{ DevFirstName }} {{ Password }}</p>", text="$Secret", subject="${Bogus}"
    )
    found = problems_of(template)
    assert any("Password" in p and "HTML body" in p for p in found)
    assert any("Secret" in p and "text body" in p for p in found)
    assert any("Bogus" in p and "subject" in p for p in found)
    assert not any("DevFirstName" in p for p in found)


def test_names_set_inside_the_template_are_not_unknown():
    template = custom(html="{% set n = DevFirstName %}{% for c in n %}{{ loop.index }}{% endfor %}")
    check(template)


def test_check_requires_confirm_url_in_both_bodies():
    template = custom(html='<a href="{{ ConfirmUrl }}">go</a>', text="no link here")
    found = problems_of(template, require=["ConfirmUrl"])
    assert found == ["The text body must use the parameter ConfirmUrl."]
    template = custom(html="<p>no link</p>", text="no link")
    assert len(problems_of(template, require=["ConfirmUrl"])) == 2


def test_check_reports_syntax_errors_with_the_line():
    template = custom(html="<p>\n{{ DevFirstName </p>", text="{% if %}")
    found = problems_of(template)
    assert any(p.startswith("Syntax error in the HTML body, line 2") for p in found)
    assert any(p.startswith("Syntax error in the text body, line 1") for p in found)
    with pytest.raises(TemplateError):
        render(template, {"DevFirstName": "Ada"})


def test_check_reports_unknown_filters():
    template = custom(html="{{ DevFirstName | nosuchfilter }}{{ DevFirstName is nosuchtest }}")
    found = problems_of(template)
    assert any("nosuchfilter" in p for p in found)
    with pytest.raises(TemplateError):
        render(template, {"DevFirstName": "Ada"})


def test_check_refuses_templates_over_100_kb():
    template = custom(html="<p>" + "x" * (100 * 1024) + "</p>")
    assert any("100 KB" in p for p in problems_of(template))
    check(custom(html="x" * (100 * 1024 - 20)))


@pytest.mark.parametrize(
    "expression",
    [
        "{{ ''.__class__.__mro__ }}",
        "{{ cycler.__init__.__globals__ }}",
        "{{ x.__class__ }}",
        "{{ x['__class__'] }}",
        "{{ x | attr('__class__') }}",
        "{{ [x] | map(attribute='__class__') | list }}",
        "{{ x.upper.__self__ }}",
        "{{ _private }}",
        "{% if x.__class__ %}y{% endif %}",
        "{% include 'other.html' %}",
        "{{ lipsum() }}",
        "{{ range(10) | list }}",
        "{{ '{0.__class__}'.format(x) }}",
    ],
)
def test_sandbox_break_outs_are_refused_by_check_and_render(expression):
    template = custom(html=f"<p>{expression}</p>", parameters=("x",))
    problems_of(template)
    with pytest.raises(TemplateError):
        render(template, {"x": "value"})


def test_a_refused_template_renders_nothing_even_partly():
    template = custom(html="{{ x }}{{ x.__class__ }}", parameters=("x",))
    with pytest.raises(TemplateError) as caught:
        render(template, {"x": "value"})
    assert "__class__" in str(caught.value)


def test_mutating_methods_are_refused():
    template = custom(html="{% set l = [1] %}{{ l.append(2) }}{{ l }}", parameters=())
    assert any("append" in p for p in problems_of(template))


def test_check_lists_every_problem_at_once():
    template = custom(
        html="{{ Unknown }}{{ x.__class__ }}", text="{% if %}", subject="$Other", parameters=("x",)
    )
    assert len(problems_of(template, require=["ConfirmUrl"])) >= 4


def test_template_error_is_a_value_error():
    assert issubclass(TemplateError, ValueError)


# --- text from HTML -------------------------------------------------------------------------


def test_text_from_html_keeps_paragraphs_and_link_targets():
    html = (
        "<html><head><title>T</title><style>p{}</style></head><body>"
        '<p>Dear $DevFirstName,</p><p>Please <a href="$ConfirmUrl">accept</a> &amp; enjoy.<br/>'
        'Portal: <a href="{{ DevPortalUrl }}">{{ DevPortalUrl }}</a></p><ul><li>one</li></ul>'
        "</body></html>"
    )
    assert text_from_html(html) == (
        "Dear $DevFirstName,\n\nPlease accept: $ConfirmUrl & enjoy.\n"
        "Portal: {{ DevPortalUrl }}\n\n- one\n"
    )


def test_a_text_made_from_html_passes_the_required_link_check():
    html = '<p>Dear $DevFirstName, <a href="$ConfirmUrl">accept</a></p>'
    template = replace(custom(html=html), text=text_from_html(html))
    check(template, require=["ConfirmUrl"])
