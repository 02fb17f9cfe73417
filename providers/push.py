"""Push over FCM HTTP v1 with pyfcm, minus the pyfcm behaviours a worker cannot afford.

pyfcm 2.1.1 sleeps in the calling thread on any ``Retry-After`` and recurses without limit, lets
urllib3 retry POSTs (duplicate pushes) for minutes, waits 120 s by default, fetches the OAuth token
with google-auth's 120 s default timeout, and calls every 403 a sender-id mismatch. A subclass
keeps pyfcm's payload building and session handling, and replaces the request, the token fetch and
the response handling so every outcome becomes one :mod:`providers.errors` class promptly; the
reliability middleware owns waiting and retrying.
"""

from __future__ import annotations

import json
import re
import threading
import time
from email.utils import parsedate_to_datetime

import google.auth.exceptions
import google.auth.transport.requests
import requests
from pyfcm import FCMNotification
from pyfcm.errors import (
    AuthenticationError,
    FCMError,
    FCMNotRegisteredError,
    FCMSenderIdMismatchError,
    InvalidDataError,
)
from requests.adapters import HTTPAdapter
from urllib3 import Retry

from providers.errors import InvalidTokenError, PermanentProviderError, ProviderError, RetryableProviderError

#: (connect, read) seconds for the send; pyfcm's default is 120 s of a blocked worker thread.
REQUEST_TIMEOUT = (3.05, 10)
#: Same bound for the OAuth token request to the service account's ``token_uri``.
TOKEN_TIMEOUT = (3.05, 10)
FCM_BASE_URL = "https://fcm.googleapis.com"
_TOKEN_RE = re.compile(r"[A-Za-z0-9_:.\-]{20,4096}")
#: FCM refuses these data keys (and any starting with "google"/"gcm") with a 400.
_RESERVED_DATA_KEYS = frozenset({"from", "notification", "message_type"})
_MAX_ERROR_TEXT = 300


def validate_token(token: object) -> str:
    """The token if it can be an FCM registration token; checked before any network traffic.

    Raises:
        InvalidTokenError: ``invalid_token``: not a str of 20..4096 characters of [A-Za-z0-9_:.-].
    """
    if not isinstance(token, str) or not _TOKEN_RE.fullmatch(token):
        raise InvalidTokenError("push token is not a valid FCM registration token", reason="invalid_token")
    return token


def notify_kwargs(*, token: str, title: str, body: str, image: str | None, data: dict[str, str]) -> dict:
    """Keyword arguments for pyfcm's ``notify``/``parse_payload``, shared with the outbox.

    Raises:
        InvalidTokenError: the token is malformed.
        PermanentProviderError: ``invalid_data``: a non-string data key or value, or a key FCM reserves.
    """
    validate_token(token)
    for key, value in data.items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise PermanentProviderError(f"push data {key!r} must map a string to a string", reason="invalid_data")
        if key in _RESERVED_DATA_KEYS or key.startswith(("google", "gcm")):
            raise PermanentProviderError(f"push data key {key!r} is reserved by FCM", reason="invalid_data")
    if image is not None and not isinstance(image, str):
        raise PermanentProviderError("push image must be a URL string", reason="invalid_data")
    kwargs: dict = {
        "fcm_token": token,
        "notification_title": title,
        "notification_body": body,
        "data_payload": dict(data),
        "android_config": {"priority": "high"},
    }
    if image:
        kwargs["notification_image"] = image
    if title or body:
        # 10 = deliver now; APNs only allows it for messages that show an alert.
        kwargs["apns_config"] = {"headers": {"apns-priority": "10"}}
    return kwargs


class _NoCredentials:
    """Lets pyfcm build payloads (the outbox) without a service account."""

    project_id = "outbox"


_payload_builder = FCMNotification(credentials=_NoCredentials())


def request_body(**kwargs) -> dict:
    """The FCM v1 request body pyfcm would POST for these ``notify_kwargs``."""
    return json.loads(_payload_builder.parse_payload(**kwargs))


class _TokenRequest(google.auth.transport.requests.Request):
    """google-auth's transport with a bounded timeout instead of its 120 s default."""

    def __call__(self, url, method="GET", body=None, headers=None, timeout=None, **kwargs):
        return super().__call__(url, method=method, body=body, headers=headers, timeout=TOKEN_TIMEOUT, **kwargs)


