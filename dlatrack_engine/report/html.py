"""`report.html`: one file that opens anywhere, offline. Plots are inline PNGs, the preview video is inline
when small (else linked relatively), and there is no script and no external URL."""

from __future__ import annotations

import base64
import html
from collections.abc import Sequence

STYLE = """body{font-family:sans-serif;max-width:900px;margin:2em auto;color:#222}
table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}
th{background:#f3f3f3}img,video{max-width:100%}.lost{color:#b00}"""


def data_uri(mime: str, data: bytes) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def render(title: str, facts: Sequence[tuple[str, str]], table: Sequence[tuple[str, str]],
           video_src: str | None, figures: Sequence[tuple[str, bytes]], lost_frames: Sequence[int]) -> str:
    """facts: (name, value) lines under the title; table: (metric, formatted mean); video_src: a data: URI or
    a relative path; figures: (caption, PNG bytes)."""
    esc = html.escape
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{esc(title)}</title>",
             f"<style>{STYLE}</style></head><body><h1>{esc(title)}</h1><ul>"]
    parts += [f"<li><b>{esc(k)}</b>: {esc(v)}</li>" for k, v in facts]
    lost = ", ".join(str(i) for i in lost_frames) or "none"
    parts.append(f"<li class='{'lost' if lost_frames else ''}'><b>frames without a detected face</b>: {lost}</li>")
    parts.append("</ul>")
    if video_src is not None:
        parts.append(f"<h2>Preview</h2><video controls loop muted src='{esc(video_src)}'></video>")
    parts.append("<h2>Metrics (mean over frames)</h2><table><tr><th>metric</th><th>value</th></tr>")
    parts += [f"<tr><td style='text-align:left'>{esc(k)}</td><td>{esc(v)}</td></tr>" for k, v in table]
    parts.append("</table>")
    for caption, png in figures:
        parts.append(f"<h2>{esc(caption)}</h2><img alt='{esc(caption)}' src='{data_uri('image/png', png)}'>")
    parts.append("</body></html>\n")
    return "".join(parts)
