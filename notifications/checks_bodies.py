"""What the gate says through GitHub's Checks API (App authentication). Pure.

Three kinds of check run, all on the candidate commit:

- ``promotion-gate / <name>``: one per system; its summary is the report (Markdown, cut at
  GitHub's 65,535 characters with a link to the whole one), its annotations point at the
  manifest lines behind each failed or warned item (``ai-systems/<name>/promotion.yaml``);
- ``promotion-gate``: the aggregate, with a fixed name so branch protection can require it;
  success only when every system the change touches was promoted, failure as soon as one is
  blocked, expired or in error, in progress while one is still evaluated or waits for sign-off
  (not ``neutral``: GitHub counts a neutral required check as passing), ``action_required``
  when none failed but one was withdrawn or voided (ask again);
- ``promotion-gate / lock-guard``: the lock-file guard on pull requests into the production
  branch (flows/lock_guard_flow.py).

Text that came from a manifest, evidence, a reviewer or another check run is inert everywhere
(notifications/user_text.py): ``md_text`` in the Markdown summary, ``plain_text`` in titles and
annotations, which GitHub shows as plain text. The report in the summary is escaped by its renderer.

Each run carries an ``external_id`` (the promotion's key, with the re-run's attempt), so a retried
or resumed step edits the run of its own attempt instead of opening a second one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from promotion_gate.checklists.checklist import Checklist
from promotion_gate.checklists.decision import Decision, PromotionRequest, Verdict
from promotion_gate.checklists.results import CheckResult, Outcome
from promotion_gate.checklists.yamldoc import YamlError, parse_yaml
from promotion_gate.notifications.github_bodies import fit
from promotion_gate.notifications.user_text import md_text, plain_text

AGGREGATE = "promotion-gate"
LOCK_GUARD = "promotion-gate / lock-guard"
PREFIX = "promotion-gate / "
SUMMARY_LIMIT = 65_535
TITLE_LIMIT = 255
ANNOTATIONS_PER_REQUEST = 50
MESSAGE_LIMIT = 4_000
FAILED = frozenset({"failure", "timed_out"})
_LINE = re.compile(r"^[^:\s]+:(\d+): ")
_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")  # a system's name (checklists/manifest.NAME_RE)

# The manifest field each item judges: the annotation sits on that key's line.
ITEM_FIELDS: dict[str, tuple] = {
    "PG-OWNER-001": ("owner",), "PG-VENDOR-001": ("model",), "PG-VENDOR-002": ("model", "version"),
    "PG-DATA-001": ("use_case", "data_classes"), "PG-DATA-002": ("data_sources",), "PG-LOG-001": ("logging",),
    "PG-TOOLS-001": ("use_case", "tools"), "PG-FALLBACK-001": ("fallback",), "PG-FALLBACK-002": ("fallback", "model"),
    "PG-FALLBACK-003": ("fallback", "drill"), "PG-IMPACT-001": ("user_impact",), "PG-REVIEW-001": ("human_review",),
}


@dataclass(frozen=True)
class CheckRunBody:
    name: str
    external_id: str
    status: str  # queued, in_progress, completed
    title: str
    summary: str
    conclusion: str | None = None  # with status completed: success, failure, cancelled, action_required
    details_url: str | None = None
    annotations: tuple[dict, ...] = field(default=())

    def outputs(self) -> list[dict]:
        """The output of the create/update request, then one more per further 50 annotations."""
        batches = [list(self.annotations[i:i + ANNOTATIONS_PER_REQUEST])
                   for i in range(0, len(self.annotations), ANNOTATIONS_PER_REQUEST)] or [[]]
        return [{"title": self.title, "summary": self.summary, **({"annotations": b} if b else {})} for b in batches]


def system_check_name(system: str) -> str:
    return f"{PREFIX}{system}"


def system_of(check_name: str) -> str | None:
    """The system a per-system check run is about; None for the aggregate, the guard, or another check."""
    if not check_name.startswith(PREFIX) or check_name == LOCK_GUARD:
        return None
    return check_name[len(PREFIX):] or None


def aggregate_key(request: PromotionRequest) -> str:
    """The aggregate's external id: the change (PR and commit) and the attempt, not the system."""
    pr = f"#{request.pull_request}" if request.pull_request else ""
    again = f"~{request.attempt}" if request.attempt else ""
    return f"{request.repository}{pr}@{request.commit}{again}"


def build_pending_check(request: PromotionRequest, details_url: str | None) -> CheckRunBody:
    system = request.system
    return CheckRunBody(system_check_name(system), request.key, "in_progress", fit(f"evaluating {system}", TITLE_LIMIT),
                        f"The gate is reading the manifest and the evidence of `{system}` at this commit.", None, details_url)


