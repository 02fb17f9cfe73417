"""The send request, parsed once into a typed value the pipeline passes around."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from models.notification import CHANNELS, DEFAULT_PRIORITY, MAX_PRIORITY, MIN_PRIORITY
from web.common import validation

FIELDS = {"notification_type", "user_id", "template_code", "variables", "request_id", "priority", "metadata"}


@dataclass(frozen=True)
class SendRequest:
    """``POST /api/v1/notifications``, validated and with defaults applied."""

    notification_type: str
    user_id: str
    template_code: str
    variables: dict[str, Any]
    request_id: str
    priority: int
    metadata: dict[str, Any]

    @classmethod
    def parse(cls, body: dict[str, Any]) -> SendRequest:
        """Raises :class:`~web.common.envelope.ApiError` ``VALIDATION_ERROR`` naming the field."""
        validation.reject_unknown(body, FIELDS)
        channel = validation.string(body, "notification_type", max_len=8)
        if channel not in CHANNELS:
            raise validation.fail("notification_type must be 'email' or 'push'")
        variables = validation.obj(body, "variables", default={})
        if "link" in variables and variables["link"] is not None:
            link = variables["link"]
            if not isinstance(link, str) or not link.startswith(("http://", "https://")) or len(link) > 2048:
                raise validation.fail("variables.link must be an http(s) URL")
        return cls(
            notification_type=channel,
            user_id=validation.uuid_str(body.get("user_id"), "user_id"),
            template_code=validation.string(body, "template_code", max_len=100, single_line=True),
            variables=variables,
            request_id=validation.string(body, "request_id", max_len=128, single_line=True),
            priority=validation.integer(
                body, "priority", low=MIN_PRIORITY, high=MAX_PRIORITY, default=DEFAULT_PRIORITY
            ),
            metadata=validation.obj(body, "metadata", default={}),
        )

    def canonical(self) -> dict[str, Any]:
        """The request as the idempotency hash sees it: every field, defaults applied."""
        return dataclasses.asdict(self)
