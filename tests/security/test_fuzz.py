"""Property-based fuzzing of every operation in the gateway's OpenAPI document, on the real stack.

For each (method, path) of ``/openapi.json``: path parameters become generated strings or real ids,
the query string and the body are generated (JSON of any shape, wrong types for the documented
fields, huge and unicode strings, nesting, raw non-JSON bytes, bodies over the 1 MiB limit, random
``X-Correlation-ID`` headers), sent with an admin, a user, a service, a garbage or no token. Every
answer must be below 500, be the envelope (except /openapi.json, /docs and /metrics), and show no
stack trace and no password hash.

How hypothesis meets pytest-asyncio (1.5, auto mode): ``@given`` cannot wrap the async test (the
stack lives on the test's event loop), so each test first has hypothesis *draw* its examples through
a small synchronous ``@given`` collector (``derandomize=True``: the same examples every run, no
example database), then replays them against the stack in the async test. Shrinking is lost; a
failure names the exact request instead.
"""

from __future__ import annotations

import json
import re
import time
import urllib.parse
import uuid
from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from tests.conftest import make_env
from tests.support.stack import start_stack
from web.gateway.reference import document

ENVELOPE = {"success", "data", "error", "message", "meta"}
NOT_ENVELOPED = {"/openapi.json", "/docs", "/metrics"}
FORBIDDEN_TEXT = ("Traceback", 'File "', "scrypt$")
EXAMPLES_PER_OPERATION = 80
#: Generated examples per operation are cheap; the budget is the file's wall time.
TIME_BUDGET_S = 80

# --- the operations ---------------------------------------------------------------------------------


def _resolve(doc: dict, node: dict) -> dict:
    while isinstance(node, dict) and "$ref" in node:
        target = doc
        for part in node["$ref"].lstrip("#/").split("/"):
            target = target[part]
        node = target
    return node


@dataclass(frozen=True)
class Operation:
    method: str
    path: str  # as documented, with {param}
    query: tuple[str, ...]
    body_fields: tuple[str, ...]
    has_body: bool

    @property
    def id(self) -> str:
        return f"{self.method} {self.path}"


def operations() -> list[Operation]:
    doc = document()
    ops = []
    for path, item in doc["paths"].items():
        for method, op in item.items():
            if method not in ("get", "post", "put", "patch", "delete"):
                continue
            params = [_resolve(doc, p) for p in op.get("parameters", []) + item.get("parameters", [])]
            query = tuple(p["name"] for p in params if p.get("in") == "query")
            fields: tuple[str, ...] = ()
            if "requestBody" in op:
                schema = _resolve(doc, op["requestBody"])["content"]["application/json"]["schema"]
                schema = _resolve(doc, schema["allOf"][0] if "allOf" in schema else schema)  # a constrained body
                fields = tuple(schema.get("properties", {}))
            ops.append(Operation(method.upper(), path, query, fields, "requestBody" in op))
    return ops


OPERATIONS = operations()
ALL_QUERY_NAMES = sorted(
    {q for op in OPERATIONS for q in op.query}
    | {"page", "limit", "user_id", "language", "code", "status", "notification_type"}
)

# --- strategies ---------------------------------------------------------------------------------

HUGE = st.sampled_from([10_000, 100_000, 600_000]).map(lambda n: "é" * n)
TEXT = st.one_of(
    st.text(max_size=40),
    st.tuples(st.text(max_size=8), st.sampled_from(["\x00", "\r\n", "\ud800", "\x7f", "%"]), st.text(max_size=8)).map(
        "".join
    ),
    st.text(alphabet=st.characters(codec="utf-8"), max_size=20),
    st.sampled_from(
        [
            "",
            " ",
            "\r\nBcc: v@example.com",
            "\x00",
            "../../etc/passwd",
            "%00",
            "%2F..%2F",
            "{{ 7*7 }}",
            "' OR 1=1 --",
            '"',
            "\\",
            "NaN",
            "-1",
            "0",
            "1e309",
            "99999999999999999999999",
            "true",
            "null",
            "[]",
            "{}",
            "\u202e",
            "\ud7ff",
            "\U0001f4a9" * 10,
            "a" * 129,
            str(uuid.uuid4()),
            str(uuid.uuid4()).upper(),
            "00000000-0000-0000-0000-000000000000",
            "admin",
        ]
    ),
)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=False, allow_infinity=False),
    TEXT,
)
JSON = st.recursive(
    SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)),
    max_leaves=12,
)


