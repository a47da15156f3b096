"""`promotion-gate demo`: the gate end to end on the bundled example repository.

It copies ``examples/repo`` into a new git repository (``main`` holds a README; the branch
``sandbox`` adds the systems, committed by the team's developer), then runs the real Prefect flow
(Prefect's embedded server, no setup) for each example system and prints each decision.

The example results carry fixed timestamps; the demo re-stamps them to today as it copies them
(and says so) so that the freshness item judges them as a team's fresh run would be judged.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from datetime import datetime, timezone
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "repo"
STAMP = re.compile(rb"2026-11-20T09:30:00(\.0+)?(Z|\+00:00)?")
DEVELOPER = {"GIT_AUTHOR_NAME": "Dana Developer", "GIT_AUTHOR_EMAIL": "dana@example.com",
             "GIT_COMMITTER_NAME": "Dana Developer", "GIT_COMMITTER_EMAIL": "dana@example.com"}
PLATFORM = {"GIT_AUTHOR_NAME": "Platform", "GIT_AUTHOR_EMAIL": "platform@example.com",
            "GIT_COMMITTER_NAME": "Platform", "GIT_COMMITTER_EMAIL": "platform@example.com"}

SYSTEMS = (
    ("helpdesk-summarizer", []),
    ("support-assistant", ["dana", "sam:approve:checked the redaction and the drill", "rene"]),
    ("loan-prescreener", []),
)


def _git(repo: Path, *args: str, env: dict | None = None) -> str:
    out = subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, env={**os.environ, **(env or {})})
    return out.stdout.decode().strip()


def build_example_repo(target: Path, now: datetime) -> str:
    """Create the example repository; return the candidate commit (the head of ``sandbox``)."""
    target.mkdir(parents=True, exist_ok=True)
    _git(target, "init", "-q", "-b", "main")
    (target / "README.md").write_text("# acme AI systems\n\nGoverned by promotion-gate.\n")
    _git(target, "add", "README.md")
    _git(target, "commit", "-q", "-m", "Start the governed repository", env=PLATFORM)
    _git(target, "checkout", "-q", "-b", "sandbox")
    shutil.copytree(EXAMPLES / "ai-systems", target / "ai-systems")
    stamp = now.strftime("%Y-%m-%dT%H:%M:%S.000Z").encode()
    for path in (target / "ai-systems").rglob("evals/*"):
        path.write_bytes(STAMP.sub(stamp, path.read_bytes()))
    _git(target, "add", "ai-systems")
    _git(target, "commit", "-q", "-m", "Add three AI systems with their evaluation results", env=DEVELOPER)
    return _git(target, "rev-parse", "HEAD")


def verify_hint(store_path: Path, settings) -> str:
    """The auditor's command: pinned to the demo key's public half, which lives outside the store."""
    from promotion_gate.audit_store.signing_keys import DEMO_PUBLIC_FILE, demo_key_dir

    if settings.signing_key_path or settings.signing_key or settings.signing_key_block:
        return (f"verify it: .venv/bin/promotion-gate audit verify {store_path} --key <the gate's public key>   "
                f"(index: audit index {store_path} --key ...)")
    pub = demo_key_dir(store_path, settings.demo_key_dir) / DEMO_PUBLIC_FILE
    return (f"verify it: .venv/bin/promotion-gate audit verify {store_path} --key {pub}   "
            f"(index: audit index {store_path} --key {pub})\n"
            "  (this demo signs with a generated DEMO key: verify says so and exits 4, because a demo record is not evidence)")


def run_demo(workdir: str | None = None, store: str | None = None) -> int:
    from promotion_gate.checklists.decision import PromotionRequest
    from promotion_gate.cli.quiet_prefect import quiet_prefect
    from promotion_gate.config.settings import load_settings
    from promotion_gate.flows.promotion import promotion_gate
    from promotion_gate.notifications.terminal import render_decision_summary

    now = datetime.now(timezone.utc)
    repo = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix="promotion-gate-demo-"))
    settings = load_settings()  # once, for the command; each gate run reads its own at its start
    store_path = Path(store or settings.audit_store).resolve()
    commit = build_example_repo(repo, now)
    print(f"example repository: {repo} (candidate {commit[:12]} on branch sandbox; evidence re-stamped to {now:%Y-%m-%d})")
    print(f"audit store: {store_path}\n")
    for system, approvals in SYSTEMS:
        request = PromotionRequest(repository=str(repo), system=system, commit=commit, requester="dana-dev", requested_at=datetime.now(timezone.utc))
        if approvals:
            print(f"{system}: console sign-offs given: {', '.join(a.split(':')[0] for a in approvals)}")
        with quiet_prefect():
            decision = promotion_gate(request, approvals=approvals, store=str(store_path))
        print(render_decision_summary(decision, str(store_path / "decisions" / decision.decision_id)))
        print()
    branches = _git(repo, "branch", "--list", "promote/*")
    print("promotion branches:\n" + (branches or "  (none)"))
    print(f"ledger: {store_path / 'ledger.jsonl'}")
    print(verify_hint(store_path, settings))
    return 0
