"""Binds ``correlation_id`` and ``notification_id`` to a worker thread while it handles a message.

The gateway puts the request's correlation id in the message options; every log line of the
delivery then carries both ids without the actor passing them around.
"""

from __future__ import annotations

from dramatiq import Middleware

from logs import correlation_id_var, notification_id_var
from messaging.messages import CORRELATION_ID, notification_of


class LogContext(Middleware):
    def before_process_message(self, broker, message):
        correlation_id_var.set(message.options.get(CORRELATION_ID))
        notification_id_var.set(notification_of(message).get("notification_id"))

    def after_process_message(self, broker, message, *, result=None, exception=None):
        # after_* hooks run in reverse order, so this one runs last and the others still log with ids.
        correlation_id_var.set(None)
        notification_id_var.set(None)

    after_skip_message = after_process_message
