"""Scenarios on the fake GitHub for the GitHub and gateway tests: a governed repository, a
labelled PR, and the gate's settings pointed at the fake (no pacing, quick retries)."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

from promotion_gate.cli.demo import STAMP
from tests.fakes import FakeGitHub
from tests.fakes.github_payloads import build_webhook_request

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples" / "repo" / "ai-systems"
REPO = "acme/models"
LABEL, BLOCKED = "promote:production", "promotion:blocked"
SECRET = "webhook-s3cret"
PROMOTES, BLOCKS = "helpdesk-summarizer", "loan-prescreener"  # low tier, two evidence files / high tier, blocked
UNAPPROVED = ("version: gpt-4o-mini-2024-07-18", "version: gpt-4o-mini-2099-01-01")
GATE_KEY_PEM = None  # the gate's signing key in these tests (the GitHub path refuses the demo key)


def gate_key_pem() -> str:
    global GATE_KEY_PEM
    if GATE_KEY_PEM is None:
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        from promotion_gate.audit_store.signing_keys import private_pem

        GATE_KEY_PEM = private_pem(Ed25519PrivateKey.generate()).decode()
    return GATE_KEY_PEM


def gate_env(monkeypatch, fake: FakeGitHub, store: Path, **extra: str) -> None:
    """The gate's settings for a test: GitHub is the fake, no pacing, retries without waiting."""
    values = {
        "GITHUB_API_URL": fake.base_url, "GITHUB_TOKEN": "test-token", "GITHUB_WEBHOOK_SECRET": SECRET,
        "GITHUB_SECONDS_BETWEEN_REQUESTS": "0", "GITHUB_SECONDS_BETWEEN_WRITES": "0",
        "GITHUB_RETRIES": "3", "GITHUB_RETRY_BACKOFF_SECONDS": "0", "GITHUB_RETRY_MAX_WAIT_SECONDS": "3",
        "AUDIT_STORE": str(store), "PREFECT_UI_URL": "http://prefect.test", "SIGNING_KEY": gate_key_pem(),
    } | extra
    for name, value in values.items():
        monkeypatch.setenv(f"PROMOTION_GATE_{name}", value)


def as_github_app(monkeypatch, fake: FakeGitHub, folder: Path, installation: str | None = "7") -> Path:
    """The gate as GitHub App 42 (its private key written to `folder`), token auth switched off; the
    installation id set when given (a test adds the installation itself). The key's path."""
    from tests.test_fakes import private_key_pem

    key = folder / "app.pem"
    key.write_text(private_key_pem())
    fake.register_app(42, key.read_text())
    monkeypatch.delenv("PROMOTION_GATE_GITHUB_TOKEN")
    monkeypatch.setenv("PROMOTION_GATE_GITHUB_APP_ID", "42")
    monkeypatch.setenv("PROMOTION_GATE_GITHUB_APP_PRIVATE_KEY_PATH", str(key))
    if installation is not None:
        monkeypatch.setenv("PROMOTION_GATE_GITHUB_INSTALLATION_ID", installation)
    return key


def system_files(system: str, now: datetime | None = None, edit: tuple[str, str] | None = None) -> dict[str, bytes]:
    """One example system's files, evidence re-stamped to `now` (fresh), the manifest optionally edited."""
    stamp = (now or datetime.now(timezone.utc)).strftime("%Y-%m-%dT%H:%M:%S.000Z").encode()
    files = {}
    for path in sorted((EXAMPLES / system).rglob("*")):
        if path.is_file():
            data = path.read_bytes()
            files[f"ai-systems/{system}/{path.relative_to(EXAMPLES / system)}"] = STAMP.sub(stamp, data) if "evals" in path.parts else data
    if edit:
        key = f"ai-systems/{system}/promotion.yaml"
        assert edit[0].encode() in files[key], edit
        files[key] = files[key].replace(edit[0].encode(), edit[1].encode())
    return files


def governed_repo(fake: FakeGitHub, *systems: str, edit: tuple[str, str] | None = None, labels=(LABEL,),
                  repo: str = REPO, author: str = "alice") -> tuple[str, int]:
    """`repo` with a README on main and a PR from `feature` adding `systems` (`edit` changes the first
    one's manifest); returns (head SHA, PR number)."""
    fake.create_repo(repo)
    files: dict[str, bytes] = {}
    for i, system in enumerate(systems):
        files |= system_files(system, edit=edit if i == 0 else None)
    sha = fake.commit_files(repo, "feature", files or {"docs/readme.md": "no system\n"}, "Add AI systems", author_login=author)
    number = fake.open_pull(repo, "feature", "main", "Add AI systems", author, labels=tuple(labels))
    return sha, number


