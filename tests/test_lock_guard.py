"""The lock-file guard: a production.lock.json reaches production only as the gate wrote it.

A table of the ways around it (pure), then the guard against the fake GitHub: a pull request
into the production branch gets `promotion-gate/lock-guard` (a status with a token)."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from promotion_gate.checklists.attestation import key_id
from promotion_gate.checklists.candidate import LockedEvidence, ProductionLock
from promotion_gate.checklists.lock_guard import RecordedPromotion, build_signed_lock, is_lock_path, summarize, verify_lock

GATE = Ed25519PrivateKey.generate()
OTHER = Ed25519PrivateKey.generate()
TRUSTED = {key_id(GATE.public_key()): GATE.public_key()}
SHA = "c" * 40
PATH = "ai-systems/helpdesk/production.lock.json"
LEDGER = {
    "helpdesk-ccccccc-promoted": RecordedPromotion("promoted", "helpdesk", SHA),
    "helpdesk-ccccccc-blocked": RecordedPromotion("blocked", "helpdesk", SHA),
    "helpdesk-ccccccc-elsewhere": RecordedPromotion("promoted", "helpdesk", "d" * 40),
    "other-ccccccc-promoted": RecordedPromotion("promoted", "other", SHA),
}


def lock(decision_id: str = "helpdesk-ccccccc-promoted", system: str = "helpdesk", accuracy: float = 0.91) -> ProductionLock:
    return ProductionLock(system=system, source_commit=SHA, manifest_sha256="a" * 64, model="openai/gpt-4o-mini@2024-07-18",
                          evidence=[LockedEvidence(path="evals/promptfoo.json", format="promptfoo", sha256="b" * 64,
                                                   metrics={"accuracy": accuracy})],
                          decision_id=decision_id, policy_version="1", policy_digest="e" * 64,
                          promoted_at=datetime(2026, 12, 1, tzinfo=timezone.utc))


def signed(value: ProductionLock | None = None, key=GATE) -> bytes:
    return build_signed_lock(value or lock(), key, key_id(key.public_key()))


def edited(data: bytes, change) -> bytes:
    body = json.loads(data)
    change(body)
    return json.dumps(body, indent=2).encode()


def _text(data: bytes) -> str:
    return data.decode()


def _metric(body):
    body["evidence"][0]["metrics"]["accuracy"] = 0.99


def _decision(body):
    body["decision_id"] = "helpdesk-ccccccc-blocked"


def _forged_key(body):
    body["envelope"]["signatures"][0]["keyid"] = key_id(GATE.public_key())


CASES = [
    ("genuine gate-written lock", PATH, signed(), True, "written by the gate for promoted decision helpdesk-ccccccc-promoted"),
    ("hand-edited metric", PATH, edited(signed(), _metric), False, "the lock was edited after the gate signed it"),
    ("decision id swapped after signing", PATH, edited(signed(), _decision), False, "the lock was edited after the gate signed it"),
    ("signed by another key", PATH, signed(key=OTHER), False, "does not verify with the gate's pinned key"),
    ("another key claiming the gate's key id", PATH, edited(signed(key=OTHER), _forged_key), False,
     "does not verify with the gate's pinned key"),
    ("no signature at all", PATH, lock().model_dump_json().encode(), False, "carries no signature"),
    ("decision not in the ledger", PATH, signed(lock("helpdesk-ccccccc-unknown")), False, "is not in the ledger"),
    ("decision recorded but blocked", PATH, signed(lock("helpdesk-ccccccc-blocked")), False, "was blocked, not promoted"),
    ("promoted at another commit", PATH, signed(lock("helpdesk-ccccccc-elsewhere")), False, "not this lock's helpdesk at ccccccc"),
    ("a genuine lock copied into another system's folder", "ai-systems/other/production.lock.json", signed(), False,
     "not for the folder it sits in"),
    ("another system's genuine lock", PATH, signed(lock("other-ccccccc-promoted", system="other")), False,
     "not for the folder it sits in"),
    ("not JSON", PATH, b"{not json", False, "not a lock file"),
    ("an unknown key smuggled in", PATH, edited(signed(), lambda b: b.update(note="trust me")), False, "not a lock file"),
    ("an envelope of another payload type", PATH,
     edited(signed(), lambda b: b["envelope"].update(payloadType="application/vnd.in-toto+json")), False, "not a lock"),
    ("deleted", PATH, None, False, "the lock was deleted"),
    # duplicate keys: pydantic keeps the last value, a consumer whose parser keeps the first deploys the other one
    ("a duplicate model key, another model first and the signed one last", PATH,
     _text(signed()).replace('"model":', '"model": "evil/model@1",\n  "model":', 1).encode(), False,
     'a key appears twice in one object: "model"'),
    ("a duplicate model key, the signed model first and another last", PATH,
     _text(signed()).replace('"model": "openai/gpt-4o-mini@2024-07-18"',
                             '"model": "openai/gpt-4o-mini@2024-07-18", "model": "evil/x"', 1).encode(), False,
     'a key appears twice in one object: "model"'),
    ("the same key twice with the same value", PATH,
     _text(signed()).replace('"schema_version": 1,', '"schema_version": 1, "schema_version": 1,', 1).encode(), False,
     'a key appears twice in one object: "schema_version"'),
    ("a duplicate metric inside the evidence", PATH,
     _text(signed()).replace('"accuracy": 0.91', '"accuracy": 0.5, "accuracy": 0.91', 1).encode(), False,
     'a key appears twice in one object: "accuracy"'),
    ("a duplicate key inside the envelope", PATH,
     _text(signed()).replace('"payloadType":', '"payloadType": "application/x-other", "payloadType":', 1).encode(), False,
     'a key appears twice in one object: "payloadType"'),
    ("a duplicate key written with a unicode escape", PATH,
     _text(signed()).replace('"model":', '"m\\u006fdel": "evil/model@1",\n  "model":', 1).encode(), False,
     'a key appears twice in one object: "model"'),
    # numbers JSON does not have
    ("a metric NaN", PATH, _text(signed()).replace('"accuracy": 0.91', '"accuracy": NaN').encode(), False,
     "NaN is not a JSON number"),
    ("a metric Infinity", PATH, _text(signed()).replace('"accuracy": 0.91', '"accuracy": -Infinity').encode(), False,
     "-Infinity is not a JSON number"),
    ("a metric that overflows to infinity", PATH, _text(signed()).replace('"accuracy": 0.91', '"accuracy": 1e999').encode(), False,
     "1e999 is not a finite number"),
]


@pytest.mark.parametrize("case, path, data, ok, reason", CASES, ids=[c[0] for c in CASES])
def test_each_way_around_the_guard_has_its_outcome(case, path, data, ok, reason):
    finding = verify_lock(path, data, TRUSTED, LEDGER.get)
    assert (finding.ok, reason in finding.reason) == (ok, True), finding.reason


def test_a_pull_request_touching_no_lock_passes_and_one_bad_lock_fails_the_lot():
    assert summarize([]) == (True, "no production.lock.json changed")
    good, bad = verify_lock(PATH, signed(), TRUSTED, LEDGER.get), verify_lock(PATH, None, TRUSTED, LEDGER.get)
    assert summarize([good])[0] and not summarize([good, bad])[0]


@pytest.mark.parametrize("path, expected", [
    (PATH, True), ("ai-systems/x/evals/production.lock.json", False), ("production.lock.json", False),
    ("ai-systems/x/production.lock.json.bak", False), ("docs/ai-systems/x/production.lock.json", False),
])
def test_lock_paths(path, expected):
    assert is_lock_path(path) is expected


# against the fake GitHub, with a token: the verdict is the commit status promotion-gate/lock-guard


@pytest.fixture
def guarded(fake_github, monkeypatch, tmp_path):
    from tests.github_support import gate_env

    gate_env(monkeypatch, fake_github, tmp_path / "store")
    fake_github.add_team("acme", "it-helpdesk", ["hank"])
    return tmp_path / "store"


def _promote(fake_github, store, with_system: bool = False):
    """What the gate leaves after a promotion: a promoted decision on record and its signed lock on
    promote/<name>/<sha7> (written with the store's signing key, as flows/promotion.py does);
    ``with_system``: the branch also holds the system's files as they were judged (the example's
    manifest and evidence), as production does once the team's change is merged."""
    from promotion_gate.checklists.decision import build_lock
    from promotion_gate.audit_store.store import AuditStore
    from promotion_gate.audit_store.lock_signing import build_signed_lock_file
    from tests.audit_support import decision as promoted_decision
    from tests.github_support import PROMOTES, REPO, request_for

    fake_github.create_repo(REPO)
    sha = fake_github.commit_files(REPO, "feature", {f"ai-systems/{PROMOTES}/promotion.yaml": "name: x\n"}, "add")
    decision = promoted_decision("promoted", commit=sha)  # the example's judged checklist, at this commit in this repository
    decision = decision.model_copy(update={"request": request_for(sha, 1), "checklist": decision.checklist.model_copy(update={"commit": sha})})
    AuditStore(store).record(decision)
    value = build_lock(decision)
    path = f"ai-systems/{PROMOTES}/production.lock.json"
    branch = f"promote/{PROMOTES}/{sha[:7]}"
    files = {path: build_signed_lock_file(value, str(store))}
    if with_system:
        from tests.github_support import EXAMPLES

        files |= {f"ai-systems/{PROMOTES}/{p.relative_to(EXAMPLES / PROMOTES)}": p.read_bytes()
                  for p in sorted((EXAMPLES / PROMOTES).rglob("*")) if p.is_file()}
    head = fake_github.commit_files(REPO, branch, files, "promote", parent=fake_github.branch_sha(REPO, "main"))
    number = fake_github.open_pull(REPO, branch, "main", "Promote", "promotion-gate-bot")
    return path, branch, head, number


