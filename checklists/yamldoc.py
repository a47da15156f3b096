"""YAML text to plain data, keeping the line of every node so errors can name it.

Duplicate keys, anchors/aliases (billion laughs), merge keys, explicit tags, non-string keys, nesting deeper
than :data:`MAX_YAML_DEPTH` and numbers YAML 1.1 reads otherwise than written (``0100`` is octal
64, ``1:30`` base-60 90) are refused: a manifest or a policy is a small declarative document, and
anything clever in it is more likely a mistake.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import yaml

MAX_YAML_BYTES = 1 << 20
MAX_YAML_DEPTH = 64
"""Deepest nesting of collections accepted. A manifest needs about 5 levels
(evaluations[0].thresholds.pass_rate.min), the policy about 6; 64 leaves room for any honest
document, and keeps PyYAML's composer (recursive, a few Python frames per level) and :func:`_build`
far below Python's recursion limit. The evidence formats' 512 (evidence/_common.py) is for tools'
output, which nests deeper than anything a person writes."""


class _BoundedLoader(yaml.SafeLoader):
    """SafeLoader whose composer refuses, before descending, a collection nested deeper than
    :data:`MAX_YAML_DEPTH` and any alias: the scanner and parser are iterative, the composer is the
    only recursion, so a megabyte of ``[`` stops at level 65 instead of exhausting the stack."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.depth = 0

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise _Refused(event.start_mark.line + 1, "YAML anchors and aliases are not allowed")
        tag = getattr(self.peek_event(), "tag", None)
        if tag is not None and tag != "!":  # `!!int "0120"` is octal 80 again; `!!binary`, `!!set`: nothing a person means here
            raise _Refused(self.peek_event().start_mark.line + 1, f"YAML tags ({tag}) are not allowed: write the value plainly, "
                                                                  "or quote it to mean the text")
        if self.check_event(yaml.SequenceStartEvent, yaml.MappingStartEvent):
            if self.depth >= MAX_YAML_DEPTH:
                event = self.peek_event()
                raise _Refused(event.start_mark.line + 1, f"nested deeper than {MAX_YAML_DEPTH} levels (a manifest or policy needs far fewer)")
            self.depth += 1
            try:
                return super().compose_node(parent, index)
            finally:
                self.depth -= 1
        return super().compose_node(parent, index)


class _Refused(Exception):
    def __init__(self, line: int, reason: str) -> None:
        super().__init__(reason)
        self.line, self.reason = line, reason


def _compose(text: str) -> yaml.Node | None:
    loader = _BoundedLoader(text)
    try:
        return loader.get_single_node()
    finally:
        loader.dispose()


class YamlError(Exception):
    def __init__(self, source: str, line: int | None, reason: str) -> None:
        where = f"{source}:{line}" if line else source
        super().__init__(f"{where}: {reason}")
        self.source, self.line, self.reason = source, line, reason


@dataclass
class YamlDoc:
    data: Any
    lines: dict[tuple, int] = field(default_factory=dict)

    def line_of(self, loc: tuple) -> int | None:
        """The line of the deepest node on ``loc`` that the document has."""
        loc = tuple(loc)
        while loc:
            if loc in self.lines:
                return self.lines[loc]
            loc = loc[:-1]
        return self.lines.get(())


def parse_yaml(text: str | bytes, source: str) -> YamlDoc:
    if isinstance(text, bytes):
        if len(text) > MAX_YAML_BYTES:
            raise YamlError(source, None, f"file is larger than {MAX_YAML_BYTES} bytes")
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise YamlError(source, None, f"not UTF-8 text (byte {exc.start})") from None
    try:
        node = _compose(text)
    except _Refused as exc:
        raise YamlError(source, exc.line, exc.reason) from None
    except yaml.MarkedYAMLError as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark else None
        raise YamlError(source, line, f"malformed YAML: {exc.problem}") from None
    except yaml.YAMLError as exc:
        raise YamlError(source, None, f"malformed YAML: {exc}") from None
    if node is None:
        raise YamlError(source, None, "file is empty")
    doc = YamlDoc(data=None)
    doc.data = _build(node, (), doc.lines, source, set(), yaml.SafeLoader(""))
    return doc


def _build(node: yaml.Node, path: tuple, lines: dict, source: str, seen: set, loader: yaml.SafeLoader) -> Any:
    """Plain data of ``node``; each scalar is constructed by one SafeLoader per document (a
    scalar's construction keeps no state that another scalar could see: aliases are refused)."""
    lines.setdefault(path, node.start_mark.line + 1)
    if id(node) in seen:
        raise YamlError(source, node.start_mark.line + 1, "YAML anchors and aliases are not allowed")
    seen.add(id(node))
    if isinstance(node, yaml.MappingNode):
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            line = key_node.start_mark.line + 1
            if key_node.tag == "tag:yaml.org,2002:merge":
                raise YamlError(source, line, "YAML merge keys are not allowed")
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag != "tag:yaml.org,2002:str":
                raise YamlError(source, line, "mapping keys must be strings")
            key = key_node.value
            if key in out:
                raise YamlError(source, line, f"duplicate key {format_loc(path + (key,))}")
            lines[path + (key,)] = line
            out[key] = _build(value_node, path + (key,), lines, source, seen, loader)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_build(item, path + (i,), lines, source, seen, loader) for i, item in enumerate(node.value)]
    try:
        value = loader.construct_object(node, deep=True)
    except yaml.YAMLError as exc:
        reason = str(getattr(exc, "problem", None) or exc).splitlines()[0]
        raise YamlError(source, lines[path], f"bad value: {reason}") from None
    except (ValueError, OverflowError) as exc:  # an integer past Python's 4300-digit limit, a date out of range
        raise YamlError(source, lines[path], f"bad value: {str(exc).splitlines()[0][:120]}") from None
    misread = _misread_number(node, value)
    if misread:
        raise YamlError(source, lines[path], misread)
    return value


_INT, _FLOAT = "tag:yaml.org,2002:int", "tag:yaml.org,2002:float"
_LEADING_ZERO = re.compile(r"[-+]?0[0-7_]+")


def _misread_number(node: yaml.Node, value: Any) -> str | None:
    """Why a plain scalar's number is not the one its digits say: YAML 1.1 (PyYAML's) reads ``0100``
    as octal 64 and ``1:30`` as base 60 (90), where a person means 100 and a time or a ratio.
    Refused with the reading and the fix, rather than judged as a number nobody wrote. Hex
    (``0x1e``) and underscores (``1_000``) say what they are and pass."""
    if not isinstance(node, yaml.ScalarNode) or node.style is not None or node.tag not in (_INT, _FLOAT):
        return None
    text = node.value
    if ":" in text:
        return f"{text} is read by YAML as the base-60 number {value}: write the number you mean, or quote it to mean the text"
    if node.tag == _INT and _LEADING_ZERO.fullmatch(text):
        meant = int(text.replace("_", ""), 10)
        return f"{text} is read by YAML as the octal number {value}: write {meant} without the leading zero, or quote it to mean the text"
    return None


def format_loc(loc: tuple) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(document)"
