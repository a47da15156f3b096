"""The policy: approved vendors, risk-tier rules, checklist items, sign-off and floors, as data.

The policy lives in versioned YAML (``checklists/policy/policy.yaml`` is the embedded default).
Its digest is the SHA-256 of the file's bytes, so an auditor can hash the file and compare.

The embedded policy's YAML is also kept parsed, as Python data (``policy_embedded.py``, generated
from the YAML by ``promotion-gate``'s maintainers and held equal to it by
tests/test_policy_embedded.py): bytes whose SHA-256 is the embedded file's skip PyYAML's
pure-Python composer (the bulk of `check`'s policy time) and are validated by the same model.
Any other bytes, a single changed byte included, are parsed.
"""


import hashlib
import math
import pprint
from datetime import date, datetime
from enum import Enum

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from promotion_gate.checklists import policy_embedded
from promotion_gate.checklists.bounds import Bound, Share, Tolerance, finite_numbers
from promotion_gate.checklists.defaults import empty_list
from promotion_gate.checklists.manifest import Audience, Manifest, Permission
from promotion_gate.checklists.policy_governance import Budget, Price, RecertificationPolicy
from promotion_gate.checklists.yamldoc import YamlDoc, YamlError, format_loc, parse_yaml


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
    deprecated: dict[str, date] = Field(default_factory=dict, description="model version -> the date it is deprecated from")

    @field_validator("deprecated")
    @classmethod
    def _approved_versions(cls, deprecated: dict[str, date], info) -> dict[str, date]:
        """Re-certification looks a deprecation up by an approved version: any other key (a model's
        name, another provider's version, a typo) deprecates nothing, silently."""
        versions = {v for vs in (info.data.get("models") or {}).values() for v in vs}
        unknown = sorted(set(deprecated) - versions)
        if unknown:
            raise ValueError(f"{', '.join(unknown)}: not one of this provider's approved versions (models: name -> versions)")
        return deprecated


class TierCondition(Strict):
    """All conditions given must hold for the rule to match. Each names only values a manifest can
    hold (an audience of manifest v1, a data class of the policy, a permission), and a list is
    never empty: a condition that can never hold (``customer_facing``, ``PII``, ``[]``) would make
    its rule match nothing, silently, and judge the systems it is for at a lower tier."""

    audience: Audience | None = None
    automated_decisions_about_people: bool | None = None
    data_classes_any: list[str] | None = Field(default=None, min_length=1, description="any of these among the classes the system touches (use_case.data_classes and data_sources' classifications); each one of the policy's data_classes")
    tool_permission_any: list[Permission] | None = Field(default=None, min_length=1)

    def matches(self, m: Manifest) -> bool:
        uc = m.use_case
        checks = [
            self.audience is None or uc.audience == self.audience,
            self.automated_decisions_about_people is None
            or uc.automated_decisions_about_people == self.automated_decisions_about_people,
            self.data_classes_any is None or bool(set(m.touched_data_classes()) & set(self.data_classes_any)),
            self.tool_permission_any is None
            or any(t.permission in self.tool_permission_any for t in uc.tools),
        ]
        return all(checks)


class TierRule(Strict):
    tier: Tier
    reason: str
    when: TierCondition
    eu_ai_act: str | None = Field(default=None, description="the EU AI Act risk class this rule puts a system in")


class SignoffPolicy(Strict):
    quorum: dict[str, Annotated[int, Field(strict=True)]] = Field(default_factory=dict, description="role -> approvals needed")
    time_limit_hours: float = Field(default=72, gt=0, strict=True)
    reminder_at: float = Field(default=0.5, gt=0, lt=1, strict=True, description="share of the limit before a reminder")
    accept_asserted_signoffs: bool = Field(
        default=True, description="count console sign-offs (an identity asserted, not authenticated); the GitHub path never does")


NEVER_WAIVABLE = ("PG-MANIFEST-001", "PG-VENDOR-", "PG-DATA-001")
"""Items (or id prefixes) no policy may make waivable: manifest validity, vendor approval, data classes."""


