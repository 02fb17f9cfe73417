"""The sandboxed renderer shared by the template service, the gateway and the workers."""

from __future__ import annotations

import pytest

from providers.rendering import MAX_OUTPUT_CHARS, Renderer, RenderError, html_to_text


@pytest.fixture(scope="module")
def renderer() -> Renderer:
    return Renderer()


VERIFICATION = """<!doctype html><html><head><title>Verify</title><style>p { color: #333 }</style>
<script>track("open")</script></head><body>
<span style="display:none">Confirm your address to finish signing up.</span>
<h1>Confirm your e-mail address</h1>
<p>Hi {{ name }},</p>
<p>Please <a href="{{ link }}">verify your address</a> within 24&nbsp;hours.</p>
<p>Or paste this into your browser:<br><a href="{{ link }}">{{ link }}</a></p>
<!--[if mso]><p>Outlook only</p><![endif]-->
<p>The Acme team</p></body></html>"""

RECEIPT = """<h2>Receipt for order {{ order }}</h2>
<table>
  <tr><th>Item</th><th>Qty</th><th>Price</th></tr>
  {% for item in items %}<tr><td>{{ item.name }}</td><td>{{ item.qty }}</td><td>{{ item.price }}</td></tr>
  {% endfor %}<tr><td><b>Total</b></td><td></td><td><b>{{ total }}</b></td></tr>
</table>
<p>Questions? <a href="mailto:help@acme.example.com?subject=Order%20{{ order }}">Write to us</a>.</p>"""

NEWSLETTER = """<div><h1>Acme news</h1><p>This month:</p>
<ul>{% for post in posts %}<li><a href="{{ post.url }}">{{ post.title }}</a></li>{% endfor %}</ul>
<h2>How to order</h2><ol><li>Pick</li><li>Pay</li></ol>
<p><a href="https://acme.example.com/unsubscribe?u={{ uid }}">Unsubscribe</a> &middot;
<a href="#top">Back to top</a></p></div>"""


def test_a_verification_mail_keeps_its_link_targets_and_drops_what_is_not_shown(renderer):
    link = "https://acme.example.com/verify?token=7f3a&u=42"
    out = renderer.render(subject="Verify", content=VERIFICATION, variables={"name": "Ada", "link": link})
    assert 'href="https://acme.example.com/verify?token=7f3a&amp;u=42"' in out.html
    assert out.text == (
        "Confirm your e-mail address\n\n"
        "Hi Ada,\n\n"
        f"Please verify your address ({link}) within 24 hours.\n\n"
        f"Or paste this into your browser:\n{link}\n\n"  # a link that shows its target: written once
        "The Acme team"
    )


def test_a_receipt_table_keeps_its_columns(renderer):
    items = [{"name": "Blue mug", "qty": 2, "price": "€24.00"}, {"name": "Tea, 500 g", "qty": 1, "price": "€8.50"}]
    out = renderer.render(subject="", content=RECEIPT, variables={"order": "A-17", "items": items, "total": "€32.50"})
    assert out.text == (
        "Receipt for order A-17\n\n"
        "Item        Qty  Price\n"
        "Blue mug    2    €24.00\n"
        "Tea, 500 g  1    €8.50\n"
        "Total            €32.50\n\n"
        "Questions? Write to us (help@acme.example.com)."
    )


def test_a_newsletter_keeps_its_lists_headings_and_links(renderer):
    posts = [
        {"title": "New mugs", "url": "https://acme.example.com/mugs"},
        {"title": "Summer sale <50%>", "url": "https://acme.example.com/sale?from=june&to=july"},
    ]
    out = renderer.render(subject="", content=NEWSLETTER, variables={"posts": posts, "uid": 42})
    assert out.text == (
        "Acme news\n\n"
        "This month:\n\n"
        "  * New mugs (https://acme.example.com/mugs)\n"
        "  * Summer sale <50%> (https://acme.example.com/sale?from=june&to=july)\n\n"
        "How to order\n\n"
        " 1. Pick\n"
        " 2. Pay\n\n"
        "Unsubscribe (https://acme.example.com/unsubscribe?u=42) · Back to top"
    )


@pytest.mark.parametrize(
    ("body", "text"),
    [
        ('<a href="https://acme.example.com/">acme.example.com</a>', "acme.example.com"),
        ('<a href="mailto:help@acme.example.com">help@acme.example.com</a>', "help@acme.example.com"),
        ('<a href="https://acme.example.com/"><img src="logo.png" alt="Acme"></a>', "https://acme.example.com/"),
        ('<a href="#top">Top</a> <a href="javascript:go()">Go</a> <a>Plain</a>', "Top Go Plain"),
        ('<a href=" /account ">Your account</a>', "Your account (/account)"),
    ],
)
def test_link_targets_are_written_once_and_only_when_they_lead_somewhere(body, text):
    assert html_to_text(body) == text


def test_html_to_text_breaks_blocks_drops_tags_and_decodes_entities():
    body = "<h1>Title</h1><p>Hello <b>Ann</b> &amp; co</p><p>Line<br>two</p><ul><li>a</li><li>b</li></ul>"
    assert html_to_text(body) == "Title\n\nHello Ann & co\n\nLine\ntwo\n\n  * a\n  * b"


@pytest.mark.parametrize("body", ["<!-- only a comment -->", "<!DOCTYPE html>", "   ", ""])
def test_html_to_text_of_a_body_without_content_is_empty_not_an_error(body):
    assert html_to_text(body) == ""


def test_the_text_part_is_derived_only_when_read(renderer):
    """The gateway renders every send and never reads the text; it must not pay for it."""
    out = renderer.render(subject="", content=VERIFICATION, variables={"name": "Ada", "link": "https://x.example/v"})
    assert "text" not in vars(out)
    assert "verify your address (https://x.example/v)" in out.text
    assert vars(out)["text"] == out.text


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
