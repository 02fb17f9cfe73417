"""Template rendering in a Jinja2 sandbox, shared by the template service, gateway and workers.

Templates come from API users, so they run in ``ImmutableSandboxedEnvironment`` (no attribute
escapes, no mutation of passed objects) with ``StrictUndefined`` (a missing variable is an error
that names it, not an empty string in a customer's e-mail). HTML bodies are autoescaped; the
subject and the push text are plain text and are not.
"""

from __future__ import annotations

import contextvars
import email.errors
import email.header
import functools
import html
import re
from dataclasses import dataclass
from functools import lru_cache

import jinja2
import jinja2.filters
import lxml.html
from inscriptis.css_profiles import CSS_PROFILES
from inscriptis.html_engine import Inscriptis
from inscriptis.model.config import ParserConfig
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError

#: Rendered output above this is refused: a template must not become a memory bomb.
MAX_OUTPUT_CHARS = 512 * 1024
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")
_TAG_RE = re.compile(r"<[^>]+>")
_BLOCK_TAG_RE = re.compile(r"<\s*(br|/p|/div|/h[1-6]|/li|/tr)\s*/?>", re.I)
_SPACES_RE = re.compile(r"[ \t]+")
_BLANKS_RE = re.compile(r"\n{3,}")
_XML_DECLARATION_RE = re.compile(r"^\s*<\?xml[^>]*\?>")
_SCHEME_RE = re.compile(r"^[a-z][a-z0-9+.-]*:(//)?", re.I)
#: Link targets that mean nothing to someone reading the text part.
_NO_TARGET = ("#", "javascript:", "data:", "vbscript:")
#: A browser's default layout (scripts, styles and ``<head>`` hidden); link targets are added by
#: :func:`_spell_out_links`, not by inscriptis's own ``[text](url)`` notation.
_TEXT_LAYOUT = ParserConfig(css=CSS_PROFILES["strict"])


class RenderError(ValueError):
    """The template cannot be rendered with these variables; the message is fit for a 400."""


@dataclass(frozen=True)
class Rendered:
    """A rendered template. ``text``, the plain-text alternative, is derived from ``html`` when first
    read, not at render time: the gateway renders every send only to refuse what cannot render and
    never reads it, and the conversion costs about a millisecond for a 2 KB body, as much as all
    the rest of an accepted send. The worker that sends the mail reads it, once."""

    subject: str
    html: str

    @functools.cached_property
    def text(self) -> str:
        return html_to_text(self.html)


#: Largest exponent ``**`` may take in a template, and largest integer result (in bits) of ``**``.
MAX_EXPONENT = 100
MAX_POWER_BITS = 4096
#: Loop iterations (``range`` items) one render may create, nested loops included.
MAX_ITERATIONS = 100_000

#: A printf width of seven or more digits (``'%0999999999d'|format(1)``).
_WIDE_FORMAT_RE = re.compile(r"%[-+ #0]*\d{7,}")

_iterations: contextvars.ContextVar[list[int]] = contextvars.ContextVar("template_iterations")


def _counted_range(*args):
    """``range`` whose items count against the render's budget, so nested loops cannot multiply."""
    items = range(*args)
    budget = _iterations.get(None)
    if budget is not None:
        budget[0] -= len(items)
        if budget[0] < 0:
            raise SecurityError(f"range: more than {MAX_ITERATIONS} loop iterations in one render")
    return items


def _bounded(filter_fn, *width_args: str):
    """A filter whose width-like arguments are capped at the output limit (``functools.wraps``
    keeps Jinja's pass-environment marker, so the filter is still called as Jinja expects)."""

    @functools.wraps(filter_fn)
    def wrapper(*args, **kwargs):
        for value in list(args) + [kwargs.get(name) for name in width_args]:
            if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_OUTPUT_CHARS:
                raise SecurityError(f"width above {MAX_OUTPUT_CHARS}")
            if isinstance(value, str) and _WIDE_FORMAT_RE.search(value):
                raise SecurityError(f"format width above {MAX_OUTPUT_CHARS}")
        return filter_fn(*args, **kwargs)

    return wrapper


def _bounded_replace(eval_ctx, value, old, new, count=None):
    text, old, new = str(value), str(old), str(new)
    grows = text.count(old) * max(0, len(new) - len(old)) if old else len(text) * len(new)
    if len(text) + grows > MAX_OUTPUT_CHARS:
        raise SecurityError(f"result larger than {MAX_OUTPUT_CHARS}")
    return jinja2.filters.do_replace(eval_ctx, value, old, new, count)


