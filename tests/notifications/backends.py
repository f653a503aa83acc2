"""E-mail backends that inject faults (the only fakes here: a real SMTP sink covers the rest)."""

import smtplib
import threading
import time

from django.core.mail.backends.base import BaseEmailBackend
from django.core.mail.backends.locmem import EmailBackend as LocmemBackend


class FailingBackend(BaseEmailBackend):
    def send_messages(self, email_messages):
        raise smtplib.SMTPServerDisconnected("connection unexpectedly closed")


class SlowBackend(LocmemBackend):
    """Takes a while to send, as a real SMTP round trip does; counts what it sent."""

    sent: list[str] = []
    lock = threading.Lock()

    def send_messages(self, messages):
        time.sleep(0.5)
        with self.lock:
            SlowBackend.sent.extend(m.subject for m in messages)
        return len(messages)
