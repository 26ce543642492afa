"""The shared rendering base: a document as blocks, and its Markdown and self-contained HTML.

A report is a list of blocks (headings, paragraphs, lists, tables, figures);
`blocks_markdown` and `blocks_html` walk the same list, so the two files
always say the same thing. The comparison report (`analysis.render`) and the
probe report (`probe.report`) both render through here.
"""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass
from typing import Iterable, Mapping, Sequence

NO_PLOT = "(No plot: nothing to draw.)"


@dataclass(frozen=True)
class Heading:
    level: int
    text: str


@dataclass(frozen=True)
class Paragraph:
    text: str


@dataclass(frozen=True)
class Bullets:
    items: tuple[str, ...]
    css: str = ""


@dataclass(frozen=True)
class Table:
    headers: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]


@dataclass(frozen=True)
class Figure:
    name: str  # file name in plots/
    caption: str


Block = Heading | Paragraph | Bullets | Table | Figure


def blocks_markdown(blocks: Sequence[Block], plots: Iterable[str] | None = None, folder: str = "plots") -> str:
    """Markdown for a document; `plots` names the image files in `folder` that exist."""
    available = set(plots or ())
    lines: list[str] = []
    for block in blocks:
        if isinstance(block, Heading):
            lines += ["#" * block.level + " " + block.text, ""]
        elif isinstance(block, Paragraph):
            lines += [block.text, ""]
        elif isinstance(block, Bullets):
            lines += [f"- {item}" for item in block.items] + [""]
        elif isinstance(block, Table):
            lines += [_md_row(block.headers), "|" + "---|" * len(block.headers)]
            lines += [_md_row(row) for row in block.rows] + [""]
        elif isinstance(block, Figure) and plots is not None:
            shown = f"![{block.caption}]({folder}/{block.name})" if block.name in available else NO_PLOT
            lines += [shown, ""]
    return "\n".join(lines).rstrip() + "\n"


def _md_row(cells: Iterable[str]) -> str:
    return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"


CSS = """
body { font: 15px/1.5 -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; color: #1d232a;
       max-width: 1180px; margin: 2rem auto; padding: 0 1.2rem; background: #fff; }
h1 { font-size: 1.7rem; margin-bottom: 0.4rem; }
h2 { font-size: 1.3rem; margin-top: 2.2rem; border-bottom: 1px solid #d5dae0; padding-bottom: 0.2rem; }
h3 { font-size: 1.05rem; margin-top: 1.4rem; }
ul.conclusion { background: #f3f7fb; border-left: 4px solid #1f77b4; padding: 0.8rem 1rem 0.8rem 2rem; }
ul.conclusion li { margin: 0.3rem 0; }
table { border-collapse: collapse; margin: 0.6rem 0 1rem; font-variant-numeric: tabular-nums; font-size: 0.92rem; }
th, td { border: 1px solid #d5dae0; padding: 0.3rem 0.6rem; text-align: left; vertical-align: top; }
th { background: #eef1f4; }
tr:nth-child(even) td { background: #fafbfc; }
figure { margin: 1rem 0 1.6rem; }
figure img { max-width: 100%; height: auto; border: 1px solid #e3e6ea; }
figcaption { color: #56606b; font-size: 0.9rem; margin-top: 0.3rem; }
"""


def blocks_html(blocks: Sequence[Block], images: Mapping[str, bytes]) -> str:
    """A self-contained HTML page for a document; its first heading is the title."""
    e = html.escape
    title = next(block.text for block in blocks if isinstance(block, Heading))
    body: list[str] = []
    for block in blocks:
        if isinstance(block, Heading):
            body.append(f"<h{block.level}>{e(block.text)}</h{block.level}>")
        elif isinstance(block, Paragraph):
            body.append(f"<p>{e(block.text)}</p>")
        elif isinstance(block, Bullets):
            css = f' class="{e(block.css)}"' if block.css else ""
            body.append(f"<ul{css}>" + "".join(f"<li>{e(item)}</li>" for item in block.items) + "</ul>")
        elif isinstance(block, Table):
            head = "".join(f"<th>{e(cell)}</th>" for cell in block.headers)
            rows = "".join("<tr>" + "".join(f"<td>{e(cell)}</td>" for cell in row) + "</tr>" for row in block.rows)
            body.append(f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>")
        elif isinstance(block, Figure) and block.name in images:
            data = base64.b64encode(images[block.name]).decode("ascii")
            body.append(f'<figure><img src="data:image/png;base64,{data}" alt="{e(block.caption)}">'
                        f"<figcaption>{e(block.caption)}</figcaption></figure>")  # fmt: skip
        elif isinstance(block, Figure):
            body.append(f"<p>{e(NO_PLOT)}</p>")
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{e(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n" + "\n".join(body) + "\n</body>\n</html>\n"
    )
