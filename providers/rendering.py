"""Template rendering in a Jinja2 sandbox, shared by the template service, gateway and workers.

Templates come from API users, so they run in ``ImmutableSandboxedEnvironment`` (no attribute
escapes, no mutation of passed objects) with ``StrictUndefined`` (a missing variable is an error
that names it, not an empty string in a customer's e-mail). HTML bodies are autoescaped; the
subject and the push text are plain text and are not.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from functools import lru_cache

import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError

#: Rendered output above this is refused: a template must not become a memory bomb.
MAX_OUTPUT_CHARS = 512 * 1024
_TAG_RE = re.compile(r"<[^>]+>")
_BLOCK_TAG_RE = re.compile(r"<\s*(br|/p|/div|/h[1-6]|/li|/tr)\s*/?>", re.I)
_SPACES_RE = re.compile(r"[ \t]+")
_BLANKS_RE = re.compile(r"\n{3,}")


class RenderError(ValueError):
    """The template cannot be rendered with these variables; the message is fit for a 400."""


@dataclass(frozen=True)
class Rendered:
    subject: str
    html: str
    text: str


#: Largest exponent ``**`` may take in a template.
MAX_EXPONENT = 100


class _BoundedSandbox(ImmutableSandboxedEnvironment):
    """The sandbox, plus refusal of ``*`` and ``**`` whose result alone would be a memory or CPU bomb
    (``'x' * 10**9`` would allocate a gigabyte before the output cap could see it)."""

    intercepted_binops = frozenset({"*", "**"})

    def call_binop(self, context, operator, left, right):
        if operator == "**" and isinstance(right, int | float) and abs(right) > MAX_EXPONENT:
            raise SecurityError(f"exponent above {MAX_EXPONENT}")
        if operator == "*":
            for seq, count in ((left, right), (right, left)):
                sized = isinstance(seq, str | list | tuple) and isinstance(count, int)
                if sized and len(seq) * count > MAX_OUTPUT_CHARS:
                    raise SecurityError(f"result larger than {MAX_OUTPUT_CHARS}")
        return super().call_binop(context, operator, left, right)


def _env(autoescape: bool) -> ImmutableSandboxedEnvironment:
    return _BoundedSandbox(autoescape=autoescape, undefined=jinja2.StrictUndefined, trim_blocks=True,
                           lstrip_blocks=True)


class Renderer:
    """Compiles templates once per source text and renders them; one per process is enough."""

    def __init__(self) -> None:
        self._html = _env(True)
        self._text = _env(False)
        self._compile = lru_cache(maxsize=1024)(self._compile_uncached)

    def _compile_uncached(self, source: str, as_html: bool) -> jinja2.Template:
        env = self._html if as_html else self._text
        return env.from_string(source)

    def check_syntax(self, source: str) -> None:
        try:
            self._compile(source, True)
        except jinja2.TemplateSyntaxError as exc:
            raise RenderError(f"template syntax error on line {exc.lineno}: {exc.message}") from None

    def _render(self, source: str, variables: dict, *, as_html: bool) -> str:
        try:
            parts, size = [], 0
            for part in self._compile(source, as_html).generate(**variables):
                size += len(part)
                if size > MAX_OUTPUT_CHARS:
                    raise RenderError(f"rendered template is larger than {MAX_OUTPUT_CHARS} characters")
                parts.append(part)
            out = "".join(parts)
        except jinja2.UndefinedError as exc:
            raise RenderError(f"missing template variable: {_undefined_name(exc)}") from None
        except jinja2.TemplateSyntaxError as exc:
            raise RenderError(f"template syntax error on line {exc.lineno}: {exc.message}") from None
        except SecurityError as exc:
            raise RenderError(f"template is not allowed to do that: {exc}") from None
        except RenderError:
            raise
        except (TypeError, ValueError, LookupError, ArithmeticError, OverflowError, RecursionError) as exc:
            raise RenderError(f"template failed to render: {exc}") from None
        return out

    def render(self, *, subject: str, content: str, variables: dict) -> Rendered:
        """Subject (plain, one line), HTML body (escaped) and the text alternative derived from it."""
        subject_out = self._render(subject or "", variables, as_html=False)
        subject_out = " ".join(subject_out.split())
        body = self._render(content, variables, as_html=True)
        return Rendered(subject=subject_out, html=body, text=html_to_text(body))


def html_to_text(body: str) -> str:
    """Plain text from HTML: line breaks kept at block ends, tags dropped, entities decoded."""
    text = _BLOCK_TAG_RE.sub("\n", body)
    text = html.unescape(_TAG_RE.sub("", text))
    text = _SPACES_RE.sub(" ", text)
    lines = [line.strip() for line in text.splitlines()]
    return _BLANKS_RE.sub("\n\n", "\n".join(lines)).strip()


def _undefined_name(exc: jinja2.UndefinedError) -> str:
    match = re.search(r"'([^']+)' is undefined", str(exc))
    return match.group(1) if match else str(exc)
