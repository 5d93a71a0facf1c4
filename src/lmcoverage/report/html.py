"""A self-contained HTML report: sections of prose, tables and embedded PNG figures.

No external assets: figures are inlined as base64 data URIs so the file can be mailed or
opened from any directory. The markup is the jinja2 template ``templates/report.html.j2``;
:func:`render_template` renders any template of that folder.
"""

from __future__ import annotations

import base64
import json
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from lmcoverage.io import atomic_write_text, to_jsonable


@dataclass
class Table:
    """A table: ``rows`` are dicts sharing ``columns`` (defaults to the first row's keys)."""

    rows: list[dict[str, Any]]
    columns: list[str] | None = None
    caption: str = ""


@dataclass
class Section:
    """One report section. ``text`` is plain prose; blank lines separate paragraphs."""

    title: str
    text: str = ""
    figures: list[Path] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;max-width:1100px;
margin:2em auto;padding:0 1em;color:#222;line-height:1.45}
h1{border-bottom:2px solid #ddd;padding-bottom:.3em}h2{margin-top:1.8em;color:#234}
table{border-collapse:collapse;margin:1em 0;font-size:.92em}
td,th{border:1px solid #ccc;padding:.3em .6em;text-align:right}th{background:#f3f5f8}
td:first-child,th:first-child{text-align:left}caption{caption-side:top;text-align:left;color:#555}
img{max-width:100%;border:1px solid #eee;margin:.5em 0}
pre{background:#f6f8fa;padding:1em;overflow:auto;font-size:.85em}
.meta{color:#666;font-size:.9em}
"""


def _format_cell(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _table_view(table: Table) -> dict[str, Any]:
    columns = table.columns or (list(table.rows[0].keys()) if table.rows else [])
    cells = [[_format_cell(r.get(c, "")) for c in columns] for r in table.rows]
    return {"rows": table.rows, "columns": columns, "cells": cells, "caption": table.caption}


def _section_view(section: Section) -> dict[str, Any]:
    paragraphs = [p.strip() for p in section.text.strip().split("\n\n") if p.strip()]
    figures = [{"alt": Path(f).stem, "data": base64.b64encode(Path(f).read_bytes()).decode("ascii")}
               for f in section.figures]
    return {"title": section.title, "paragraphs": paragraphs, "figures": figures,
            "tables": [_table_view(t) for t in section.tables]}


def render_template(name: str, **context: Any) -> str:
    """Render ``report/templates/<name>`` (jinja2, HTML autoescaped) with ``context``; other
    reports (e.g. a comparison) can add their own template next to ``report.html.j2``."""
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("lmcoverage.report", "templates"),
        autoescape=True, trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=False,
    )
    return env.get_template(name).render(**context)


def write_report(
    path: str | os.PathLike[str],
    title: str,
    sections: list[Section],
    config: dict[str, Any] | None = None,
) -> Path:
    """Write a self-contained HTML report to ``path`` atomically and return the path.

    ``config`` (the run's configuration) is appended as pretty-printed JSON.
    """
    text = render_template(
        "report.html.j2",
        title=title,
        css=_CSS,
        generated=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        sections=[_section_view(s) for s in sections],
        config=None if config is None else json.dumps(to_jsonable(config), indent=2),
    )
    target = Path(path)
    atomic_write_text(target, text)
    return target
