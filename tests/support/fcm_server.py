"""A local HTTP server that speaks FCM HTTP v1 and its OAuth2 token endpoint, for tests.

Usage::

    with fcm_server(tmp_path) as fcm:
        settings = Settings.from_env({**base_env, **fcm.env})   # FCM_PROJECT_ID, _CREDENTIALS_FILE, _ENDPOINT
        ...send...
        fcm.wait_for(1)
        fcm.requests[0]["message"]["token"]      # every messages:send body received, as JSON
        fcm.messages                              # only those answered 200
        fcm.token_requests                        # verified JWT claims of each OAuth grant
        fcm.fail_with(404, "UNREGISTERED")        # until clear_failure(); times=1 for the next one only
        fcm.fail_with(400, "INVALID_ARGUMENT", field="message.token")
        fcm.fail_with(429, retry_after=30)
        fcm.fail_token_with(500)                  # the token endpoint fails instead
        fcm.stop(); fcm.start()                   # down (connection refused) and back up

The credentials file is a real service-account JSON with a fresh RSA key and ``token_uri`` pointing
here, so google-auth signs a real JWT and pyfcm runs its production code path end to end.
"""

from __future__ import annotations

import itertools
import json
import re
import secrets
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from functools import lru_cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.support.ports import free_port

JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
FCM_SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
#: google-auth always puts Google's token endpoint in ``aud``, whatever ``token_uri`` says.
JWT_AUDIENCE = "https://oauth2.googleapis.com/token"
_SEND_PATH = re.compile(r"/v1/projects/([^/]+)/messages:send")
_GOOGLE_STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
}
_DEFAULT_MESSAGE = {
    401: "Request had invalid authentication credentials.",
    403: "SenderId mismatch",
    404: "Requested entity was not found.",
    429: "Quota exceeded for sending messages.",
    500: "Internal error encountered.",
    503: "The service is currently unavailable.",
}
_DEFAULT_CODE = {
    400: "INVALID_ARGUMENT",
    401: "THIRD_PARTY_AUTH_ERROR",
    403: "SENDER_ID_MISMATCH",
    404: "UNREGISTERED",
    429: "QUOTA_EXCEEDED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
}


@lru_cache(maxsize=1)
def _private_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def write_service_account(path: Path, *, project_id: str, token_uri: str) -> str:
    """Write a service-account JSON whose ``token_uri`` is ``token_uri``; returns the public key PEM."""
    key = _private_key()
    private_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    info = {
        "type": "service_account",
        "project_id": project_id,
        "private_key_id": secrets.token_hex(20),
        "private_key": private_pem,
        "client_email": _client_email(project_id),
        "client_id": "100000000000000000001",
        "token_uri": token_uri,
    }
    path.write_text(json.dumps(info, indent=2))
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def _client_email(project_id: str) -> str:
    return f"herald-test@{project_id}.iam.gserviceaccount.com"


@dataclass
class _Failure:
    status: int
    error_code: str | None
    message: str | None
    field: str | None
    retry_after: int | None
    remaining: int | None


