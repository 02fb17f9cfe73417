"""Requests decoded into the declared Structs: what is refused, with which message, and the send
request's idempotency hash, which must not change for requests stored before the Structs."""

from __future__ import annotations

import json

import msgspec
import pytest

from web.common.decoding import convert, decode_body
from web.common.envelope import ApiError
from web.common.fields import PageQuery
from web.gateway.guards import body_hash
from web.gateway.schemas import NotificationQuery, Receipt, SendRequest
from web.templates.schemas import TemplateUpdate
from web.users.schemas import UserCreate, UserUpdate

USER = "3f2b8c1e-6a4d-4e2f-9b7a-1c2d3e4f5a6b"
DEEP = b"[" * 100_000 + b"]" * 100_000
SEND = {"notification_type": "email", "user_id": USER, "template_code": "welcome", "request_id": "r-1"}


def decode(kind, body) -> object:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return decode_body(raw, msgspec.json.Decoder(kind))


def refusal(kind, body) -> str:
    with pytest.raises(ApiError) as caught:
        decode(kind, body)
    assert caught.value.code == "VALIDATION_ERROR" and caught.value.status == 400
    return caught.value.message


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({**SEND, "priority": 11}, "priority: must be <= 10"),
        ({**SEND, "priority": 0}, "priority: must be >= 1"),
        ({**SEND, "priority": True}, "priority: must be an integer or null, not true or false"),
        ({**SEND, "priority": 7.0}, "priority: must be an integer or null, not a number"),
        ({k: v for k, v in SEND.items() if k != "user_id"}, "user_id is required"),
        ({**SEND, "x": 1}, "unknown field: x"),
        ({**SEND, "notification_type": "sms"}, "notification_type: must be one of: email, push"),
        ({**SEND, "user_id": "not-a-uuid"}, "user_id: must be a UUID"),
        ({**SEND, "request_id": ""}, "request_id: must be at least 1 characters long"),
        ({**SEND, "request_id": "x" * 129}, "request_id: must be at most 128 characters long"),
        ({**SEND, "request_id": "a\nb"}, "request_id: does not match the pattern ^[^\\x00-\\x1f\\x7f]*$(?!\\n)"),
        ({**SEND, "request_id": "ab\n"}, "request_id: does not match the pattern ^[^\\x00-\\x1f\\x7f]*$(?!\\n)"),
        ({**SEND, "variables": [1]}, "variables: must be an object or null, not an array"),
        ({**SEND, "variables": {"link": "javascript:alert(1)"}}, "variables.link: must be an http(s) URL"),
        ({**SEND, "variables": {"x": "a" * 70_000}}, "variables: must be at most 65536 bytes as JSON"),
        ([1, 2], "request body must be a JSON object"),
    ],
)
def test_the_message_names_the_field(body, message):
    assert refusal(SendRequest, body).startswith(message)


@pytest.mark.parametrize(
    "raw",
    [b"{not json", b'{"priority": NaN}', b'{"priority": Infinity}', b'{"variables": {"a": ' + DEEP + b"}}", b"\xff"],
    ids=["malformed", "NaN", "Infinity", "deeply nested", "not UTF-8"],
)
def test_what_is_not_json_is_refused_as_such(raw):
    assert refusal(SendRequest, raw) == "request body is not valid JSON (or is nested too deeply)"


def test_empty_bodies_and_nul_are_refused_before_decoding():
    assert refusal(SendRequest, b"") == "request body is empty; expected a JSON object"
    nul = json.dumps({**SEND, "metadata": {"x": "a\u0000b"}}).encode()
    assert refusal(SendRequest, nul) == "request body must not contain NUL characters (\\u0000)"


def test_null_means_absent_and_defaults_apply():
    sent = decode(SendRequest, {**SEND, "priority": None, "variables": None, "metadata": None})
    assert (sent.priority, sent.variables, sent.metadata) == (5, {}, {})
    assert decode(SendRequest, SEND).canonical() == {
        "notification_type": "email",
        "user_id": USER,
        "template_code": "welcome",
        "variables": {},
        "request_id": "r-1",
        "priority": 5,
        "metadata": {},
    }


