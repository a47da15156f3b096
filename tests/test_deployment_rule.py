"""The gate as a custom deployment protection rule, against the fake GitHub: GitHub's
`deployment_protection_rule` payload in, the review callback (approved / rejected with the reason) out."""

from __future__ import annotations

import json

import pytest

from promotion_gate.audit_store.store import AuditStore
from promotion_gate.flows.deployment_rule import answer_deployment
from promotion_gate.github_api.client import open_github, retrying_from
from promotion_gate.config.settings import load_settings
from promotion_gate.notifications.check_events import ReviewDeployment
from promotion_gate.notifications.github_events import WebhookError, parse_delivery
from tests.fakes.github_payloads import encode_payload
from tests.fakes.github_routes_checks import deployment_protection_rule_event, deployment_reviews
from tests.github_support import BLOCKED, BLOCKS, LABEL, PROMOTES, REPO, UNAPPROVED, system_files
from tests.test_github_checks import app_forge  # noqa: F401  (the App-authenticated settings)
from tests.test_lock_guard import _promote, edited


@pytest.fixture
def store(app_forge, tmp_path):  # noqa: F811
    app_forge()  # registers the installation
    return tmp_path / "store"


def review(fake_github, store, environment: str, ref: str, sha: str, run_id: int = 501) -> dict:
    payload = deployment_protection_rule_event(fake_github, REPO, environment, ref, sha, run_id, installation_id=7)
    ask = parse_delivery("deployment_protection_rule", encode_payload(payload), label=LABEL, blocked_label=BLOCKED)
    assert ask == ReviewDeployment(REPO, environment, ref, sha, run_id, "dana")
    settings = load_settings()
    repo = open_github(settings, REPO).get_repo(REPO, lazy=True)
    answer_deployment(settings, retrying_from(settings), repo, ask, AuditStore(store))
    return deployment_reviews(fake_github, REPO)[-1]


def test_a_commit_with_a_valid_promoted_lock_is_approved(fake_github, store):
    path, branch, head, number = _promote(fake_github, store, with_system=True)
    answer = review(fake_github, store, "production", branch, head)
    assert (answer["state"], answer["environment_name"], answer["run_id"]) == ("approved", "production", 501)
    assert "as promotion-gate promoted it" in answer["comment"]


def _add_unpromoted_system(fake, head):
    return fake.commit_files(REPO, "hurry", system_files(BLOCKS), "ship loan-prescreener too", parent=head)


def _change_manifest(fake, head):
    manifest = f"ai-systems/{PROMOTES}/promotion.yaml"
    return fake.commit_files(REPO, "swap", {manifest: system_files(PROMOTES, edit=UNAPPROVED)[manifest]}, "x", parent=head)


def _change_evidence(fake, head):
    evidence = sorted(p for p in system_files(PROMOTES) if "/evals/" in p)[0]
    data = fake.file_at(REPO, head, evidence)
    return fake.commit_files(REPO, "evidence", {evidence: data + b"\n"}, "re-run", parent=head)


def _delete_evidence(fake, head):
    evidence = sorted(p for p in system_files(PROMOTES) if "/evals/" in p)[0]
    return fake.commit_files(REPO, "gone", {evidence: None}, "tidy", parent=head)


def _symlinked_lock(fake, head):
    lock = f"ai-systems/{PROMOTES}/production.lock.json"
    data = lock.replace("production.lock.json", "lock-data.json")
    return fake.commit_files(REPO, "link", {data: fake.file_at(REPO, head, lock)}, "tidy locks", parent=head,
                             symlinks={lock: "lock-data.json"})


def _forged_lock_past_a_truncated_tree(fake, head, monkeypatch):
    from tests.fakes import github_routes_git

    monkeypatch.setattr(github_routes_git, "TREE_ENTRIES_LISTED", 40)  # GitHub's 100,000, made small
    genuine = fake.file_at(REPO, head, f"ai-systems/{PROMOTES}/production.lock.json")
    filler = {f"ai-systems/aa-filler/f{i:03d}.txt": b"x\n" for i in range(60)}
    shadow = {"ai-systems/zz-shadow/production.lock.json": edited(genuine, lambda b: b.update(system="zz-shadow"))}
    return fake.commit_files(REPO, "big", filler | shadow, "vendor", parent=head)


