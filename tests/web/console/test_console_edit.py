"""The console's template and user pages: every change goes through the services' APIs, so their
rules (syntax checks, versioning, deactivation) hold, and each is logged with the admin's id."""

from __future__ import annotations

import html
import logging
import re

import pytest

from tests.support.console import create_admin, page, post_form, sign_in


@pytest.fixture
async def admin(stack):
    admin = await create_admin(stack)
    assert (await sign_in(stack.client, admin.email, admin.password)).status == 303
    return admin


async def versions_of(stack, code: str) -> list[dict]:
    resp = await stack.client.get(f"/api/v1/templates/{code}/versions", headers=stack.auth())
    return (await resp.json())["data"]


async def test_templates_are_listed_and_a_template_page_offers_edit_preview_and_history(stack, admin):
    template = await stack.create_template(subject="Hi {{ name }}", content="<p>Open {{ link }}</p>")
    listing = await page(stack.client, "/admin/templates")
    assert f'href="/admin/templates/{template["code"]}?language=en"' in listing
    text = await page(stack.client, f"/admin/templates/{template['code']}")
    for label in ("Subject", "Content", "Sample variables (JSON)"):
        assert f">{label}</label>" in text
    assert ">Save</button>" in text and ">Preview</button>" in text and ">Compare</button>" in text
    # the sample variables name what the template uses, and the preview is rendered with them
    assert "&#34;link&#34;: &#34;https://example.com&#34;" in text and "&#34;name&#34;: &#34;Name&#34;" in text
    assert 'id="preview-subject">Hi Name<' in text
    assert 'sandbox=""' in text and 'srcdoc="&lt;p&gt;Open https://example.com&lt;/p&gt;"' in text


async def test_save_makes_a_new_version_through_the_api_and_is_logged(stack, admin, caplog):
    template = await stack.create_template()
    code = template["code"]
    caplog.set_level(logging.INFO, logger="web.console.pages")
    resp = await post_form(
        stack.client,
        f"/admin/templates/{code}",
        {"subject": "Welcome, {{ name }}", "content": "<p>New body</p>", "language": "en", "variables": "{}"},
        from_page=f"/admin/templates/{code}",
    )
    assert resp.status == 303 and resp.headers["Location"] == f"/admin/templates/{code}?language=en"
    assert "Saved as version 2." in await page(stack.client, resp.headers["Location"])
    history = await versions_of(stack, code)
    assert [v["version"] for v in history] == [2, 1]
    assert history[0]["content"] == "<p>New body</p>" and history[0]["created_by"] == admin.id
    [line] = [r for r in caplog.records if getattr(r, "action", "") == "template saved"]
    assert (line.admin_id, line.template_code, line.version) == (admin.id, code, 2)


async def test_a_save_the_service_refuses_keeps_the_text_and_says_why(stack, admin):
    template = await stack.create_template()
    code = template["code"]
    resp = await post_form(
        stack.client,
        f"/admin/templates/{code}",
        {"subject": "Hi", "content": "<p>{% if %}</p>", "language": "en", "variables": "{}"},
        from_page=f"/admin/templates/{code}",
    )
    text = await resp.text()
    assert resp.status == 400 and "content: template syntax error" in html.unescape(text)
    assert "&lt;p&gt;{% if %}&lt;/p&gt;" in text, "what was typed is kept"
    assert [v["version"] for v in await versions_of(stack, code)] == [1]


async def test_preview_renders_the_text_being_edited_in_the_sandbox(stack, admin):
    template = await stack.create_template()
    code = template["code"]
    form = {"subject": "Dear {{ name }}", "content": "<p>{{ name }} &amp; {{ extra }}</p>", "language": "en"}
    resp = await post_form(
        stack.client,
        f"/admin/templates/{code}/preview",
        {**form, "variables": '{"name": "<Ada>", "extra": "more"}'},
        from_page=f"/admin/templates/{code}",
    )
    text = await resp.text()
    assert resp.status == 200
    assert 'id="preview-subject">Dear &lt;Ada&gt;<' in text
    assert "&amp;lt;Ada&amp;gt;" in text, "the body is autoescaped, then escaped again into srcdoc"
    # the script's request: JSON back, nothing saved
    token = re.search(r'name="csrf_token" value="([^"]+)"', text).group(1)
    resp = await stack.client.post(
        f"/admin/templates/{code}/preview",
        data={**form, "variables": '{"name": "Bo"}'},
        headers={"Accept": "application/json", "X-CSRF-Token": token},
    )
    body = await resp.json()
    assert body["error"] == "missing template variable: extra"
    resp = await stack.client.post(
        f"/admin/templates/{code}/preview",
        data={**form, "variables": "[1]"},
        headers={"Accept": "application/json", "X-CSRF-Token": token},
    )
    assert "must be a JSON object" in (await resp.json())["error"]
    resp = await stack.client.post(
        f"/admin/templates/{code}/preview",
        data={"subject": "{{ 'x' * 10**9 }}", "content": "x", "variables": "{}"},
        headers={"Accept": "application/json", "X-CSRF-Token": token},
    )
    assert (await resp.json())["error"], "the sandbox's limits hold in the preview"
    assert [v["version"] for v in await versions_of(stack, code)] == [1]


