"""Queries on TEMPLATES and TEMPLATE_VERSIONS; the template service's only route to its tables.

Every function is synchronous peewee work meant to run inside ``web.common.app.in_db`` (one
connection, one transaction per call), so a function that reads and then writes does so atomically.
"""

from __future__ import annotations

import peewee

from models.base import utcnow
from models.template import DEFAULT_LANGUAGE, Template, TemplateVersion


def get(code: str, language: str) -> Template | None:
    return Template.get_or_none((Template.code == code) & (Template.language == language))


def get_with_fallback(code: str, language: str) -> Template | None:
    """The template in ``language``, else in English; the caller reads ``language`` to tell which."""
    found = get(code, language)
    if found is None and language != DEFAULT_LANGUAGE:
        found = get(code, DEFAULT_LANGUAGE)
    return found


def create(
    *, code: str, name: str, description: str | None, subject: str, content: str, language: str, created_by: str | None
) -> Template | None:
    """The new template with its version-1 history row, or ``None`` when (code, language) is taken.

    The pre-check gives the common duplicate a clean answer; two creators racing past it are still
    stopped by the unique index, whose ``IntegrityError`` the caller maps to the same conflict.
    """
    if get(code, language) is not None:
        return None
    now = utcnow()
    template = Template.create(
        code=code,
        name=name,
        description=description,
        subject=subject,
        content=content,
        language=language,
        version=1,
        created_at=now,
        updated_at=now,
    )
    _record_version(template, created_by, now)
    return template


def update(code: str, language: str, changes: dict, created_by: str | None) -> Template | None:
    """Apply ``changes`` as the next version and record it; ``None`` if the template is absent.

    The row is locked before its version is read, so concurrent updates queue up and each gets its
    own number instead of two of them writing the same one.
    """
    template = _locked(code, language)
    if template is None:
        return None
    for field, value in changes.items():
        setattr(template, field, value)
    template.version += 1
    template.updated_at = utcnow()
    template.save()
    _record_version(template, created_by, template.updated_at)
    return template


def _locked(code: str, language: str) -> Template | None:
    where = (Template.code == code) & (Template.language == language)
    if isinstance(Template._meta.database.obj, peewee.PostgresqlDatabase):
        return Template.select().where(where).for_update().first()
    # SQLite has no row locks: a no-op write takes the database's write lock (waiting its turn
    # under busy_timeout) before the read, which serialises updaters just as well.
    Template.update(version=Template.version).where(where).execute()
    return Template.select().where(where).first()


def _record_version(template: Template, created_by: str | None, at) -> TemplateVersion:
    return TemplateVersion.create(
        template=template,
        version=template.version,
        name=template.name,
        description=template.description,
        subject=template.subject,
        content=template.content,
        created_by=created_by,
        created_at=at,
    )


def listing(*, code: str | None, language: str | None, page: int, limit: int) -> tuple[int, list[Template]]:
    query = Template.select()
    if code:
        query = query.where(Template.code == code)
    if language:
        query = query.where(Template.language == language)
    total = query.count()
    rows = list(query.order_by(Template.code, Template.language).paginate(page, limit))
    return total, rows


def versions(code: str, language: str, *, page: int, limit: int) -> tuple[int, list[TemplateVersion]] | None:
    """One page of the history, newest first, and its total; ``None`` if the template is absent."""
    template = get(code, language)
    if template is None:
        return None
    query = TemplateVersion.select().where(TemplateVersion.template == template)
    total = query.count()
    rows = list(query.order_by(TemplateVersion.version.desc()).paginate(page, limit))
    return total, rows