def body_strategy(op: Operation) -> st.SearchStrategy:
    """A body as (raw bytes or None, content type); JSON of the documented shape with wrong or odd values
    most of the time, anything else the rest."""
    if op.body_fields:
        shaped = st.fixed_dictionaries({}, optional={name: st.one_of(JSON, HUGE) for name in op.body_fields})
        extra = st.dictionaries(
            st.sampled_from([*op.body_fields, "role", "is_active", "id", "status", "x"]), JSON, max_size=3
        )
        objects = st.one_of(shaped, st.builds(lambda a, b: {**a, **b}, shaped, extra))
    else:
        objects = st.dictionaries(st.text(max_size=8), JSON, max_size=3)
    as_json = st.one_of(objects, JSON).map(lambda v: (json.dumps(v).encode(), "application/json"))
    raw = st.one_of(
        st.binary(max_size=64),
        st.integers(5, 3000).map(lambda d: b"[" * d + b"]" * d),
        st.integers(5, 3000).map(lambda d: b'{"a":' * d + b"1" + b"}" * d),
        st.just(b'{"x": "' + b"a" * (1024 * 1024 + 16) + b'"}'),
        st.sampled_from(
            [
                b"",
                b"{",
                b"null",
                b'{"a": NaN}',
                b'{"a": Infinity}',
                b"\xff\xfe{}",
                b'{"\\u0000": 1}',
                b'{"a": "\\ud800"}',
                b'{"a": 1, "a": 2}',
            ]
        ),
    ).map(lambda b: (b, "application/json"))
    other_type = st.tuples(
        st.binary(max_size=32),
        st.sampled_from(["text/plain", "application/x-www-form-urlencoded", "multipart/form-data", ""]),
    )
    return st.one_of(as_json, as_json, as_json, raw, other_type, st.just((None, None)))


def segment_strategy() -> st.SearchStrategy:
    """A path parameter: a real id (filled in at replay time) or a generated string, quoted or not."""
    # at most ~4 KiB once quoted: aiohttp's parser refuses a request line over 8190 bytes with a
    # plain-text 400 before any application code runs (as a proxy in front would, with a 414)
    generated = st.one_of(TEXT, HUGE.map(lambda s: s[:600])).filter(lambda s: s != "")
    quoted = generated.map(lambda s: urllib.parse.quote(s, safe="", errors="surrogatepass"))
    loose = generated.map(lambda s: urllib.parse.quote(s, safe="/:@!$&'()*+,;=-._~", errors="surrogatepass"))
    return st.one_of(st.sampled_from(["@user", "@other", "@notification", "@template"]), quoted, loose)


def query_strategy(op: Operation) -> st.SearchStrategy:
    names = st.sampled_from([*op.query, *ALL_QUERY_NAMES, "access_token", "x"])
    pairs = st.lists(
        st.tuples(names, st.one_of(TEXT, st.sampled_from(["@user", "@other"]), st.integers().map(str))), max_size=4
    )
    return pairs


@dataclass
class Case:
    caller: str
    segments: dict
    query: list
    body: tuple
    correlation_id: str | None
    method: str


