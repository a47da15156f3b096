"""What a policy change's impact says: the terminal text, and the pull-request check on a PR that
changes the policy (commit status ``promotion-gate/policy-impact`` with a token, a check run of
the same name with an App). Pure builders over a :class:`PolicyDiff`; they format, never decide:
which systems fail the check is :func:`checklists.policy_diff.out_of_policy_impacts`.
"""

from __future__ import annotations

from promotion_gate.checklists.findings import RecertStatus
from promotion_gate.checklists.policy_diff import PolicyDiff, SystemImpact, out_of_policy_impacts
from promotion_gate.notifications.checks_bodies import SUMMARY_LIMIT, TITLE_LIMIT, CheckRunBody
from promotion_gate.notifications.github_bodies import CommitStatus, fit
from promotion_gate.notifications.user_text import md_text

POLICY_IMPACT = "promotion-gate/policy-impact"
POLICY_IMPACT_CHECK = POLICY_IMPACT  # not "promotion-gate / <x>": that names a system's check (checks_bodies.system_of)
MAX_LISTED = 50


def render_diff_text(diff: PolicyDiff) -> str:
    """Plain text for the terminal (formats only)."""
    lines = [f"policy {diff.old_version} -> {diff.new_version}: {diff.systems} production systems checked on {diff.on.isoformat()}"]
    worse = diff.worsened
    if not worse:
        lines.append("no production system gains a finding under the new policy")
    for i in worse:
        lines.append(f"- {i.repository} {i.system}: {i.before.value} -> {i.after.value}")
        lines += [f"    {f.id}: {f.reason}" for f in i.new_findings]
        lines += [f"    {f.id} now blocks the next promotion: {f.reason}" for f in i.newly_blocking]
    for i in diff.impacts:
        if i.resolved_findings:
            lines.append(f"- {i.repository} {i.system}: resolves " + "; ".join(f"{f.id}: {f.reason}" for f in i.resolved_findings))
        if i.no_longer_blocking:
            lines.append(f"- {i.repository} {i.system}: " + "; ".join(f"{f.id} no longer blocks the next promotion: {f.reason}"
                                                                      for f in i.no_longer_blocking))
    return "\n".join(lines)


def _headline(diff: PolicyDiff) -> tuple[str, str]:
    """(state, one line) of the check: failure when any system would gain an out-of-policy finding."""
    out = out_of_policy_impacts(diff)
    if out:
        names = ", ".join(i.system for i in out)
        return "failure", f"{len(out)} of {diff.systems} production systems would be out of policy: {names}"
    due = [i for i in diff.worsened if i.after == RecertStatus.due]
    tail = f"; {len(due)} would be due for re-certification" if due else ""
    return "success", f"no production system goes out of policy ({diff.systems} checked){tail}"


def build_policy_impact_status(diff: PolicyDiff, target_url: str | None = None) -> CommitStatus:
    state, line = _headline(diff)
    return CommitStatus(state, POLICY_IMPACT, fit(line), target_url)


def _impact_lines(i: SystemImpact) -> list[str]:
    head = f"- **{md_text(i.system)}** in {md_text(i.repository)}: {i.before.value} → {i.after.value}"
    return ([head] + [f"  - {f.id} ({f.status.value}): {md_text(f.reason)}" for f in i.new_findings]
            + [f"  - {f.id} ({f.status.value}) now blocks the next promotion: {md_text(f.reason)}" for f in i.newly_blocking])


def render_policy_impact_summary(diff: PolicyDiff, policy_path: str, production: str) -> str:
    """The check run's summary: which systems go out of policy and why; what the change resolves."""
    _, line = _headline(diff)
    lines = [md_text(line), "",
             f"Policy `{md_text(policy_path)}` {md_text(diff.old_version)} (`{diff.old_digest[:12]}`) → "
             f"{md_text(diff.new_version)} (`{diff.new_digest[:12]}`), judged against the lock files on "
             f"{md_text(production)} on {diff.on.isoformat()}."]
    worse = diff.worsened
    if worse:
        lines += ["", "### Systems that gain findings", ""]
        for i in worse[:MAX_LISTED]:
            lines += _impact_lines(i)
        if len(worse) > MAX_LISTED:
            lines.append(f"- … and {len(worse) - MAX_LISTED} more (run `promotion-gate policy diff` for all)")
    resolved = [i for i in diff.impacts if i.resolved_findings or i.no_longer_blocking]
    if resolved:
        lines += ["", "### Findings the change resolves or stops blocking", ""]
        lines += [f"- **{md_text(i.system)}**: " + "; ".join([f"{f.id}: {md_text(f.reason)}" for f in i.resolved_findings]
                                                             + [f"{f.id} no longer blocks the next promotion: {md_text(f.reason)}"
                                                                for f in i.no_longer_blocking])
                  for i in resolved[:MAX_LISTED]]
    text = "\n".join(lines)
    return text if len(text) <= SUMMARY_LIMIT else text[: SUMMARY_LIMIT - 2] + " …"


def build_policy_impact_check(diff: PolicyDiff, head_sha: str, policy_path: str, production: str,
                              details_url: str | None = None) -> CheckRunBody:
    """The check run, idempotent by name and external id (the head commit and both policy digests)."""
    state, line = _headline(diff)
    external = f"policy-impact@{head_sha}:{diff.old_digest[:12]}..{diff.new_digest[:12]}"
    return CheckRunBody(POLICY_IMPACT_CHECK, external, "completed", fit(line, TITLE_LIMIT),
                        render_policy_impact_summary(diff, policy_path, production), state, details_url)


def build_policy_impact_refusal(reason: str, head_sha: str, policy_path: str, target_url: str | None = None,
                                checks: bool = False) -> CommitStatus | CheckRunBody:
    """The check when the impact cannot be judged (the new policy does not load, production cannot be
    read): failure with the reason, never a silent success."""
    line = f"policy impact not judged: {reason}"
    if not checks:
        return CommitStatus("failure", POLICY_IMPACT, fit(line), target_url)
    summary = md_text(line) + f"\n\nPolicy file `{md_text(policy_path)}`. Fix the cause and push again, or re-run the check."
    return CheckRunBody(POLICY_IMPACT_CHECK, f"policy-impact@{head_sha}:refused", "completed", fit(line, TITLE_LIMIT),
                        summary, "failure", target_url)
