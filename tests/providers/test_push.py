"""FcmPushProvider against a local FCM v1 + OAuth server over HTTP: pyfcm and google-auth run for real."""

from __future__ import annotations

import time

import pytest

from providers.errors import InvalidTokenError, PermanentProviderError, RetryableProviderError
from providers.push import FcmPushProvider, error_for_response, validate_token
from settings import Settings
from tests.support.fcm_server import fcm_server

TOKEN = "dXk3:APA91b" + "x" * 140


def make_settings(**env: str) -> Settings:
    return Settings.from_env({"JWT_SECRET": "test-secret-for-herald-0123456789", **env})


def send(provider: FcmPushProvider, **overrides) -> str:
    args = {
        "token": TOKEN,
        "title": "Order A-17 shipped",
        "body": "Your order is on its way",
        "image": "https://example.com/i.png",
        "data": {"notification_id": "n-1", "link": "https://example.com/o/A-17"},
    }
    args.update(overrides)
    return provider.send(**args)


@pytest.fixture
def fcm(tmp_path):
    with fcm_server(tmp_path) as server:
        yield server


@pytest.fixture
def provider(fcm):
    p = FcmPushProvider(settings=make_settings(**fcm.env))
    yield p
    p.close()


def test_push_request_body_and_oauth_token_from_token_uri(fcm, provider):
    name = send(provider)
    assert name.startswith("projects/herald-test/messages/")
    [body] = fcm.requests
    message = body["message"]
    assert message["token"] == TOKEN
    assert message["notification"] == {
        "title": "Order A-17 shipped",
        "body": "Your order is on its way",
        "image": "https://example.com/i.png",
    }
    assert message["data"] == {"notification_id": "n-1", "link": "https://example.com/o/A-17"}
    assert message["android"] == {"priority": "high"}
    assert body["validate_only"] is False
    [claims] = fcm.token_requests
    assert claims["iss"] == fcm.client_email
    assert claims["scope"] == "https://www.googleapis.com/auth/firebase.messaging"


def test_the_access_token_is_reused_across_sends(fcm, provider):
    names = {send(provider) for _ in range(3)}
    assert len(names) == 3
    assert len(fcm.messages) == 3
    assert len(fcm.token_requests) == 1


def test_no_image_means_no_image_key(fcm, provider):
    send(provider, image=None)
    assert "image" not in fcm.requests[0]["message"]["notification"]


def test_unregistered_token_is_an_invalid_token(fcm, provider):
    fcm.fail_with(404, "UNREGISTERED")
    with pytest.raises(InvalidTokenError) as info:
        send(provider)
    assert info.value.reason == "unregistered_token"


def test_invalid_argument_about_the_token_is_an_invalid_token(fcm, provider):
    fcm.fail_with(400, "INVALID_ARGUMENT", field="message.token")
    with pytest.raises(InvalidTokenError) as info:
        send(provider)
    assert info.value.reason == "invalid_token"


def test_invalid_argument_about_the_payload_is_permanent_but_keeps_the_token(fcm, provider):
    fcm.fail_with(400, "INVALID_ARGUMENT", field="message.data[0].value")
    with pytest.raises(PermanentProviderError) as info:
        send(provider)
    assert not isinstance(info.value, InvalidTokenError)
    assert info.value.reason == "fcm_invalid_argument"


def test_sender_id_mismatch_is_an_invalid_token(fcm, provider):
    fcm.fail_with(403, "SENDER_ID_MISMATCH")
    with pytest.raises(InvalidTokenError) as info:
        send(provider)
    assert info.value.reason == "sender_id_mismatch"


def test_429_with_retry_after_raises_at_once_instead_of_sleeping(fcm, provider):
    fcm.fail_with(429, retry_after=30)
    started = time.monotonic()
    with pytest.raises(RetryableProviderError) as info:
        send(provider)
    assert time.monotonic() - started < 5
    assert info.value.reason == "fcm_429"
    assert info.value.retry_after_s == 30
    assert len(fcm.requests) == 1  # no hidden retry either


@pytest.mark.parametrize("status", [500, 503])
def test_server_errors_are_retryable_without_hidden_retries(fcm, provider, status):
    fcm.fail_with(status)
    started = time.monotonic()
    with pytest.raises(RetryableProviderError) as info:
        send(provider)
    assert info.value.reason == "fcm_5xx"
    assert len(fcm.requests) == 1
    assert time.monotonic() - started < 5


def test_a_rejected_access_token_is_retryable_and_replaced_next_time(fcm, provider):
    fcm.fail_with(401, times=1)
    with pytest.raises(RetryableProviderError) as info:
        send(provider)
    assert info.value.reason == "fcm_auth"
    send(provider)
    assert len(fcm.messages) == 1
    assert len(fcm.token_requests) == 2


def test_token_endpoint_refusal_is_retryable_oauth_error(fcm, provider):
    fcm.fail_token_with(400)
    with pytest.raises(RetryableProviderError) as info:
        send(provider)
    assert info.value.reason == "fcm_oauth"
    assert fcm.requests == []
    fcm.clear_failure()
    send(provider)
    assert len(fcm.messages) == 1


def test_server_down_before_the_first_token_is_retryable(fcm, provider):
    fcm.stop()
    started = time.monotonic()
    with pytest.raises(RetryableProviderError) as info:
        send(provider)
    assert info.value.reason == "fcm_oauth"
    assert time.monotonic() - started < 5


def test_server_down_after_a_send_is_retryable_and_recovers(fcm, provider):
    send(provider)
    fcm.stop()
    started = time.monotonic()
    with pytest.raises(RetryableProviderError) as info:
        send(provider)
    assert info.value.reason == "fcm_unreachable"
    assert time.monotonic() - started < 5
    fcm.start()
    send(provider)
    assert len(fcm.messages) == 2


@pytest.mark.parametrize(
    "token",
    [
        "",
        "short",
        "a" * 19,
        "a" * 4097,
        "has spaces in it ........",
        "line\nbreak-0123456789abcdef",
        "ünïcode-0123456789abcdef",
        None,
        12345,
    ],
)
def test_malformed_token_is_refused_without_any_request(fcm, provider, token):
    with pytest.raises(InvalidTokenError) as info:
        send(provider, token=token)
    assert info.value.reason == "invalid_token"
    assert fcm.requests == [] and fcm.token_requests == []


def test_token_bounds_are_inclusive():
    assert validate_token("a" * 20) == "a" * 20
    assert validate_token("A-z_0:9." * 512) == "A-z_0:9." * 512


@pytest.mark.parametrize("data", [{"notification_id": 5}, {"from": "x"}, {"google.x": "y"}])
def test_bad_data_is_permanent_without_any_request(fcm, provider, data):
    with pytest.raises(PermanentProviderError) as info:
        send(provider, data=data)
    assert info.value.reason == "invalid_data"
    assert fcm.requests == []


def test_error_mapping_of_answers_the_server_cannot_be_told_to_give():
    bare_404 = error_for_response(404, "<html>Not Found</html>", None)
    assert isinstance(bare_404, RetryableProviderError) and bare_404.reason == "fcm_endpoint"
    denied = error_for_response(403, '{"error": {"code": 403, "status": "PERMISSION_DENIED", "message": "no"}}', None)
    assert isinstance(denied, RetryableProviderError) and denied.reason == "fcm_auth"
    dated = error_for_response(503, "", "Wed, 21 Oct 2099 07:28:00 GMT")
    assert dated.retryable and dated.retry_after_s > 3600
