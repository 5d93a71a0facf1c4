"""The HTML report (jinja2 template report/templates/report.html.j2): escaping, tables, figures."""

from __future__ import annotations

import base64
from pathlib import Path

from lmcoverage.report import Section, Table, write_report
from lmcoverage.report.html import render_template


def test_report_escapes_text_and_embeds_tables_and_figures(tmp_path: Path) -> None:
    png = tmp_path / "fig<1>.png"
    png.write_bytes(b"\x89PNG fake")
    sections = [Section("A <b>", "one\n\ntwo & <three>", figures=[png],
                        tables=[Table([{"x": 1.23456789, "y<": "a&b"}, {"x": 2}], caption="c<"),
                                Table([])])]
    text = write_report(tmp_path / "r.html", "T <1>", sections, {"k": "<v>"}).read_text()
    assert "<title>T &lt;1&gt;</title>" in text and "<h2>A &lt;b&gt;</h2>" in text
    assert "<p>one</p><p>two &amp; &lt;three&gt;</p>" in text
    assert "<caption>c&lt;</caption>" in text and "<th>y&lt;</th>" in text
    assert "<td>1.235</td><td>a&amp;b</td>" in text and "<td>2</td><td></td>" in text
    assert "<p><em>(empty table)</em></p>" in text
    assert base64.b64encode(png.read_bytes()).decode() in text and 'alt="fig&lt;1&gt;"' in text
    assert "&#34;k&#34;: &#34;&lt;v&gt;&#34;" in text and "<b>" not in text
    assert render_template("report.html.j2", title="t", css="", generated="now", sections=[],
                           config=None).count("<h2>") == 0
