"""Outgoing mail: one small :class:`Mailer` seam and its SMTP implementation (smtplib).

The server sends mail only for account recovery. :func:`mailer_from_settings` gives an
:class:`SmtpMailer` when an SMTP host is configured and a :class:`DisabledMailer` otherwise;
callers check :attr:`Mailer.enabled` when they must tell the user that no mail can be sent.
"""

from __future__ import annotations

import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Protocol

import structlog

from v6flow_server.settings import SmtpSettings

log = structlog.get_logger(__name__)


class MailError(Exception):
    """A mail could not be handed to the SMTP server."""


@dataclass(frozen=True)
class Mail:
    """One plain-text mail to one recipient."""

    to: str
    subject: str
    body: str


class Mailer(Protocol):
    """Sends mail."""

    @property
    def enabled(self) -> bool:
        """False when this server cannot send mail at all."""

    def send(self, mail: Mail) -> None:
        """Hand ``mail`` to the mail system.

        Raises:
            MailError: it was not accepted.
        """


class DisabledMailer:
    """What the server uses without SMTP settings: it sends nothing."""

    enabled = False

    def send(self, mail: Mail) -> None:
        """Log that a mail was not sent (never its body: it holds a token).

        Raises:
            MailError: always; there is no mail server.
        """
        log.warning("mail_not_sent", reason="no SMTP host configured", subject=mail.subject)
        raise MailError("no SMTP host is configured")


class SmtpMailer:
    """Sends each mail over its own SMTP connection (STARTTLS, TLS or plain)."""

    enabled = True

    def __init__(self, settings: SmtpSettings) -> None:
        """Keep the settings; nothing connects until :meth:`send`."""
        if not settings.host:
            raise ValueError("SmtpMailer needs an SMTP host")
        self._settings = settings
        self._host = settings.host

    def _connect(self) -> smtplib.SMTP:
        s = self._settings
        if s.security == "ssl":
            return smtplib.SMTP_SSL(self._host, s.port, timeout=s.timeout_seconds,
                                    context=ssl.create_default_context())
        smtp = smtplib.SMTP(self._host, s.port, timeout=s.timeout_seconds)
        if s.security == "starttls":
            smtp.starttls(context=ssl.create_default_context())
        return smtp

    def send(self, mail: Mail) -> None:
        """Connect, log in when a username is set, send, quit.

        Raises:
            MailError: connecting, TLS, login or the transfer failed.
        """
        s = self._settings
        message = EmailMessage()
        message["From"] = s.sender
        message["To"] = mail.to
        message["Subject"] = mail.subject
        message.set_content(mail.body)
        try:
            with self._connect() as smtp:
                if s.username:
                    password = s.password.get_secret_value() if s.password else ""
                    smtp.login(s.username, password)
                smtp.send_message(message)
        except (OSError, smtplib.SMTPException) as exc:
            raise MailError(f"{type(exc).__name__}: {exc}") from exc


def mailer_from_settings(settings: SmtpSettings) -> Mailer:
    """The mailer the settings describe."""
    return SmtpMailer(settings) if settings.host else DisabledMailer()
