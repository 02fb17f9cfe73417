"""Brute-force limits on the API's login, through the gateway as a client calls it: per account and
per client address, judged before the password (no oracle), with a 429 that says when to retry."""

from __future__ import annotations

import uuid

from web.common.login_limits import ACCOUNT_LIMIT, ADDRESS_LIMIT, address_from

PASSWORD = "correct-horse-1"


async def login(stack, email: str, password: str, address: str | None = None):
    headers = {"X-Forwarded-For": address} if address else {}
    resp = await stack.client.post("/api/v1/auth/login", json={"email": email, "password": password}, headers=headers)
    return resp.status, await resp.json(), resp.headers


async def test_an_account_is_locked_after_five_failures_even_for_the_right_password(stack):
    user = await stack.create_user()
    for _ in range(ACCOUNT_LIMIT):
        status, body, _ = await login(stack, user["email"], "wrong-password")
        assert (status, body["error"]) == (401, "UNAUTHORIZED")
    status, body, headers = await login(stack, user["email"], PASSWORD)
    assert (status, body["error"]) == (429, "RATE_LIMITED")
    assert 0 < int(headers["Retry-After"]) <= 15 * 60
    assert body["data"] == {"retry_after": int(headers["Retry-After"])}
    assert "try again in 15 minute(s)" in body["message"]
    wrong_while_locked = await login(stack, user["email"], "wrong-password")
    assert wrong_while_locked[:2][0] == 429 and wrong_while_locked[1]["message"] == body["message"], "no oracle"
    other = await stack.create_user()
    assert (await login(stack, other["email"], PASSWORD))[0] == 200, "only that account is locked"


async def test_an_unknown_email_is_locked_the_same_way(stack):
    email = f"nobody-{uuid.uuid4().hex[:6]}@example.com"
    answers = [(await login(stack, email, "whatever-pass"))[0] for _ in range(ACCOUNT_LIMIT + 1)]
    assert answers == [401] * ACCOUNT_LIMIT + [429]


async def test_a_success_clears_the_account_count(stack):
    user = await stack.create_user()
    for _ in range(ACCOUNT_LIMIT - 1):
        assert (await login(stack, user["email"], "wrong-password"))[0] == 401
    assert (await login(stack, user["email"], PASSWORD))[0] == 200
    for _ in range(ACCOUNT_LIMIT - 1):
        assert (await login(stack, user["email"], "wrong-password"))[0] == 401
    assert (await login(stack, user["email"], PASSWORD))[0] == 200


async def test_an_address_is_locked_after_twenty_failures_across_accounts(stack):
    victim = await stack.create_user()
    for i in range(ADDRESS_LIMIT):
        assert (await login(stack, f"guess-{i}@example.com", "wrong-password", "198.51.100.7"))[0] == 401
    status, body, _ = await login(stack, victim["email"], PASSWORD, "198.51.100.7")
    assert (status, body["error"]) == (429, "RATE_LIMITED")
    assert (await login(stack, victim["email"], PASSWORD, "198.51.100.8"))[0] == 200, "another address may"


def test_the_client_address_is_the_first_public_one_from_the_right_behind_private_proxies():
    assert address_from("203.0.113.5", "198.51.100.1") == "203.0.113.5", "a public peer's header is ignored"
    assert address_from("10.0.0.2", "198.51.100.1") == "198.51.100.1"
    # a client's own claim stands left of what its proxy appended
    assert address_from("127.0.0.1", "6.6.6.6, 198.51.100.1, 10.0.0.9") == "198.51.100.1"
    assert address_from("127.0.0.1", "") == "127.0.0.1"
    assert address_from("127.0.0.1", "10.0.0.4, 10.0.0.9") == "10.0.0.4", "all private: the farthest"
    assert address_from("127.0.0.1", "not-an-ip, 198.51.100.1") == "198.51.100.1"
    assert address_from("127.0.0.1", "not-an-ip") == "127.0.0.1"
    assert address_from("", "198.51.100.1") == "unknown"