def build_waiting_check(request: PromotionRequest, checklist: Checklist, details_url: str | None) -> CheckRunBody:
    needs = ", ".join(f"{n} {role}" for role, n in checklist.signoff.quorum.items())
    title = fit(plain_text(f"waiting for sign-off ({needs}); tier {checklist.tier.value}"), TITLE_LIMIT)
    review = ", ".join(f"{r.id} ({r.outcome.value})" for r in checklist.needs_review)
    waivers = ", ".join(w.item for w in checklist.waiver_requests)
    summary = (f"No automated item of {_name(checklist.system)} blocks on its own" + (f"; for review: {md_text(review)}" if review else "")
               + (f"; failed unless a waiver is granted: {md_text(waivers)}" if waivers else "")
               + f". The gate now waits for {md_text(needs) or 'the waiver grants'}.")
    return CheckRunBody(system_check_name(checklist.system), request.key, "in_progress", title, summary, None, details_url)


def build_voided_check(request: PromotionRequest, reason: str, details_url: str | None) -> CheckRunBody:
    return CheckRunBody(system_check_name(request.system), request.key, "completed", fit(plain_text(reason), TITLE_LIMIT),
                        f"This evaluation was voided: {md_text(reason)}.", "cancelled", details_url)


def build_decision_check(decision: Decision, report: str, manifest_text: bytes | None, details_url: str | None,
                         report_url: str | None = None) -> CheckRunBody:
    """The final per-system check run: success only for a promotion; the report as its summary."""
    request = decision.request
    conclusion = {Verdict.promoted: "success", Verdict.withdrawn: "cancelled"}.get(decision.verdict, "failure")
    first = decision.reasons[0] if decision.reasons else decision.verdict.value
    title = fit(plain_text(f"{decision.verdict.value}: {first}"), TITLE_LIMIT)
    annotations = tuple(build_annotations(decision, manifest_text))
    return CheckRunBody(system_check_name(request.system), request.key, "completed", title,
                        fit_summary(report, report_url or details_url), conclusion, details_url, annotations)


def fit_summary(text: str, link: str | None) -> str:
    """``text`` within GitHub's 65,535 characters; a cut one ends by pointing at the whole report."""
    if len(text) <= SUMMARY_LIMIT:
        return text
    tail = f"\n\n… the report is longer than GitHub shows here; read it whole at {link}" if link else \
        "\n\n… the report is longer than GitHub shows here; the whole report is in the audit store"
    return text[: SUMMARY_LIMIT - len(tail)] + tail


def build_annotations(decision: Decision, manifest_text: bytes | None) -> list[dict]:
    """One annotation per failed (failure) or warned/inconclusive (warning) item, on its manifest line."""
    checklist = decision.checklist
    if checklist is None:
        return []
    path = f"ai-systems/{decision.request.system}/promotion.yaml"
    lines = _manifest_lines(manifest_text, path)
    out = []
    for result in checklist.results:
        level = "failure" if result.outcome.blocks else "warning" if result.outcome in (Outcome.warn, Outcome.inconclusive) else None
        if level is None:
            continue
        line = _line_for(result, lines, checklist)
        message = plain_text(result.reason + (f"\nHow to fix: {result.remedy}" if result.remedy else ""), lines=True)
        out.append({"path": path, "start_line": line, "end_line": line, "annotation_level": level,
                    "title": fit(plain_text(f"{result.id}: {result.title}"), TITLE_LIMIT), "message": message[:MESSAGE_LIMIT]})
    return out


def _manifest_lines(manifest_text: bytes | None, source: str):
    if manifest_text is None:
        return None
    try:
        return parse_yaml(manifest_text, source)
    except YamlError:
        return None


def _line_for(result: CheckResult, doc, checklist: Checklist) -> int:
    match = _LINE.match(result.reason)  # PG-MANIFEST-001 names "file:line: field: reason"
    if match:
        return max(int(match.group(1)), 1)
    if doc is None:
        return 1
    loc = ITEM_FIELDS.get(result.id)
    if loc is None and result.id.startswith("PG-EVAL-"):
        loc = _evaluation_loc(result, doc)
    return (doc.line_of(loc) if loc else doc.lines.get(())) or 1


def _evaluation_loc(result: CheckResult, doc) -> tuple:
    evaluations = doc.data.get("evaluations") if isinstance(doc.data, dict) else None
    if isinstance(evaluations, list):
        for i, ev in enumerate(evaluations):
            name = ev.get("name") if isinstance(ev, dict) else None
            if isinstance(name, str) and name and result.reason.startswith(f"{name}:"):
                return ("evaluations", i)
    return ("evaluations",)


