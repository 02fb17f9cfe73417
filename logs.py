"""JSON-lines logging shared by every Herald process.

Each record carries ``correlation_id`` and ``notification_id`` when the code that logged knows them:
the web middleware and the worker middleware set them in context variables, so a handler or actor
does not have to pass them to every call, and the two ids follow a notification from request to
delivery.

Secrets that travel as bearer strings are masked in every line, wherever they appear (message,
extra fields, traceback): API keys (``hk_live_...``, ``hk_test_...``; made by
``models/api_key.py``) and webhook signing secrets (``whsec_...``; ``models/webhook.py``). The mask
runs on the finished line, so no field or nesting can carry one past it.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

correlation_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("correlation_id", default=None)
notification_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("notification_id", default=None)

_RESERVED = set(vars(logging.makeLogRecord({})).keys()) | {"message", "asctime"}

#: An API key or a webhook secret: its kind is kept (it helps to read a log), the secret part not.
SECRET_TOKEN = re.compile(r"(hk_(?:live|test)_|whsec_)[A-Za-z0-9_\-]+")
_SECRET_MARKERS = ("hk_", "whsec_")


def mask_secrets(text: str) -> str:
    """``text`` with every API key and webhook secret in it replaced by its kind and ``***``."""
    if not any(marker in text for marker in _SECRET_MARKERS):
        return text
    return SECRET_TOKEN.sub(r"\1***", text)


class JsonFormatter(logging.Formatter):
    """One JSON object per line; extra fields given with ``extra=`` are kept, tracebacks folded in."""

    def __init__(self, *, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        out = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "service": self.service,
            "logger": record.name,
            "message": record.getMessage(),
            "correlation_id": getattr(record, "correlation_id", None) or correlation_id_var.get(),
            "notification_id": getattr(record, "notification_id", None) or notification_id_var.get(),
        }
        for key, value in record.__dict__.items():
            if key not in _RESERVED and key not in out:
                out[key] = value
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        # The characters of a key or secret are never escaped by JSON, so the finished line shows
        # them exactly as the pattern expects.
        return mask_secrets(json.dumps(out, default=str, ensure_ascii=False))


def setup_logging(*, service: str, level: str = "INFO") -> None:
    """Route every logger (ours, aiohttp's, dramatiq's, pika's) to JSON lines on stdout."""
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter(service=service))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # pika narrates every reconnect at INFO; its warnings are what an operator needs.
    logging.getLogger("pika").setLevel(max(logging.WARNING, logging.getLevelName(level)))
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)


@contextmanager
def log_context(*, correlation_id: str | None = None, notification_id: str | None = None) -> Iterator[None]:
    """Bind the two ids for the code run inside the block (and the tasks it starts)."""
    tokens = []
    if correlation_id is not None:
        tokens.append((correlation_id_var, correlation_id_var.set(correlation_id)))
    if notification_id is not None:
        tokens.append((notification_id_var, notification_id_var.set(notification_id)))
    try:
        yield
    finally:
        for var, token in reversed(tokens):
            var.reset(token)