def _guard(fake_github, branch: str, files: dict, number_of=None) -> dict:
    from promotion_gate.flows.enforcement import guard_pull
    from promotion_gate.config.settings import load_settings
    from tests.github_support import REPO

    sha = fake_github.commit_files(REPO, branch, files, "change", author_login="mallory")
    number = number_of or fake_github.open_pull(REPO, branch, "main", "change", "mallory")
    guard_pull.fn(load_settings(), REPO, number, sha, None)
    return fake_github.statuses(REPO, sha).get("promotion-gate/lock-guard")


@pytest.mark.usefixtures("prefect_harness")
def test_the_gates_own_promotion_pr_passes_the_guard(fake_github, guarded):
    from tests.github_support import REPO

    from promotion_gate.flows.enforcement import guard_pull
    from promotion_gate.config.settings import load_settings

    path, branch, head, number = _promote(fake_github, guarded)
    assert guard_pull.fn(load_settings(), REPO, number, head, None) == 0
    assert fake_github.statuses(REPO, head)["promotion-gate/lock-guard"]["state"] == "success"


@pytest.mark.usefixtures("prefect_harness")
def test_a_hand_edited_copy_of_a_genuine_lock_fails_the_guard(fake_github, guarded):
    from tests.github_support import REPO

    path, branch, head, number = _promote(fake_github, guarded)
    genuine = fake_github.file_at(REPO, branch, path)
    status = _guard(fake_github, "sneaky", {path: edited(genuine, lambda b: b["evidence"][0]["metrics"].update(
        {k: 1.0 for k in b["evidence"][0]["metrics"]}))})
    assert status["state"] == "failure" and "not written by the gate" in status["description"]
    assert _guard(fake_github, "copy", {path: genuine})["state"] == "success"  # the same bytes: a genuine lock
    fake_github.commit_files(REPO, "main", {path: genuine}, "merge the promotion")
    assert _guard(fake_github, "drop", {path: None})["state"] == "failure"  # deleted: documented as a failure


