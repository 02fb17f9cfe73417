"""Log lines never carry an API key or a webhook secret, wherever one hides in the record."""

from __future__ import annotations

import io
import json
import logging

import pytest

from logs import JsonFormatter, mask_secrets
from models.api_key import generate
from models.notification import LIVE, TEST
from models.webhook import generate_secret


@pytest.fixture
def capture():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter(service="test"))
    logger = logging.getLogger("tests.logs")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    yield logger, stream
    logger.removeHandler(handler)


def lines(stream: io.StringIO) -> list[str]:
    return stream.getvalue().splitlines()


def test_keys_and_secrets_are_masked_in_message_extra_fields_and_tracebacks(capture):
    logger, stream = capture
    live, test, secret = generate(LIVE), generate(TEST), generate_secret()
    logger.info("bearer was %s", live, extra={"auth": f"Bearer {test}", "nested": {"keys": [live, secret]}})
    try:
        raise ValueError(f"refused {secret}")
    except ValueError:
        logger.exception("failed with %s", test)
    text = stream.getvalue()
    for value in (live, test, secret):
        assert value not in text
        assert value[12:] not in text  # not even the random part after the prefix
    first, second = (json.loads(line) for line in lines(stream))
    assert first["message"] == "bearer was hk_live_***"
    assert first["auth"] == "Bearer hk_test_***"
    assert first["nested"] == {"keys": ["hk_live_***", "whsec_***"]}
    assert second["message"] == "failed with hk_test_***"
    assert "refused whsec_***" in second["exception"]


def test_every_generated_key_is_masked():
    for mode in (LIVE, TEST):
        for _ in range(200):  # the random part may hold '-' and '_': all of it goes
            key = generate(mode)
            assert mask_secrets(f"x {key} y") == f"x hk_{mode}_*** y"


def test_lines_without_secrets_are_unchanged(capture):
    logger, stream = capture
    logger.info("notification %s delivered to hk@example.com", "n-1", extra={"prefix": "hk_live_Ab3d"[:7]})
    record = json.loads(lines(stream)[0])
    assert record["message"] == "notification n-1 delivered to hk@example.com"
    assert record["prefix"] == "hk_live"
