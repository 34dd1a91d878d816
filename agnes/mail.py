"""Sending email through the configured SMTP server (``SMTP_*`` settings): the one place that
talks SMTP, for sign-in links and notifications."""

from __future__ import annotations

import smtplib
from email.message import EmailMessage

from flask import current_app

# Seconds to wait for the SMTP server at each step.
SMTP_TIMEOUT = 20


class MailError(Exception):
    """The message could not be handed to the SMTP server (the text says why, without secrets)."""


def mail_configured() -> bool:
    """True when ``SMTP_HOST`` is set."""
    return bool(current_app.config["SMTP_HOST"])


def send_email(to: str, subject: str, body: str) -> None:
    """Send a plain-text message to ``to`` from ``SMTP_FROM``.

    Raises:
        MailError: SMTP is not configured, or the server refused or could not be reached.
    """
    config = current_app.config
    if not config["SMTP_HOST"]:
        raise MailError("no SMTP_HOST is configured")
    message = EmailMessage()
    message["Subject"] = subject
    message["From"] = config["SMTP_FROM"]
    message["To"] = to
    message.set_content(body)
    try:
        with smtplib.SMTP(config["SMTP_HOST"], int(config["SMTP_PORT"]), timeout=SMTP_TIMEOUT) as smtp:
            if config["SMTP_STARTTLS"]:
                smtp.starttls()
            if config["SMTP_USER"]:
                smtp.login(config["SMTP_USER"], config["SMTP_PASSWORD"])
            smtp.send_message(message)
    except (OSError, smtplib.SMTPException) as exc:
        raise MailError(f"{config['SMTP_HOST']}:{config['SMTP_PORT']}: {exc}") from None
