"""APIM's EmailTemplate operations and the preview, through chalice's test client on moto."""

from urllib.parse import quote, urlsplit

import pytest

from chalicelib.bootstrap import services
from chalicelib.mail.templates import TEMPLATE_NAMES, default_template
from tests.support import error_of, mail_to

INVITE = "inviteUserNotificationMessage"
TEMPLATE_TYPE = "Microsoft.ApiManagement/service/templates"
SENT = [
    "inviteUserNotificationMessage",
    "confirmSignUpIdentityDefault",
    "newDeveloperNotificationMessage",
    "passwordResetIdentityDefault",
    "passwordResetByAdminNotificationMessage",
    "accountClosedDeveloper",
    "emailChangeIdentityDefault",
]
NEEDS_LINK = {
    "inviteUserNotificationMessage",
    "confirmSignUpIdentityDefault",
    "passwordResetIdentityDefault",
    "emailChangeIdentityDefault",
}
# What an exported APIM instance holds for the invitation (Velocity placeholders, XHTML).
APIM_INVITE_BODY = """<!DOCTYPE html >
<html>
  <head />
  <body>
    <h1 style="color:#000505;font-size:18pt;font-family:'Segoe UI'">
      Welcome to <span style="color:#003363">$OrganizationName API portal</span>!
    </h1>
    <p style="font-size:12pt;font-family:'Segoe UI'">Dear $DevFirstName ${DevLastName},</p>
    <p style="font-size:12pt;font-family:'Segoe UI'">Your account has been created. Please follow
      the link below to visit the $OrganizationName developer portal and claim it:</p>
    <p style="font-size:12pt;font-family:'Segoe UI'">
      <a href="$ConfirmUrl">$ConfirmUrl</a>
    </p>
    <p style="font-size:12pt;font-family:'Segoe UI'">Best,</p>
    <p style="font-size:12pt;font-family:'Segoe UI'">The $OrganizationName API Team</p>
  </body>
</html>"""


def pascal(name):
    return name[0].upper() + name[1:]


def names(reply):
    return [v["name"] for v in reply.json["value"]]


def template(**props):
    return {"properties": props}


def invite(api, user_id, first="Ivy", last="Invitee"):
    reply = api.put(
        f"/users/{user_id}",
        {
            "properties": {
                "email": f"{user_id}@example.com",
                "firstName": first,
                "lastName": last,
                "confirmation": "invite",
            }
        },
    )
    assert reply.status == 201, reply.body
    [mail] = mail_to(f"{user_id}@example.com")
    return mail


def refused(reply, target="body"):
    assert reply.status == 400, reply.body
    error = error_of(reply)
    assert error["code"] == "ValidationError"
    assert target in [d["target"] for d in error["details"]], error
    return " ".join(d["message"] for d in error["details"])


# --- reading -----------------------------------------------------------------------------------


def test_list_has_the_14_templates_in_pascal_case_all_default(api):
    reply = api.get("/templates")
    assert reply.status == 200
    assert reply.json["count"] == 14
    assert names(reply) == sorted(pascal(n) for n in TEMPLATE_NAMES)
    first = reply.json["value"][0]
    assert first["id"] == f"{api.base}/templates/AccountClosedDeveloper"
    assert first["type"] == TEMPLATE_TYPE
    assert first["properties"]["isDefault"] is True
    assert {p["name"] for p in first["properties"]["parameters"]} >= {"DevFirstName"}


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("name eq 'inviteUserNotificationMessage'", ["InviteUserNotificationMessage"]),
        ("name eq 'INVITEUSERNOTIFICATIONMESSAGE'", ["InviteUserNotificationMessage"]),
        (
            "startswith(name,'passwordReset')",
            ["PasswordResetByAdminNotificationMessage", "PasswordResetIdentityDefault"],
        ),
        (
            "contains(name,'Identity')",
            [pascal(n) for n in sorted(NEEDS_LINK) if n != "inviteUserNotificationMessage"],
        ),
    ],
)
def test_list_filters_on_name(api, expression, expected):
    reply = api.get("/templates?$filter=" + quote(expression))
    assert reply.status == 200
    assert names(reply) == expected


def test_list_refuses_other_filters(api):
    refused(api.get("/templates?$filter=" + quote("subject eq 'x'")), "$filter")


