"""Article HTML sanitizing with nh3: an explicit allowlist, so anything unlisted is dropped.

No scripts, styles, frames, forms or event handlers survive; `href`/`src` keep only
`http`, `https` and `mailto` URLs (or relative ones); every link gets
`rel="noopener noreferrer"`. Sanitizing is idempotent: cleaning clean HTML changes nothing.
"""

from __future__ import annotations

import re

import nh3

ALLOWED_TAGS: frozenset[str] = frozenset(
    {
        "a", "abbr", "b", "blockquote", "br", "caption", "cite", "code", "dd", "del", "div",
        "dl", "dt", "em", "figcaption", "figure", "h1", "h2", "h3", "h4", "h5", "h6", "hr",
        "i", "img", "ins", "kbd", "li", "mark", "ol", "p", "pre", "q", "s", "small", "span",
        "strong", "sub", "sup", "table", "tbody", "td", "tfoot", "th", "thead", "time", "tr",
        "u", "ul",
    }
)  # fmt: skip

ALLOWED_ATTRIBUTES: dict[str, set[str]] = {
    "*": {"title", "lang"},
    "a": {"href", "title", "hreflang"},
    "abbr": {"title"},
    "blockquote": {"cite"},
    "del": {"cite", "datetime"},
    "img": {"src", "alt", "title", "width", "height"},
    "ins": {"cite", "datetime"},
    "ol": {"start", "reversed"},
    "q": {"cite"},
    "td": {"colspan", "rowspan"},
    "th": {"colspan", "rowspan", "scope"},
    "time": {"datetime"},
}

URL_SCHEMES: frozenset[str] = frozenset({"http", "https", "mailto"})

# Dropped together with everything inside them (other unlisted tags keep their text).
DROPPED_WITH_CONTENT: frozenset[str] = frozenset(
    {
        "script", "style", "iframe", "frame", "frameset", "object", "embed", "applet",
        "noscript", "noembed", "noframes", "template", "svg", "math", "textarea", "select",
        "title", "xmp",
    }
)  # fmt: skip

LINK_REL = "noopener noreferrer"

_RELATIVE_URL_START = re.compile(r"[/#?.A-Za-z0-9_~-]")


def _relative_url(url: str) -> str | None:
    # A relative URL is kept when it reads as a path, query or fragment; anything odd
    # (a stray scheme after a quote or backtick, say) is dropped rather than reasoned about.
    head = re.split(r"[/?#]", url, maxsplit=1)[0]
    if ":" in head or not _RELATIVE_URL_START.match(url):
        return None
    return url


_cleaner = nh3.Cleaner(
    tags=set(ALLOWED_TAGS),
    clean_content_tags=set(DROPPED_WITH_CONTENT),
    attributes={tag: set(names) for tag, names in ALLOWED_ATTRIBUTES.items()},
    url_schemes=set(URL_SCHEMES),
    link_rel=LINK_REL,
    url_relative=_relative_url,
    strip_comments=True,
)


_MAX_PASSES = 4


def sanitize_html(html: str) -> str:
    """The HTML with everything outside the allowlist removed.

    Badly nested markup (a heading inside a heading, say) can serialize into HTML that
    parses into a different tree, so cleaning repeats until the output is stable."""
    result: str = _cleaner.clean(html)
    for _ in range(_MAX_PASSES):
        again: str = _cleaner.clean(result)
        if again == result:
            break
        result = again
    return result
