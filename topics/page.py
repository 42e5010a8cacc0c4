"""The readable page of the topic contracts: docs/TOPICS.md rendered as one HTML page.

The gateway serves it at `/asyncapi`; being the same Markdown as docs/TOPICS.md, made from the
same catalog and models as the AsyncAPI document, the page cannot disagree with either.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from typing import Any

from markdown_it import MarkdownIt
from markdown_it.token import Token

_COMMENT = re.compile(r"<!--.*?-->\s*", re.DOTALL)

STYLE = """
body { font: 15px/1.5 system-ui, sans-serif; max-width: 72rem; margin: 2rem auto;
       padding: 0 1rem; color: #1d232a; }
table { border-collapse: collapse; margin: 0.5rem 0 1.5rem; }
th, td { border: 1px solid #d0d7de; padding: 0.25rem 0.5rem; text-align: left;
         vertical-align: top; }
th { background: #f3f5f7; }
code { background: #f3f5f7; padding: 0 0.2rem; border-radius: 3px; }
h2 { border-bottom: 1px solid #d0d7de; margin-top: 2.5rem; }
nav { background: #f3f5f7; padding: 0.5rem 1rem; border-radius: 6px; }
"""


def slug(text: str) -> str:
    """GitHub's heading anchors (docs/TOPICS.md links them): `a.b v1` -> `ab-v1`."""
    text = re.sub(r"[^\w\- ]", "", text.strip().lower())
    return text.replace(" ", "-")


def _heading_open(self: Any, tokens: Sequence[Token], idx: int, options: Any, env: Any) -> str:
    token = tokens[idx]
    inline = tokens[idx + 1]
    token.attrSet("id", slug(inline.content.replace("`", "")))
    return self.renderToken(tokens, idx, options, env)  # type: ignore[no-any-return]


def _renderer() -> MarkdownIt:
    # Raw HTML off: the page shows text from docstrings, which must never become markup.
    md = MarkdownIt("commonmark", {"html": False}).enable("table")
    md.add_render_rule("heading_open", _heading_open)
    return md


def topics_page(markdown: str, asyncapi_url: str = "/asyncapi.json") -> str:
    """A standalone HTML page of the Markdown, with a link to the machine-readable document."""
    body = _renderer().render(_COMMENT.sub("", markdown))
    link = html.escape(asyncapi_url, quote=True)
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        "<title>Media Gateway topics</title>"
        f"<style>{STYLE}</style></head><body>\n"
        f'<nav>Machine-readable: <a href="{link}">AsyncAPI 3 document</a> · JSON Schema of a '
        "topic version: <code>/asyncapi/schemas/TOPIC/vN.json</code></nav>\n"
        f"{body}</body></html>\n"
    )