def test_list_pages(api):
    seen, reply = [], api.get("/templates?$top=5")
    while True:
        assert reply.status == 200
        seen += names(reply)
        if "nextLink" not in reply.json:
            break
        link = urlsplit(reply.json["nextLink"])
        reply = api.get(f"{link.path}?{link.query}", absolute=True, api_version=None)
    assert seen == sorted(pascal(n) for n in TEMPLATE_NAMES)
    assert names(api.get("/templates?$skip=12")) == [
        "RejectDeveloperNotificationMessage",
        "RequestDeveloperNotificationMessage",
    ]


@pytest.mark.wire
@pytest.mark.parametrize(
    "name", [INVITE, "InviteUserNotificationMessage", "INVITEusernotificationmessage"]
)
def test_get_and_head_match_names_ignoring_case(api, name):
    reply = api.get(f"/templates/{name}")
    assert reply.status == 200
    assert reply.json["name"] == "InviteUserNotificationMessage"
    props = reply.json["properties"]
    default = default_template(INVITE)
    assert (props["subject"], props["body"], props["title"]) == (
        default.subject,
        default.html,
        default.title,
    )
    assert props["isDefault"] is True
    head = api.head(f"/templates/{name}")
    assert (head.status, head.etag, head.body) == (200, reply.etag, b"")


@pytest.mark.parametrize("method", ["GET", "HEAD", "PUT", "PATCH", "DELETE"])
def test_a_name_outside_apims_set_is_404(api, method):
    reply = api.call(
        method, "/templates/myOwnTemplate", template(subject="x"), headers={"If-Match": "*"}
    )
    assert reply.status == 404
    if method != "HEAD":
        assert error_of(reply)["code"] == "ResourceNotFound"


def test_preview_of_an_unknown_template_is_404(api):
    assert api.call("POST", "/templates/nope/preview").status == 404


# --- changing ----------------------------------------------------------------------------------


def test_put_customizes_with_201_then_200(api):
    body = '<p>Hello {{ DevFirstName }}, join us: <a href="{{ ConfirmUrl }}">here</a></p>'
    first = api.put(
        f"/templates/{INVITE}", template(subject="Join {{ OrganizationName }}", body=body)
    )
    assert first.status == 201, first.body
    props = first.json["properties"]
    assert (props["subject"], props["body"], props["isDefault"]) == (
        "Join {{ OrganizationName }}",
        body,
        False,
    )
    assert props["title"] == default_template(INVITE).title
    assert first.etag
    second = api.put(f"/templates/{INVITE}", template(subject="Join us"))
    assert second.status == 200
    assert second.json["properties"]["body"] == body
    assert second.etag != first.etag
    got = api.get(f"/templates/{INVITE}")
    assert (got.json, got.etag) == (second.json, second.etag)


@pytest.mark.parametrize("name", TEMPLATE_NAMES)
def test_what_a_get_returns_can_be_put_back_as_it_is(api, name):
    """Tools read a template, change a field and PUT the whole contract back."""
    read = api.get(f"/templates/{name}").json
    reply = api.put(f"/templates/{name}", {"properties": read["properties"]})
    assert reply.status == 201, reply.body
    props = reply.json["properties"]
    assert props["isDefault"] is False
    assert {k: v for k, v in props.items() if k != "isDefault"} == {
        k: v for k, v in read["properties"].items() if k != "isDefault"
    }


def test_put_with_if_match(api):
    default_etag = api.get(f"/templates/{INVITE}").etag
    saved = api.put(
        f"/templates/{INVITE}", template(subject="One"), headers={"If-Match": default_etag}
    )
    assert saved.status == 201
    stale = api.put(
        f"/templates/{INVITE}", template(subject="Two"), headers={"If-Match": default_etag}
    )
    assert stale.status == 412
    assert error_of(stale)["code"] == "PreconditionFailed"
    assert api.get(f"/templates/{INVITE}").json["properties"]["subject"] == "One"


def test_put_keeps_title_description_and_parameters_it_omits_and_takes_those_it_sends(api):
    reply = api.put(
        f"/templates/{INVITE}",
        template(
            title="Invitation",
            description="Sent by hand",
            parameters=[
                {"name": "devfirstname", "title": "First name", "description": "first.name"}
            ],
        ),
    )
    assert reply.status == 201, reply.body
    props = reply.json["properties"]
    assert (props["title"], props["description"]) == ("Invitation", "Sent by hand")
    assert props["parameters"] == [
        {"name": "DevFirstName", "title": "First name", "description": "first.name"}
    ]
    assert props["subject"] == default_template(INVITE).subject


