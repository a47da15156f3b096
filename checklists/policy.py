"""The policy: approved vendors, risk-tier rules, checklist items, sign-off and floors, as data.

The policy lives in versioned YAML (``checklists/policy/policy.yaml`` is the embedded default).
Its digest is the SHA-256 of the file's bytes, so an auditor can hash the file and compare.
"""

from __future__ import annotations

import hashlib
from enum import Enum

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from promotion_gate.checklists.manifest import Manifest, Permission
from promotion_gate.checklists.yamldoc import YamlError, format_loc, parse_yaml


class Tier(str, Enum):
    low = "low"
    medium = "medium"
    high = "high"

    @property
    def rank(self) -> int:
        return ("low", "medium", "high").index(self.value)


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Provider(Strict):
    data_classes: list[str] = Field(description="data classes this provider may receive")
    models: dict[str, list[str]] = Field(description="model name -> approved pinned versions")


class TierCondition(Strict):
    """All conditions given must hold for the rule to match."""

    audience: str | None = None
    automated_decisions_about_people: bool | None = None
    data_classes_any: list[str] | None = None
    tool_permission_any: list[Permission] | None = None

    def matches(self, m: Manifest) -> bool:
        uc = m.use_case
        checks = [
            self.audience is None or uc.audience.value == self.audience,
            self.automated_decisions_about_people is None
            or uc.automated_decisions_about_people == self.automated_decisions_about_people,
            self.data_classes_any is None or bool(set(uc.data_classes) & set(self.data_classes_any)),
            self.tool_permission_any is None
            or any(t.permission in self.tool_permission_any for t in uc.tools),
        ]
        return all(checks)


class TierRule(Strict):
    tier: Tier
    reason: str
    when: TierCondition


class SignoffPolicy(Strict):
    quorum: dict[str, int] = Field(default_factory=dict, description="role -> approvals needed")
    time_limit_hours: float = Field(default=72, gt=0)
    reminder_at: float = Field(default=0.5, gt=0, lt=1, description="share of the limit before a reminder")


class TierPolicy(Strict):
    signoff: SignoffPolicy
    metric_floors: dict[str, float] = Field(default_factory=dict)
    min_samples: int = Field(default=0, ge=0)
    evidence_max_age_days: int = Field(gt=0)
    max_regression: dict[str, float] = Field(default_factory=dict, description="metric -> largest allowed drop")
    max_log_retention_days: int = Field(default=365, ge=0)


class Item(Strict):
    id: str = Field(pattern=r"^PG-[A-Z]+-\d{3}$")
    title: str = Field(pattern=r"^Ensure ")
    controls: list[str] = Field(min_length=1)
    remedy: str
    tiers: list[Tier]
    warn_only: list[Tier] = Field(default_factory=list, description="tiers where a failure only warns")


class Reviewer(Strict):
    slack_usergroup: str | None = None
    members: list[str] = Field(default_factory=list, description="identity names from `identities`")


class Identity(Strict):
    github: str | None = None
    slack: str | None = None
    email: str | None = None


class Policy(Strict):
    version: str
    data_classes: list[str]
    sensitive_data_classes: list[str]
    providers: dict[str, Provider]
    tier_rules: list[TierRule]
    tiers: dict[Tier, TierPolicy]
    items: list[Item]
    roles: dict[str, Reviewer]
    identities: dict[str, Identity] = Field(default_factory=dict)
    digest: str = Field(default="", description="SHA-256 of the policy file (set by the loader)")

    @model_validator(mode="after")
    def _consistent(self) -> "Policy":
        missing = [t.value for t in Tier if t not in self.tiers]
        if missing:
            raise ValueError(f"tiers missing: {', '.join(missing)}")
        ids = [i.id for i in self.items]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"duplicate item ids: {', '.join(dupes)}")
        for tier, tp in self.tiers.items():
            unknown = set(tp.signoff.quorum) - set(self.roles)
            if unknown:
                raise ValueError(f"tier {tier.value}: unknown sign-off roles {sorted(unknown)}")
        for name, role in self.roles.items():
            unknown = set(role.members) - set(self.identities)
            if unknown:
                raise ValueError(f"role {name}: members without an identity {sorted(unknown)}")
        for pname, p in self.providers.items():
            unknown = set(p.data_classes) - set(self.data_classes)
            if unknown:
                raise ValueError(f"provider {pname}: unknown data classes {sorted(unknown)}")
        return self

    def items_for(self, tier: Tier) -> list[Item]:
        return [i for i in self.items if tier in i.tiers]

    def item(self, item_id: str) -> Item:
        for i in self.items:
            if i.id == item_id:
                return i
        raise KeyError(item_id)

    def classify(self, manifest: Manifest) -> tuple[Tier, list[str]]:
        """The tier a manifest's facts put it in, and every rule that says so."""
        matched = [r for r in self.tier_rules if r.when.matches(manifest)]
        if not matched:
            return Tier.low, ["no rule for a higher tier matched: internal use, no sensitive data, no writes"]
        tier = max((r.tier for r in matched), key=lambda t: t.rank)
        return tier, [r.reason for r in matched if r.tier == tier]

    def approved_model(self, provider: str, name: str) -> list[str] | None:
        p = self.providers.get(provider)
        return None if p is None else p.models.get(name)


class PolicyError(Exception):
    pass


def parse_policy(text: bytes, source: str) -> Policy:
    try:
        doc = parse_yaml(text, source)
    except YamlError as exc:
        raise PolicyError(str(exc)) from None
    if not isinstance(doc.data, dict):
        raise PolicyError(f"{source}:1: the policy must be a mapping")
    data = dict(doc.data, digest=hashlib.sha256(text).hexdigest())
    try:
        return Policy.model_validate(data)
    except ValidationError as exc:
        problems = [
            f"{source}:{doc.line_of(tuple(e['loc']))}: {format_loc(tuple(e['loc']))}: "
            + ("unknown key" if e["type"] == "extra_forbidden" else e["msg"])
            for e in exc.errors()
        ]
        raise PolicyError("; ".join(problems)) from None

