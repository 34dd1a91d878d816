"""Markdown from plugin authors rendered to HTML that is safe to put in our pages.

Plugin READMEs, SKILL.md bodies and agent prompts come from third-party repositories, so they
are untrusted. CommonMark (markdown-it-py, with tables and strikethrough) turns them into HTML,
raw HTML included because real READMEs use ``<details>`` and ``<kbd>``; then nh3 (ammonia)
keeps only an allowlist of tags and attributes and only ``http``, ``https`` and ``mailto``
links. Scripts, event handlers (``onerror=``), ``javascript:`` URLs, styles, forms and iframes
never survive. Images are dropped: our CSP serves images from this site only, and a README's
relative image paths point into its repository, so they would only render as broken icons.
"""

from __future__ import annotations

from functools import lru_cache

import nh3
from markdown_it import MarkdownIt
from markupsafe import Markup

# Tags an author may use; everything else is unwrapped (its text kept).
ALLOWED_TAGS = frozenset(
    {
        "a",
        "abbr",
        "b",
        "blockquote",
        "br",
        "code",
        "dd",
        "del",
        "details",
        "div",
        "dl",
        "dt",
        "em",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "hr",
        "i",
        "kbd",
        "li",
        "ol",
        "p",
        "pre",
        "s",
        "samp",
        "span",
        "strong",
        "sub",
        "summary",
        "sup",
        "table",
        "tbody",
        "td",
        "tfoot",
        "th",
        "thead",
        "tr",
        "ul",
    }
)
# Tags removed together with their content (their text is code or markup, never prose).
DROPPED_WITH_CONTENT = frozenset({"script", "style", "template", "iframe", "object", "noscript", "svg", "math"})
ALLOWED_ATTRIBUTES = {
    "a": {"href", "title"},
    "abbr": {"title"},
    "ol": {"start"},
    "td": {"align", "colspan", "rowspan"},
    "th": {"align", "colspan", "rowspan", "scope"},
}
URL_SCHEMES = frozenset({"http", "https", "mailto"})
# Largest input rendered, in characters; longer texts are cut (a 2 MB prompt is not prose).
MAX_CHARS = 400_000


@lru_cache(maxsize=1)
def _parser() -> MarkdownIt:
    return MarkdownIt("commonmark", {"html": True, "linkify": False}).enable(["table", "strikethrough"])


@lru_cache(maxsize=1)
def _cleaner() -> nh3.Cleaner:
    return nh3.Cleaner(
        tags=set(ALLOWED_TAGS),
        clean_content_tags=set(DROPPED_WITH_CONTENT),
        attributes={tag: set(attrs) for tag, attrs in ALLOWED_ATTRIBUTES.items()},
        url_schemes=set(URL_SCHEMES),
        link_rel="noopener noreferrer nofollow",
        strip_comments=True,
    )


def sanitize_html(html: str) -> Markup:
    """Clean an HTML fragment with the allowlist above; the result is safe to render as is."""
    return Markup(_cleaner().clean(html))


def render_markdown(text: str | None) -> Markup:
    """Render untrusted Markdown to sanitized HTML (empty Markup for None or blank text).

    Cost: about 1 ms per 10 KB; callers that render the same file often cache the result
    (the marketplace pages cache per plugin content hash).
    """
    if not text or not text.strip():
        return Markup("")
    return sanitize_html(_parser().render(text[:MAX_CHARS]))
