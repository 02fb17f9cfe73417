"""One error hierarchy for every provider: retryable or permanent, and why.

The reliability middleware decides on the class alone: a retryable error is tried again later
(and counts against the provider's circuit breaker); a permanent one goes straight to the
dead-letter queue. ``reason`` is a short stable code for logs, metrics and the API's ``error``.
"""

from __future__ import annotations


class ProviderError(Exception):
    """A delivery did not happen. ``retryable`` says whether trying again can help."""

    retryable = False

    def __init__(self, message: str, *, reason: str, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.retry_after_s = retry_after_s

    def __str__(self) -> str:
        return f"{self.reason}: {self.args[0]}"


class RetryableProviderError(ProviderError):
    """Timeouts, refused connections, SMTP 4xx, FCM 429/5xx: the provider may accept it later."""

    retryable = True


class PermanentProviderError(ProviderError):
    """SMTP 5xx, an invalid or unregistered push token, a template that cannot render: never will."""


class InvalidTokenError(PermanentProviderError):
    """The push token is malformed, unregistered or belongs to another sender; clear it from the user."""