async def test_restore_makes_an_old_version_the_newest_and_diff_compares_any_two(stack, admin):
    template = await stack.create_template(subject="One", content="<p>first line</p>\n<p>same</p>")
    code = template["code"]
    resp = await stack.client.put(
        f"/api/v1/templates/{code}",
        json={"subject": "Two", "content": "<p>second line</p>\n<p>same</p>"},
        headers=stack.auth(),
    )
    assert resp.status == 200
    diff = await page(stack.client, f"/admin/templates/{code}/diff?language=en&from=1&to=2")
    assert '<tr class="diff-del">' in diff and '<tr class="diff-add">' in diff
    assert "&lt;p&gt;first line&lt;/p&gt;" in diff and "&lt;p&gt;second line&lt;/p&gt;" in diff
    assert "No change." not in diff
    resp = await post_form(
        stack.client,
        f"/admin/templates/{code}/restore",
        {"version": "1", "language": "en"},
        from_page=f"/admin/templates/{code}",
    )
    assert resp.status == 303
    assert "Version 1 restored as version 3." in await page(stack.client, resp.headers["Location"])
    history = await versions_of(stack, code)
    assert [v["version"] for v in history] == [3, 2, 1]
    assert (history[0]["subject"], history[0]["content"]) == ("One", "<p>first line</p>\n<p>same</p>")
    same = await page(stack.client, f"/admin/templates/{code}/diff?language=en&from=1&to=3")
    assert same.count("No change.") == 2
    await page(stack.client, f"/admin/templates/{code}/diff?language=en&from=1&to=9", status=404)
    await page(stack.client, f"/admin/templates/{code}/diff?language=en&from=x&to=1", status=400)
    await page(stack.client, "/admin/templates/no-such-template", status=404)


async def test_users_are_found_by_email_or_name_and_a_push_token_shows_only_its_end(stack, admin):
    token = "fcm-abcdefghijklmnopqrstuvwxyz-XYZ987"
    ada = await stack.create_user(name="Ada Lovelace", push_token=token)
    await stack.create_user(name="Bob Builder")
    by_name = await page(stack.client, "/admin/users?q=lovel")
    assert ada["email"] in by_name and "Bob Builder" not in by_name
    by_email = await page(stack.client, f"/admin/users?q={ada['email'][:8].upper()}")
    assert "Ada Lovelace" in by_email and "Bob Builder" not in by_email
    assert token not in by_name and "••••••XYZ987" in by_name
    assert "Bob Builder" in await page(stack.client, "/admin/users?q=")
    assert "No user matches." in await page(stack.client, "/admin/users?q=100%25_")
    profile = await page(stack.client, f"/admin/users/{ada['id']}")
    assert token not in profile and "data-push-token>••••••XYZ987<" in profile
    assert ">Deactivate</button>" in profile


async def test_deactivate_goes_through_the_user_service_and_is_logged(stack, admin, caplog):
    ada = await stack.create_user()
    caplog.set_level(logging.INFO, logger="web.console.pages")
    resp = await post_form(stack.client, f"/admin/users/{ada['id']}/deactivate", from_page=f"/admin/users/{ada['id']}")
    assert resp.status == 303 and resp.headers["Location"] == f"/admin/users/{ada['id']}"
    profile = await page(stack.client, resp.headers["Location"])
    assert f"{ada['email']} is deactivated." in profile and "data-active>no (deactivated)<" in profile
    assert ">Deactivate</button>" not in profile
    login = await stack.client.post("/api/v1/auth/login", json={"email": ada["email"], "password": "correct-horse-1"})
    assert login.status == 401
    [line] = [r for r in caplog.records if getattr(r, "action", "") == "user deactivated"]
    assert line.admin_id == admin.id and line.user_id == ada["id"] and line.correlation_id
    await page(stack.client, "/admin/users/not-a-uuid", status=404)


async def test_cancel_goes_through_the_apis_cancel_and_is_logged(stack, admin, caplog):
    ada = await stack.create_user()
    template = await stack.create_template()
    sent = await stack.send(
        notification_type="email",
        user_id=ada["id"],
        template_code=template["code"],
        variables={"name": "Ada", "link": "https://example.com"},
        request_id="console-cancel",
    )
    nid = (await sent.json())["data"]["notification_id"]
    where = f"/admin/notifications/{nid}"
    assert ">Cancel</button>" in await page(stack.client, where)
    caplog.set_level(logging.INFO, logger="web.console.pages")
    resp = await post_form(stack.client, f"{where}/cancel", from_page=where)
    assert resp.status == 303 and resp.headers["Location"] == where
    after = await page(stack.client, where)
    assert "Cancelled: it will not be sent." in after and ">Cancel</button>" not in after
    note = await (await stack.client.get(f"/api/v1/notifications/{nid}", headers=stack.auth())).json()
    assert note["data"]["status"] == "cancelled"
    [line] = [r for r in caplog.records if getattr(r, "action", "") == "notification cancelled"]
    assert line.admin_id == admin.id and line.notification_id == nid
    again = await post_form(stack.client, f"{where}/cancel", from_page=where)
    assert "Not cancelled: the notification is already cancelled" in await page(stack.client, again.headers["Location"])