@pytest.mark.usefixtures("prefect_harness")
def test_a_forged_lock_hidden_past_githubs_file_list_fails_the_guard(fake_github, guarded):
    """GitHub lists at most 3000 of a PR's files: 3000 others sorted first would hide a lock."""
    from tests.github_support import REPO

    path, branch, head, number = _promote(fake_github, guarded)
    forged = edited(fake_github.file_at(REPO, branch, path), lambda b: b.update(model="evil/unapproved@1"))
    filler = {f"aa-vendor/f{i:04d}.txt": b"x\n" for i in range(3000)}
    status = _guard(fake_github, "forged-big", filler | {path: forged})
    assert status["state"] == "failure" and status["description"].startswith("1 of 1 lock file(s) not"), status
    from promotion_gate.flows.lock_guard_flow import read_changed
    from promotion_gate.github_api.client import open_github, retrying_from
    from promotion_gate.config.settings import load_settings

    settings = load_settings()
    repo = open_github(settings, REPO).get_repo(REPO)
    pull = next(p for p in repo.get_pulls() if p.head.ref == "forged-big")
    _, findings = read_changed(retrying_from(settings), repo, pull.number, pull.head.sha, [])
    assert "changes 3001 files; GitHub lists 3000 of them" in findings[0].reason and "split the pull request" in findings[0].reason