def test_patch_needs_if_match_and_changes_only_what_it_sends(api):
    created = api.put(f"/templates/{INVITE}", template(subject="One"))
    missing = api.patch(f"/templates/{INVITE}", template(subject="Two"))
    refused(missing, "If-Match")
    reply = api.patch(
        f"/templates/{INVITE}", template(title="T2"), headers={"If-Match": created.etag}
    )
    assert reply.status == 200
    assert (reply.json["properties"]["subject"], reply.json["properties"]["title"]) == ("One", "T2")
    stale = api.patch(
        f"/templates/{INVITE}", template(title="T3"), headers={"If-Match": created.etag}
    )
    assert stale.status == 412
    on_default = api.patch(
        "/templates/accountClosedDeveloper", template(subject="Bye"), headers={"If-Match": "*"}
    )
    assert on_default.status == 200
    assert on_default.json["properties"]["isDefault"] is False


def test_delete_needs_if_match_and_resets_to_the_default(api):
    saved = api.put(f"/templates/{INVITE}", template(subject="Custom"))
    refused(api.delete(f"/templates/{INVITE}"), "If-Match")
    assert api.delete(f"/templates/{INVITE}", headers={"If-Match": '"AAAAAAAAAAE="'}).status == 412
    reply = api.delete(f"/templates/{INVITE}", headers={"If-Match": saved.etag})
    assert (reply.status, reply.body) == (204, b"")
    got = api.get(f"/templates/{INVITE}")
    assert got.json["properties"]["isDefault"] is True
    assert got.json["properties"]["subject"] == default_template(INVITE).subject
    assert api.delete(f"/templates/{INVITE}", headers={"If-Match": got.etag}).status == 204


# --- validation --------------------------------------------------------------------------------


def test_a_syntax_error_is_refused_with_its_line(api):
    message = refused(
        api.put(f"/templates/{INVITE}", template(body="<p>{{ ConfirmUrl }}</p>\n<p>{% if %}</p>"))
    )
    assert "Syntax error" in message and "line 2" in message
    assert api.get(f"/templates/{INVITE}").json["properties"]["isDefault"] is True


def test_an_unknown_parameter_is_refused(api):
    message = refused(
        api.put(f"/templates/{INVITE}", template(body="<p>{{ ConfirmUrl }} $DevPassword</p>"))
    )
    assert "DevPassword" in message
    subject = refused(
        api.put(f"/templates/{INVITE}", template(subject="Hi {{ Nobody }}")), "subject"
    )
    assert "Nobody" in subject


def test_an_unknown_name_in_the_parameter_list_is_refused(api):
    message = refused(
        api.put(f"/templates/{INVITE}", template(parameters=[{"name": "Secret", "title": "S"}])),
        "parameters[0].name",
    )
    assert "not a parameter of this template" in message


@pytest.mark.parametrize("name", sorted(NEEDS_LINK))
def test_templates_whose_purpose_is_a_link_need_confirm_url(api, name):
    message = refused(api.put(f"/templates/{name}", template(body="<p>Hello $DevFirstName</p>")))
    assert "ConfirmUrl" in message
    assert api.get(f"/templates/{name}").json["properties"]["isDefault"] is True


def test_a_link_hidden_where_the_text_part_loses_it_is_refused(api):
    body = "<html><head><title>{{ ConfirmUrl }}</title></head><body><p>Hi</p></body></html>"
    message = refused(api.put(f"/templates/{INVITE}", template(body=body)))
    assert "plain-text version" in message


def test_other_templates_need_no_link(api):
    reply = api.put("/templates/accountClosedDeveloper", template(body="<p>Bye $DevFirstName</p>"))
    assert reply.status == 201


@pytest.mark.wire
def test_more_than_100_kb_is_refused(api):
    body = "<p>{{ ConfirmUrl }}</p>" + "<p>" + "x" * (100 * 1024) + "</p>"
    message = refused(api.put(f"/templates/{INVITE}", template(body=body)))
    assert "100 KB" in message


@pytest.mark.wire
def test_a_template_just_under_100_kb_is_fine(api):
    # Larger than the general request limit (64 KB) and than half the template limit.
    body = "<p>{{ ConfirmUrl }}</p>" + "<p>" + "y" * (99 * 1024) + "</p>"
    assert api.put(f"/templates/{INVITE}", template(subject="S", body=body)).status == 201


