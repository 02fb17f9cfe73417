"""Delivery's physical reference in ``make bench``: the thinnest worker the stack allows.

A bare dramatiq actor (dramatiq's own default middleware, RabbitMQ broker on the bench's vhost)
that sends one fixed mail, built once, over a ``smtplib`` connection each thread keeps and reuses,
into the same C sink Herald's workers deliver to. No database, no Redis, no rendering: what is
left is the cost of the queue and of SMTP itself, so Herald's delivery rate is printed as a ratio
to it (README, "Benchmarks"). Loaded by ``dramatiq scripts.bench.floor_worker``; the bench sets
``BENCH_FLOOR_AMQP_URL`` and ``BENCH_FLOOR_SMTP_PORT``.
"""

from __future__ import annotations

import os
import smtplib
import threading
from email.message import EmailMessage

import dramatiq
from dramatiq.brokers.rabbitmq import RabbitmqBroker

from scripts.bench.config import FLOOR_ACTOR, FLOOR_QUEUE

SENDER, RECIPIENT = "no-reply@localhost", "bench@example.com"


def _fixed_mail() -> bytes:
    """A mail the size and shape of the bench's: subject, a text part and an HTML part."""
    mail = EmailMessage()
    mail["From"], mail["To"], mail["Subject"] = f"Herald <{SENDER}>", RECIPIENT, "Hello Bench"
    mail.set_content("Hello Bench, see https://example.com\n")
    mail.add_alternative("<p>Hello Bench, see https://example.com</p>\n", subtype="html")
    return mail.as_bytes()


MAIL = _fixed_mail()
broker = RabbitmqBroker(url=os.environ.get("BENCH_FLOOR_AMQP_URL", "amqp://127.0.0.1"))
dramatiq.set_broker(broker)
_local = threading.local()


@dramatiq.actor(actor_name=FLOOR_ACTOR, queue_name=FLOOR_QUEUE, max_retries=0)
def send_fixed_mail() -> None:
    client = getattr(_local, "smtp", None)
    if client is None:
        client = _local.smtp = smtplib.SMTP("127.0.0.1", int(os.environ["BENCH_FLOOR_SMTP_PORT"]), timeout=10)
    try:
        client.sendmail(SENDER, [RECIPIENT], MAIL)
    except (smtplib.SMTPServerDisconnected, OSError):
        _local.smtp = None
        raise