@pytest.mark.usefixtures("prefect_harness")
def test_a_lock_made_a_symbolic_link_fails_the_guard(fake_github, guarded):
    """A lock that links to another file in its folder: a later PR could change the target, and no
    changed path would be a lock."""
    from promotion_gate.config.settings import load_settings
    from promotion_gate.flows.enforcement import guard_pull
    from tests.github_support import REPO

    path, branch, head, number = _promote(fake_github, guarded)
    data = path.replace("production.lock.json", "lock-data.json")
    sha = fake_github.commit_files(REPO, "link", {data: fake_github.file_at(REPO, branch, path)}, "tidy", parent=head,
                                   author_login="mallory", symlinks={path: "lock-data.json"})
    guard_pull.fn(load_settings(), REPO, fake_github.open_pull(REPO, "link", "main", "tidy locks", "mallory"), sha, None)
    status = fake_github.statuses(REPO, sha)["promotion-gate/lock-guard"]
    assert status["state"] == "failure" and status["description"].startswith("1 of 1 lock file(s) not"), status


@pytest.mark.usefixtures("prefect_harness")
def test_a_pr_not_touching_locks_passes_and_one_into_another_branch_gets_nothing(fake_github, guarded):
    from promotion_gate.flows.enforcement import guard_pull
    from promotion_gate.config.settings import load_settings
    from tests.github_support import REPO

    fake_github.create_repo(REPO)
    assert _guard(fake_github, "docs", {"docs/x.md": "hi\n"})["state"] == "success"
    sha = fake_github.commit_files(REPO, "feature-2", {"ai-systems/x/production.lock.json": "{}"}, "x")
    fake_github.commit_files(REPO, "develop", {"README.md": "dev\n"}, "dev")
    number = fake_github.open_pull(REPO, "feature-2", "develop", "into develop", "mallory")
    assert guard_pull.fn(load_settings(), REPO, number, sha, None) is None
    assert "promotion-gate/lock-guard" not in fake_github.statuses(REPO, sha)


@pytest.mark.usefixtures("prefect_harness")
def test_pinned_keys_decide_which_signatures_count(fake_github, guarded, monkeypatch, tmp_path):
    from promotion_gate.checklists.attestation import public_pem
    from promotion_gate.audit_store.store import AuditStore
    from promotion_gate.flows.enforcement import guard_pull
    from promotion_gate.config.settings import load_settings
    from tests.github_support import REPO

    path, branch, head, number = _promote(fake_github, guarded)
    pins = tmp_path / "pinned.pem"
    pins.write_bytes(public_pem(OTHER.public_key()))  # the gate's own key is not among them
    monkeypatch.setenv("PROMOTION_GATE_TRUSTED_KEYS", str(pins))
    assert guard_pull.fn(load_settings(), REPO, number, head, None) == 1
    own = AuditStore(guarded).signing_key.private_key.public_key()
    pins.write_bytes(public_pem(OTHER.public_key()) + public_pem(own))  # a rotation: both pinned
    assert guard_pull.fn(load_settings(), REPO, number, head, None) == 0


def test_a_locks_evidence_roles_are_signed_and_a_lock_from_before_roles_still_verifies():
    """0.3.0 records whether each locked file was an evaluation or the drill (PG-EVAL-005 needs it); the
    signed payload leaves the key out when it is None, so every lock written before still verifies."""
    from promotion_gate.checklists.lock_guard import lock_payload

    old = lock()
    assert old.evidence[0].role is None and b'"role"' not in lock_payload(old) and b'"max_regression"' not in lock_payload(old)
    assert verify_lock(PATH, signed(old), TRUSTED, LEDGER.get).ok
    with_roles = old.model_copy(update={"evidence": [old.evidence[0].model_copy(update={"role": "drill"})]})
    data = signed(with_roles)
    assert b'"role":"drill"' in lock_payload(with_roles) and verify_lock(PATH, data, TRUSTED, LEDGER.get).ok
    for role in ("evaluation", None):  # a drill relabelled, or its role dropped, after signing
        finding = verify_lock(PATH, edited(data, lambda b: b["evidence"][0].update(role=role)), TRUSTED, LEDGER.get)
        assert not finding.ok and "edited after the gate signed it" in finding.reason