# A team in a hurry or an insider deploys a commit that is not what the gate promoted, next to a genuine lock.
DEPLOY_ATTACKS = [
    ("a second system, never promoted", lambda f, h, m: _add_unpromoted_system(f, h), "loan-prescreener was never promoted"),
    ("the manifest changed after promotion", lambda f, h, m: _change_manifest(f, h), "promotion.yaml changed after"),
    ("an evidence file changed after promotion", lambda f, h, m: _change_evidence(f, h), "changed after"),
    ("an evidence file the lock pins deleted", lambda f, h, m: _delete_evidence(f, h), "is missing at the deployed commit"),
    ("the lock a symbolic link to a copy", lambda f, h, m: _symlinked_lock(f, h), "not a regular file"),
    ("a forged lock past GitHub's tree limit", _forged_lock_past_a_truncated_tree, "truncated"),
]


@pytest.mark.parametrize("how,make,reason", DEPLOY_ATTACKS, ids=[a[0] for a in DEPLOY_ATTACKS])
def test_a_deployment_that_is_not_what_the_gate_promoted_is_rejected(fake_github, store, monkeypatch, how, make, reason):
    path, branch, head, number = _promote(fake_github, store, with_system=True)
    assert review(fake_github, store, "production", branch, head, 600)["state"] == "approved"  # the genuine one passes
    sha = make(fake_github, head, monkeypatch)
    answer = review(fake_github, store, "production", "attack", sha, 601)
    assert answer["state"] == "rejected" and reason in answer["comment"], (how, answer["comment"])


def test_a_hand_edited_lock_no_lock_or_another_environment_is_rejected_with_the_reason(fake_github, store):
    path, branch, head, number = _promote(fake_github, store)
    genuine = fake_github.file_at(REPO, branch, path)
    forged = fake_github.commit_files(REPO, "forged", {path: edited(genuine, lambda b: b.update(model="x/y@z"))}, "edit",
                                      parent=head)
    answer = review(fake_github, store, "production", "forged", forged, 502)
    assert answer["state"] == "rejected" and "edited after the gate signed it" in answer["comment"]
    main = fake_github.branch_sha(REPO, "main")
    answer = review(fake_github, store, "production", "main", main, 503)
    assert answer["state"] == "rejected" and "holds no production.lock.json" in answer["comment"]
    answer = review(fake_github, store, "staging", branch, head, 504)
    assert answer["state"] == "rejected" and "not governed by promotion-gate" in answer["comment"]


def test_github_failing_is_a_rejection_not_an_approval(fake_github, store):
    path, branch, head, number = _promote(fake_github, store)
    fake_github.fail_next("GET /repos/*/git/trees/*", status=404, times=10)
    answer = review(fake_github, store, "production", branch, head, 505)
    assert answer["state"] == "rejected" and "could not verify" in answer["comment"]


@pytest.mark.parametrize("change, reason", [
    (lambda p: p.update(deployment_callback_url="https://evil.example/steal"), "deployment_callback_url"),
    (lambda p: p.update(deployment_callback_url=p["deployment_callback_url"].replace("acme/models", "acme/other")),
     "deployment_callback_url"),
    (lambda p: p["deployment"].update(sha="HEAD"), "deployment.sha"),
    (lambda p: p["deployment"].update(ref="../../etc"), "deployment.ref"),
    (lambda p: p.update(environment=""), "environment"),
])
def test_a_payload_cannot_choose_where_the_answer_goes_or_smuggle_values(fake_github, store, change, reason):
    path, branch, head, number = _promote(fake_github, store)
    payload = deployment_protection_rule_event(fake_github, REPO, "production", branch, head, 9)
    change(payload)
    with pytest.raises(WebhookError) as error:
        parse_delivery("deployment_protection_rule", json.dumps(payload).encode(), label=LABEL, blocked_label=BLOCKED)
    assert error.value.status == 400 and reason in error.value.reason