class BoundedFCMNotification(FCMNotification):
    """pyfcm with no in-thread sleeping, one token refresh at most, and errors as ProviderErrors."""

    def __init__(self, *, endpoint_base: str, project_id: str, **kwargs) -> None:
        super().__init__(project_id=project_id, **kwargs)
        self.FCM_END_POINT_BASE = endpoint_base
        # FCM_PROJECT_ID decides the URL, not the project_id inside the credentials file (pyfcm's choice).
        self._endpoint = f"{endpoint_base}/{project_id}/messages:send"
        self._token_request = _TokenRequest(session=requests.Session())

    @property
    def fcm_end_point(self) -> str:
        return self._endpoint

    def _get_access_token(self) -> str:
        try:
            if self.credentials is None:
                self._initialize_credentials()
        except Exception as exc:
            raise RetryableProviderError(
                f"FCM service-account file unusable: {_short(exc)}", reason="fcm_credentials"
            ) from exc
        try:
            self.credentials.refresh(self._token_request)
        except Exception as exc:
            # The token server being down or refusing is a provider/config outage, not a bad message.
            raise RetryableProviderError(f"FCM OAuth token fetch failed: {_short(exc)}", reason="fcm_oauth") from exc
        return self.credentials.token

    def send_request(self, payload=None, timeout=None):
        # pyfcm sleeps for Retry-After and recurses; here the response goes straight to parse_response.
        response = self.requests_session.post(self.fcm_end_point, data=payload, timeout=timeout)
        if self._is_access_token_expired(response):
            self.thread_local.token_expiry = 0
            response = self.requests_session.post(self.fcm_end_point, data=payload, timeout=timeout)
        return response

    def parse_response(self, response) -> dict:
        if response.status_code == 200:
            try:
                return response.json()
            except ValueError:
                return {}  # accepted all the same; raising would make a retry send it twice
        if response.status_code == 401:
            self.thread_local.token_expiry = 0  # fetch a fresh token on the next attempt
        raise error_for_response(response.status_code, response.text, response.headers.get("Retry-After"))

    def close(self) -> None:
        session = getattr(self.thread_local, "requests_session", None)
        if session is not None:
            session.close()
            self.thread_local.requests_session = None
        self._token_request.session.close()


class FcmPushProvider:
    """Sends one FCM v1 message per call; one pyfcm client (and HTTP session) per thread."""

    def __init__(self, *, settings) -> None:
        if not settings.fcm_project_id or not settings.fcm_credentials_file:
            raise ValueError("FCM_PROJECT_ID and FCM_CREDENTIALS_FILE: required for the FCM provider")
        self._settings = settings
        self._endpoint_base = f"{(settings.fcm_endpoint or FCM_BASE_URL).rstrip('/')}/v1/projects"
        self._local = threading.local()

    def send(self, *, token: str, title: str, body: str, image: str | None, data: dict[str, str]) -> str:
        """Send the push; returns FCM's message name (``projects/<p>/messages/<id>``).

        Raises:
            InvalidTokenError: malformed (checked locally), unregistered or other sender's token.
            PermanentProviderError: FCM refused the payload (400 not about the token).
            RetryableProviderError: 429 (with ``retry_after_s``), 5xx, timeouts, network and auth failures.
        """
        kwargs = notify_kwargs(token=token, title=title, body=body, image=image, data=data)
        client = self._client()
        try:
            result = client.notify(**kwargs, timeout=REQUEST_TIMEOUT)
        except Exception as exc:
            raise classify_exception(exc) from exc
        return str(result.get("name", "")) if isinstance(result, dict) else ""

    def close(self) -> None:
        """Close this thread's HTTP sessions (worker thread shutdown)."""
        client = getattr(self._local, "client", None)
        self._local.client = None
        if client is not None:
            client.close()

    def _client(self) -> BoundedFCMNotification:
        client = getattr(self._local, "client", None)
        if client is None:
            client = BoundedFCMNotification(
                endpoint_base=self._endpoint_base,
                project_id=self._settings.fcm_project_id,
                service_account_file=self._settings.fcm_credentials_file,
                # Retries belong to the middleware: a retried POST can deliver the push twice.
                adapter=HTTPAdapter(max_retries=Retry(total=0, redirect=0)),
            )
            self._local.client = client
        return client


