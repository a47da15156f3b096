"""Manifest v1: what a team declares in ``ai-systems/<name>/promotion.yaml``.

Unknown keys are errors. :func:`parse_manifest` turns every problem into a
:class:`ManifestError` that names the file, the line and the field.
"""

from datetime import date
from enum import Enum
from pathlib import PurePosixPath
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic import Strict as StrictValue

from promotion_gate.checklists.defaults import empty_list
from promotion_gate.checklists.evidence_formats import format_json_schema
from promotion_gate.checklists.bounds import Threshold, Tolerance, finite_numbers
from promotion_gate.checklists.yamldoc import YamlError, format_loc, parse_yaml

NAME_RE = r"^[a-z0-9][a-z0-9-]{0,62}$"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


Count = Annotated[int, StrictValue()]


def _not_a_boolean(value, field: str):
    if isinstance(value, bool):  # True == 1: Literal[1] would take it
        raise ValueError(f"{field} must be the number 1, not {value!r}")
    return value
"""A whole number as YAML writes one: ``true``/``yes`` (YAML 1.1 booleans), ``1.0`` and ``"100"`` are refused,
not read as 1, 1 and 100 (``expected_monthly_requests: yes`` would have projected one request a month)."""


class Audience(str, Enum):
    internal = "internal"
    customer_facing = "customer-facing"


class Permission(str, Enum):
    read = "read"
    write = "write"
    admin = "admin"


class Escalation(Strict):
    contact: str = Field(min_length=3, description="an email or pager address")
    slack: str | None = Field(default=None, description="a Slack channel or user, e.g. #support-oncall")


class Tool(Strict):
    name: str = Field(min_length=1)
    permission: Permission
    justification: str | None = Field(default=None, description="why more than read is needed")
    requires_human_approval: bool = False


class UseCase(Strict):
    description: str = Field(min_length=1)
    audience: Audience
    automated_decisions_about_people: bool = False
    data_classes: list[str] = Field(min_length=1, description="data classes the system touches, from the policy")
    tools: list[Tool] = Field(default_factory=empty_list)


class ModelRef(Strict):
    provider: str = Field(min_length=1)
    name: str = Field(min_length=1)
    version: str | None = Field(default=None, description="the pinned model version, e.g. gpt-4o-2024-08-06")

    @property
    def id(self) -> str:
        """`provider/name@version`: how the lock, the reports, Slack and the inventory name a model."""
        return f"{self.provider}/{self.name}@{self.version}"


class FallbackStrategy(str, Enum):
    secondary_model = "secondary-model"
    static_response = "static-response"
    human_handoff = "human-handoff"
    disable_feature = "disable-feature"


def _relative_path(value: str) -> str:
    """The normalised form of an evidence path (PurePosixPath's): ``./evals//x.json`` and
    ``evals/./x.json/`` are stored as ``evals/x.json``, so the manifest, the evidence records and the
    lock (decision.build_lock) name one file one way and PG-EVAL-005 finds production's baseline.
    Refused: absolute paths, ``..``, ``~``, backslashes, and a path naming the folder itself (``.``)."""
    path = PurePosixPath(value)
    if not value or path.is_absolute() or ".." in path.parts or "\\" in value or value.startswith("~"):
        raise ValueError(f"path {value!r} must stay inside the system's folder (relative, no '..')")
    normal = str(path)
    if normal == ".":
        raise ValueError(f"path {value!r} names the system's folder itself: give the evidence file's path, e.g. evals/results.json")
    return normal


def normal_path(value: str) -> str:
    """An evidence path as the manifest stores it (for paths read from elsewhere, e.g. an older lock)."""
    return str(PurePosixPath(value))


RelPath = Annotated[str, Field(min_length=1)]


class EvidenceRef(Strict):
    format: str = Field(min_length=1, description="evidence format (docs/evidence.md says which tool command writes each)",
                        json_schema_extra=format_json_schema())
    path: RelPath = Field(description="path relative to the system's folder; stored normalised ('./a//b.json' is 'a/b.json'), '.' alone is refused")

    _check_path = field_validator("path")(classmethod(lambda cls, v: _relative_path(v)))


class Fallback(Strict):
    strategy: FallbackStrategy
    model: ModelRef | None = None
    timeout_ms: Count | None = Field(default=None, gt=0, le=600_000)
    drill: EvidenceRef | None = Field(default=None, description="eval evidence run with the primary provider failing")


