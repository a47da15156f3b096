"""Decisions of every kind, built with the real core (evaluate, judge, tally, decide, error_decision).

Shared by the audit, report and browser tests; not a conftest (the lead owns tests/conftest.py).
"""

from __future__ import annotations

import hashlib
from contextlib import contextmanager
from datetime import timedelta
from io import BytesIO
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from promotion_gate.checklists.candidate import ProductionLock
from promotion_gate.checklists.checklist import Checklist, evaluate
from promotion_gate.checklists.decision import Decision, PromotionRequest, TimelineEvent, build_lock, decide, error_decision
from promotion_gate.checklists.signoff import Action, Click, judge, tally
from promotion_gate.checklists.waivers import requests_of
from promotion_gate.forge.candidate_reader import WorkingTree, read_candidate
from promotion_gate.config.policy_source import load_policy
from promotion_gate.audit_store.signing_keys import SigningKey
from tests.conftest import FIXTURES, NOW, ROOT

POLICY = load_policy()
EXAMPLES = ROOT / "examples" / "repo"
HOSTILE = "<script>alert(1)</script> [x](http://evil.example) {{ 7*7 }} {% if 1 %}jinja{% endif %} | pipe & amp"
VERDICTS = ("promoted", "blocked", "expired", "withdrawn", "error", "error_without_checklist", "rejected", "waived")


class Overlay:
    """A source: the example repository, with some files replaced."""

    def __init__(self, files: dict[str, bytes] | None = None) -> None:
        self.tree, self.files = WorkingTree(EXAMPLES), files or {}

    @contextmanager
    def open(self, path: str):
        if path in self.files:
            yield BytesIO(self.files[path])
            return
        with self.tree.open(path) as fh:
            yield fh


def signing_key(name: str = "test") -> SigningKey:
    return SigningKey.of(Ed25519PrivateKey.generate(), f"test key {name}")


def request(system: str, commit: str = "c0ffee" + "0" * 34, minutes: int = 90, requester: str = "dana-dev", **extra) -> PromotionRequest:
    return PromotionRequest(repository="acme/ai-systems", system=system, commit=commit, requester=requester,
                            requested_at=NOW - timedelta(minutes=minutes), pull_request=42, **extra)


def checklist(system: str, manifest: bytes | None = None, fixture: str | None = None, baseline: ProductionLock | None = None) -> Checklist:
    files = {}
    if fixture is not None:
        manifest = (FIXTURES / "manifests" / f"{fixture}.yaml").read_bytes()
    if manifest is not None:
        files[f"ai-systems/{system}/promotion.yaml"] = manifest
    candidate = read_candidate(Overlay(files), system, "c0ffee" + "0" * 34)
    if baseline is not None:
        candidate = candidate.model_copy(update={"baseline": baseline})
    return evaluate(candidate, POLICY, NOW)


def hostile_manifest() -> bytes:
    """The support-assistant manifest with hostile text in every free-text field that reports show."""
    text = (FIXTURES / "manifests" / "high__waived__no_human_review.yaml").read_text()
    quoted = HOSTILE.replace("'", "''")
    text = text.replace("owner: '@acme/support-ai'", f"owner: '{quoted}'")
    text = text.replace("description: Answers customers' questions about their orders and accounts in the help centre chat.",
                        f"description: '{quoted}'")
    assert quoted in text
    return text.encode().replace(b"reason: ", f"reason: '{quoted}' # ".encode(), 1)


def _click(reviewer: str, action: Action, cl: Checklist, minutes: int, comment: str | None = None, item: str | None = None) -> Click:
    return Click(reviewer=reviewer, channel="slack", action=action, digest=cl.digest, at=NOW - timedelta(minutes=minutes), comment=comment, item=item)


def _signoffs(cl: Checklist, clicks: list[Click], excluded: set[str]):
    given, refused = [], []
    for click in clicks:
        got = judge(click, policy=POLICY, quorum=cl.signoff.quorum, digest=cl.digest, excluded=excluded, given=given, waiting=True,
                    waivers=requests_of(cl))
        (given if got.__class__.__name__ == "Signoff" else refused).append(got)
    return given, refused, tally(cl.signoff.quorum, given, requests_of(cl))


