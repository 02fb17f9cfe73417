"""Herald's signature and the README's receiver code agree, and the receiver code refuses what it must."""

from __future__ import annotations

import time

from providers.webhook import signature
from tests.support.webhook_receiver import readme_verify

SECRET = "whsec_" + "k" * 43
BODY = b'{"id":"e-1","type":"notification.delivered","created_at":"2026-01-01T00:00:00.000Z","data":{}}'


def test_the_readme_verifies_what_herald_signs():
    verify = readme_verify()
    now = int(time.time())
    header = signature(SECRET, BODY, now)
    assert header.startswith(f"t={now},v1=") and len(header.split("v1=")[1]) == 64
    assert verify(SECRET, BODY, header) is True


def test_the_readme_refuses_a_wrong_secret_a_changed_body_an_old_time_and_garbage():
    verify = readme_verify()
    now = int(time.time())
    assert verify("whsec_other", BODY, signature(SECRET, BODY, now)) is False
    assert verify(SECRET, BODY + b" ", signature(SECRET, BODY, now)) is False
    assert verify(SECRET, BODY, signature(SECRET, BODY, now - 301)) is False
    assert verify(SECRET, BODY, signature(SECRET, BODY, now - 301), tolerance_s=600) is True
    # the timestamp is signed: moving it forward breaks the signature
    forged = signature(SECRET, BODY, now - 1000).replace(f"t={now - 1000}", f"t={now}")
    assert verify(SECRET, BODY, forged) is False
    for header in ("", "t=abc,v1=00", f"v1={'0' * 64}", f"t={now}"):
        assert verify(SECRET, BODY, header) is False