def labelled_delivery(fake: FakeGitHub, number: int, *, repo: str = REPO, sender: str = "dana",
                      action: str = "labeled", label: str | None = LABEL, secret: str = SECRET,
                      delivery_id: str | None = None) -> tuple[bytes, dict[str, str]]:
    payload = fake.pull_request_event(repo, number, action, label=label if action in ("labeled", "unlabeled") else None,
                                      sender=sender)
    return build_webhook_request("pull_request", payload, secret, delivery_id)


def relabelled_delivery(fake: FakeGitHub, number: int, *, repo: str = REPO, **args) -> tuple[bytes, dict[str, str]]:
    """The label removed and added again, as a team asks again at the same commit: a new event
    (the pull request's ``updated_at`` moves), so a new body, unlike a redelivery or a replay."""
    fake.remove_label(repo, number, LABEL)
    fake.add_labels(repo, number, LABEL)
    return labelled_delivery(fake, number, repo=repo, **args)


def writes(fake: FakeGitHub) -> list[tuple[str, str, int]]:
    return [r for r in fake.requests if r[0] != "GET"]


def delete_scheduled(deployment_name: str) -> None:
    """Delete the runs of `deployment_name` still scheduled (a deployment no worker serves), so that
    nothing is left for later tests to pick up."""
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        for run in client.read_flow_runs():
            if run.deployment_id and run.state and run.state.is_scheduled():
                if client.read_deployment(run.deployment_id).name == deployment_name:
                    client.delete_flow_run(run.id)


@contextmanager
def serving(*flows, query_seconds: float = 0.5) -> Iterator[None]:
    """Serve `flows` as real deployments (named after the flow) from a Runner in a background
    thread, as `prefect.serve` would: each run is picked up by polling and runs in its own process,
    loaded from its entrypoint (module path), as a worker runs it."""
    from prefect.deployments.runner import EntrypointType
    from prefect.runner import Runner

    runner = Runner(name=f"test-runner-{uuid.uuid4().hex[:6]}", query_seconds=query_seconds, pause_on_shutdown=False)
    loop = asyncio.new_event_loop()
    started = threading.Event()

    async def run() -> None:
        for flow in flows:
            await runner.aadd_deployment(await flow.ato_deployment(name=flow.name, entrypoint_type=EntrypointType.MODULE_PATH))
        started.set()
        await runner.start()

    thread = threading.Thread(target=loop.run_until_complete, args=(run(),), daemon=True, name="test-runner")
    thread.start()
    assert started.wait(30), "the runner did not start"
    try:
        yield
    finally:
        asyncio.run_coroutine_threadsafe(runner.astop(), loop).result(30)
        thread.join(30)
        loop.close()


def wait_for(predicate, timeout: float = 30, interval: float = 0.1, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def request_for(sha: str, number: int, system: str = PROMOTES, repo: str = REPO) -> "PromotionRequest":
    from promotion_gate.checklists.decision import PromotionRequest

    return PromotionRequest(repository=repo, system=system, commit=sha, requester="dana",
                            requested_at=datetime.now(timezone.utc), pull_request=number, author="alice")


def judge(forge, request):
    """What the flow does before acting: read through the forge, evaluate, decide (no sign-off)."""
    from promotion_gate.checklists.checklist import evaluate
    from promotion_gate.checklists.decision import decide
    from promotion_gate.forge.candidate_reader import read_candidate
    from promotion_gate.config.policy_source import load_policy

    candidate = read_candidate(forge.candidate_source(request), request.system, request.commit, forge.baseline_source(request))
    now = datetime.now(timezone.utc)
    return decide(request, evaluate(candidate, load_policy(), now), None, now=now)


def promote_with(forge, request, decision):
    from promotion_gate.checklists.decision import build_lock
    from promotion_gate.notifications.report import render_markdown

    lock = build_lock(decision).model_dump_json(indent=2).encode() + b"\n"
    return forge.promote(request, decision, lock, render_markdown(decision).encode())
