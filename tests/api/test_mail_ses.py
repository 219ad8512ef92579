"""SesMailer against moto's SES: the MIME message that arrives, failures, the dev drop folder."""

import email
import email.policy
import socket

import pytest
from botocore.stub import Stubber
from moto.core import DEFAULT_ACCOUNT_ID

from chalicelib.mail.render import render
from chalicelib.mail.sender import (
    MailFailed,
    MemoryMailer,
    OutgoingEmail,
    SesMailer,
    forget_send_rates,
)
from chalicelib.mail.templates import default_template

SENDER = "noreply@example.com"


@pytest.fixture
def ses(aws):
    """The session's in-process SES (tests/conftest.py): SENDER verified, nothing sent yet."""
    from chalicelib.config import get_settings

    assert get_settings().sender_email == SENDER


def sent_messages():
    from moto.ses.models import ses_backends

    return ses_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].sent_messages


def parse(raw: str) -> email.message.EmailMessage:
    return email.message_from_string(raw, policy=email.policy.default)


def outgoing(**kw) -> OutgoingEmail:
    fields = {
        "to": "ada@example.org",
        "subject": "Welcome",
        "html": "<p>Hello <b>Ada</b></p>",
        "text": "Hello Ada",
    } | kw
    return OutgoingEmail(**fields)


def test_sends_a_multipart_alternative_message(ses):
    mailer = SesMailer(SENDER, "us-east-1")
    message_id = mailer.send(outgoing(subject="Grüße, Zoë — willkommen ✓", text="Hallo Zoë"))

    [stored] = sent_messages()
    assert message_id and stored.id == message_id
    assert stored.source == SENDER
    assert "ada@example.org" in stored.destinations
    message = parse(stored.raw_data)
    assert message.get_content_type() == "multipart/alternative"
    assert message["From"] == SENDER
    assert message["To"] == "ada@example.org"
    assert message["Subject"] == "Grüße, Zoë — willkommen ✓"
    assert message["Message-ID"].endswith("@example.com>")
    assert message["Date"]
    text, html = message.iter_parts()
    assert text.get_content_type() == "text/plain"
    assert html.get_content_type() == "text/html"
    assert text.get_content_charset() == "utf-8"
    assert text.get_content().strip() == "Hallo Zoë"
    assert html.get_content().strip() == "<p>Hello <b>Ada</b></p>"
    # Every line 7-bit and short: any relay takes it.
    assert stored.raw_data.isascii()
    assert max(len(line) for line in stored.raw_data.splitlines()) <= 78


def test_a_rendered_invitation_arrives_with_its_link_in_both_parts(ses):
    template = default_template("inviteUserNotificationMessage")
    values = {p.name: p.name for p in template.parameters} | {
        "OrganizationName": "Contoso",
        "DevFirstName": "<Ada>",
        "ConfirmUrl": "https://portal.example.com/invite?token=abc&user=1",
        "ExpiresAt": "Sunday 30 November 2025, 14:05 UTC",
    }
    mail = render(template, values)
    SesMailer(SENDER, "us-east-1").send(
        outgoing(subject=mail.subject, html=mail.html, text=mail.text)
    )

    message = parse(sent_messages()[0].raw_data)
    assert message["Subject"] == "You are invited to join the Contoso developer network"
    text, html = (part.get_content() for part in message.iter_parts())
    assert "https://portal.example.com/invite?token=abc&user=1" in text
    assert 'href="https://portal.example.com/invite?token=abc&amp;user=1"' in html
    assert "Dear &lt;Ada&gt;" in html and "Dear <Ada>" in text
    assert "14:05 UTC" in text


def test_a_sender_with_a_display_name(ses):
    SesMailer(f"Contoso Developers <{SENDER}>", "us-east-1").send(outgoing())
    message = parse(sent_messages()[0].raw_data)
    assert message["From"].addresses[0].display_name == "Contoso Developers"
    assert message["From"].addresses[0].addr_spec == SENDER


def test_header_injection_through_the_subject_is_impossible(ses):
    SesMailer(SENDER, "us-east-1").send(outgoing(subject="Hi\r\nBcc: victim@example.net"))
    stored = sent_messages()[0]
    message = parse(stored.raw_data)
    assert message["Bcc"] is None
    assert message["Subject"] == "Hi Bcc: victim@example.net"
    assert "victim@example.net" not in stored.destinations


def test_an_international_domain_is_sent_in_ascii(ses):
    SesMailer(SENDER, "us-east-1").send(outgoing(to="Zoë <zoe@exämple.com>"))
    message = parse(sent_messages()[0].raw_data)
    assert message["To"].addresses[0].addr_spec == "zoe@xn--exmple-cua.com"
    assert message["To"].addresses[0].display_name == "Zoë"


@pytest.mark.parametrize(
    "to", ["", "not-an-address", "a@b.c, d@e.f", "a@b.c\r\nBcc: x@y.z", "zoë@example.com"]
)
def test_a_bad_recipient_fails_without_sending(ses, to):
    with pytest.raises(MailFailed) as caught:
        SesMailer(SENDER, "us-east-1").send(outgoing(to=to))
    assert caught.value.retryable is False
    assert sent_messages() == []


def test_an_unverified_sender_is_a_permanent_failure(ses):
    mailer = SesMailer("other@example.com", "us-east-1")
    with pytest.raises(MailFailed) as caught:
        mailer.send(outgoing(text="secret body text"))
    assert caught.value.retryable is False
    assert caught.value.code == "MessageRejected"
    assert "MessageRejected" in str(caught.value)
    assert "secret body text" not in str(caught.value)
    assert sent_messages() == []