@pytest.mark.usefixtures("prefect_harness")
def test_a_lock_of_a_promotion_in_another_repository_fails_the_guard(fake_github, guarded):
    """The App serves a sandbox too, whose low tier promotes with no sign-off: its genuine, gate-signed
    lock copied into a PR of acme/models is not a promotion of acme/models."""
    from promotion_gate.audit_store.lock_signing import build_signed_lock_file
    from promotion_gate.audit_store.store import AuditStore
    from promotion_gate.checklists.decision import Decision, Verdict
    from tests.github_support import PROMOTES, REPO, request_for

    fake_github.create_repo(REPO)
    foreign = "f" * 40  # a commit of mallory/sandbox
    decision = Decision(decision_id=f"{PROMOTES}-{foreign[:7]}-0123456789", verdict=Verdict.promoted, reasons=["ok"],
                        request=request_for(foreign, 1, repo="mallory/sandbox"), decided_at=datetime(2026, 12, 1, tzinfo=timezone.utc))
    AuditStore(guarded).record(decision)
    value = lock(decision.decision_id, PROMOTES).model_copy(update={"source_commit": foreign})
    status = _guard(fake_github, "copied-from-sandbox", {f"ai-systems/{PROMOTES}/production.lock.json": build_signed_lock_file(value, str(guarded))})
    assert status["state"] == "failure", status


#   what the ledger says of the lock's decision, the repository guarded, and whether the lock passes
REPOSITORIES = [
    ("made for this repository", "acme/models", "acme/models", True),
    ("the same repository, spelled in another case", "Acme/Models", "acme/models", True),
    ("made for another repository", "mallory/sandbox", "acme/models", False),
    ("a lookup that cannot say for which repository", None, "acme/models", False),
    ("no repository guarded (a pure check of the lock alone)", "mallory/sandbox", None, True),
]


@pytest.mark.parametrize("name, recorded_for, guarding, ok", REPOSITORIES, ids=[r[0] for r in REPOSITORIES])
def test_the_lock_must_be_of_a_promotion_in_the_repository_guarded(name, recorded_for, guarding, ok):
    ledger = {"helpdesk-ccccccc-promoted": RecordedPromotion("promoted", "helpdesk", SHA, recorded_for)}
    finding = verify_lock(PATH, signed(), TRUSTED, ledger.get, guarding)
    assert finding.ok is ok, finding.reason
    if not ok:
        assert "repository" in finding.reason


# The ledger behind a lock, verified as `audit verify` verifies it (audit_store/lookup.py). Each case
# builds a store with the gate's key A, promotes helpdesk-summarizer, and signs its lock; `pins` are
# the keys pinned outside the store (PROMOTION_GATE_TRUSTED_KEYS).
LEDGER_KEYS = {}


def _ledger_key(name: str):
    from tests.audit_support import signing_key

    return LEDGER_KEYS.setdefault(name, signing_key(f"ledger {name}"))


def _ledger_case(root, steps):
    """Replay `steps` on a new store; the lock of the promoted decision, signed as the last step says."""
    from promotion_gate.audit_store.key_rotation import record_rotation
    from promotion_gate.audit_store.store import AuditStore
    from promotion_gate.checklists.attestation import public_pem
    from tests.audit_support import decision, production_lock_of

    promoted, lock_key = decision("promoted"), None
    for step, *args in steps:
        if step in ("record", "record-0.2.0"):
            from unittest import mock

            from promotion_gate.audit_store import store as store_module

            with mock.patch.object(store_module, "GATE_VERSION", "0.2.0" if step == "record-0.2.0" else store_module.GATE_VERSION):
                AuditStore(root, _ledger_key(args[0])).record(promoted if args[1] == "promoted" else decision(args[1]))
        elif step == "rotate":
            record_rotation(AuditStore(root, _ledger_key(args[0])), public_pem(_ledger_key(args[1]).private_key.public_key()),
                            datetime(2026, 12, 1, 9, tzinfo=timezone.utc))
        elif step == "lock":
            lock_key, edit = _ledger_key(args[0]), (args[1] if len(args) > 1 else None)
        else:
            step(root, promoted.decision_id)
    value = production_lock_of(promoted)
    if edit == "metrics":
        value = value.model_copy(update={"evidence": [e.model_copy(update={"metrics": {k: 0.5 for k in e.metrics}}) for e in value.evidence]})
    elif edit == "pre-0.3.0":
        value = value.model_copy(update={"evidence": [e.model_copy(update={"role": None, "max_regression": {}}) for e in value.evidence]})
    elif edit:
        value = value.model_copy(update=edit)
    return value, build_signed_lock(value, lock_key.private_key, lock_key.key_id)


