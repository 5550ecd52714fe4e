"""The report's index page, written once as a list of blocks and rendered as Markdown
(``index.md``) and as a self-contained HTML page (``index.html``)."""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field

import pandas as pd

__all__ = ["Block", "frame_html", "frame_markdown", "page_html", "page_markdown"]

_CSS = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px; color: #222; }
table { border-collapse: collapse; font-size: 0.85em; margin: 0.8em 0; }
th, td { padding: 0.25em 0.6em; border-bottom: 1px solid #ddd; text-align: left; }
th { border-bottom: 2px solid #444; }
td.num { text-align: right; white-space: nowrap; }
td.baseline { background: #eef4fb; }
span.delta { color: #666; font-size: 0.85em; }
img { max-width: 100%; border: 1px solid #eee; }
code { background: #f4f4f4; padding: 0 0.2em; }
"""


@dataclass
class Block:
    """``kind``: ``h1``, ``h2``, ``p``, ``list``, ``code``, ``table`` (``markdown`` and
    ``html`` given ready-made), ``image`` (``text``: path, ``alt``), ``links``."""

    kind: str
    text: str = ""
    items: list[str] = field(default_factory=list)
    links: list[tuple[str, str]] = field(default_factory=list)
    markdown: str = ""
    html: str = ""
    alt: str = ""


def _shortened(frame: pd.DataFrame, limit: int) -> pd.DataFrame:
    """Every cell as text on one line, at most ``limit`` characters (``…`` marks a cut)."""

    def cell(value: object) -> str:
        missing = value is None or value is pd.NA or (isinstance(value, float) and pd.isna(value))
        text = "" if missing else str(value).replace("\n", " ")
        return text if len(text) <= limit else text[: limit - 1] + "…"

    return frame.astype(object).map(cell)


def frame_markdown(frame: pd.DataFrame, limit: int = 120) -> str:
    """A small frame as a pipe table (``DataFrame.to_markdown``; long cells shortened)."""
    cells = _shortened(frame, limit).map(lambda text: text.replace("|", "\\|"))
    cells.columns = pd.Index([str(c) for c in frame.columns])
    return str(cells.to_markdown(index=False, disable_numparse=True)) + "\n"


def frame_html(frame: pd.DataFrame, limit: int = 200) -> str:
    """A small frame as an HTML table (``DataFrame.to_html``, cells escaped)."""
    cells = _shortened(frame, limit)
    return str(cells.to_html(index=False, escape=True, border=0, na_rep="")) + "\n"


def _inline_html(text: str) -> str:
    """Markdown's `code` and [text](href) inside a paragraph, as HTML."""
    text = html.escape(text, quote=False)
    text = re.sub(r"`([^`]+)`", r"<code>\1</code>", text)
    return re.sub(r"\[([^\]]+)\]\(([^)]+)\)", r'<a href="\2">\1</a>', text)


def page_markdown(blocks: list[Block]) -> str:
    parts = []
    for b in blocks:
        if b.kind == "h1":
            parts.append(f"# {b.text}")
        elif b.kind == "h2":
            parts.append(f"## {b.text}")
        elif b.kind == "p":
            parts.append(b.text)
        elif b.kind == "list":
            parts.append("\n".join(f"- {item}" for item in b.items))
        elif b.kind == "code":
            parts.append(f"```\n{b.text}\n```")
        elif b.kind == "table":
            parts.append(b.markdown.rstrip())
        elif b.kind == "image":
            parts.append(f"![{b.alt}]({b.text})")
        elif b.kind == "links":
            parts.append(" · ".join(f"[{t}]({h})" for t, h in b.links))
    return "\n\n".join(parts) + "\n"


def page_html(title: str, blocks: list[Block]) -> str:
    body = []
    for b in blocks:
        if b.kind in ("h1", "h2"):
            body.append(f"<{b.kind}>{html.escape(b.text)}</{b.kind}>")
        elif b.kind == "p":
            body.append(f"<p>{_inline_html(b.text)}</p>")
        elif b.kind == "list":
            body.append("<ul>" + "".join(f"<li>{_inline_html(i)}</li>" for i in b.items) + "</ul>")
        elif b.kind == "code":
            body.append(f"<pre><code>{html.escape(b.text)}</code></pre>")
        elif b.kind == "table":
            body.append(b.html)
        elif b.kind == "image":
            src = html.escape(b.text, quote=True)
            body.append(f'<p><img src="{src}" alt="{html.escape(b.alt, quote=True)}"></p>')
        elif b.kind == "links":
            links = (
                f'<a href="{html.escape(h, quote=True)}">{html.escape(t)}</a>' for t, h in b.links
            )
            body.append("<p>" + " · ".join(links) + "</p>")
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head>\n<body>\n"
        + "\n".join(body)
        + "\n</body></html>\n"
    )
