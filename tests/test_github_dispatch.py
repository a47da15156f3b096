"""The deployment path: `promotion-request` and `promotion-gate` served as real deployments (a
Runner polling Prefect's test server, each run in its own process), driven as the gateway drives
them, against the fake GitHub: promotion, redelivery, a push mid-run, a withdrawal, no system."""

from __future__ import annotations

import uuid

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterTags
from prefect.deployments import run_deployment

from promotion_gate.flows.dispatch import promotion_request
from promotion_gate.flows.promotion import promotion_gate
from promotion_gate.notifications.github_bodies import NO_SYSTEM_MARKER
from promotion_gate.notifications.github_events import Promote, Supersede, Withdraw, build_parameters, build_tags
from tests.github_support import LABEL, PROMOTES, UNAPPROVED, gate_env, governed_repo, serving, wait_for

pytestmark = pytest.mark.usefixtures("prefect_harness")
STATUS = f"promotion-gate/{PROMOTES}"


@pytest.fixture
def served(fake_github, monkeypatch, tmp_path):
    gate_env(monkeypatch, fake_github, tmp_path / "store", GITHUB_RETRIES="6")
    fake_github.add_team("acme", "it-helpdesk", ["hank"])
    with serving(promotion_request, promotion_gate):
        yield


@pytest.fixture
def repo() -> str:
    """A repository name of its own: the Prefect test server keeps every run of the session."""
    return f"acme/models-{uuid.uuid4().hex[:8]}"


def start(ask) -> str:
    """What the gateway does: the promotion-request deployment, keyed by the ask."""
    run = run_deployment("promotion-request/promotion-request", parameters=build_parameters(ask), timeout=0,
                         idempotency_key=ask.key, tags=build_tags(ask), as_subflow=False)
    return str(run.id)


def state_of(fake, repo: str, sha: str) -> str | None:
    return fake.statuses(repo, sha).get(STATUS, {}).get("state")


def final(fake, repo: str, sha: str, timeout: float = 60) -> dict:
    wait_for(lambda: state_of(fake, repo, sha) not in (None, "pending"), timeout, what=f"a final status on {sha[:7]}")
    return fake.statuses(repo, sha)[STATUS]


def gate_runs(*tags: str):
    with get_client(sync_client=True) as client:
        return client.read_flow_runs(flow_run_filter=FlowRunFilter(tags=FlowRunFilterTags(all_=["promotion-gate", *tags])))


def test_a_labelled_pr_becomes_a_promotion_pr_and_a_redelivery_changes_nothing(fake_github, served, repo):
    sha, number = governed_repo(fake_github, PROMOTES, repo=repo)
    ask = Promote(repo, number, sha, "dana", "alice")
    first = start(ask)
    status = final(fake_github, repo, sha)
    assert status["state"] == "success" and "/pull/" in status["target_url"]
    history = fake_github.status_history(repo, sha)
    assert [s["state"] for s in history] == ["success", "pending"]
    assert "/runs/flow-run/" in history[-1]["target_url"]  # pending links the gate run
    promotions = [p for p in fake_github.pulls(repo) if p["head"]["ref"] == f"promote/{PROMOTES}/{sha[:7]}"]
    assert len(promotions) == 1
    files_read = len(fake_github.calls("GET", "*/pulls/*/files"))
    calls, written = len(fake_github.requests) - files_read, len([r for r in fake_github.requests if r[0] != "GET"])
    # the budget per decision: 13 calls, of which 6 (+1 review) writes; + the lock guard on the promotion commit
    # once recorded (one read, one status promotion-gate/lock-guard), the older promotion PRs and the block
    # comment looked for (two reads); + issue 11: the evidence re-read into the store (two reads), the
    # checkpoint on refs/promotion-gate/ledger (one read, four writes), the ledger head in the PR body (one write)
    assert (files_read, calls, written) == (1, 25, 13)

    assert start(ask) == first  # a redelivery: the same run, by its idempotency key
    runs = gate_runs(f"pr:{repo}#{number}")
    assert len(runs) == 1 and runs[0].idempotency_key == f"{repo}#{number}@{sha}:{PROMOTES}"
    assert len(fake_github.requests) == calls + files_read


def test_a_push_mid_run_voids_the_old_run_and_evaluates_the_new_head(fake_github, served, repo):
    old, number = governed_repo(fake_github, PROMOTES, edit=UNAPPROVED, repo=repo)  # blocked, and slow to say so:
    fake_github.fail_secondary_rate_limit("POST /repos/*/issues/*/comments", retry_after=2, times=5)
    start(Promote(repo, number, old, "dana", "alice"))
    wait_for(lambda: fake_github.calls("POST", "*/issues/*/comments"), 60, what="the old run to reach its comment")
    new = fake_github.commit_files(repo, "feature", {f"ai-systems/{PROMOTES}/promotion.yaml": _approved(fake_github, repo, old)})
    start(Supersede(repo, number, new, "dana", old, "alice"))
    assert final(fake_github, repo, new)["state"] == "success"
    voided = final(fake_github, repo, old)
    assert (voided["state"], voided["description"]) == ("error", f"superseded by {new[:7]}")
    assert fake_github.comments(repo, number) == [] and fake_github.labels(repo, number) == [LABEL]
    (old_run,) = gate_runs(f"sha:{old[:7]}")
    assert old_run.state.is_cancelled()
    assert [s["state"] for s in fake_github.status_history(repo, old)] == ["error", "pending"]


def _approved(fake, repo: str, sha: str) -> bytes:
    path = f"ai-systems/{PROMOTES}/promotion.yaml"
    return fake.file_at(repo, sha, path).replace(UNAPPROVED[1].encode(), UNAPPROVED[0].encode())


def test_removing_the_label_withdraws_the_running_promotion(fake_github, served, repo):
    sha, number = governed_repo(fake_github, PROMOTES, edit=UNAPPROVED, repo=repo)
    fake_github.fail_secondary_rate_limit("POST /repos/*/issues/*/comments", retry_after=2, times=5)
    start(Promote(repo, number, sha, "dana", "alice"))
    wait_for(lambda: fake_github.calls("POST", "*/issues/*/comments"), 60, what="the run to reach its comment")
    start(Withdraw(repo, number, sha, "dana", "promotion withdrawn by dana"))
    status = final(fake_github, repo, sha)
    assert (status["state"], status["description"]) == ("error", "promotion withdrawn by dana")
    assert gate_runs(f"pr:{repo}#{number}")[0].state.is_cancelled()
    assert fake_github.comments(repo, number) == []


def test_a_labelled_pr_touching_no_system_gets_one_comment_and_no_status(fake_github, served, repo):
    sha, number = governed_repo(fake_github, repo=repo)  # changes docs/ only
    first = start(Promote(repo, number, sha, "dana", "alice"))
    wait_for(lambda: fake_github.comments(repo, number), 60, what="the comment")
    again = fake_github.commit_files(repo, "feature", {"docs/more.md": "more\n"})
    second = start(Promote(repo, number, again, "dana", "alice"))
    with get_client(sync_client=True) as client:
        wait_for(lambda: client.read_flow_run(second).state.is_final(), 60, what="the second request")
        assert client.read_flow_run(first).state.is_completed()
    comments = fake_github.comments(repo, number)
    assert len(comments) == 1 and comments[0]["body"].startswith(NO_SYSTEM_MARKER)
    assert fake_github.statuses(repo, sha) == {} and fake_github.statuses(repo, again) == {}
    assert gate_runs(f"pr:{repo}#{number}") == []
