"""What the gate says on GitHub: commit statuses, the block comment, the promotion PR. Pure.

Every builder takes the decision (or the few plain values it needs) and returns text or a small
value; the shell sends them. A status description is one line of at most 140 characters
(GitHub refuses longer); comments and PR bodies stay under GitHub's 65,536 characters. Text a
team wrote is escaped, so a reason or a remedy cannot inject links, HTML or table cells.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from promotion_gate.checklists.checklist import Checklist
from promotion_gate.checklists.decision import Decision, PromotionRequest, Verdict
from promotion_gate.notifications.report import md_escape

STATUS_LIMIT = 140
BODY_LIMIT = 65_536
NO_SYSTEM_MARKER = "<!-- promotion-gate:no-system -->"
_SPACE = re.compile(r"\s+")


@dataclass(frozen=True)
class CommitStatus:
    state: str  # pending, success, failure, error
    context: str
    description: str
    target_url: str | None = None


def status_context(system: str) -> str:
    return f"promotion-gate/{system}"


def comment_marker(system: str) -> str:
    """The hidden first line that finds the gate's comment about `system` again."""
    return f"<!-- promotion-gate:{system} -->"


def fit(text: str, limit: int = STATUS_LIMIT) -> str:
    """One line of at most `limit` characters, cut with an ellipsis."""
    line = _SPACE.sub(" ", text).strip()
    return line if len(line) <= limit else line[: limit - 1].rstrip() + "…"


def build_pending_status(system: str, target_url: str | None) -> CommitStatus:
    return CommitStatus("pending", status_context(system), fit(f"evaluating {system}: checklist and evidence at this commit"), target_url)


def build_signoff_status(checklist: Checklist, target_url: str | None) -> CommitStatus:
    needs = ", ".join(f"{n} {role}" for role, n in checklist.signoff.quorum.items())
    text = f"waiting for sign-off ({needs}); tier {checklist.tier.value}"
    return CommitStatus("pending", status_context(checklist.system), fit(text), target_url)


def build_decision_status(decision: Decision, target_url: str | None) -> CommitStatus:
    """The final status: success only for a promotion; the first reason otherwise."""
    context = status_context(decision.request.system)
    if decision.verdict == Verdict.promoted:
        return CommitStatus("success", context, fit(f"promoted: promotion PR opened (decision {decision.decision_id})"), target_url)
    failures = decision.checklist.failures if decision.checklist else []
    if decision.verdict == Verdict.blocked and failures:
        ids = ", ".join(r.id for r in failures)
        text = f"blocked: {len(failures)} item{'s' if len(failures) != 1 else ''} failed: {ids}"
        return CommitStatus("failure", context, fit(text), target_url)
    unusable = decision.verdict == Verdict.error and any(r.outcome.value == "error" for r in failures)
    state = "error" if decision.verdict in (Verdict.error, Verdict.withdrawn) and not unusable else "failure"  # the change's input: a failure
    first = decision.reasons[0] if decision.reasons else "no reason recorded"
    return CommitStatus(state, context, fit(f"{decision.verdict.value}: {first}"), target_url)


def build_voided_status(system: str, reason: str, target_url: str | None = None) -> CommitStatus:
    """A run that will not decide any more: "superseded by <sha7>", "promotion withdrawn"."""
    return CommitStatus("error", status_context(system), fit(reason), target_url)


def build_ledger_line(ledger: tuple[int, str]) -> str:
    """The ledger head after this decision, as the PR body and the block comment carry it."""
    seq, head = ledger
    return f"Ledger head: entry {seq}, sha256 `{head}` (checkpoint on `refs/promotion-gate/ledger`)"


def build_block_comment(decision: Decision, label: str, run_url: str | None = None,
                        ledger: tuple[int, str] | None = None) -> str:
    """The one comment of a blocked promotion: each failed item, its reason and its fix; ``ledger``:
    (seq, head) once the decision is recorded."""
    request, cl = decision.request, decision.checklist
    lines = [comment_marker(request.system),
             f"### promotion-gate: `{request.system}` is {decision.verdict.value} at {request.short_sha}", ""]
    failures = cl.failures if cl else []
    if failures:
        lines += [f"{len(failures)} checklist item{'s' if len(failures) != 1 else ''} failed. Fix "
                  f"{'them' if len(failures) != 1 else 'it'}, push, and add the label `{md_escape(label)}` again.", "",
                  "| Item | Why it failed | How to fix it |", "|---|---|---|"]
        lines += [f"| **{r.id}** {md_escape(r.title)} | {md_escape(r.reason)} | {md_escape(r.remedy or 'see the policy')} |"
                  for r in failures]
    else:
        lines += [f"- {md_escape(reason)}" for reason in decision.reasons]
        lines += ["", f"Nothing was promoted. Add the label `{md_escape(label)}` again to ask once more."]
    facts = [f"decision `{decision.decision_id}`"]
    if cl:
        facts += [f"tier {cl.tier.value}", f"policy {md_escape(cl.policy_version)}"]
    if run_url:
        facts.append(f"[the run]({run_url})")
    lines += ["", " · ".join(facts)]
    if ledger:
        lines += ["", build_ledger_line(ledger)]
    return _cap("\n".join(lines) + "\n")


def build_no_system_comment(label: str) -> str:
    return (f"{NO_SYSTEM_MARKER}\n### promotion-gate: nothing to promote\n\n"
            f"This pull request carries `{md_escape(label)}` but changes no file under `ai-systems/<name>/`, "
            "so there is no AI system to evaluate. Add the label to a pull request that changes a "
            "system's `promotion.yaml` or its evidence.\n")


def build_pull_title(request: PromotionRequest) -> str:
    return f"Promote {request.system} at {request.short_sha}"


def build_pull_body(report: str, decision: Decision, ledger: tuple[int, str] | None = None) -> str:
    """The report; cut (and said so) if it is longer than GitHub takes; ``ledger``: (seq, head) once recorded."""
    head = f"{build_ledger_line(ledger)}\n\n" if ledger else ""
    note = (f"\n\n---\nThe report is longer than a pull request body may be; the full text is "
            f"`audit/{decision.request.system}/{decision.decision_id}.md` on this branch.\n")
    room = BODY_LIMIT - len(head)
    return head + (report if len(report) <= room else report[: room - len(note)] + note)


def build_commit_message(decision: Decision) -> str:
    request = decision.request
    return (f"Promote {request.system} at {request.short_sha}\n\n"
            f"Decision {decision.decision_id} by promotion-gate, requested by {request.requester}.\n")


def build_reviewers(owner: str | None, repository: str) -> tuple[list[str], list[str]]:
    """(users, teams) to ask for review: "@login" is a user, "@org/team" a team of the repository's org."""
    if not owner or not owner.startswith("@"):
        return [], []
    org, slash, team = owner[1:].partition("/")
    if not slash:
        return ([org], []) if re.fullmatch(r"[A-Za-z0-9-]{1,39}", org) else ([], [])
    if org.lower() == repository.split("/")[0].lower() and re.fullmatch(r"[A-Za-z0-9_.-]{1,100}", team):
        return [], [team]
    return [], []


def _cap(text: str) -> str:
    return text if len(text) <= BODY_LIMIT else text[: BODY_LIMIT - 20] + "\n…(cut)\n"
