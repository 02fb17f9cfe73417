"""The template page's tools that need no service: the preview in the sandbox, sample variables,
and the diff of two versions.

The preview renders the text being edited (not yet saved) with :class:`providers.rendering.Renderer`,
the same sandbox, limits and autoescaping the template service and the workers use; it runs in a
thread, as the template service's renders do, so a heavy template never stalls the gateway's loop.
"""

from __future__ import annotations

import asyncio
import difflib
import json
import logging
from dataclasses import dataclass
from typing import Any

import jinja2
import jinja2.meta

from providers.rendering import Renderer, RenderError

log = logging.getLogger(__name__)

#: The fields of a version that the diff compares, with their labels.
DIFF_FIELDS = (("subject", "Subject"), ("content", "Content"))
MAX_VARIABLES = 64 * 1024


@dataclass(frozen=True)
class Preview:
    subject: str = ""
    html: str = ""
    text: str = ""
    error: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {"subject": self.subject, "html": self.html, "text": self.text, "error": self.error}


def parse_variables(raw: str) -> dict[str, Any]:
    """The sample variables typed as JSON; ``ValueError`` says what is wrong with them."""
    if len(raw) > MAX_VARIABLES:
        raise ValueError(f"the sample variables are longer than {MAX_VARIABLES} characters")
    if not raw.strip():
        return {}
    try:
        value = json.loads(raw)
    except ValueError as exc:
        raise ValueError(f"the sample variables are not valid JSON ({exc})") from None
    if not isinstance(value, dict):
        raise ValueError('the sample variables must be a JSON object, such as {"name": "Ada"}')
    return value


async def preview(renderer: Renderer, *, subject: str, content: str, variables_json: str) -> Preview:
    try:
        variables = parse_variables(variables_json)
    except ValueError as exc:
        return Preview(error=str(exc))

    def job() -> Preview:
        rendered = renderer.render(subject=subject, content=content, variables=variables)
        return Preview(subject=rendered.subject, html=rendered.html, text=rendered.text)

    try:
        return await asyncio.get_running_loop().run_in_executor(None, job)
    except RenderError as exc:
        return Preview(error=str(exc))
    except Exception as exc:
        # Template text is user content: whatever it trips over is reported by kind only.
        log.warning("console preview failed to render: %r", exc)
        return Preview(error=f"the template failed to render ({type(exc).__name__})")


def sample_variables(subject: str, content: str) -> str:
    """JSON naming every variable the template uses, each with a placeholder value to edit."""
    try:
        names = jinja2.meta.find_undeclared_variables(
            jinja2.Environment(autoescape=True).parse(subject + "\n" + content)
        )
    except jinja2.TemplateSyntaxError:
        return "{}"
    sample = {
        name: ("https://example.com" if name == "link" else name.replace("_", " ").title()) for name in sorted(names)
    }
    return json.dumps(sample, indent=2, ensure_ascii=False)


@dataclass(frozen=True)
class DiffLine:
    kind: str  # "hunk", "add", "del" or "same"
    text: str


def diff_lines(old: str, new: str) -> list[DiffLine]:
    """A unified diff (three lines of context) as lines to show; empty when equal."""
    out = []
    lines = difflib.unified_diff(old.splitlines(), new.splitlines(), lineterm="", n=3)
    for line in lines:
        if line.startswith(("---", "+++")):
            continue
        kind = {"@": "hunk", "+": "add", "-": "del"}.get(line[:1], "same")
        out.append(DiffLine(kind, line[1:] if kind != "hunk" else line))
    return out


def diff_versions(old: dict, new: dict) -> list[tuple[str, list[DiffLine]]]:
    """(label, lines) for each compared field of two versions."""
    return [(label, diff_lines(old.get(name) or "", new.get(name) or "")) for name, label in DIFF_FIELDS]