@pytest.mark.parametrize(
    "attack",
    [
        "{{ ''.__class__.__mro__ }}",
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ DevFirstName.__class__ }}",
        "{{ DevFirstName|attr('__class__') }}",
        "{{ DevFirstName['__class__'] }}",
        "{{ cycler.__init__.__globals__ }}",
        "{% include 'x.html' %}",
        "{{ lipsum.__globals__ }}",
    ],
)
def test_sandbox_escapes_are_refused_at_save(api, attack):
    reply = api.put(f"/templates/{INVITE}", template(body=f"<p>{{{{ ConfirmUrl }}}} {attack}</p>"))
    assert reply.status == 400, reply.body
    assert api.get(f"/templates/{INVITE}").json["properties"]["isDefault"] is True


def test_velocity_logic_is_refused_with_a_hint(api):
    body = "<p>#if ($DevFirstName) Hi #end $ConfirmUrl</p>"
    assert "{% if %}" in refused(api.put(f"/templates/{INVITE}", template(body=body)))


@pytest.mark.parametrize(
    ("properties", "target"),
    [
        ({"subject": ""}, "subject"),
        ({"subject": "s" * 1001}, "subject"),
        ({"subject": 3}, "subject"),
        ({"body": ""}, "body"),
        ({"title": ["x"]}, "title"),
        ({"parameters": "DevFirstName"}, "parameters"),
        (
            {"parameters": [{"name": "DevFirstName", "description": "has spaces"}]},
            "parameters[0].description",
        ),
    ],
)
def test_field_validation(api, properties, target):
    refused(api.put(f"/templates/{INVITE}", {"properties": properties}), target)


def test_a_body_that_is_not_json_or_has_no_properties_is_refused(api):
    assert api.put(f"/templates/{INVITE}", raw=b"{oops").status == 400
    assert api.put(f"/templates/{INVITE}", {"subject": "flat"}).status == 400


# --- the emails that go out --------------------------------------------------------------------


def test_a_changed_invitation_template_is_used_for_the_next_invitation_and_delete_restores_it(api):
    before = invite(api, "ivy1")
    assert before.subject == "You are invited to join the Contoso developer network"
    saved = api.put(
        f"/templates/{INVITE}",
        template(
            subject="{{ DevFirstName }}, come build with {{ OrganizationName }}",
            body='<p>Hi {{ DevFirstName }}!</p><p><a href="{{ ConfirmUrl }}">Claim it</a></p>',
        ),
    )
    assert saved.status == 201
    after = invite(api, "ivy2", first="Grace")
    assert after.subject == "Grace, come build with Contoso"
    assert "Hi Grace!" in after.html and "Claim it" in after.html
    link = after.link("/confirm/invitation")
    assert after.text.startswith("Hi Grace!")
    assert f"Claim it: {link}" in after.text
    assert api.delete(f"/templates/{INVITE}", headers={"If-Match": saved.etag}).status == 204
    restored = invite(api, "ivy3")
    assert restored.subject == before.subject
    assert restored.text.split("http")[0] == before.text.split("http")[0]


def test_a_template_pasted_from_apim_renders_the_right_values(api, client):
    reply = api.put(
        f"/templates/{INVITE}", template(subject="Welcome, $DevFirstName!", body=APIM_INVITE_BODY)
    )
    assert reply.status == 201, reply.body
    mail = invite(api, "lin", first="Lin", last="O'Brien & Co")
    assert mail.subject == "Welcome, Lin!"
    assert "Dear Lin O&#39;Brien &amp; Co," in mail.html
    assert "Contoso API portal" in mail.html
    link = mail.link("/confirm/invitation")
    assert link.startswith("http://127.0.0.1:8000/confirm/invitation?token=")
    assert f'<a href="{link}">{link}</a>' in mail.html
    assert "Dear Lin O'Brien & Co," in mail.text
    assert "$" not in mail.html + mail.text
    page = client.http.get(urlsplit(link).path + "?" + urlsplit(link).query)
    assert page.status_code == 200


def test_values_stay_escaped_in_a_custom_template(api):
    api.put(f"/templates/{INVITE}", template(body="<p>{{ DevFirstName }} {{ ConfirmUrl }}</p>"))
    mail = invite(api, "mal", first="<script>alert(1)</script>")
    assert "<script>" not in mail.html
    assert "&lt;script&gt;" in mail.html