def never_waivable(item_id: str) -> bool:
    return any(item_id == n or (n.endswith("-") and item_id.startswith(n)) for n in NEVER_WAIVABLE)


class MetricKind(Strict):
    """What the policy knows of a metric: which way is better, and whether it is a rate in [0, 1]."""

    better: Literal["higher", "lower"]
    rate: bool = False

    @property
    def direction(self) -> str:
        return "min" if self.better == "higher" else "max"


class TierPolicy(Strict):
    signoff: SignoffPolicy
    metric_floors: dict[str, Bound] = Field(default_factory=dict, description="metric -> {min: x} or {max: x}")
    min_samples: int = Field(default=0, ge=0, strict=True, description="samples each judged metric needs")
    evidence_max_age_days: int = Field(gt=0, strict=True)
    max_regression: dict[str, Tolerance] = Field(default_factory=dict, description="metric -> largest change for the worse")
    max_sample_shrink: Share = Field(
        default=0.0, description="largest share by which a judged metric's samples may fall below production's (PG-EVAL-005): "
        "an evaluation that drops its hardest cases, or skips its failing tests, is not compared like for like")
    max_skipped_share: Share | None = Field(
        default=None, description="largest share of an evaluation's tests that may be skipped (PG-EVAL-004; formats that "
        "count skipped tests: JUnit): a test skipped for want of credentials, network or quota evaluates nothing; None: not judged")
    max_log_retention_days: int = Field(default=365, ge=0, strict=True)
    inconclusive_reviewers: list[str] = Field(default_factory=empty_list, description="roles that decide an inconclusive item; none: it blocks")
    undated_evidence: Literal["warn", "fail"] = Field(default="fail", description="evidence that does not say when it was produced")
    unnamed_model_evidence: Literal["warn", "fail"] = Field(default="fail", description="evidence that does not name its model")
    unfloored_evidence: Literal["warn", "fail"] = Field(
        default="fail", description="evaluations none of which reports a metric the tier has a floor for (its floors judge nothing)")
    waiver_max_days: int = Field(default=0, ge=0, le=366, strict=True, description="longest waiver a grant may give; 0: no waivers")
    recertify_after_days: int | None = Field(default=None, gt=0, strict=True, description="an approval older than this is due for re-certification")
    recertification_evidence_max_age_days: int | None = Field(default=None, gt=0, strict=True, description="evidence older than this fails re-certification")
    budgets: Budget = Field(default_factory=Budget, description="cost budget per request and per month (USD)")
    cost_regression_tolerance: float | None = Field(default=None, ge=0, allow_inf_nan=False, strict=True, description="largest allowed rise of cost per request vs production, as a share (0.2 = 20%)")

    _finite_regression = field_validator("max_regression", mode="before")(
        classmethod(lambda cls, v: finite_numbers(v, "max_regression")))
    _finite_floors = field_validator("metric_floors", mode="before")(
        classmethod(lambda cls, v: finite_numbers(v, "metric_floors")))


class Item(Strict):
    id: str = Field(pattern=r"^PG-[A-Z]+-\d{3}$")
    title: str = Field(pattern=r"^Ensure ")
    controls: list[str] = Field(min_length=1)
    remedy: str
    tiers: list[Tier]
    warn_only: list[Tier] = Field(default_factory=empty_list, description="tiers where a failure only warns")
    waivable_by: list[str] = Field(default_factory=empty_list, description="roles that may grant a waiver of this item; none: never waivable")
    inconclusive_reviewers: list[str] | None = Field(default=None, description="roles that decide this item when inconclusive (default: the tier's)")


