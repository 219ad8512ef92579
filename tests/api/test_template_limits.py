"""Saving or previewing a template that would hang or exhaust a worker answers 400 at once."""

import pytest

from chalicelib.mail.sandbox import MAX_STEPS
from tests.support import error_of, mail_to

INVITE = "inviteUserNotificationMessage"
LINK = "<p>{{ ConfirmUrl }}</p>"
# What the sandbox used to let through: minutes of CPU, or about 1 GB allocated per render.
BOMBS = {
    "nested loops": (
        "{% for a in 'x'*100000 %}{% for b in 'x'*100000 %}{% endfor %}{% endfor %}",
        f"more than {MAX_STEPS} steps",
    ),
    "a smaller loop in every email": (
        "{% for a in 'x'*3000 %}{% for b in 'x'*3000 %}{% endfor %}{% endfor %}",
        f"more than {MAX_STEPS} steps",
    ),
    "center": ("{{ 'x'.center(10**9) }}", "a value of 1000000000 characters"),
    "concatenation": (
        "{% set a = 'x'*100000 %}{% set b = a~a~a~a~a~a~a~a~a~a %}"
        "{% set c = b~b~b~b~b~b~b~b~b~b %}{% set d = c~c~c~c~c~c~c~c~c~c %}{{ d|length }}",
        "characters; at most",
    ),
    "printf width": ("{{ '%999999999s' % 'x' }}", "characters; at most"),
}


def refusal(reply):
    assert reply.status == 400, reply.body
    error = error_of(reply)
    assert error["code"] == "ValidationError"
    [detail] = error["details"]
    assert detail["target"] == "body"
    return detail["message"]


@pytest.mark.parametrize("bomb", BOMBS)
def test_saving_a_template_that_works_too_much_is_refused_and_keeps_the_old_one(api, bomb):
    body, reason = BOMBS[bomb]
    reply = api.put(f"/templates/{INVITE}", {"properties": {"body": LINK + body}})
    assert reason in refusal(reply)
    assert api.get(f"/templates/{INVITE}").json["properties"]["isDefault"] is True


@pytest.mark.parametrize("bomb", BOMBS)
def test_previewing_a_template_that_works_too_much_is_refused(api, bomb):
    body, reason = BOMBS[bomb]
    reply = api.call("POST", f"/templates/{INVITE}/preview", {"properties": {"body": LINK + body}})
    assert reason in refusal(reply)


def test_a_bomb_in_the_subject_is_refused_too(api):
    body, reason = BOMBS["nested loops"]
    reply = api.put(f"/templates/{INVITE}", {"properties": {"subject": body, "body": LINK}})
    assert reply.status == 400, reply.body
    [detail] = error_of(reply)["details"]
    assert detail["target"] == "subject" and reason in detail["message"]


@pytest.mark.moto
def test_a_bomb_already_in_the_table_fails_its_email_not_the_invitation(api):
    from datetime import UTC, datetime

    from chalicelib.store.models import OutboxItem, TemplateItem

    body, reason = BOMBS["nested loops"]
    # As if saved before the budget existed: straight into the table, past every check.
    TemplateItem(
        name=INVITE,
        subject="Welcome",
        body=LINK + body,
        text="{{ ConfirmUrl }}",
        version=1,
        updated_at=datetime.now(UTC),
    ).save()
    reply = api.create_user("ivy", confirmation="invite")
    assert reply.status == 201
    assert mail_to("ivy@example.com") == []
    [message] = [m for m in OutboxItem.scan() if m.to_email == "ivy@example.com"]
    assert message.sent_at is None
    assert reason in message.last_error
