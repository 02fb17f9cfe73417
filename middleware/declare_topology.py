"""Declares the whole RabbitMQ topology when a worker boots, not only the queues it consumes.

An e-mail-only worker also creates ``push.queue`` and ``maintenance.queue``, so any one role
brings the whole topology up (README, "Deploying"). The declaring runs in a background thread and
retries until RabbitMQ answers: a worker must start while RabbitMQ is away and catch up when it
returns.
"""

from __future__ import annotations

import threading

from dramatiq import Middleware

from messaging.rabbitmq import declare_until_done


class DeclareTopology(Middleware):
    def __init__(self) -> None:
        self._stop = threading.Event()

    def after_worker_boot(self, broker, worker):
        declare = getattr(broker, "declare_topology", None)
        if declare is not None:
            threading.Thread(
                target=declare_until_done,
                args=(declare,),
                kwargs={"stop": self._stop},
                name="declare-topology",
                daemon=True,
            ).start()

    def before_worker_shutdown(self, broker, worker):
        self._stop.set()
