"""A policy change's impact before it merges: which production systems it puts out of policy.

Each production system is re-certified under the old and the new policy on the same day; a
system is affected when the new policy gives it a finding the old one did not (compared by id
and reason), or makes a finding both give block its next promotion, and the report says which,
with the reason. Findings that the change resolves or stops blocking are listed too, so a
loosening is as visible as a tightening.
"""

from __future__ import annotations

from datetime import date

from pydantic import BaseModel, ConfigDict, Field

from promotion_gate.checklists.defaults import empty_list
from promotion_gate.checklists.findings import Finding, RecertStatus
from promotion_gate.checklists.policy import Policy
from promotion_gate.checklists.recertify import ProductionSystem, recertify


class Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SystemImpact(Frozen):
    repository: str
    system: str
    before: RecertStatus
    after: RecertStatus
    new_findings: list[Finding] = Field(default_factory=empty_list)
    resolved_findings: list[Finding] = Field(default_factory=empty_list)
    newly_blocking: list[Finding] = Field(default_factory=empty_list, description="a finding both policies give that "
                                          "only the new one makes block the next promotion (a worsening)")
    no_longer_blocking: list[Finding] = Field(default_factory=empty_list, description="a finding both policies give that "
                                              "only the old one made block the next promotion")


class PolicyDiff(Frozen):
    old_version: str
    new_version: str
    old_digest: str
    new_digest: str
    on: date
    systems: int
    impacts: list[SystemImpact]

    @property
    def newly_out_of_policy(self) -> list[SystemImpact]:
        return [i for i in self.impacts if i.after == RecertStatus.out_of_policy and i.before != RecertStatus.out_of_policy]

    @property
    def worsened(self) -> list[SystemImpact]:
        return [i for i in self.impacts if i.new_findings or i.newly_blocking]


def _key(f: Finding) -> tuple[str, str]:
    return f.id, f.reason


def diff_policies(old: Policy, new: Policy, systems: list[ProductionSystem], today: date) -> PolicyDiff:
    impacts = []
    for s in sorted(systems, key=lambda s: (s.repository, s.system)):
        before, after = recertify(s, old, today), recertify(s, new, today)
        was = {_key(f) for f in before.findings}
        now = {_key(f) for f in after.findings}
        added = [f for f in after.findings if _key(f) not in was]
        resolved = [f for f in before.findings if _key(f) not in now]
        blocked_before = {_key(f) for f in before.findings if f.blocking}
        blocking = [f for f in after.findings if f.blocking and _key(f) in was and _key(f) not in blocked_before]
        unblocked = [f for f in after.findings if not f.blocking and _key(f) in blocked_before]
        if added or resolved or blocking or unblocked or before.status != after.status:
            impacts.append(SystemImpact(repository=s.repository, system=s.system, before=before.status, after=after.status,
                                        new_findings=added, resolved_findings=resolved,
                                        newly_blocking=blocking, no_longer_blocking=unblocked))
    return PolicyDiff(old_version=old.version, new_version=new.version, old_digest=old.digest, new_digest=new.digest,
                      on=today, systems=len(systems), impacts=impacts)



def out_of_policy_impacts(diff: PolicyDiff) -> list[SystemImpact]:
    """The systems the new policy puts out of policy, or gives one more out-of-policy finding:
    what fails the policy-impact check on a pull request."""
    return [i for i in diff.impacts if i.after == RecertStatus.out_of_policy
            and any(f.status == RecertStatus.out_of_policy for f in i.new_findings)]