def test_the_welcome_and_farewell_emails_use_their_changed_templates(api):
    api.put(
        "/templates/newDeveloperNotificationMessage", template(subject="Hello {{ DevFirstName }}")
    )
    api.put("/templates/accountClosedDeveloper", template(subject="So long, {{ DevFirstName }}"))
    reply = api.put(
        "/users/wel?notify=true",
        {"properties": {"email": "wel@example.com", "firstName": "Wel", "lastName": "Come"}},
    )
    assert reply.status == 201
    assert api.delete("/users/wel?notify=true", headers={"If-Match": "*"}).status == 204
    assert [m.subject for m in mail_to("wel@example.com")] == ["Hello Wel", "So long, Wel"]


@pytest.mark.parametrize("name", SENT)
def test_every_sent_template_is_editable_and_is_what_the_mail_service_uses(api, name, wired):
    subject = f"Changed {name} for {{{{ DevFirstName }}}}"
    assert api.put(f"/templates/{name}", template(subject=subject)).status == 201
    used = services().templates.email_template(name)
    assert used.subject == subject
    assert used.html == default_template(name).html
    api.delete(f"/templates/{name}", headers={"If-Match": "*"})
    assert services().templates.email_template(name) == default_template(name)


@pytest.mark.moto
def test_a_template_that_escapes_the_sandbox_can_never_render(api, wired):
    """Even written to the table behind the API's back, it is refused when an email is sent."""
    from datetime import UTC, datetime

    from chalicelib.store.models import TemplateItem

    TemplateItem(
        name=INVITE,
        subject="Hi",
        body="<p>{{ ConfirmUrl }} {{ ''.__class__.__mro__ }}</p>",
        text="{{ ConfirmUrl }}",
        version=5,
        updated_at=datetime.now(UTC),
    ).save()
    reply = api.put(
        "/users/esc",
        {
            "properties": {
                "email": "esc@example.com",
                "firstName": "E",
                "lastName": "S",
                "confirmation": "invite",
            }
        },
    )
    assert reply.status == 201
    assert mail_to("esc@example.com") == []
    [invitation] = api.get("/users/esc/invitations").json["value"]
    assert invitation["delivery"]["state"] != "sent"
    assert "not allowed" in invitation["delivery"]["lastError"]


# --- preview -----------------------------------------------------------------------------------


def test_preview_renders_the_stored_template_with_sample_values(api):
    reply = api.call("POST", f"/templates/{INVITE}/preview")
    assert reply.status == 200
    body = reply.json
    assert body["subject"] == "You are invited to join the Contoso developer network"
    assert "Dear Ada Lovelace" in body["html"]
    assert "http://127.0.0.1:8000/confirm/invitation?token=sample-token" in body["text"]
    assert body["values"]["DevFirstName"] == "Ada"


def test_preview_of_a_submitted_template_saves_nothing(api):
    reply = api.call(
        "POST",
        f"/templates/{INVITE}/preview",
        {
            "properties": {"subject": "Hey $DevFirstName", "body": APIM_INVITE_BODY},
            "values": {"DevFirstName": "Grace"},
        },
    )
    assert reply.status == 200, reply.body
    assert reply.json["subject"] == "Hey Grace"
    assert "Dear Grace Lovelace," in reply.json["html"]
    assert "Dear Grace Lovelace," in reply.json["text"]
    assert api.get(f"/templates/{INVITE}").json["properties"]["isDefault"] is True


def test_preview_validates_like_a_save(api):
    refused(
        api.call("POST", f"/templates/{INVITE}/preview", template(body="<p>{{ ''.__class__ }}</p>"))
    )
    refused(
        api.call("POST", f"/templates/{INVITE}/preview", {"values": {"Password": "x"}}), "values"
    )


@pytest.mark.moto
def test_template_reads_never_scan(api, wired):
    from chalicelib.store.models import TemplateItem

    client = TemplateItem._get_connection().connection.client
    calls = []

    def record(params, model, **kwargs):
        calls.append(model.name)

    client.meta.events.register("before-parameter-build.dynamodb", record, "calls")
    try:
        api.get("/templates")
        api.get(f"/templates/{INVITE}")
    finally:
        client.meta.events.unregister("before-parameter-build.dynamodb", unique_id="calls")
    assert calls == ["BatchGetItem", "GetItem"]