@dataclass
class FcmServer:
    """Handle on the running server; see the module docstring."""

    project_id: str
    credentials_file: Path
    port: int
    requests: list[dict] = field(default_factory=list)
    messages: list[dict] = field(default_factory=list)
    token_requests: list[dict] = field(default_factory=list)
    _public_key: str = ""
    _tokens: set[str] = field(default_factory=set)
    _failure: _Failure | None = None
    _token_failure: int | None = None
    _cond: threading.Condition = field(default_factory=threading.Condition)
    _httpd: ThreadingHTTPServer | None = None
    _sockets: set = field(default_factory=set)
    _ids: Iterator[int] = field(default_factory=lambda: itertools.count(1_000_001))

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def token_uri(self) -> str:
        return f"{self.url}/token"

    @property
    def client_email(self) -> str:
        return _client_email(self.project_id)

    @property
    def env(self) -> dict[str, str]:
        """Herald's settings pointing at this server."""
        return {
            "FCM_PROJECT_ID": self.project_id,
            "FCM_CREDENTIALS_FILE": str(self.credentials_file),
            "FCM_ENDPOINT": self.url,
        }

    def fail_with(
        self,
        status: int,
        error_code: str | None = None,
        *,
        message: str | None = None,
        field: str | None = None,
        retry_after: int | None = None,
        times: int | None = None,
    ) -> None:
        """Answer messages:send with an FCM error; ``error_code`` defaults to the usual one for ``status``.

        ``field`` adds a BadRequest fieldViolation (``"message.token"`` is how FCM flags a bad token),
        ``retry_after`` a Retry-After header, ``times`` limits the failure to the next N requests.
        """
        with self._cond:
            self._failure = _Failure(
                status, error_code or _DEFAULT_CODE.get(status), message, field, retry_after, times
            )

    def fail_token_with(self, status: int) -> None:
        """Answer the OAuth token endpoint with ``status`` (400 is invalid_grant) until cleared."""
        with self._cond:
            self._token_failure = status

    def clear_failure(self) -> None:
        """Answer both endpoints normally again."""
        with self._cond:
            self._failure = None
            self._token_failure = None

    def wait_for(self, count: int, timeout: float = 10.0) -> list[dict]:
        """Block until ``count`` messages were accepted; raises AssertionError on timeout."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self.messages) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"expected {count} pushes, got {len(self.messages)} in {timeout} s")
                self._cond.wait(left)
            return list(self.messages)

    def start(self) -> None:
        """Listen on ``port`` (again)."""
        if self._httpd is not None:
            return
        httpd = ThreadingHTTPServer(("127.0.0.1", self.port), _Handler)
        httpd.daemon_threads = True
        httpd.fcm = self  # type: ignore[attr-defined]
        threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True, name=f"fcm-server-{self.port}"
        ).start()
        self._httpd = httpd

    def stop(self) -> None:
        """Stop listening and cut open keep-alive connections, so clients see the server gone."""
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        httpd.shutdown()
        httpd.server_close()
        with self._cond:
            sockets, self._sockets = set(self._sockets), set()
        for sock in sockets:
            with suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def _take_failure(self) -> _Failure | None:
        with self._cond:
            failure = self._failure
            if failure is not None and failure.remaining is not None:
                failure.remaining -= 1
                if failure.remaining <= 0:
                    self._failure = None
            return failure


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    @property
    def fcm(self) -> FcmServer:
        return self.server.fcm  # type: ignore[attr-defined]

    def setup(self) -> None:
        super().setup()
        with self.fcm._cond:
            self.fcm._sockets.add(self.connection)

    def log_message(self, format, *args) -> None:
        pass

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.path == "/token":
            self._token(body)
            return
        match = _SEND_PATH.fullmatch(self.path)
        if match is None:
            self._reply(404, b"Not Found", content_type="text/plain")
            return
        self._send(match.group(1), body)

    def _token(self, body: bytes) -> None:
        form = {k: v[0] for k, v in parse_qs(body.decode()).items()}
        fcm = self.fcm
        if fcm._token_failure is not None:
            error = "invalid_grant" if fcm._token_failure < 500 else "internal_failure"
            self._json(fcm._token_failure, {"error": error, "error_description": "Configured test failure"})
            return
        if form.get("grant_type") != JWT_BEARER:
            self._json(400, {"error": "unsupported_grant_type"})
            return
        try:
            claims = jwt.decode(
                form.get("assertion", ""),
                fcm._public_key,
                algorithms=["RS256"],
                audience=JWT_AUDIENCE,
                options={"require": ["iss", "aud", "iat", "exp"]},
            )
        except jwt.PyJWTError as exc:
            self._json(400, {"error": "invalid_grant", "error_description": f"Invalid JWT: {exc}"})
            return
        if claims["iss"] != fcm.client_email or FCM_SCOPE not in str(claims.get("scope", "")).split():
            self._json(400, {"error": "invalid_scope", "error_description": "wrong issuer or scope"})
            return
        token = f"ya29.test-{secrets.token_urlsafe(24)}"
        with fcm._cond:
            fcm.token_requests.append(claims)
            fcm._tokens.add(token)
        self._json(200, {"access_token": token, "expires_in": 3600, "token_type": "Bearer"})

    def _send(self, project: str, body: bytes) -> None:
        fcm = self.fcm
        auth = self.headers.get("Authorization", "")
        if not auth.startswith("Bearer ") or auth[len("Bearer ") :] not in fcm._tokens:
            self._error(401, "UNAUTHENTICATED", "Request had invalid authentication credentials.")
            return
        if project != fcm.project_id:
            self._error(403, None, f"Permission denied on resource project {project}.")
            return
        try:
            payload = json.loads(body)
        except ValueError:
            self._error(400, None, "Invalid JSON payload received.")
            return
        with fcm._cond:
            fcm.requests.append(payload)
        failure = fcm._take_failure()
        if failure is not None:
            headers = {"Retry-After": str(failure.retry_after)} if failure.retry_after is not None else {}
            message = (
                failure.message
                or _DEFAULT_MESSAGE.get(failure.status)
                or (
                    "The registration token is not a valid FCM registration token"
                    if failure.field == "message.token"
                    else "Request contains an invalid argument."
                )
            )
            self._error(failure.status, failure.error_code, message, field=failure.field, headers=headers)
            return
        with fcm._cond:
            name = f"projects/{project}/messages/0:{next(fcm._ids)}"
            fcm.messages.append(payload)
            fcm._cond.notify_all()
        self._json(200, {"name": name})

    def _error(
        self,
        status: int,
        error_code: str | None,
        message: str,
        *,
        field: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        details: list[dict] = []
        if error_code:
            details.append({"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": error_code})
        if field:
            details.append(
                {
                    "@type": "type.googleapis.com/google.rpc.BadRequest",
                    "fieldViolations": [{"field": field, "description": message}],
                }
            )
        error = {
            "code": status,
            "message": message,
            "status": _GOOGLE_STATUS.get(status, "UNKNOWN"),
            "details": details,
        }
        self._json(status, {"error": error}, headers=headers)

    def _json(self, status: int, obj: dict, *, headers: dict[str, str] | None = None) -> None:
        self._reply(status, json.dumps(obj).encode(), content_type="application/json; charset=UTF-8", headers=headers)

    def _reply(self, status: int, data: bytes, *, content_type: str, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)


@contextmanager
def fcm_server(directory: Path, *, project_id: str = "herald-test") -> Iterator[FcmServer]:
    """Run the fake FCM for the block; the credentials file is written into ``directory``."""
    port = free_port()
    server = FcmServer(project_id=project_id, credentials_file=Path(directory) / "fcm-service-account.json", port=port)
    server._public_key = write_service_account(
        server.credentials_file, project_id=project_id, token_uri=server.token_uri
    )
    server.start()
    try:
        yield server
    finally:
        server.stop()
