"""Model ids as evaluation tools write them, read into provider / model / version.

Only what the id itself says is read: a provider that the id does not name unambiguously is left
None and the whole id is the model. A dated model id (``gpt-4o-2024-08-06``) is the model as its
provider's API names it; it is not split into a name and a version (that would be a guess), so
``version`` is set only where a format states a version on its own (lm-eval's ``revision``).
"""

from __future__ import annotations

from promotion_gate.checklists.evidence.base import Metric, ModelGroup

PROMPTFOO_API_KINDS = frozenset({"chat", "completion", "completions", "messages", "responses", "embedding", "embeddings", "assistant", "realtime"})
"""promptfoo ids ``provider:kind:model`` (``openai:chat:gpt-4o``, ``anthropic:messages:claude-...``)."""

_NOT_A_PROVIDER = ("file:", "http:", "https:", "exec:", "python:", "golang:", "ruby:", "script:")


def promptfoo_group(raw: str | None, metrics: dict[str, Metric]) -> ModelGroup:
    """A promptfoo provider id: ``provider:model`` or ``provider:kind:model``; anything else whole."""
    if raw is None:
        return ModelGroup(metrics=metrics)
    parts = raw.split(":")
    if raw.startswith(_NOT_A_PROVIDER) or any(not p.strip() for p in parts) or len(parts) < 2:
        return ModelGroup(model=raw, raw=raw, metrics=metrics)
    if len(parts) == 2:
        return ModelGroup(provider=parts[0], model=parts[1], raw=raw, metrics=metrics)
    if len(parts) == 3 and parts[1] in PROMPTFOO_API_KINDS:
        return ModelGroup(provider=parts[0], model=parts[2], raw=raw, metrics=metrics)
    return ModelGroup(model=raw, raw=raw, metrics=metrics)


def slash_group(raw: str | None, metrics: dict[str, Metric]) -> ModelGroup:
    """An Inspect model id ``provider/model`` (the model may hold further slashes: ``hf/org/name``)."""
    if raw is None:
        return ModelGroup(metrics=metrics)
    provider, sep, model = raw.partition("/")
    if not sep or not provider.strip() or not model.strip():
        return ModelGroup(model=raw, raw=raw, metrics=metrics)
    return ModelGroup(provider=provider, model=model, raw=raw, metrics=metrics)


def plain_group(raw: str | None, metrics: dict[str, Metric]) -> ModelGroup:
    """A bare model name: no provider can be read from it."""
    return ModelGroup(model=raw, raw=raw, metrics=metrics)
