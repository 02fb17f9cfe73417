"""The sandboxed renderer shared by the template service, the gateway and the workers."""

from __future__ import annotations

import pytest

from providers.rendering import MAX_OUTPUT_CHARS, Renderer, RenderError, html_to_text


@pytest.fixture(scope="module")
def renderer() -> Renderer:
    return Renderer()


def test_html_to_text_breaks_blocks_drops_tags_and_decodes_entities():
    body = "<h1>Title</h1><p>Hello <b>Ann</b> &amp; co</p><p>Line<br>two</p><ul><li>a</li><li>b</li></ul>"
    assert html_to_text(body) == "Title\nHello Ann & co\nLine\ntwo\na\nb"


def test_html_to_text_collapses_spaces_and_blank_runs():
    assert html_to_text("<p>a   \t b</p>\n\n\n\n<p>c</p>") == "a b\n\nc"
    assert html_to_text("  plain text  ") == "plain text"
    assert html_to_text("&lt;script&gt;") == "<script>"


def test_render_gives_subject_html_and_text(renderer):
    out = renderer.render(subject="Hi {{ name }}", content="<p>Hello {{ name }}</p>", variables={"name": "Ann"})
    assert (out.subject, out.html, out.text) == ("Hi Ann", "<p>Hello Ann</p>", "Hello Ann")


def test_html_body_is_autoescaped_but_subject_is_not(renderer):
    out = renderer.render(subject="Re: {{ v }}", content="<p>{{ v }}</p>", variables={"v": "<b>x</b> & y"})
    assert out.html == "<p>&lt;b&gt;x&lt;/b&gt; &amp; y</p>"
    assert out.subject == "Re: <b>x</b> & y"
    assert out.text == "<b>x</b> & y"


def test_subject_is_folded_to_one_line(renderer):
    out = renderer.render(subject="a {{ v }} b", content="x", variables={"v": "1\r\nBcc: evil@example.com"})
    assert "\n" not in out.subject and "\r" not in out.subject
    assert out.subject == "a 1 Bcc: evil@example.com b"


def test_missing_variable_is_named(renderer):
    with pytest.raises(RenderError, match="first_name"):
        renderer.render(subject="", content="Hi {{ first_name }}", variables={"name": "Ann"})
    with pytest.raises(RenderError, match="order_id"):
        renderer.render(subject="Order {{ order_id }}", content="x", variables={})


def test_output_size_is_capped(renderer):
    source = "{% for i in range(" + str(MAX_OUTPUT_CHARS // 10 + 1) + ") %}xxxxxxxxxx{% endfor %}"
    with pytest.raises(RenderError, match="larger than"):
        renderer.render(subject="", content=source, variables={})
    small = "{% for i in range(10) %}xxxxxxxxxx{% endfor %}"
    assert len(renderer.render(subject="", content=small, variables={}).html) == 100


def test_range_is_capped(renderer):
    with pytest.raises(RenderError, match=r"loop iterations"):
        renderer.render(subject="", content="{% for i in range(10**9) %}x{% endfor %}", variables={})


def test_nested_loops_share_one_iteration_budget(renderer):
    nested = "{% for i in range(1000) %}{% for j in range(1000) %}{% endfor %}{% endfor %}"
    with pytest.raises(RenderError, match=r"loop iterations"):
        renderer.render(subject="", content=nested, variables={})
    fine = "{% for i in range(100) %}{% for j in range(100) %}{% endfor %}{% endfor %}ok"
    assert renderer.render(subject="", content=fine, variables={}).html == "ok"


def test_encoded_line_breaks_in_the_subject_are_refused(renderer):
    with pytest.raises(RenderError, match=r"subject"):
        renderer.render(subject="{{ s }}", content="x", variables={"s": "=?utf-8?q?x=0D=0ABcc:_v@example.com?="})


@pytest.mark.parametrize(
    "source",
    [
        "{{ ''.__class__.__mro__ }}",
        "{{ cycler.__init__.__globals__ }}",
        "{{ ''|attr('__class__') }}",
        "{{ '{0.__class__}'.format(1) }}",
        "{% set x = [] %}{{ x.append(1) }}",
    ],
)
def test_sandbox_refuses_escapes(renderer, source):
    with pytest.raises(RenderError, match="not allowed"):
        renderer.render(subject="", content=source, variables={})


def test_syntax_errors_name_the_line(renderer):
    with pytest.raises(RenderError, match="line 2"):
        renderer.check_syntax("ok\n{{ broken")
    renderer.check_syntax("{% if a %}{{ a }}{% endif %}")


def test_variables_are_not_mutated(renderer):
    variables = {"items": [1, 2]}
    with pytest.raises(RenderError):
        renderer.render(subject="", content="{{ items.append(3) }}", variables=variables)
    assert variables == {"items": [1, 2]}