class Evaluation(EvidenceRef):
    name: str = Field(pattern=NAME_RE)
    thresholds: dict[str, Threshold] = Field(
        default_factory=dict,
        description="metric -> {min: x} or {max: x}; a bare number only for a metric whose direction the policy knows",
    )
    max_regression: dict[str, Tolerance] = Field(
        default_factory=dict, description="metric -> largest allowed change for the worse vs production (>= 0)",
    )

    _finite_thresholds = field_validator("thresholds", mode="before")(
        classmethod(lambda cls, v: finite_numbers(v, "threshold")))
    _finite_regression = field_validator("max_regression", mode="before")(
        classmethod(lambda cls, v: finite_numbers(v, "max_regression")))


class LoggingMode(str, Enum):
    full = "full"
    redacted = "redacted"
    none = "none"


class Logging(Strict):
    prompts: LoggingMode
    responses: LoggingMode
    redaction: list[str] = Field(default_factory=empty_list, description="data classes redacted before logging")
    retention_days: Count = Field(ge=0, le=3650)


class DataSource(Strict):
    name: str = Field(min_length=1)
    classification: str = Field(min_length=1)
    description: str | None = None


class HumanReview(Strict):
    mode: Literal["none", "sampled", "before-action", "every-output"]
    description: str | None = None


class Waiver(Strict):
    """A waiver REQUEST: it counts only once a policy identity allowed to waive the item grants it."""

    item: str = Field(pattern=r"^PG-[A-Z]+-\d{3}$")
    approver: str | None = Field(default=None, min_length=1, description="whom the team asks; grants nothing by itself")
    reason: str = Field(min_length=10)
    expires: date = Field(description="the expiry asked for; the grant may not exceed the policy's limit")


class Manifest(Strict):
    """A team's declaration of one AI system (schema v1)."""

    schema_version: Literal[1]
    name: str = Field(pattern=NAME_RE)
    owner: str = Field(min_length=1, description="a GitHub team (@org/team) or user (@login), or an email")
    escalation: Escalation | None = None
    use_case: UseCase
    model: ModelRef
    fallback: Fallback | None = None
    evaluations: list[Evaluation] = Field(default_factory=empty_list)
    logging: Logging | None = None
    data_sources: list[DataSource] = Field(default_factory=empty_list)
    user_impact: str | None = None
    human_review: HumanReview | None = None
    waivers: list[Waiver] = Field(default_factory=empty_list)
    expected_monthly_requests: Count | None = Field(default=None, ge=0, le=10**12, description="requests a month the system is expected to serve (projects the monthly cost); 0 fails PG-COST-001: a system asking for production serves at least one")

    _schema_version_is_a_number = field_validator("schema_version", mode="before")(
        classmethod(lambda cls, v: _not_a_boolean(v, "schema_version")))

    def touched_data_classes(self) -> list[str]:
        """Every data class the system touches: ``use_case.data_classes`` and each data source's
        classification (in that order, once each). The tier and the data items judge these, so a
        source's class counts whether or not the team also listed it (PG-DATA-002 asks them to)."""
        return list(dict.fromkeys([*self.use_case.data_classes, *(s.classification for s in self.data_sources)]))

    def evidence_refs(self) -> list[EvidenceRef]:
        refs: list[EvidenceRef] = list(self.evaluations)
        if self.fallback and self.fallback.drill:
            refs.append(self.fallback.drill)
        return refs


MAX_LISTED_PROBLEMS = 50
"""Problems a ManifestError lists one by one; the rest are counted. A 1 MiB manifest of unknown keys
would otherwise be some 90,000 lines (12 MB from `check`, and as much in the decision and its report)."""


class ManifestError(Exception):
    """The manifest cannot be used. ``problems`` are "file:line: field: reason" strings."""

    def __init__(self, source: str, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.source = source
        self.problems = problems


def parse_manifest(text: str | bytes, source: str) -> Manifest:
    try:
        doc = parse_yaml(text, source)
    except YamlError as exc:
        raise ManifestError(source, [str(exc)]) from None
    if not isinstance(doc.data, dict):
        raise ManifestError(source, [f"{source}:1: the manifest must be a mapping"])
    try:
        return Manifest.model_validate(doc.data)
    except ValidationError as exc:
        problems = []
        errors = exc.errors()
        for err in errors[:MAX_LISTED_PROBLEMS]:
            loc = tuple(err["loc"])
            line = doc.line_of(loc)
            msg = "unknown key (not in manifest v1)" if err["type"] == "extra_forbidden" else err["msg"]
            problems.append(f"{source}:{line}: {format_loc(loc)}: {msg}")
        if len(errors) > MAX_LISTED_PROBLEMS:
            problems.append(f"{source}: and {len(errors) - MAX_LISTED_PROBLEMS} more problems (fix these first)")
        raise ManifestError(source, problems) from None


def manifest_json_schema() -> dict:
    schema = Manifest.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://promotion-gate.dev/schemas/manifest-v1.json"
    schema["title"] = "promotion-gate manifest v1 (ai-systems/<name>/promotion.yaml)"
    return schema


