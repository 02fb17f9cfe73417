"""A check of Herald's own, run by schemathesis beside its built-in ones (loaded through
SCHEMATHESIS_HOOKS by tests/contract/test_schemathesis.py).

A few refusals depend on stored state, not on the request's shape: the user's preference for the
channel, a push to a user without a push token, template source that is not valid Jinja2, variables
a template cannot render; and a few on the clock or the DNS: a schedule or expiry out of bounds, a
webhook host that does not resolve or resolves to an address Herald does not call. The README's
order of checks keeps them 400s, so schemathesis.toml lets those operations answer 400 to
schema-valid data, and this check makes sure such a 400 is one of those refusals, never a field the
document allows.
"""

from __future__ import annotations

import re

import schemathesis

RENDERING = (
    r"missing template variable: ",
    r"template syntax error on line ",
    r"template is not allowed to do that",
    r"template failed to render",
    r"rendered template is larger than ",
    r"the rendered subject contains ",
)
#: Operation: the messages its stateful 400 VALIDATION_ERRORs may carry (PREFERENCE_DISABLED is one too).
#: Refusals judged against the clock: a schedule or an expiry too far or already past.
CLOCK = (r"send_at: must be at most 30 days ahead$", r"expires_at: must be after now and after send_at$")
STATEFUL_REFUSALS = {
    "POST /api/v1/notifications/": (r"the user has no push token$", *RENDERING, *CLOCK),
    "POST /api/v1/api-keys/": (r"expires_at must be in the future$",),
    # where a name points is the DNS's state, and the address policy is README's "Webhooks"
    "POST /api/v1/webhooks/": (r"the webhook (host|URL) ",),
    "POST /api/v1/templates/{code}/render": RENDERING,
    "POST /api/v1/templates/": (r"(subject|content): template syntax error on line ",),
    "PUT /api/v1/templates/{code}": (r"(subject|content): template syntax error on line ",),
}


@schemathesis.check
def valid_data_refused_only_by_stored_state(ctx, response, case):
    meta = case.meta
    if meta is None or not meta.generation.mode.is_positive or response.status_code != 400:
        return None
    allowed = STATEFUL_REFUSALS.get(case.operation.label)
    if allowed is None:
        return None  # positive_data_acceptance already refuses a 400 here
    body = response.json()
    if body.get("error") == "PREFERENCE_DISABLED" and case.operation.label.startswith("POST /api/v1/notifications"):
        return None
    message = body.get("message", "")
    if body.get("error") == "VALIDATION_ERROR" and any(re.match(p, message) for p in allowed):
        return None
    raise AssertionError(f"schema-valid request refused, and not by a rule on stored state: {message!r}")
