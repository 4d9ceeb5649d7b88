"""Article HTML sanitizing: XSS payloads and generated HTML leave nothing executable."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from townsquare.cms.sanitize import ALLOWED_ATTRIBUTES, ALLOWED_TAGS, sanitize_html

XSS_PAYLOADS = [
    "<script>alert(1)</script>",
    "<SCRIPT SRC=//evil.example/x.js></SCRIPT>",
    "<scr<script>ipt>alert(1)</scr</script>ipt>",
    "<img src=x onerror=alert(1)>",
    "<img src=x OnErRoR=alert(1)>",
    '<img src="javascript:alert(1)">',
    "<img src=`javascript:alert(1)`>",
    "<svg onload=alert(1)>",
    "<svg><script>alert(1)</script></svg>",
    "<svg><a xlink:href='javascript:alert(1)'><text>x</text></a></svg>",
    "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>",
    '<a href="javascript:alert(1)">x</a>',
    '<a href="JaVaScRiPt:alert(1)">x</a>',
    '<a href=" javascript:alert(1)">x</a>',
    '<a href="java\tscript:alert(1)">x</a>',
    '<a href="java&#x09;script:alert(1)">x</a>',
    '<a href="javascript&colon;alert(1)">x</a>',
    '<a href="&#106;&#97;&#118;&#97;&#115;&#99;&#114;&#105;&#112;&#116;&#58;alert(1)">x</a>',
    '<a href="&#x6A;avascript:alert(1)">x</a>',
    '<a href="vbscript:msgbox(1)">x</a>',
    '<a href="data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==">x</a>',
    '<img src="data:image/svg+xml;base64,PHN2ZyBvbmxvYWQ9YWxlcnQoMSk+">',
    '<p style="background:url(javascript:alert(1))">x</p>',
    '<div style="width: expression(alert(1))">x</div>',
    "<style>body{background:url(javascript:alert(1))}</style>",
    '<iframe src="javascript:alert(1)"></iframe>',
    '<iframe srcdoc="<script>alert(1)</script>"></iframe>',
    '<object data="javascript:alert(1)"></object>',
    '<embed src="javascript:alert(1)">',
    '<form action="javascript:alert(1)"><input type=submit></form>',
    '<button formaction="javascript:alert(1)">x</button>',
    '<meta http-equiv="refresh" content="0;url=javascript:alert(1)">',
    '<base href="javascript:alert(1)//">',
    '<link rel="stylesheet" href="javascript:alert(1)">',
    "<body onload=alert(1)>",
    "<details open ontoggle=alert(1)>",
    "<video><source onerror=alert(1)></video>",
    "<input autofocus onfocus=alert(1)>",
    "<marquee onstart=alert(1)>x</marquee>",
    '<a href="#" onclick="alert(1)">x</a>',
    "<p onmouseover='alert(1)'>hover</p>",
    "<!--<img src=x onerror=alert(1)>-->",
    '<noscript><p title="</noscript><img src=x onerror=alert(1)>"></noscript>',
    "<template><script>alert(1)</script></template>",
    '<a href="https://example.org" target="_blank" rel="opener">x</a>',
    "<img src=x:alert(alt) onerror=eval(src) alt=0>",
    "<xmp><script>alert(1)</script></xmp>",
    '<table background="javascript:alert(1)"><tr><td>x</td></tr></table>',
]

DANGEROUS_TAGS = {
    "script", "style", "iframe", "object", "embed", "form", "input", "button", "meta",
    "base", "link", "svg", "math", "frame", "frameset", "template", "textarea", "select",
    "noscript", "xmp", "body", "html", "video", "source", "marquee", "details",
}  # fmt: skip
URL_ATTRIBUTES = {"href", "src", "cite", "action", "formaction", "background", "xlink:href"}
SAFE_SCHEMES = ("http:", "https:", "mailto:")


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, list[tuple[str, str | None]]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, attrs))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, attrs))


def assert_safe(html: str) -> None:
    """No dangerous tag, no event handler, no URL outside http/https/mailto (or relative)."""
    parser = _Collector()
    parser.feed(html)
    parser.close()
    for tag, attrs in parser.tags:
        assert tag not in DANGEROUS_TAGS, html
        assert tag in ALLOWED_TAGS, html
        for name, value in attrs:
            assert not name.startswith("on"), html
            allowed = ALLOWED_ATTRIBUTES.get(tag, set()) | ALLOWED_ATTRIBUTES["*"]
            assert name in allowed or (tag, name) == ("a", "rel"), html
            if name in URL_ATTRIBUTES and value:
                compact = "".join(value.split()).lower()
                if ":" in compact.split("/", 1)[0].split("?", 1)[0].split("#", 1)[0]:
                    assert compact.startswith(SAFE_SCHEMES), html
    assert "<script" not in html.lower()


class TestXssCorpus:
    @pytest.mark.parametrize("payload", XSS_PAYLOADS)
    def test_payload_is_defused(self, payload: str) -> None:
        cleaned = sanitize_html(payload)
        assert_safe(cleaned)
        assert sanitize_html(cleaned) == cleaned

    def test_corpus_is_large(self) -> None:
        assert len(XSS_PAYLOADS) >= 40


class TestWhatSurvives:
    def test_formatting_and_safe_links_survive(self) -> None:
        html = (
            "<h2>Title</h2><p>Some <strong>bold</strong> and <em>italic</em> text with "
            '<a href="https://example.org/a?b=1">a link</a> and '
            '<a href="mailto:team@example.org">mail</a>.</p>'
            '<ul><li>one</li></ul><img src="https://example.org/i.png" alt="pic">'
        )
        cleaned = sanitize_html(html)
        assert "<strong>bold</strong>" in cleaned
        assert 'href="https://example.org/a?b=1"' in cleaned
        assert 'href="mailto:team@example.org"' in cleaned
        assert '<img src="https://example.org/i.png" alt="pic">' in cleaned
        assert "<h2>Title</h2>" in cleaned

    def test_links_get_noopener_noreferrer(self) -> None:
        cleaned = sanitize_html('<a href="https://example.org" rel="opener">x</a>')
        assert 'rel="noopener noreferrer"' in cleaned
        assert 'opener"' not in cleaned.replace("noopener noreferrer", "")

    def test_script_content_is_dropped_not_shown(self) -> None:
        assert sanitize_html("<p>a</p><script>var secret = 1;</script>") == "<p>a</p>"

    def test_javascript_href_is_removed_but_text_stays(self) -> None:
        assert sanitize_html('<a href="javascript:alert(1)">x</a>') == (
            '<a rel="noopener noreferrer">x</a>'
        )


_tag_names = st.sampled_from(
    sorted(ALLOWED_TAGS | {"script", "style", "iframe", "svg", "img", "form", "math", "object"})
)
_attr_names = st.sampled_from(
    ["href", "src", "onclick", "onerror", "style", "title", "alt", "class", "formaction", "rel"]
)
_attr_values = st.one_of(
    st.sampled_from(
        [
            "javascript:alert(1)",
            " JaVaScript:alert(1)",
            "java&#x09;script:alert(1)",
            "data:text/html,<script>alert(1)</script>",
            "https://example.org/x",
            "/relative/path",
            "mailto:a@example.org",
            "alert(1)",
        ]
    ),
    st.text(max_size=12),
)


@st.composite
def _html(draw: st.DrawFn, depth: int = 0) -> str:
    parts = []
    for _ in range(draw(st.integers(0, 4))):
        kind = draw(st.integers(0, 3))
        if kind == 0 or depth > 3:
            parts.append(draw(st.text(alphabet=st.characters(codec="utf-8"), max_size=15)))
        elif kind == 1:
            parts.append(draw(st.sampled_from(["<", ">", "&", '"', "'", "</", "<!--", "-->"])))
        else:
            tag = draw(_tag_names)
            attrs = "".join(
                f' {name}="{value}"'
                for name, value in draw(st.lists(st.tuples(_attr_names, _attr_values), max_size=3))
            )
            inner = draw(_html(depth + 1))
            closing = draw(st.booleans())
            parts.append(f"<{tag}{attrs}>{inner}" + (f"</{tag}>" if closing else ""))
    return "".join(parts)


class TestGeneratedHtml:
    @settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(_html())
    def test_output_is_safe_and_stable(self, html: str) -> None:
        cleaned = sanitize_html(html)
        assert_safe(cleaned)
        assert sanitize_html(cleaned) == cleaned

    @settings(max_examples=300, deadline=None)
    @given(st.text(max_size=200))
    def test_any_text_is_safe_and_stable(self, text: str) -> None:
        cleaned = sanitize_html(text)
        assert_safe(cleaned)
        assert sanitize_html(cleaned) == cleaned