def decision(kind: str, *, system: str | None = None, manifest: bytes | None = None, commit: str | None = None,
             comment: str | None = None, baseline: ProductionLock | None = None, minutes: int = 90) -> Decision:
    """One decision of the named kind (see VERDICTS)."""
    timeline = [TimelineEvent(at=NOW - timedelta(minutes=minutes), event="label promote:production added by dana-dev")]
    high = system or "support-assistant"
    req = request(system or ("helpdesk-summarizer" if kind == "promoted" else high), commit or "c0ffee" + "0" * 34, minutes)
    if kind == "error_without_checklist":
        return error_decision(req, "the gate failed: RuntimeError: GitHub answered 502", NOW, timeline=timeline)
    if kind == "promoted" and req.system == "helpdesk-summarizer":
        return decide(req, checklist(req.system, manifest, baseline=baseline), None, now=NOW, timeline=timeline)
    if kind == "blocked":
        blocking = {"support-assistant": "high__fail__no_fallback", "helpdesk-summarizer": "low__fail__no_evaluations"}
        cl = checklist(req.system, manifest, fixture=None if manifest else blocking.get(req.system), baseline=baseline)
        return decide(req, cl, None, now=NOW, timeline=timeline)
    if kind == "error":
        cl = checklist(req.system, manifest, fixture=None if manifest else "high__error__evidence_missing")
        return error_decision(req, "the gate failed: TimeoutError: Slack did not answer", NOW, checklist=cl, timeline=timeline)
    cl = checklist(req.system, manifest, fixture=None if manifest or kind != "waived" else "high__waived__no_human_review", baseline=baseline)
    clicks = [_click("U0DANA", Action.approve, cl, 60), _click("U0SAM", Action.approve, cl, 50, comment)]
    if kind in ("promoted", "waived"):
        clicks.append(_click("U0RENE", Action.approve, cl, 40, comment))
    if kind == "waived":  # the manifest only requests the waiver; a risk reviewer grants it
        clicks.append(_click("U0RENE", Action.waive, cl, 35, "interim review by the owner is enough", item="PG-REVIEW-001"))
    if kind == "rejected":
        clicks.append(_click("U0RENE", Action.reject, cl, 40, comment or "the drill is too small"))
    given, refused, state = _signoffs(cl, clicks, excluded={"dana"})
    timeline.append(TimelineEvent(at=NOW - timedelta(minutes=30), event=f"sign-off {state.status}"))
    return decide(req, cl, state, signoffs=given, refused=refused, now=NOW, timeline=timeline,
                  expired=kind == "expired", withdrawn="the team removed the label" if kind == "withdrawn" else None)


def commit_of(name: str) -> str:
    return hashlib.sha1(name.encode()).hexdigest()


def every_kind() -> dict[str, Decision]:
    """One decision per kind, each at its own commit (so each has its own decision id)."""
    return {kind: decision(kind, commit=commit_of(kind)) for kind in VERDICTS}


def production_lock_of(promoted: Decision) -> ProductionLock:
    return build_lock(promoted)


def write_key_pem(path: Path, key: SigningKey) -> Path:
    from promotion_gate.audit_store.signing_keys import private_pem

    path.write_bytes(private_pem(key.private_key))
    return path


def spread_store(root: Path, key: SigningKey, hostile: bool = True) -> list[Decision]:
    """A store of decisions across three systems, every outcome, spread over three weeks (index, browser)."""
    from promotion_gate.audit_store.store import AuditStore

    plan = [
        ("helpdesk-summarizer", "promoted", 20, 5), ("helpdesk-summarizer", "blocked", 18, 50),
        ("support-assistant", "blocked", 15, 30), ("support-assistant", "expired", 12, 3000),
        ("support-assistant", "rejected", 9, 400), ("support-assistant", "waived", 7, 200),
        ("support-assistant", "withdrawn", 6, 100), ("loan-prescreener", "blocked", 5, 2),
        ("loan-prescreener", "error_without_checklist", 3, 1), ("loan-prescreener", "blocked", 1, 8),
    ]
    out = []
    for i, (system, kind, days_ago, minutes) in enumerate(plan):
        manifest = hostile_manifest() if hostile and kind == "withdrawn" else None
        sys_arg = None if kind in ("promoted",) and system == "helpdesk-summarizer" else system
        d = decision(kind, system=sys_arg, commit=commit_of(f"{system}{i}"), minutes=minutes, manifest=manifest)
        shift = timedelta(days=days_ago)
        req = d.request.model_copy(update={"requested_at": d.request.requested_at - shift})
        timeline = [t.model_copy(update={"at": t.at - shift}) for t in d.timeline]
        out.append(d.model_copy(update={"decided_at": d.decided_at - shift, "request": req, "timeline": timeline}))
    store = AuditStore(root, key)
    for d in out:
        store.record(d)
    return out
