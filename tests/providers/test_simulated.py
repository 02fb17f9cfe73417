"""Test mode's providers: the real checks, no traffic, and the contract's simulated failures."""

from __future__ import annotations

import pytest

from providers.errors import InvalidTokenError, PermanentProviderError
from providers.simulated import (
    PERMANENT_FAILURE_EMAIL,
    PERMANENT_FAILURE_TOKEN,
    SIMULATED_FAILURE,
    SimulatedEmailProvider,
    SimulatedPushProvider,
)
from settings import Settings

SETTINGS = Settings.from_env({"JWT_SECRET": "x" * 32, "MAIL_FROM": "Herald <no-reply@herald.example>"})
MAIL = {"subject": "Hi", "html": "<p>Hi</p>", "text": "Hi", "notification_id": "n-1"}
PUSH = {"title": "Hi", "body": "there", "image": None, "data": {"notification_id": "n-1"}}


def test_an_ordinary_email_is_accepted_and_the_failure_address_fails_permanently():
    provider = SimulatedEmailProvider(settings=SETTINGS)
    assert provider.send(to="ada@example.com", **MAIL) is None
    for address in (PERMANENT_FAILURE_EMAIL, "Simulate-Permanent-Failure@Herald.Test"):
        with pytest.raises(PermanentProviderError) as err:
            provider.send(to=address, **MAIL)
        assert err.value.reason == SIMULATED_FAILURE


def test_a_simulated_email_still_refuses_what_smtp_would_refuse():
    provider = SimulatedEmailProvider(settings=SETTINGS)
    with pytest.raises(PermanentProviderError) as err:
        provider.send(to="ada@example.com", **{**MAIL, "subject": "Hi\r\nBcc: eve@example.com"})
    assert err.value.reason == "invalid_header"


def test_push_fails_for_the_failure_token_without_calling_it_invalid():
    provider = SimulatedPushProvider()
    assert provider.send(token="t" * 40, **PUSH).startswith("projects/simulated/messages/")
    with pytest.raises(PermanentProviderError) as err:
        provider.send(token=PERMANENT_FAILURE_TOKEN, **PUSH)
    # an InvalidTokenError would make the worker clear the user's token: a test must not do that
    assert not isinstance(err.value, InvalidTokenError) and err.value.reason == SIMULATED_FAILURE
    with pytest.raises(InvalidTokenError):
        provider.send(token="short", **PUSH)