class Reviewer(Strict):
    slack_usergroup: str | None = None
    members: list[str] = Field(default_factory=empty_list, description="identity names from `identities`")
    allow_guests: bool = Field(default=False, description="Slack guests (is_restricted) may sign off for this role")


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
    control_titles: dict[str, str] = Field(default_factory=dict, description="control id -> its title")
    eu_ai_act_default: str | None = Field(default=None, description="EU AI Act risk class when no rule names one")
    metrics: dict[str, MetricKind] = Field(default_factory=dict, description="known metrics: direction, and whether a rate")
    prices: dict[str, Price] = Field(default_factory=dict, description="provider/name@version (or provider/name) -> list price")
    recertification: RecertificationPolicy = Field(default_factory=RecertificationPolicy)
    digest: str = Field(default="", description="SHA-256 of the policy file (set by the loader)")

    @model_validator(mode="after")
    def _consistent(self) -> "Policy":
        missing = [t.value for t in Tier if t not in self.tiers]
        if missing:
            raise ValueError(f"tiers missing: {', '.join(missing)}")
        unreached = [t.value for t in Tier if t != Tier.low and all(r.tier != t for r in self.tier_rules)]
        if unreached:  # no match is low: a tier no rule names is never given, and its requirements judge nobody
            raise ValueError(f"tier_rules: no rule puts a system in the {' or '.join(unreached)} tier "
                             "(every system would be judged lower than the policy's own tiers say)")
        unjudged = [f"tiers.{t.value}" for t in Tier if not self.items_for(t)]
        if unjudged:
            raise ValueError(f"{', '.join(unjudged)}: no item applies (the checklist would judge nothing and pass)")
        untitled = sorted({c for i in self.items for c in i.controls if not self.control_titles.get(c, "").strip()})
        if untitled:
            raise ValueError(f"controls without a title in control_titles: {', '.join(untitled)}")
        ids = [i.id for i in self.items]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"duplicate item ids: {', '.join(dupes)}")
        for tier, tp in self.tiers.items():
            unknown = set(tp.signoff.quorum) - set(self.roles)
            if unknown:
                raise ValueError(f"tier {tier.value}: unknown sign-off roles {sorted(unknown)}")
        problems = _judgment_problems(self)
        if problems:
            raise ValueError("; ".join(problems))
        for name, role in self.roles.items():
            unknown = set(role.members) - set(self.identities)
            if unknown:
                raise ValueError(f"role {name}: members without an identity {sorted(unknown)}")
        unknown_sensitive = [c for c in self.sensitive_data_classes if c not in self.data_classes]
        if unknown_sensitive:
            raise ValueError(f"sensitive_data_classes: not among data_classes: {', '.join(unknown_sensitive)}")
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

    def risk_class(self, manifest: Manifest) -> str | None:
        """The EU AI Act risk class of the most severe matching rule that names one, else the default."""
        named = [r.eu_ai_act for r in self.tier_rules if r.eu_ai_act and r.when.matches(manifest)]
        severity = ("prohibited", "high-risk", "limited", "minimal")
        rank = lambda c: next((i for i, p in enumerate(severity) if c.lower().startswith(p)), len(severity))  # noqa: E731
        return min(named, key=rank) if named else self.eu_ai_act_default

    def titles_of(self, controls) -> dict[str, str]:
        return {c: self.control_titles[c] for c in controls if c in self.control_titles}

    def approved_model(self, provider: str, name: str) -> list[str] | None:
        p = self.providers.get(provider)
        return None if p is None else p.models.get(name)