def case_strategy(op: Operation) -> st.SearchStrategy:
    params = re.findall(r"{(\w+)}", op.path)
    return st.builds(
        Case,
        caller=st.sampled_from(["admin", "admin", "user", "user", "service", "none", "garbage"]),
        segments=st.fixed_dictionaries({p: segment_strategy() for p in params}),
        query=query_strategy(op),
        body=body_strategy(op) if op.has_body else st.one_of(st.just((None, None)), body_strategy(op)),
        correlation_id=st.one_of(
            st.none(), st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=140)
        ),
        method=st.one_of(
            st.just(op.method),
            st.just(op.method),
            st.just(op.method),
            st.sampled_from(["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]),
        ),
    )


def draw(strategy: st.SearchStrategy, n: int) -> list:
    """``n``-ish examples of ``strategy``, drawn by hypothesis (deterministically) outside any event loop."""
    out: list = []

    @settings(
        max_examples=n,
        deadline=None,
        derandomize=True,
        database=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(strategy)
    def collect(example):
        out.append(example)

    collect()
    return out


# --- the replay -------------------------------------------------------------------------------------


@pytest.fixture
async def fuzz_stack(aiohttp_server, aiohttp_client, database_url, redis_prefix, rabbit_vhost):
    """The stack on a vhost of its own: the dead-letter endpoints read and replay ``failed.queue``."""
    url, _ = rabbit_vhost
    env = make_env(database_url=database_url, redis_prefix=redis_prefix, rabbitmq_url=url, RATE_LIMIT_PER_HOUR="100000")
    stack = await start_stack(aiohttp_server, aiohttp_client, env)
    user = await stack.create_user()
    other = await stack.create_user(push_token="tok_" + uuid.uuid4().hex * 3)
    template = await stack.create_template()
    resp = await stack.send(
        notification_type="email",
        user_id=user["id"],
        template_code=template["code"],
        variables={"name": "Ada", "link": "https://example.com"},
        request_id="fuzz-seed",
    )
    assert resp.status == 202, await resp.text()
    ids = {
        "@user": user["id"],
        "@other": other["id"],
        "@template": template["code"],
        "@notification": (await resp.json())["data"]["notification_id"],
    }
    tokens = {
        "admin": stack.admin_token,
        "user": stack.token(user["id"]),
        "service": stack.token("fuzz", "service"),
        "garbage": "eyJhbGciOiJub25lIn0.e30.",
        "none": None,
    }
    return stack, ids, tokens


async def replay(stack, ids: dict, tokens: dict, op: Operation, case: Case, known: list) -> str | None:
    """Send one case; the reason it fails the properties, or None."""
    path = op.path
    for name, value in case.segments.items():
        path = path.replace("{" + name + "}", ids.get(value, value))
    if "{channel}" in op.path and "channel" not in case.segments:
        path = path.replace("{channel}", "email")
    query = urllib.parse.urlencode([(k, ids.get(v, v)) for k, v in case.query], errors="surrogatepass")
    url = path + ("?" + query if query else "")
    headers = {}
    if tokens.get(case.caller):
        headers["Authorization"] = f"Bearer {tokens[case.caller]}"
    if case.correlation_id is not None:
        headers["X-Correlation-ID"] = case.correlation_id
    raw, content_type = case.body
    if content_type:
        headers["Content-Type"] = content_type
    from yarl import URL

    resp = await stack.client.request(case.method, URL(url, encoded=True), data=raw, headers=headers)
    text = (await resp.read()).decode("utf-8", "replace")
    where = f"{case.method} {url[:160]!r} as {case.caller} body={raw[:120] if raw else raw!r}"
    if resp.status == 500 and known_defect(case.method, url):
        known.append(where)
        return None
    if resp.status >= 500:
        return f"{resp.status} on {where}: {text[:300]}"
    for marker in FORBIDDEN_TEXT:
        if marker in text:
            return f"{marker!r} in the answer to {where}: {text[:300]}"
    if URL(url, encoded=True).path.rstrip("/") in NOT_ENVELOPED or case.method == "HEAD":
        return None
    try:
        body = json.loads(text)
    except ValueError:
        return f"not JSON ({resp.status}) for {where}: {text[:200]}"
    if not isinstance(body, dict) or set(body) != ENVELOPE:
        return f"not the envelope ({resp.status}) for {where}: {text[:200]}"
    if body["success"] is not (resp.status < 400):
        return f"success={body['success']} with {resp.status} for {where}"
    if resp.status >= 400 and not (isinstance(body["error"], str) and body["error"].isupper()):
        return f"error code {body['error']!r} with {resp.status} for {where}"
    return None


#: Defects found by this fuzzer, each pinned by an xfail test below; the fuzz run sets their cases
#: aside (listed, not failed) so it keeps guarding everything else until they are fixed.
KNOWN_DEFECTS: list[tuple[re.Pattern, str]] = []


def known_defect(method: str, url: str) -> bool:
    return any(rx.search(f"{method} {url}") for rx, _ in KNOWN_DEFECTS)


GROUPS = {
    "notifications": lambda op: op.path.startswith(("/api/v1/notifications", "/api/v1/{channel}")),
    "dead-letters": lambda op: op.path.startswith("/api/v1/dead-letters"),
    "users-and-auth": lambda op: op.path.startswith(("/api/v1/users", "/api/v1/auth")),
    "templates": lambda op: op.path.startswith("/api/v1/templates"),
    "api-keys-and-webhooks": lambda op: op.path.startswith(("/api/v1/api-keys", "/api/v1/webhooks")),
    "operations-and-docs": lambda op: not op.path.startswith("/api/"),
}


def test_every_documented_operation_is_in_a_group():
    grouped = [op for op in OPERATIONS if any(g(op) for g in GROUPS.values())]
    assert grouped == OPERATIONS
    assert len(OPERATIONS) >= 18


@pytest.mark.parametrize("group", list(GROUPS))
async def test_fuzz_operations(fuzz_stack, group):
    stack, ids, tokens = fuzz_stack
    ops = [op for op in OPERATIONS if GROUPS[group](op)]
    if not ops:
        pytest.skip(f"no {group} operation in the document")
    failures: list[str] = []
    known: list[str] = []
    sent = 0
    deadline = time.monotonic() + TIME_BUDGET_S / len(GROUPS)
    for op in ops:
        for case in draw(case_strategy(op), EXAMPLES_PER_OPERATION):
            if time.monotonic() > deadline:
                break
            reason = await replay(stack, ids, tokens, op, case, known)
            sent += 1
            if reason:
                failures.append(f"[{op.id}] {reason}")
    assert sent >= len(ops) * 10, f"only {sent} requests within the time budget"
    if known:
        print(f"{len(known)} case(s) hit a known defect (see the xfail tests):", *known[:5], sep="\n  ")
    assert not failures, f"{len(failures)} of {sent}:\n" + "\n".join(f[:600] for f in failures[:8])
    # still healthy after all that
    resp = await stack.client.get("/health")
    assert resp.status == 200, await resp.text()


# --- what the fuzzer found, pinned --------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        pytest.param("/api/v1/notifications/%00", id="notification-id"),
        pytest.param("/api/v1/notifications/a%00b/", id="notification-id-inner"),
        pytest.param("/api/v1/templates/?code=%00", id="template-code-filter"),
        pytest.param("/api/v1/users/%00", id="user-id"),
        pytest.param("/api/v1/templates/%00", id="template-code-path"),
        pytest.param("/api/v1/templates/%00/versions", id="template-versions"),
        pytest.param("/api/v1/templates/?language=%00", id="template-language-filter"),
        pytest.param("/api/v1/notifications/?status=%00", id="notification-status-filter"),
        pytest.param("/api/v1/notifications/?user_id=%00", id="notification-user-filter"),
    ],
)
async def test_nul_in_ids_and_filters_is_a_4xx(stack, url):
    from yarl import URL

    resp = await stack.client.get(URL(url, encoded=True), headers=stack.auth())
    body = await resp.json()
    assert 400 <= resp.status < 500 and set(body) == ENVELOPE, (resp.status, body)
