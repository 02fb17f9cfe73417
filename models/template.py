"""The TEMPLATES and TEMPLATE_VERSIONS tables; a template is unique per (code, language)."""

from __future__ import annotations

import re

import peewee

from models.base import iso, new_id, templates_db, utcnow

#: The language every lookup falls back to.
DEFAULT_LANGUAGE = "en"
#: A language tag as templates and user preferences accept it: "en", "fr", "pt-BR".
LANGUAGE_RE = re.compile(r"^[a-z]{2,3}(-[A-Za-z]{2,4})?$")


class Template(peewee.Model):
    id = peewee.UUIDField(primary_key=True, default=new_id)
    code = peewee.CharField(max_length=100)
    name = peewee.CharField(max_length=200)
    description = peewee.TextField(null=True)
    subject = peewee.TextField(default="")
    content = peewee.TextField()
    language = peewee.CharField(max_length=16, default=DEFAULT_LANGUAGE)
    version = peewee.IntegerField(default=1)
    is_active = peewee.BooleanField(default=True)
    created_at = peewee.DateTimeField(default=utcnow)
    updated_at = peewee.DateTimeField(default=utcnow)

    class Meta:
        database = templates_db
        table_name = "templates"
        indexes = ((("code", "language"), True),)

    def public(self) -> dict:
        return {
            "id": str(self.id),
            "code": self.code,
            "name": self.name,
            "description": self.description,
            "subject": self.subject,
            "content": self.content,
            "language": self.language,
            "version": self.version,
            "is_active": self.is_active,
            "created_at": iso(self.created_at),
            "updated_at": iso(self.updated_at),
        }


class TemplateVersion(peewee.Model):
    """One row per version ever saved, the first included, so the history is complete."""

    id = peewee.UUIDField(primary_key=True, default=new_id)
    template = peewee.ForeignKeyField(Template, backref="versions", on_delete="CASCADE")
    version = peewee.IntegerField()
    name = peewee.CharField(max_length=200)
    description = peewee.TextField(null=True)
    subject = peewee.TextField(default="")
    content = peewee.TextField()
    created_by = peewee.UUIDField(null=True)
    created_at = peewee.DateTimeField(default=utcnow)

    class Meta:
        database = templates_db
        table_name = "template_versions"
        indexes = ((("template", "version"), True),)

    def public(self) -> dict:
        return {
            "id": str(self.id),
            "template_id": str(self.template_id),
            "version": self.version,
            "name": self.name,
            "description": self.description,
            "subject": self.subject,
            "content": self.content,
            "created_by": str(self.created_by) if self.created_by else None,
            "created_at": iso(self.created_at),
        }
