"""Which results in an evidence file are the candidate's: exact provider, model and version.

A file may hold results of several models (``ParsedEvidence.groups``, one per model; its pooled
``metrics`` are then empty). Only the group that names the candidate's model is judged. The
comparison is exact, never a substring: provider (where the file states it) must equal
``model.provider``, and the model id the file states must be the pinned ``model.version``
(or, where the file splits name and version, both must equal the manifest's).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from promotion_gate.checklists.evidence.base import Metric, ParsedEvidence
from promotion_gate.checklists.manifest import ModelRef


@dataclass(frozen=True)
class Selection:
    """The candidate's metrics in one file, or why there are none."""

    metrics: dict[str, Metric] = field(default_factory=dict)
    named: bool = True
    said: str | None = None
    problem: str | None = None
    others: tuple[str, ...] = ()


@dataclass(frozen=True)
class _Group:
    provider: str | None
    model: str | None
    version: str | None
    raw: str
    metrics: dict[str, Metric]


def _groups(parsed: ParsedEvidence) -> list[_Group]:
    groups = getattr(parsed, "groups", None)
    if groups:
        return [_Group(getattr(g, "provider", None), getattr(g, "model", None), getattr(g, "version", None),
                       str(getattr(g, "raw", None) or "/".join(x for x in (g.provider, g.model, g.version) if x)),
                       _by_name(getattr(g, "metrics", None)))
                for g in groups]
    said = parsed.provenance.model
    if not said:
        return []
    # before the parsers split groups: one group from the file's own model string, tokenised exactly
    tokens = [t for t in said.replace("/", ":").split(":") if t]
    provider = tokens[0] if len(tokens) > 1 else None
    return [_Group(provider, None, tokens[-1] if tokens else None, said, dict(parsed.metrics))]


def _by_name(metrics) -> dict[str, Metric]:
    if not metrics:
        return {}
    return dict(metrics) if isinstance(metrics, dict) else {m.name: m for m in metrics}


def _unnamed(g: _Group) -> bool:
    return not (g.provider or g.model or g.version)


def matches(g: _Group, model: ModelRef) -> bool:
    if g.provider is not None and g.provider != model.provider:
        return False
    stated = [x for x in (g.model, g.version) if x is not None]
    if not stated or model.version is None:
        return False
    if g.model is not None and g.version is not None:
        return g.version == model.version and g.model in (model.name, model.version)
    return stated[0] == model.version


def select_candidate(parsed: ParsedEvidence, model: ModelRef) -> Selection:
    groups = _groups(parsed)
    named = [g for g in groups if not _unnamed(g)]
    if not named:
        metrics = dict(parsed.metrics) or (dict(groups[0].metrics) if len(groups) == 1 else {})
        return Selection(metrics=metrics, named=False)
    hits = [g for g in named if matches(g, model)]
    others = tuple(g.raw for g in named if g not in hits)
    want = f"{model.provider}/{model.version or model.name}"
    if not hits:
        return Selection(named=True, said=", ".join(g.raw for g in named), others=others,
                         problem=f"no results for {want} (the file has {', '.join(g.raw for g in named)})")
    if len(hits) > 1:
        return Selection(named=True, said=", ".join(g.raw for g in hits), others=others,
                         problem=f"{len(hits)} result groups claim to be {want}: ambiguous")
    hit = hits[0]
    return Selection(metrics=hit.metrics, named=True, said=hit.raw, others=others)
