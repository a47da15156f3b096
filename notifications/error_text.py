"""What another service said when it failed, reduced to one safe line. Pure.

A failing Slack or GitHub (or a proxy in front of them) may answer with a whole HTML error page,
a stack trace, or text with control characters; none of it belongs in a PR comment, a commit
status or a report. :func:`build_error_line` keeps one line: HTML is named, not quoted; controls
and runs of whitespace become one space; the length is capped.
"""

from __future__ import annotations

import re

MAX_ERROR_CHARS = 200
_HTML = re.compile(r"<\s*(!doctype|html|head|body|title|div|p|h\d|pre|center|script|style)\b", re.IGNORECASE)
_TITLE = re.compile(r"<title[^>]*>([^<]{1,80})</title>", re.IGNORECASE)
_SPACE = re.compile(r"[\s\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]+")


def build_error_line(text: object, limit: int = MAX_ERROR_CHARS) -> str:
    """`text` as one printable line of at most `limit` characters; an HTML page becomes a mention of one."""
    raw = "" if text is None else str(text)
    if _HTML.search(raw):
        title = _TITLE.search(raw)
        head = _HTML.split(raw, maxsplit=1)[0]
        raw = f"{head} an HTML error page" + (f" ({title.group(1)})" if title else "")
    line = _SPACE.sub(" ", raw).strip()
    return line if len(line) <= limit else line[: limit - 1].rstrip() + "…"