def error_for_response(status: int, text: str, retry_after: str | None) -> ProviderError:
    """Classify a non-200 FCM answer by status and the FcmError details in its body."""
    error = _google_error(text)
    details = [d for d in error.get("details", []) if isinstance(d, dict)]
    codes = {d.get("errorCode") for d in details}
    fields = {v.get("field") for d in details for v in d.get("fieldViolations", []) if isinstance(v, dict)}
    message = str(error.get("message") or text[:_MAX_ERROR_TEXT])
    summary = f"FCM answered {status} {error.get('status', '')}".rstrip() + f": {message}"
    wait = _retry_after_s(retry_after)
    if status == 429 or "QUOTA_EXCEEDED" in codes:
        return RetryableProviderError(summary, reason="fcm_429", retry_after_s=wait)
    if status == 400:
        if "message.token" in fields or "registration token" in message.lower():
            return InvalidTokenError(summary, reason="invalid_token")
        return PermanentProviderError(summary, reason="fcm_invalid_argument")
    if status == 404:
        if error:
            return InvalidTokenError(summary, reason="unregistered_token")
        # A bare 404 is a wrong FCM_ENDPOINT or proxy, not the user's token.
        return RetryableProviderError(summary, reason="fcm_endpoint")
    if status == 403:
        if "SENDER_ID_MISMATCH" in codes:
            return InvalidTokenError(summary, reason="sender_id_mismatch")
        return RetryableProviderError(summary, reason="fcm_auth")  # API disabled, missing permission
    if status == 401:
        return RetryableProviderError(summary, reason="fcm_auth")
    if status >= 500:
        return RetryableProviderError(summary, reason="fcm_5xx", retry_after_s=wait)
    return RetryableProviderError(summary, reason="fcm_unexpected_status", retry_after_s=wait)


def classify_exception(exc: BaseException) -> ProviderError:
    """Map what ``notify`` can raise (requests, google-auth via pyfcm, pyfcm) to a ProviderError."""
    if isinstance(exc, ProviderError):
        return exc
    if isinstance(exc, requests.Timeout):
        return RetryableProviderError(f"FCM did not answer in time: {_short(exc)}", reason="fcm_timeout")
    if isinstance(exc, requests.ConnectionError | requests.exceptions.RetryError):
        return RetryableProviderError(f"FCM unreachable: {_short(exc)}", reason="fcm_unreachable")
    if isinstance(exc, requests.RequestException):
        return RetryableProviderError(f"FCM request failed: {_short(exc)}", reason="fcm_transport")
    if isinstance(exc, InvalidDataError):
        inner = exc.args[0] if exc.args else None
        if isinstance(inner, google.auth.exceptions.GoogleAuthError):
            return RetryableProviderError(f"FCM OAuth token fetch failed: {_short(inner)}", reason="fcm_oauth")
        return PermanentProviderError(f"FCM payload refused by pyfcm: {_short(exc)}", reason="fcm_invalid_argument")
    if isinstance(exc, FCMNotRegisteredError):
        return InvalidTokenError(_short(exc), reason="unregistered_token")
    if isinstance(exc, FCMSenderIdMismatchError):
        return InvalidTokenError(_short(exc), reason="sender_id_mismatch")
    if isinstance(exc, AuthenticationError):
        return RetryableProviderError(_short(exc), reason="fcm_auth")
    if isinstance(exc, FCMError):
        return RetryableProviderError(_short(exc), reason="fcm_5xx")
    return RetryableProviderError(f"FCM send failed: {_short(exc)}", reason="fcm_error")


def _google_error(text: str) -> dict:
    try:
        body = json.loads(text)
    except ValueError:
        return {}
    error = body.get("error") if isinstance(body, dict) else None
    return error if isinstance(error, dict) else {}


def _retry_after_s(value: str | None) -> float | None:
    """Retry-After in seconds: delta-seconds or an HTTP date (RFC 9110 allows both)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _short(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}"
    return text if len(text) <= _MAX_ERROR_TEXT else text[:_MAX_ERROR_TEXT] + "..."