#: Bodies and the digests the hand-written parser gave them (``SendRequest.parse`` then ``canonical``),
#: so idempotency keys stored before the Structs still match.
DIGESTS = [
    (SEND, "936902c2826f2acb7380833788129efc1e79d1e8471896d11f67ba9b8b9dee0c"),
    (
        {**SEND, "priority": 5, "variables": {}, "metadata": {}},
        "936902c2826f2acb7380833788129efc1e79d1e8471896d11f67ba9b8b9dee0c",
    ),
    (
        {
            "notification_type": "push",
            "user_id": USER.upper(),
            "template_code": "welcome",
            "request_id": "r-2",
            "variables": {
                "name": "Zoë",
                "link": "https://example.com/?a=1&b=2",
                "n": 1.5,
                "big": 12345678901234567890,
                "nested": {"b": [1, None, True]},
            },
            "priority": 9,
            "metadata": {"campaign": "spring", "é": "ü"},
        },
        "a9fd6c01fce4a68b47e3059fc737cb4a71ece25269fe7dc50811500b2d202461",
    ),
    (
        {
            "notification_type": "email",
            "user_id": USER.replace("-", ""),
            "template_code": "t",
            "request_id": "r-3",
            "variables": None,
            "priority": None,
            "metadata": None,
        },
        "65fc13b6e522bca8306c77a868d182e88f4b51a236070defe71a796485d645a3",
    ),
]


@pytest.mark.parametrize(("body", "digest"), DIGESTS)
def test_the_idempotency_hash_is_the_one_stored_before(body, digest):
    assert body_hash(decode(SendRequest, body).canonical()) == digest


def test_query_strings_are_converted_and_named():
    assert convert({"page": "2", "limit": "5"}, PageQuery) == PageQuery(page=2, limit=5)
    with pytest.raises(ApiError, match=r"^limit: must be <= 100$"):
        convert({"limit": "500"}, PageQuery)
    with pytest.raises(ApiError, match=r"^page: must be an integer, not a string$"):
        convert({"page": "two"}, PageQuery)
    with pytest.raises(
        ApiError, match=r"^status: must be one of: cancelled, delivered, expired, failed, pending, scheduled$"
    ):
        convert({"status": "bogus"}, NotificationQuery)
    with pytest.raises(ApiError, match=r"^user_id: must be a UUID$"):
        convert({"user_id": ""}, NotificationQuery)


def test_nested_fields_are_named_by_their_path():
    base = {"name": "A", "email": "a@example.com", "password": "correct-horse-1"}
    assert refusal(UserCreate, {**base, "preferences": {"sms": True}}) == "unknown field: preferences.sms"
    message = refusal(UserCreate, {**base, "preferences": {"email": "yes"}})
    assert message == "preferences.email: must be true or false or null, not a string"
    assert refusal(UserCreate, {**base, "role": "root"}) == "role: must be one of: admin, service, user"
    assert refusal(UserCreate, {**base, "email": "a @example.com"}).startswith("email: does not match the pattern")


def test_null_clears_only_where_documented():
    assert decode(UserUpdate, {"push_token": None}).push_token is None
    assert refusal(UserUpdate, {"email": None}).startswith("email: must be a string")
    assert decode(TemplateUpdate, {"description": None}).description is None
    assert decode(TemplateUpdate, {"name": None}).name is None  # unchanged, as before


def test_receipt_times_are_rfc_3339_with_an_offset_in_range():
    receipt = decode(Receipt, {"notification_id": "n", "status": "delivered", "timestamp": "2026-11-26T10:00:00+01:00"})
    assert receipt.timestamp.isoformat() == "2026-11-26T09:00:00"
    at = {"notification_id": "n", "status": "delivered"}
    assert refusal(Receipt, {**at, "timestamp": "2026-11-26T10:00:00"}).startswith("timestamp: must carry a UTC offset")
    assert refusal(Receipt, {**at, "timestamp": "0001-01-01T00:00:00+05:00"}) == (
        "timestamp: must be in the years 1900 to 2999"
    )
