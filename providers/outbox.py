"""Mail and push written to a local folder: what ``make run`` uses without SMTP_HOST / FCM_PROJECT_ID.

The files are exactly what would go on the wire (the same message bytes and payload builder as
the real providers, the same validation and errors; an ``.eml`` holds the bytes SMTP carries, CRLF
line ends included, before SMTP's dot-stuffing), so a developer can open the ``.eml`` in a mail
client or replay the ``.json`` against FCM, and a template bug shows up here as it would in
production. Each file appears atomically, so a reader polling the folder never sees half a file.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
import uuid
from pathlib import Path

from providers.mail_message import message_bytes, message_id_for, parse_address, parse_mail_from
from providers.push import notify_kwargs, request_body

_UNSAFE = re.compile(r"[^A-Za-z0-9._@-]")


def write_atomically(path: Path, data: bytes) -> None:
    """Write to a temporary file beside ``path`` and rename it over ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=path.suffix)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def safe_name(message_id: str) -> str:
    """A file name from a Message-ID: angle brackets dropped, anything unusual replaced."""
    name = _UNSAFE.sub("_", message_id.strip().strip("<>"))
    return name.lstrip(".")[:200] or uuid.uuid4().hex


class OutboxEmailProvider:
    """Writes ``<message-id>.eml``; a retry of the same notification overwrites, never duplicates."""

    def __init__(self, *, settings) -> None:
        self._dir = Path(settings.outbox_dir)
        self._from = parse_mail_from(settings.mail_from)
        self._reply_to = parse_address(settings.mail_reply_to, "MAIL_REPLY_TO") if settings.mail_reply_to else None

    def send(
        self,
        *,
        to: str,
        subject: str,
        html: str,
        text: str,
        notification_id: str,
        headers: dict[str, str] | None = None,
    ) -> None:
        """Same contract and errors as :meth:`providers.email.SmtpEmailProvider.send`."""
        data, _ = message_bytes(
            mail_from=self._from,
            reply_to=self._reply_to,
            to=to,
            subject=subject,
            html=html,
            text=text,
            notification_id=notification_id,
            headers=headers,
        )
        message_id = message_id_for(notification_id.strip(), self._from)
        write_atomically(self._dir / f"{safe_name(message_id)}.eml", data)

    def close(self) -> None:
        """Nothing to release; present so callers treat every provider alike."""


class OutboxPushProvider:
    """Writes ``<uuid>.json`` holding the FCM v1 request body."""

    def __init__(self, *, settings) -> None:
        self._dir = Path(settings.outbox_dir)

    def send(self, *, token: str, title: str, body: str, image: str | None, data: dict[str, str]) -> str:
        """Same contract and errors as :meth:`providers.push.FcmPushProvider.send`; returns a message name."""
        payload = request_body(**notify_kwargs(token=token, title=title, body=body, image=image, data=data))
        message_id = uuid.uuid4().hex
        text = json.dumps(payload, ensure_ascii=False, indent=2, sort_keys=True) + "\n"
        write_atomically(self._dir / f"{message_id}.json", text.encode("utf-8"))
        return f"projects/outbox/messages/{message_id}"

    def close(self) -> None:
        """Nothing to release; present so callers treat every provider alike."""
