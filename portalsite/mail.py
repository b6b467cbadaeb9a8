"""Sending one e-mail through Django's configured backend, with the mail server's answer when it fails.

A failure is temporary or permanent, as SMTP says (RFC 5321: 4xx try again later, 5xx do not): a 5xx
for the message's recipient (no such mailbox) or for the message itself (refused as spam) is
permanent; a 4xx, a server that cannot be reached, or one that refuses *us* (our sender address,
our credentials: fixed by an operator, not by waiting for the recipient) is temporary.
"""

import smtplib

from django.core.mail import EmailMessage, get_connection


class DeliveryFailure(Exception):
    """The message was not accepted; `str()` is what the server answered (or why it could not be reached)."""


class TemporaryDeliveryFailure(DeliveryFailure):
    pass


class PermanentDeliveryFailure(DeliveryFailure):
    pass


def _answer(code: int, message: bytes | str) -> str:
    text = message.decode(errors="replace") if isinstance(message, bytes) else message
    return f"{code} {text}".strip()


def _failure(code: int, message: bytes | str, *, about_this_message: bool) -> DeliveryFailure:
    if about_this_message and 500 <= code < 600:
        return PermanentDeliveryFailure(_answer(code, message))
    return TemporaryDeliveryFailure(_answer(code, message))


def mail_send(message: EmailMessage) -> None:
    """Send `message` on a connection of its own; raise a DeliveryFailure when it is not accepted."""
    try:
        with get_connection(fail_silently=False) as connection:
            connection.send_messages([message])
    except smtplib.SMTPRecipientsRefused as exc:
        # One recipient per message here: its answer is the message's.
        code, answer = next(iter(exc.recipients.values()))
        raise _failure(code, answer, about_this_message=True) from exc
    except smtplib.SMTPDataError as exc:
        raise _failure(exc.smtp_code, exc.smtp_error, about_this_message=True) from exc
    except smtplib.SMTPResponseException as exc:  # the sender refused, authentication, HELO: about us
        raise _failure(exc.smtp_code, exc.smtp_error, about_this_message=False) from exc
    except (smtplib.SMTPException, OSError) as exc:  # refused, unreachable, timed out, disconnected
        raise TemporaryDeliveryFailure(f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__) from exc