def _reencode_line(root, did):  # the promoted line rewritten with a space: the same facts, other bytes
    text = (root / "ledger.jsonl").read_text().splitlines()
    text = [ln.replace('"verdict":', '"verdict": ') if did in ln else ln for ln in text]
    (root / "ledger.jsonl").write_text("\n".join(text) + "\n")


def _edit_decision(root, did):  # decision.json's repository changed: its digest no longer the signed one
    path = root / "decisions" / did / "decision.json"
    path.write_text(path.read_text().replace("acme/ai-systems", "acme/other"))


def _drop_envelope(root, did):
    (root / "decisions" / did / "attestation.dsse.json").unlink()


def _forge_first_line(root, did):  # an insider's own line for the id, signed with their key, put first
    from promotion_gate.audit_store.store import AuditStore
    from tests.audit_support import decision

    other = root.parent / "forged"
    AuditStore(other, _ledger_key("M")).record(decision("promoted"))
    forged = (other / "ledger.jsonl").read_bytes()
    (root / "ledger.jsonl").write_bytes(forged + (root / "ledger.jsonl").read_bytes())


LEDGER_CASES = [
    # (case, steps, pinned keys, passes, what the finding says)
    ("the gate's own promotion", [("record", "A", "promoted"), ("lock", "A")], "A", True, "written by the gate"),
    ("the gate rotated A to B, B promoted and signed; A alone is pinned",
     [("record", "A", "blocked"), ("rotate", "A", "B"), ("record", "B", "promoted"), ("lock", "B")], "A", True, "written by the gate"),
    ("a lock signed with the retired key A for a decision recorded after A handed over (a leaked old key)",
     [("record", "A", "blocked"), ("rotate", "A", "B"), ("record", "B", "promoted"), ("lock", "A")], "A", False,
     "not trusted when decision"),
    ("the same, both keys pinned as operations.md says for a rotation",
     [("record", "A", "blocked"), ("rotate", "A", "B"), ("record", "B", "promoted"), ("lock", "A")], "AB", False,
     "not trusted when decision"),
    ("a lock signed with A for a decision A recorded before it handed over: a genuine rollback",
     [("record", "A", "promoted"), ("rotate", "A", "B"), ("record", "B", "blocked"), ("lock", "A")], "A", True, "written by the gate"),
    ("a rotation signed by a stranger M to its own N, N promoted and signed",
     [("record", "A", "blocked"), ("rotate", "M", "N"), ("record", "N", "promoted"), ("lock", "N")], "A", False,
     "does not verify with the gate's pinned key"),
    ("the promotion recorded with an unpinned key M, the lock by A",
     [("record", "M", "promoted"), ("lock", "A")], "A", False, "ledger entry does not verify (untrusted"),
    ("the promoted line re-encoded", [("record", "A", "promoted"), (_reencode_line,), ("lock", "A")], "A", False,
     "ledger entry does not verify (edited"),
    ("decision.json edited after it was recorded", [("record", "A", "promoted"), (_edit_decision,), ("lock", "A")], "A", False,
     "ledger entry does not verify (edited"),
    ("the signed envelope removed", [("record", "A", "promoted"), (_drop_envelope,), ("lock", "A")], "A", False,
     "ledger entry does not verify (missing"),
    ("an insider's line for the same id put before the genuine one", [("record", "A", "promoted"), (_forge_first_line,), ("lock", "A")],
     "A", False, "ledger entry does not verify"),
    # a key that signs locks (leaked, retired) writes a lock the decision does not imply
    ("a retired key signs a lock of its own decision with another model",
     [("record", "A", "promoted"), ("rotate", "A", "B"), ("lock", "A", {"model": "evil/unapproved@1"})], "A", False, "lock's model is not"),
    ("the gate's key signs a lock with lower metrics (a weaker baseline for PG-EVAL-005)",
     [("record", "A", "promoted"), ("lock", "A", "metrics")], "A", False, "lock's evidence is not"),
    ("the gate's key signs a lock naming other sign-offs", [("record", "A", "promoted"), ("lock", "A", {"approved_by": ["risk:someone"]})],
     "A", False, "lock's approved_by is not"),
    ("the gate's key signs a lock without its cost (PG-COST-002 then has no baseline)",
     [("record", "A", "promoted"), ("lock", "A", {"cost": None, "manifest_sha256": "0" * 64})], "A", False, "is not what decision"),
    ("a current decision's lock stripped of its roles and tolerances (the next PG-EVAL-005 would not see a drill or a tolerance)",
     [("record", "A", "promoted"), ("lock", "A", "pre-0.3.0")], "A", False, "lock's evidence is not"),
    ("a lock of a decision recorded by 0.2.0, written without roles or tolerances: a genuine rollback",
     [("record-0.2.0", "A", "promoted"), ("lock", "A", "pre-0.3.0")], "A", True, "written by the gate"),
    ("the same decision's lock with roles added", [("record-0.2.0", "A", "promoted"), ("lock", "A")], "A", False, "lock's evidence is not"),
]


