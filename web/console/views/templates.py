"""Templates: list, edit (``Save`` is a new version), preview, history, diff and restore.

Every read and write goes through the template service's API (``GET``/``PUT /api/v1/templates/{code}``,
``GET .../versions``), so its checks (syntax, sizes, the single-line subject) and its versioning
apply unchanged; only the preview of unsaved text renders here, in the same sandbox.
"""

from __future__ import annotations

from urllib.parse import quote, urlencode

from aiohttp import web
from multidict import MultiDictProxy

from models.template import DEFAULT_LANGUAGE, LANGUAGE_RE
from web.console.app_keys import renderer_key
from web.console.pages import PREFIX, admin, audit, pages, paging, redirect, render, services
from web.console.services import ServiceError
from web.console.template_tools import Preview, diff_versions, preview, sample_variables

LIST_LIMIT = 25
HISTORY_LIMIT = 20
#: The API's largest page, used to fetch one version by its position in the history.
API_PAGE = 100


def _language(raw: str | None) -> str:
    return raw if raw and LANGUAGE_RE.match(raw) else DEFAULT_LANGUAGE


def _page_url(code: str, language: str, **extra: str) -> str:
    query = urlencode({"language": language, **extra})
    return f"{PREFIX}/templates/{quote(code, safe='')}?{query}"


async def listing(request: web.Request) -> web.Response:
    page = paging(request)
    items, meta = await services(request).templates(*admin(request), page=page, limit=LIST_LIMIT)
    total = (meta or {}).get("total", len(items))
    return await render(request, "templates.html", {"items": items, "paging": pages(total, page, LIST_LIMIT)})


async def _page(
    request: web.Request,
    code: str,
    language: str,
    *,
    form: MultiDictProxy | None = None,
    shown: Preview | None = None,
    error: str | None = None,
    status: int = 200,
) -> web.Response:
    template = await services(request).template(*admin(request), code, language)
    hpage = paging(request)
    history, meta = await services(request).versions(
        *admin(request), code, template["language"], page=hpage, limit=HISTORY_LIMIT
    )
    subject = str(form.get("subject", "")) if form is not None else template["subject"]
    content = str(form.get("content", "")) if form is not None else template["content"]
    variables = str(form.get("variables", "")) if form is not None else sample_variables(subject, content)
    if shown is None and form is None:
        shown = await preview(request.app[renderer_key], subject=subject, content=content, variables_json=variables)
    context = {
        "t": template,
        "subject": subject,
        "content": content,
        "variables": variables,
        "preview": shown,
        "error": error,
        "history": history,
        "history_paging": pages((meta or {}).get("total", len(history)), hpage, HISTORY_LIMIT),
        "versions": range(template["version"], 0, -1),
    }
    return await render(request, "template.html", context, status=status)


def _code(request: web.Request) -> str:
    return request.match_info["code"]


async def detail(request: web.Request) -> web.Response:
    return await _page(request, _code(request), _language(request.query.get("language")))


async def save(request: web.Request) -> web.Response:
    code, form = _code(request), await request.post()
    language = _language(str(form.get("language", "")))
    body = {"subject": str(form.get("subject", "")), "content": str(form.get("content", "")), "language": language}
    try:
        saved = await services(request).update_template(*admin(request), code, body)
    except ServiceError as exc:
        if exc.status == 404:
            raise
        return await _page(request, code, language, form=form, error=exc.message, status=400)
    audit(request, "template saved", template_code=code, language=language, version=saved["version"])
    return await redirect(request, _page_url(code, language), notice=f"Saved as version {saved['version']}.")


async def preview_page(request: web.Request) -> web.Response:
    """The preview of the text in the form: JSON for the page's script, else the page itself."""
    code, form = _code(request), await request.post()
    shown = await preview(
        request.app[renderer_key],
        subject=str(form.get("subject", "")),
        content=str(form.get("content", "")),
        variables_json=str(form.get("variables", "")),
    )
    if "application/json" in request.headers.get("Accept", ""):
        return web.json_response(shown.as_json(), headers={"Cache-Control": "no-store"})
    return await _page(request, code, _language(str(form.get("language", ""))), form=form, shown=shown)


async def _version(request: web.Request, code: str, language: str, number: int) -> dict | None:
    """One version from the history (newest first), fetched by its position."""
    current = (await services(request).template(*admin(request), code, language))["version"]
    if not 1 <= number <= current:
        return None
    index = current - number
    items, _ = await services(request).versions(
        *admin(request), code, language, page=index // API_PAGE + 1, limit=API_PAGE
    )
    return next((item for item in items if item["version"] == number), None)


def _number(raw) -> int:
    try:
        return int(str(raw))
    except ValueError:
        raise web.HTTPBadRequest() from None


async def restore(request: web.Request) -> web.Response:
    code, form = _code(request), await request.post()
    language = _language(str(form.get("language", "")))
    number = _number(form.get("version"))
    old = await _version(request, code, language, number)
    if old is None:
        raise web.HTTPNotFound()
    body = {"name": old["name"], "subject": old["subject"], "content": old["content"], "language": language}
    if old.get("description") is not None:
        body["description"] = old["description"]
    saved = await services(request).update_template(*admin(request), code, body)
    audit(
        request,
        "template version restored",
        template_code=code,
        language=language,
        restored=number,
        version=saved["version"],
    )
    notice = f"Version {number} restored as version {saved['version']}."
    return await redirect(request, _page_url(code, language), notice=notice)


async def diff(request: web.Request) -> web.Response:
    code = _code(request)
    language = _language(request.query.get("language"))
    first, second = _number(request.query.get("from")), _number(request.query.get("to"))
    old = await _version(request, code, language, first)
    new = await _version(request, code, language, second)
    if old is None or new is None:
        raise web.HTTPNotFound()
    context = {"code": code, "language": language, "old": old, "new": new, "fields": diff_versions(old, new)}
    return await render(request, "template_diff.html", context)
