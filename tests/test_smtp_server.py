"""The SMTP server the e-mail tests rely on answers as a real relay would."""

import smtplib

import pytest
from django.core.mail import get_connection, send_mail

from tests.smtp import SmtpServer


def _send(to: str = "someone@example.com") -> None:
    send_mail("Hello", "Body", "portalsite <noreply@localhost>", [to], connection=get_connection())


def test_it_accepts_and_records_a_message(smtp: SmtpServer):
    _send()

    [message] = smtp.received()
    assert message.recipients == ["someone@example.com"]
    assert message.subject == "Hello" and message.text().strip() == "Body"


def test_a_refused_recipient_is_a_550_for_that_address(smtp: SmtpServer):
    smtp.refuse("nobody@example.com")

    with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
        _send("nobody@example.com")

    code, answer = refused.value.recipients["nobody@example.com"]
    assert code == 550 and b"User unknown" in answer
    assert smtp.received() == []


def test_a_temporary_failure_is_a_451_until_it_has_been_given_as_often_as_asked(smtp: SmtpServer):
    smtp.tempfail(1)

    with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
        _send()
    _send()

    assert refused.value.recipients["someone@example.com"][0] == 451
    assert len(smtp.received()) == 1


def test_a_stopped_server_refuses_connections_and_starts_again_on_its_port(smtp: SmtpServer):
    smtp.stop()
    with pytest.raises(ConnectionRefusedError):
        _send()

    smtp.start()
    _send()

    assert len(smtp.received()) == 1


def test_a_held_message_the_client_gives_up_on_is_not_accepted(smtp: SmtpServer):
    smtp.hold()
    client = smtplib.SMTP(smtp.host, smtp.port, timeout=5)
    client.ehlo()
    client.mail("noreply@localhost")
    client.rcpt("someone@example.com")
    client.putcmd("data")
    assert client.getreply()[0] == 354
    client.send(b"Subject: held\r\n\r\nbody\r\n.\r\n")
    assert smtp.arrived.wait(5)
    client.close()  # gone before the server's answer, as a killed worker would be
    smtp.wait_abandoned(1)

    smtp.release()
    _send()

    assert [message.subject for message in smtp.received()] == ["Hello"]