@pytest.mark.parametrize(("case", "steps", "pins", "ok", "says"), LEDGER_CASES, ids=[c[0] for c in LEDGER_CASES])
def test_the_ledger_entry_behind_a_lock_is_verified(tmp_path, case, steps, pins, ok, says):
    from promotion_gate.audit_store.lookup import read_trusted

    root = tmp_path / "store"
    value, data = _ledger_case(root, steps)
    ledger = read_trusted(root, {_ledger_key(k).key_id: _ledger_key(k).private_key.public_key() for k in pins})
    found = verify_lock(f"ai-systems/{value.system}/production.lock.json", data, ledger.keys, ledger.recorded, "acme/ai-systems")
    assert (found.ok, says in found.reason) == (ok, True), found.reason


def test_a_genuine_lock_of_evidence_timed_at_a_sub_minute_offset_passes(tmp_path):
    """As flows/promotion.py does it: the lock is built from the decision in memory, then the decision is
    recorded, and the guard rebuilds the lock from decision.json. An evidence time at `+00:00:30` (which
    Python reads, and JSON writes to the minute only) is kept in UTC, so the two locks agree."""
    from promotion_gate.audit_store.lookup import read_trusted
    from promotion_gate.audit_store.store import AuditStore
    from promotion_gate.checklists.checklist import evaluate
    from promotion_gate.checklists.decision import Verdict, build_lock, decide
    from promotion_gate.forge.candidate_reader import read_candidate
    from tests.audit_support import EXAMPLES, NOW, POLICY, Overlay, request

    system = "helpdesk-summarizer"
    report = (EXAMPLES / "ai-systems" / system / "evals" / "promptfoo.json").read_text()
    assert '"timestamp": "2026-11-20T09:30:00.000Z"' in report
    files = {f"ai-systems/{system}/evals/promptfoo.json":
             report.replace('"timestamp": "2026-11-20T09:30:00.000Z"', '"timestamp": "2026-11-20T09:30:00.000+00:00:30"').encode()}
    req = request(system)
    promoted = decide(req, evaluate(read_candidate(Overlay(files), system, req.commit), POLICY, NOW), None, now=NOW)
    assert promoted.verdict == Verdict.promoted, promoted.reasons
    key = _ledger_key("A")
    data = build_signed_lock(build_lock(promoted), key.private_key, key.key_id)
    root = tmp_path / "store"
    AuditStore(root, key).record(promoted)
    ledger = read_trusted(root, {key.key_id: key.private_key.public_key()})
    found = verify_lock(f"ai-systems/{system}/production.lock.json", data, ledger.keys, ledger.recorded, "acme/ai-systems")
    assert found.ok, found.reason