@dataclass(frozen=True)
class SeenRun:
    """A check run as read back from GitHub: enough to fold into the aggregate."""

    name: str
    status: str
    conclusion: str | None


def build_aggregate_check(key: str, runs: list[SeenRun], details_url: str | None) -> CheckRunBody | None:
    """The required ``promotion-gate`` check from the latest run of every system on the commit."""
    systems: dict[str, SeenRun] = {}
    for run in runs:
        name = system_of(run.name)
        if name:
            systems[name] = run
    if not systems:
        return None
    failed = sorted(s for s, r in systems.items() if r.status == "completed" and r.conclusion in FAILED)
    open_ = sorted(s for s, r in systems.items() if r.status != "completed")
    promoted = sorted(s for s, r in systems.items() if r.status == "completed" and r.conclusion == "success")
    other = sorted(set(systems) - set(failed) - set(open_) - set(promoted))
    lines = [f"- {_name(s)}: {md_text(_state(systems[s]))}" for s in sorted(systems)]
    summary = "\n".join([f"{len(promoted)} of {len(systems)} system(s) promoted.", "", *lines])
    if failed:
        return CheckRunBody(AGGREGATE, key, "completed", fit(plain_text(f"blocked: {', '.join(failed)}"), TITLE_LIMIT), summary, "failure", details_url)
    if open_:
        return CheckRunBody(AGGREGATE, key, "in_progress", fit(plain_text(f"waiting for: {', '.join(open_)}"), TITLE_LIMIT), summary, None, details_url)
    if other:
        return CheckRunBody(AGGREGATE, key, "completed", fit(plain_text(f"not promoted: {', '.join(other)} (ask again)"), TITLE_LIMIT),
                            summary, "action_required" if details_url else "failure", details_url)  # GitHub wants a link
    return CheckRunBody(AGGREGATE, key, "completed", fit(plain_text(f"promoted: {', '.join(promoted)}"), TITLE_LIMIT), summary, "success", details_url)


def _name(system: str) -> str:
    """A system's name as code; a name no manifest could have (another App's check run) as inert text."""
    return f"`{system}`" if _NAME.match(system) else md_text(system)


def _state(run: SeenRun) -> str:
    if run.status != "completed":
        return "in progress"
    return {"success": "promoted", "failure": "blocked", "timed_out": "timed out", "cancelled": "voided or withdrawn"}.get(
        run.conclusion or "", run.conclusion or "unknown")


def latest_by_name(runs: list[tuple[int, SeenRun]]) -> list[SeenRun]:
    """The newest run (highest id) of each name: what GitHub and branch protection show."""
    newest: dict[str, tuple[int, SeenRun]] = {}
    for run_id, run in runs:
        if run.name not in newest or run_id > newest[run.name][0]:
            newest[run.name] = (run_id, run)
    return [run for _, run in newest.values()]


def build_lock_guard_check(sha: str, passes: bool, line: str, findings: list, details_url: str | None = None) -> CheckRunBody:
    rows = [f"- {'✅' if f.ok else '❌'} {md_text(f.path)}: {md_text(f.reason)}" for f in findings]
    summary = "\n".join([md_text(line), "", *rows]) if rows else md_text(line)
    annotations = tuple({"path": f.path, "start_line": 1, "end_line": 1, "annotation_level": "failure",
                         "title": "production.lock.json not written by the gate",
                         "message": plain_text(f.reason, lines=True)[:MESSAGE_LIMIT]}
                        for f in findings if not f.ok and not f.deleted)
    return CheckRunBody(LOCK_GUARD, f"lock-guard@{sha}", "completed", fit(plain_text(line), TITLE_LIMIT), fit_summary(summary, details_url),
                        "success" if passes else "failure", details_url, annotations)


def build_change_aggregate(key: str, systems: list[str], guard_passes: bool) -> CheckRunBody:
    """``promotion-gate`` on a PR into production that the gate did not evaluate: a change to no AI
    system (its lock files, if any, verified) passes; a change to a system waits for the label."""
    if not systems:
        title = "no AI system changed" + ("; lock files verified" if guard_passes else "; a lock file failed the guard")
        return CheckRunBody(AGGREGATE, key, "completed", title, "Nothing here needs a promotion decision. "
                            "See `promotion-gate / lock-guard` for the lock files.", "success" if guard_passes else "failure")
    names = ", ".join(systems)
    return CheckRunBody(AGGREGATE, key, "in_progress", fit(plain_text(f"not evaluated yet: {names}"), TITLE_LIMIT),
                        f"This change touches {', '.join(_name(s) for s in systems)}. Add the promotion label to have the gate evaluate it.")
