"""MkDocs hook: include a file of the repository in a page at build time, so the page cannot drift from it.

A line `<!-- dqnlab:include PATH -->` (PATH relative to the repository root)
is replaced by that Markdown file, its headings moved one level down (its
title becomes a section of the page) and fenced code left as it is.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
MARKER = re.compile(r"^<!-- dqnlab:include (\S+) -->$", flags=re.M)


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    return MARKER.sub(lambda match: included(match.group(1)), markdown)


def included(path: str) -> str:
    return demote((ROOT / path).read_text(encoding="utf-8"))


def demote(text: str) -> str:
    """Every ATX heading one level down, outside fenced code blocks."""
    lines, fence = [], None
    for line in text.splitlines():
        stripped = line.lstrip()
        if fence is None and stripped[:3] in ("```", "~~~"):
            fence = stripped[:3]
        elif fence is not None and stripped.startswith(fence):
            fence = None
        elif fence is None and re.match(r"#{1,5} ", line):
            line = "#" + line
        lines.append(line)
    return "\n".join(lines) + "\n"
