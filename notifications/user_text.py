"""Text that came from a manifest, an evidence file, a reviewer or a tool, made inert. Pure.

Two rules, one per kind of output:

- :func:`show_control`: control characters are shown, not obeyed. ANSI escape sequences, a bare
  carriage return, the other C0 and C1 controls (but newline and tab), DEL, the bidirectional
  overrides, embeddings, isolates and marks (U+202A-202E, U+2066-2069, U+200E, U+200F, U+061C)
  and the line and paragraph separators become their escape as text (``\\x1b``, ``\\u202e``), so
  the terminal, Slack and a Markdown reader all show exactly what the file held.
- :func:`md_text`: the same, and then Markdown cannot act on the text: no link, image, HTML or
  table cell (a backslash before every Markdown punctuation, ``&`` as ``&amp;``), no mention of a
  user or team (``@acme`` becomes ``@`` + ZERO WIDTH SPACE + ``acme``), no issue or PR reference
  (``#123``, ``GH-1``, ``owner/repo#1``: a zero width space after ``#`` and ``GH-``), no bare
  autolink (``https://``, ``www.``, ``user@host``: a zero width space breaks each pattern). It
  reads the same to a person; GitHub links, notifies and references nothing.
- :func:`plain_text`: for a field GitHub shows as plain text (a check run's title, an
  annotation's title and message): controls shown, mentions, references and autolinks broken as
  above, and no Markdown backslashes (they would show).
- :func:`spreadsheet_cell`: a CSV cell a spreadsheet would run as a formula (it starts with ``=``,
  ``+``, ``-``, ``@``, a tab or a carriage return) gets a leading ``'`` and is shown as text
  (``audit index``'s index.csv, the inventory's CSV).
"""

from __future__ import annotations

import re

ZWSP = "\u200b"
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+!|<>~])")
_MENTION = re.compile(r"@")
_ISSUE = re.compile(r"(\\#|\bGH-)(?=[0-9])", re.IGNORECASE)
_PLAIN_ISSUE = re.compile(r"(#|\bGH-)(?=[0-9])", re.IGNORECASE)
_AUTOLINK = re.compile(r"(?<=[A-Za-z]):(?=//)|(?<=\bwww)\.", re.IGNORECASE)


def show_control(text: str) -> str:
    """`text` with every control character (but newline and tab) written as its escape."""
    return _CONTROL.sub(_escape_char, text)


def _escape_char(match: re.Match) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def md_text(value: object) -> str:
    """`value` as inert inline Markdown: shown as written, acting on nothing (one line)."""
    if value is None:
        return ""
    text = show_control(str(value).replace("\r\n", "\n")).replace("\n", " ")
    text = _MD_SPECIAL.sub(r"\\\1", text).replace("&", "&amp;")
    text = _MENTION.sub("@" + ZWSP, text)
    text = _ISSUE.sub(lambda m: m.group(1) + ZWSP, text)
    return _AUTOLINK.sub(lambda m: ZWSP + "." if m.group() == "." else ":" + ZWSP, text)


def plain_text(value: object, *, lines: bool = False) -> str:
    """`value` for a plain-text field: shown as written, mentioning, referencing and linking nothing
    (one line unless `lines`)."""
    if value is None:
        return ""
    text = show_control(str(value).replace("\r\n", "\n"))
    text = text if lines else text.replace("\n", " ")
    text = _MENTION.sub("@" + ZWSP, text)
    text = _PLAIN_ISSUE.sub(lambda m: m.group(1) + ZWSP, text)
    return _AUTOLINK.sub(lambda m: ZWSP + "." if m.group() == "." else ":" + ZWSP, text)


FORMULA_STARTS = frozenset(("=", "+", "-", "@", "\t", "\r"))


def spreadsheet_cell(value: str) -> str:
    """`value` as a CSV cell a spreadsheet shows, never runs (``=HYPERLINK(...)``, ``@SUM(...)``)."""
    return "'" + value if value[:1] in FORMULA_STARTS else value
