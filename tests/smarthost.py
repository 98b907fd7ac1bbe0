"""A real SMTP server on loopback standing in for the outbound smarthost: it keeps what it accepts."""

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from email import message_from_bytes, policy

from aiosmtpd.controller import Controller

from tests.channels_conn.conftest import free_port


class Smarthost:
    """An aiosmtpd handler: answers DATA with `data_answers` first (then 250), RCPT with `rcpt_answer`."""

    def __init__(self) -> None:
        self.data_answers: list[str] = []
        self.rcpt_answer = "250 OK"
        self.attempts = 0
        self.messages: list = []
        self.envelope_senders: list[str] = []  # MAIL FROM of each accepted message, in order
        self.received = threading.Event()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802 - aiosmtpd's hook name
        if self.rcpt_answer.startswith("250"):
            envelope.rcpt_tos.append(address)
        return self.rcpt_answer

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
        self.attempts += 1
        if self.data_answers:
            return self.data_answers.pop(0)
        self.messages.append((envelope.rcpt_tos, message_from_bytes(envelope.content, policy=policy.default)))
        self.envelope_senders.append(envelope.mail_from)
        self.received.set()
        return "250 OK"


def use_smarthost(settings, port: int) -> None:
    """Send Django's mail over SMTP to 127.0.0.1:`port`."""
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", port
    settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
    settings.EMAIL_USE_TLS = False
    settings.EMAIL_TIMEOUT = 5


@contextmanager
def smarthost(settings, handler: Smarthost | None = None) -> Iterator[Smarthost]:
    """A running Smarthost (or `handler`), configured as the outbound mail server until the block ends."""
    handler = handler or Smarthost()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    use_smarthost(settings, controller.port)
    try:
        yield handler
    finally:
        controller.stop()