class _BoundedSandbox(ImmutableSandboxedEnvironment):
    """The sandbox, plus bounds on what a template may make the process compute or allocate:
    ``*`` and ``**`` results, loop iterations, padding widths and ``replace`` growth. (``'x' *
    10**9`` would allocate a gigabyte before the output cap could see it; nested ``range`` loops
    would spin for minutes.) ``lipsum`` is removed: it generates text of any size."""

    intercepted_binops = frozenset({"*", "**"})

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.globals["range"] = _counted_range
        self.globals.pop("lipsum", None)
        for name in ("center", "indent", "wordwrap", "truncate", "format"):
            if name in self.filters:
                self.filters[name] = _bounded(self.filters[name], "width", "length")
        self.filters["replace"] = jinja2.pass_eval_context(_bounded_replace)

    def call_binop(self, context, operator, left, right):
        if operator == "**" and isinstance(right, int | float):
            if abs(right) > MAX_EXPONENT:
                raise SecurityError(f"exponent above {MAX_EXPONENT}")
            if isinstance(left, int) and isinstance(right, int) and abs(left).bit_length() * right > MAX_POWER_BITS:
                raise SecurityError("power too large")
        if operator == "*":
            for seq, count in ((left, right), (right, left)):
                sized = isinstance(seq, str | list | tuple) and isinstance(count, int)
                if sized and len(seq) * count > MAX_OUTPUT_CHARS:
                    raise SecurityError(f"result larger than {MAX_OUTPUT_CHARS}")
        return super().call_binop(context, operator, left, right)


def _env(autoescape: bool) -> ImmutableSandboxedEnvironment:
    return _BoundedSandbox(
        autoescape=autoescape, undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True
    )


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
        token = _iterations.set([MAX_ITERATIONS])
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
        except Exception as exc:  # any other failure of a user's template is that template's fault
            raise RenderError(f"template failed to render ({type(exc).__name__})") from None
        finally:
            _iterations.reset(token)
        return out

    def render(self, *, subject: str, content: str, variables: dict) -> Rendered:
        """Subject (plain, one line), HTML body (escaped) and the text alternative derived from it."""
        subject_out = self._render(subject or "", variables, as_html=False)
        subject_out = " ".join(subject_out.split())
        if _CONTROL_RE.search(_decoded_header(subject_out)):
            raise RenderError("the rendered subject contains an encoded line break or control character")
        body = self._render(content, variables, as_html=True)
        return Rendered(subject=subject_out, html=body)


def _decoded_header(value: str) -> str:
    """The header as a mail client would show it: RFC 2047 encoded words decoded."""
    try:
        return str(email.header.make_header(email.header.decode_header(value)))
    except (ValueError, LookupError, UnicodeError, email.errors.HeaderParseError):
        return value


def html_to_text(body: str) -> str:
    """The text/plain alternative of an HTML body, for the readers and clients that show no HTML.

    inscriptis lays the HTML out as a browser would in text: paragraphs and headings apart, ``<br>``
    kept, lists bulleted or numbered, tables (layout tables too) in aligned columns; scripts,
    styles, comments and ``display:none`` dropped. Every link's target is written after its text,
    "verify your address (https://...)", since a verification or reset link that cannot be
    followed makes the text part useless; a link whose text already is its target is written once.

    Never raises: a text part is not worth a failed delivery, so HTML the parser cannot read, or
    anything else that goes wrong here, falls back to stripping the tags.
    """
    if not body.strip():
        return ""
    try:
        tree = lxml.html.document_fromstring(_XML_DECLARATION_RE.sub("", body, count=1))
        _spell_out_links(tree)
        text = Inscriptis(tree, _TEXT_LAYOUT).get_text()
    except Exception:  # lxml's parser errors, or inscriptis on input it never met: keep the words
        return _strip_tags(body)
    lines = [line.rstrip() for line in text.replace("\xa0", " ").splitlines()]
    return _BLANKS_RE.sub("\n\n", "\n".join(lines)).strip("\n")


def _spell_out_links(tree: lxml.html.HtmlElement) -> None:
    """Write each link's target into the tree as text right after the link (or as the text of a
    link that has none, such as a linked image)."""
    for link in tree.iter("a"):
        href = (link.get("href") or "").strip()
        if not href or href.lower().startswith(_NO_TARGET):
            continue
        shown = href[len("mailto:") :].split("?")[0] if href.lower().startswith("mailto:") else href
        label = " ".join(link.text_content().split())
        if not label:
            link.text = shown
        elif _bare(label) not in (_bare(href), _bare(shown)):
            link.tail = f" ({shown})" + (link.tail or "")


def _bare(target: str) -> str:
    """A link target as people write it in prose: no scheme, no trailing slash, any case."""
    return _SCHEME_RE.sub("", target).rstrip("/").lower()


def _strip_tags(body: str) -> str:
    """The words of ``body`` with line breaks at block ends: the fallback of :func:`html_to_text`."""
    text = _BLOCK_TAG_RE.sub("\n", body)
    text = html.unescape(_TAG_RE.sub("", text))
    text = _SPACES_RE.sub(" ", text)
    lines = [line.strip() for line in text.splitlines()]
    return _BLANKS_RE.sub("\n\n", "\n".join(lines)).strip()


def _undefined_name(exc: jinja2.UndefinedError) -> str:
    match = re.search(r"'([^']+)' is undefined", str(exc))
    return match.group(1) if match else str(exc)