def _judgment_problems(policy: "Policy") -> list[str]:
    """Floors agree with the metrics' known directions, rates stay in [0, 1], roles exist, waivers are allowed."""
    problems = []
    for i, rule in enumerate(policy.tier_rules):
        strays = [c for c in rule.when.data_classes_any or () if c not in policy.data_classes]
        if strays:
            problems.append(f"tier_rules[{i}].when.data_classes_any: not among the policy's data_classes (the rule could never match them): {', '.join(strays)}")
    for tier, tp in policy.tiers.items():
        for metric, floor in tp.metric_floors.items():
            kind = policy.metrics.get(metric)
            if kind is not None and kind.direction != floor.direction:
                problems.append(f"tiers.{tier.value}.metric_floors.{metric}: {floor.direction} contradicts the metric's direction ({kind.better} is better)")
            if kind is not None and kind.rate and not 0 <= floor.value <= 1:
                problems.append(f"tiers.{tier.value}.metric_floors.{metric}: {floor.value} is a rate outside [0, 1]")
        for metric, tol in tp.max_regression.items():
            kind = policy.metrics.get(metric)
            if kind is None:
                problems.append(f"tiers.{tier.value}.max_regression.{metric}: the policy does not know this metric's direction (add it to metrics)")
            elif kind.rate and tol > 1:
                problems.append(f"tiers.{tier.value}.max_regression.{metric}: {tol} is more than a rate can change")
        unknown = set(tp.inconclusive_reviewers) - set(policy.roles)
        if unknown:
            problems.append(f"tiers.{tier.value}.inconclusive_reviewers: unknown roles {sorted(unknown)}")
    for item in policy.items:
        unknown = (set(item.waivable_by) | set(item.inconclusive_reviewers or ())) - set(policy.roles)
        if unknown:
            problems.append(f"items.{item.id}: unknown roles {sorted(unknown)}")
        if item.waivable_by and never_waivable(item.id):
            problems.append(f"items.{item.id}.waivable_by: {item.id} can never be waived")
    return problems


class PolicyError(Exception):
    pass


def parse_policy(text: bytes, source: str) -> Policy:
    digest = hashlib.sha256(text).hexdigest()
    if digest == policy_embedded.SHA256:
        try:
            return Policy.model_validate(dict(policy_embedded.data(), digest=digest))
        except ValidationError:
            pass  # the parse below names the lines
    return parse_policy_yaml(text, source)


def parse_policy_yaml(text: bytes, source: str) -> Policy:
    """The policy from its YAML, always parsed (never the embedded policy's parsed data)."""
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
        raise PolicyError(_problems(exc, doc, source)) from None


def _problems(exc: ValidationError, doc: YamlDoc, source: str) -> str:
    return "; ".join(
        f"{source}:{doc.line_of(tuple(e['loc']))}: {format_loc(tuple(e['loc']))}: "
        + ("unknown key" if e["type"] == "extra_forbidden" else e["msg"] + (f" (got {e['input']!r})" if e["type"] == "enum" else ""))
        for e in exc.errors()
    )


_LITERAL_TYPES = (dict, list, str, int, float, bool, type(None), date, datetime)


def render_embedded_policy(text: bytes) -> str:
    """The source of ``policy_embedded.py`` for the embedded policy's bytes: their SHA-256 and the
    data PyYAML composes from them, as a Python literal (``repr`` keeps 1, 1.0 and True apart)."""
    doc = parse_yaml(text, "checklists/policy/policy.yaml")
    stack: list[Any] = [doc.data]
    uses_dates = False
    while stack:
        item = stack.pop()
        if not isinstance(item, _LITERAL_TYPES) or (isinstance(item, float) and not math.isfinite(item)):
            raise ValueError(f"the embedded policy holds {item!r}, which has no Python literal here")
        uses_dates |= isinstance(item, (date, datetime))
        stack.extend(item.values() if isinstance(item, dict) else item if isinstance(item, list) else ())
    body = pprint.pformat(doc.data, width=110, sort_dicts=False).replace("\n", "\n" + " " * 11)
    return (
        '"""The embedded policy (checklists/policy/policy.yaml) as the data PyYAML composes from it.\n\n'
        "Generated: do not edit. After changing policy.yaml, run\n"
        "``.venv/bin/python -m promotion_gate.config.policy_source --write-embedded``;\n"
        'tests/test_policy_embedded.py fails until this file matches the YAML.\n"""\n\n'
        + ("import datetime\n" if uses_dates else "")
        + "from typing import Any\n\n"
        + f'SHA256 = "{hashlib.sha256(text).hexdigest()}"\n\n\n'
        + "def data() -> dict[str, Any]:\n"
        + '    """A fresh copy on every call (nothing shared between two parses)."""\n'
        + f"    return {body}\n"
    )