@pytest.mark.parametrize(
    ("code", "status", "retryable"),
    [
        ("Throttling", 400, True),
        ("ServiceUnavailable", 503, True),
        ("InternalFailure", 500, True),
        ("MessageRejected", 400, False),
        ("MailFromDomainNotVerifiedException", 400, False),
        ("InvalidParameterValue", 400, False),
    ],
)
def test_ses_error_codes_say_whether_to_retry(ses, code, status, retryable):
    mailer = SesMailer(SENDER, "us-east-1")
    client = mailer._ses()
    with Stubber(client) as stub:
        stub.add_client_error("send_raw_email", service_error_code=code, http_status_code=status)
        with pytest.raises(MailFailed) as caught:
            mailer.send(outgoing())
    assert caught.value.retryable is retryable
    assert caught.value.code == code


def test_throttling_is_told_apart_from_other_retryable_refusals(ses):
    mailer = SesMailer(SENDER, "us-east-1")
    with Stubber(mailer._ses()) as stub:
        stub.add_client_error("send_raw_email", service_error_code="Throttling")
        stub.add_client_error(
            "send_raw_email", service_error_code="ServiceUnavailable", http_status_code=503
        )
        with pytest.raises(MailFailed) as throttled:
            mailer.send(outgoing())
        with pytest.raises(MailFailed) as unavailable:
            mailer.send(outgoing())
    assert throttled.value.throttled and throttled.value.retryable
    assert not unavailable.value.throttled and unavailable.value.retryable


ACCOUNT = {
    "SendQuota": {"Max24HourSend": 50000.0, "MaxSendRate": 14.0, "SentLast24Hours": 3.0},
    "SendingEnabled": True,
    "ProductionAccessEnabled": True,
}


def test_the_send_rate_is_ses_s_own_read_once_per_container(ses):
    forget_send_rates()
    first = SesMailer(SENDER, "us-east-1")
    with Stubber(first._sesv2()) as stub:
        stub.add_response("get_account", ACCOUNT)
        assert first.max_send_rate(fallback=1.0) == 14.0
        stub.assert_no_pending_responses()
    # Another mailer of the same container (a new Services) does not ask again: its own client
    # would reach moto, which has no GetAccount, and get the fallback.
    assert SesMailer(SENDER, "us-east-1").max_send_rate(fallback=1.0) == 14.0
    forget_send_rates()


def test_the_send_rate_falls_back_to_the_setting_when_ses_cannot_tell(ses):
    forget_send_rates()
    mailer = SesMailer(SENDER, "us-east-1")
    with Stubber(mailer._sesv2()) as stub:
        stub.add_client_error("get_account", service_error_code="AccessDeniedException")
        assert mailer.max_send_rate(fallback=2.5) == 2.5
    # Remembered for the hour: the next email does not ask again (had it asked, the stubber,
    # with no answer left, would have failed it, and the fallback given now would be used).
    with Stubber(mailer._sesv2()):
        assert mailer.max_send_rate(fallback=3.0) == 2.5
    forget_send_rates()


def test_an_unreachable_endpoint_is_retryable(monkeypatch):
    # A port nothing listens on: connection refused at once, outside moto.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{port}")
    with pytest.raises(MailFailed) as caught:
        SesMailer(SENDER, "us-east-1").send(outgoing())
    assert caught.value.retryable is True
    assert caught.value.code == "EndpointConnectionError"


def test_the_client_is_made_once_and_only_when_sending(ses):
    mailer = SesMailer(SENDER, "us-east-1")
    assert mailer._client is None
    mailer.send(outgoing())
    client = mailer._client
    mailer.send(outgoing())
    assert mailer._client is client
    assert len(sent_messages()) == 2


def test_drop_dir_keeps_an_eml_and_prints_the_links(ses, tmp_path, capsys):
    drop = tmp_path / "mail" / "out"
    mailer = SesMailer(SENDER, "us-east-1", drop_dir=str(drop))
    text = (
        "Accept:\nhttps://portal.example.com/invite?token=abc&user=1\n\n"
        "Portal: http://localhost:8765/portal. Bye"
    )
    message_id = mailer.send(outgoing(to="ada@example.org", subject="You are invited", text=text))

    [saved] = drop.iterdir()
    assert saved.name.endswith(f"-{message_id}.eml")
    message = email.message_from_bytes(saved.read_bytes(), policy=email.policy.default)
    assert message["Subject"] == "You are invited"
    assert message.get_content_type() == "multipart/alternative"
    assert capsys.readouterr().out.splitlines() == [
        "mail to ada@example.org: You are invited",
        "  link: https://portal.example.com/invite?token=abc&user=1",
        "  link: http://localhost:8765/portal",
    ]


def test_without_drop_dir_nothing_is_printed(ses, capsys):
    SesMailer(SENDER, "us-east-1").send(outgoing(text="https://portal.example.com/x"))
    assert capsys.readouterr().out == ""


def test_memory_mailer_records_and_fails_on_demand():
    mailer = MemoryMailer()
    assert mailer.send(outgoing()) == "memory-1"
    assert mailer.sent == [outgoing()]
    failing = MemoryMailer(
        fail_with=MailFailed("SES refused the message: Throttling", retryable=True)
    )
    with pytest.raises(MailFailed):
        failing.send(outgoing())
    assert failing.sent == []
