"""Issue 11: whose signatures count (pinned keys only), asserted sign-offs, and each system's state
derived from the ledger. Tables of the ways around each rule, with exact outcomes."""

from __future__ import annotations

import re
import subprocess
import sys
from datetime import timedelta

import pytest

from promotion_gate.checklists.attestation import public_pem
from promotion_gate.checklists.ledger import LedgerEntry, system_states
from promotion_gate.checklists.signoff import Action, Click, judge
from promotion_gate.audit_store.store import AuditStore
from promotion_gate.audit_store.signing_keys import DEMO_PEM_MARK, SigningKeyError, pinned_keys
from tests.audit_support import POLICY, checklist, decision, signing_key
from tests.conftest import NOW, ROOT

KEY = signing_key("trust")


def cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    import os

    return subprocess.run([sys.executable, "-m", "promotion_gate.cli", "audit", *args], cwd=ROOT, capture_output=True,
                          text=True, env={**os.environ, **(env or {})})


@pytest.fixture(scope="module")
def store_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("trust") / "store"
    store = AuditStore(root, KEY)
    for kind in ("blocked", "promoted"):
        store.record(decision(kind))
    return root


def _pem(tmp_path, name: str, *keys, prefix: bytes = b"") -> str:
    path = tmp_path / name
    path.write_bytes(prefix + b"".join(public_pem(k.private_key.public_key()) for k in keys))
    return str(path)


@pytest.mark.parametrize(("how", "exit_code", "says"), [
    ("no key at all", 3, "untrusted: no pinned key"),
    ("--key the gate's key", 0, "OK: the chain, every file digest and every signature hold, signed by pinned keys"),
    ("--key a file with another key and the gate's", 0, "signed by pinned keys"),
    ("--key only another key", 1, "untrusted: signed with key"),
    ("PROMOTION_GATE_TRUSTED_KEYS the gate's key", 0, "signed by pinned keys"),
    ("PROMOTION_GATE_TRUSTED_KEYS a missing file", 2, "PROMOTION_GATE_TRUSTED_KEYS: cannot read"),
    ("--key the gate's key marked as the DEMO key", 4, "signed with a DEMO key: not evidence"),
])
def test_only_keys_pinned_outside_the_store_are_trusted(store_root, tmp_path, how, exit_code, says) -> None:
    other = signing_key("other")
    env, args = {"PROMOTION_GATE_TRUSTED_KEYS": ""}, []
    if how == "--key the gate's key":
        args = ["--key", _pem(tmp_path, "gate.pem", KEY)]
    elif how.startswith("--key a file with another"):
        args = ["--key", _pem(tmp_path, "both.pem", other, KEY)]
    elif how == "--key only another key":
        args = ["--key", _pem(tmp_path, "other.pem", other)]
    elif how == "PROMOTION_GATE_TRUSTED_KEYS the gate's key":
        env["PROMOTION_GATE_TRUSTED_KEYS"] = _pem(tmp_path, "trusted.pem", KEY)
    elif how == "PROMOTION_GATE_TRUSTED_KEYS a missing file":
        env["PROMOTION_GATE_TRUSTED_KEYS"] = str(tmp_path / "absent.pem")
    elif how.endswith("DEMO key"):
        args = ["--key", _pem(tmp_path, "demo.pem", KEY, prefix=DEMO_PEM_MARK)]
    if not env["PROMOTION_GATE_TRUSTED_KEYS"]:
        env.pop("PROMOTION_GATE_TRUSTED_KEYS")
    out = cli("verify", str(store_root), *args, env=env)
    assert out.returncode == exit_code, (out.stdout, out.stderr)
    assert says in out.stdout + out.stderr


def test_the_trusted_keys_setting_may_name_a_prefect_secret_block(prefect_harness) -> None:
    from prefect.blocks.system import Secret

    from promotion_gate.config.settings import Settings

    Secret(value=public_pem(KEY.private_key.public_key()).decode()).save("audit-trusted-keys", overwrite=True)
    keys = pinned_keys([], settings=Settings(trusted_keys_block="audit-trusted-keys"))
    assert list(keys) == [KEY.key_id]
    with pytest.raises(SigningKeyError, match="cannot load it"):
        pinned_keys([], settings=Settings(trusted_keys_block="no-such-block"))


def test_the_index_is_red_without_a_pinned_key_and_green_with_one(store_root, tmp_path) -> None:
    assert cli("index", str(store_root)).returncode == 0
    html = (store_root / "index.html").read_text()
    assert 'class="banner bad"' in html and "untrusted: no pinned key" in html
    assert cli("index", str(store_root), "--key", _pem(tmp_path, "gate.pem", KEY)).returncode == 0
    html = (store_root / "index.html").read_text()
    assert 'class="banner ok"' in html and "signed by pinned keys" in html


def _click(who: str, channel: str):
    cl = checklist("support-assistant")
    return cl, Click(reviewer=who, channel=channel, action=Action.approve, digest=cl.digest, at=NOW - timedelta(minutes=5))


@pytest.mark.parametrize(("who", "channel", "accept", "outcome"), [
    ("U0SAM", "slack", False, "authenticated"),  # a signed Slack request: counts wherever
    ("U0SAM", "slack", True, "authenticated"),
    ("sam", "console", True, "asserted"),        # the console: counts only where asserted sign-offs are accepted
    ("sam", "console", False, "asserted-refused"),
])
def test_a_sign_off_records_how_it_was_authenticated_and_the_policy_can_refuse_asserted_ones(who, channel, accept, outcome) -> None:
    cl, click = _click(who, channel)
    got = judge(click, policy=POLICY, quorum=cl.signoff.quorum, digest=cl.digest, excluded=set(), given=[], waiting=True,
                accept_asserted=accept)
    assert getattr(got, "authentication", None) == outcome or getattr(got, "code", None) == outcome, got


def test_the_policy_states_its_choice_for_asserted_sign_offs() -> None:
    assert {tier: POLICY.tiers[tier].signoff.accept_asserted_signoffs for tier in POLICY.tiers} == {
        "low": True, "medium": True, "high": True}  # locally; the GitHub path refuses them at every tier


def _entry(seq: int, system: str, verdict: str, follows: str | None = None) -> LedgerEntry:
    return LedgerEntry(seq=seq, prev="0" * 64, decision_id=f"{system}-{seq:07d}-{verdict[:10]}", system=system, verdict=verdict,
                       decided_at=NOW + timedelta(minutes=seq), decision_sha256="0" * 64, files={}, signature="x",
                       key_id="0" * 64, follows=follows)


def test_each_systems_state_is_derived_from_the_ledger() -> None:
    blocked = _entry(1, "support-assistant", "blocked")
    other = _entry(2, "helpdesk-summarizer", "promoted")
    promoted = _entry(3, "support-assistant", "promoted", follows=blocked.decision_id)
    rejected = _entry(4, "helpdesk-summarizer", "blocked", follows=other.decision_id)
    states = system_states([blocked, other, promoted, rejected])
    assert list(states) == ["helpdesk-summarizer", "support-assistant"]
    s = states["support-assistant"]
    assert (s.latest, s.verdict, s.superseded, s.superseded_verdict, s.decisions, s.last_promoted) == (
        promoted.decision_id, "promoted", blocked.decision_id, "blocked", 2, promoted.decision_id)
    h = states["helpdesk-summarizer"]
    assert (h.verdict, h.superseded, h.last_promoted) == ("blocked", other.decision_id, other.decision_id)
    assert system_states([]) == {}


def test_the_index_shows_each_systems_state_from_the_ledger(tmp_path) -> None:
    root = tmp_path / "store"
    store = AuditStore(root, KEY)
    first = store.record(decision("blocked", system="helpdesk-summarizer", commit="b1" + "0" * 38))
    later = store.record(decision("promoted"))
    assert later.entry.follows == first.entry.decision_id  # the same system: the promotion supersedes the block
    assert cli("index", str(root)).returncode == 0
    html = (root / "index.html").read_text()
    table = html[html.index('id="system-states"'):]
    assert later.entry.decision_id in table and f"{first.entry.decision_id} (blocked)" in table


def _rotated_store(tmp_path, signer_of_rotation=None):
    """Two decisions by the old key, a rotation (by ``signer_of_rotation``, default the old key), one by the new key."""
    from promotion_gate.audit_store.key_rotation import record_rotation

    root = tmp_path / "store"
    new = signing_key("new")
    old_store = AuditStore(root, KEY)
    old_store.record(decision("blocked"))
    rotation = record_rotation(AuditStore(root, signer_of_rotation or KEY), public_pem(new.private_key.public_key()), NOW)
    AuditStore(root, new).record(decision("promoted"))
    return root, new, rotation


@pytest.mark.parametrize(("case", "exit_code", "says"), [
    ("rotation signed by the pinned old key", 0, "signed by pinned keys"),
    ("rotation signed by a stranger", 1, "untrusted: signed with key"),
    ("rotation's envelope nested 200,000 deep", 1, "edited: attestation.dsse.json was changed after it was recorded"),
])
def test_a_key_rotation_is_a_signed_ledger_entry_that_verify_follows(tmp_path, case, exit_code, says) -> None:
    stranger = signing_key("stranger") if "stranger" in case else None
    root, new, rotation = _rotated_store(tmp_path, stranger)
    assert rotation.entry.verdict == "key-rotation" and rotation.entry.seq == 2
    if "nested" in case:  # read by follow_rotations before the walk: a RecursionError there was exit 2, no verdict
        (rotation.folder / "attestation.dsse.json").write_text("[" * 200_000)
    out = cli("verify", str(root), "--key", _pem(tmp_path, "old.pem", KEY))
    assert out.returncode == exit_code and says in out.stdout, out.stdout


def test_a_rotated_in_key_is_not_trusted_before_its_rotation(tmp_path) -> None:
    from promotion_gate.audit_store.key_rotation import record_rotation

    root = tmp_path / "store"
    new = signing_key("new")
    AuditStore(root, new).record(decision("blocked"))  # signed by the new key before anyone handed over to it
    record_rotation(AuditStore(root, KEY), public_pem(new.private_key.public_key()), NOW)
    v = AuditStore(root).verify(trusted={KEY.key_id: KEY.private_key.public_key()})
    assert v.problem.kind.value == "untrusted" and v.problem.seq == 1


def test_rotate_key_from_the_command_line(tmp_path, monkeypatch) -> None:
    from tests.audit_support import write_key_pem

    root = tmp_path / "store"
    AuditStore(root, KEY).record(decision("blocked"))
    new = signing_key("next")
    env = {"PROMOTION_GATE_SIGNING_KEY_PATH": str(write_key_pem(tmp_path / "old.pem", KEY))}
    out = cli("rotate-key", str(root), "--new-key", _pem(tmp_path, "new.pub.pem", new), env=env)
    assert out.returncode == 0 and "recorded key-rotation-2-" in out.stdout, out.stderr
    assert cli("rotate-key", str(root), "--new-key", str(tmp_path / "absent.pem"), env=env).returncode == 2
    assert cli("verify", str(root), "--key", _pem(tmp_path, "pinned.pem", KEY)).returncode == 0


def test_the_index_says_how_the_sign_offs_were_authenticated(tmp_path) -> None:
    root = tmp_path / "store"
    AuditStore(root, KEY).record(decision("waived"))  # two Slack sign-offs: authenticated
    assert cli("index", str(root)).returncode == 0
    html = (root / "index.html").read_text()
    assert re.search(r"Sign-offs counted: \d+ authenticated \(slack\)\.", html) and "Asserted sign-offs" not in html
    root2 = tmp_path / "console"
    d = decision("waived")
    AuditStore(root2, KEY).record(d.model_copy(update={"signoffs": [s.model_copy(update={"channel": "console", "authentication": "asserted"}) for s in d.signoffs]}))
    assert cli("index", str(root2)).returncode == 0
    assert "asserted (console). <b" in (root2 / "index.html").read_text()


def test_a_store_from_before_the_signed_mark_still_counts_its_demo_side_file_and_a_private_key_inside_is_noted(tmp_path) -> None:
    from promotion_gate.audit_store.signing_keys import private_pem

    root = tmp_path / "store"
    AuditStore(root, KEY).record(decision("blocked"))
    (root / "keys" / f"{KEY.key_id}.demo").write_text("a demo key\n")  # what an older version wrote
    (root / ".demo-signing-key.pem").write_bytes(private_pem(KEY.private_key))
    v = AuditStore(root).verify(trusted={KEY.key_id: KEY.private_key.public_key()})
    assert v.ok and v.demo_signed == {KEY.key_id: 1} and any("a private key lies inside the store" in n for n in v.notes)


# Key rotation retires the old key. A script is a list of steps: ("record", signer) or ("rotate", signer, new key);
# keys by name: A (the only key pinned), B, C (the next keys), X (an attacker's key). ``insider``: the store's own
# refusals are bypassed (whoever holds a retired key writes the ledger with tools of their own), so verify alone judges.
ROTATION_KEYS = {name: signing_key(f"rotation {name}") for name in "ABCX"}


def _rotation_store(tmp_path, script, monkeypatch, insider=True):
    from promotion_gate.audit_store import key_rotation
    from promotion_gate.audit_store.key_rotation import record_rotation
    from tests.audit_support import every_kind

    if insider:
        monkeypatch.setattr(key_rotation, "retired_at", lambda ledger, kid: None, raising=False)
    root, kinds, at = tmp_path / "store", iter(every_kind().values()), NOW
    for step in script:
        if step[0] == "record":
            AuditStore(root, ROTATION_KEYS[step[1]]).record(next(kinds))
        else:
            at += timedelta(minutes=1)
            record_rotation(AuditStore(root, ROTATION_KEYS[step[1]]), public_pem(ROTATION_KEYS[step[2]].private_key.public_key()), at)
    return root


def _kid(name: str) -> str:
    return ROTATION_KEYS[name].key_id


ROTATION_CASES = [
    # (case, script, pinned, the problem's seq or None, what it says)
    ("A hands over to B, B signs", [("record", "A"), ("record", "A"), ("rotate", "A", "B"), ("record", "B")], "A", None, ""),
    ("A to B to C, each rotation by the current key", [("record", "A"), ("rotate", "A", "B"), ("record", "B"),
                                                       ("rotate", "B", "C"), ("record", "C")], "A", None, ""),
    ("A signs a decision after handing over to B", [("record", "A"), ("rotate", "A", "B"), ("record", "B"), ("record", "A")],
     "A", 4, f"signed by key {_kid('A')[:16]}..., which was retired at seq 2"),
    ("A signs right after its hand-over, before B signs anything", [("record", "A"), ("rotate", "A", "B"), ("record", "A")],
     "A", 3, "retired at seq 2"),
    ("A, retired, hands over a second time to an attacker's key", [("record", "A"), ("rotate", "A", "B"), ("record", "B"),
                                                                  ("rotate", "A", "X"), ("record", "X")],
     "A", 4, "retired at seq 2 (it handed over to key"),
    ("the reviewer's probe: A signs after its hand-over, then hands over to X, X signs",
     [("record", "A"), ("record", "A"), ("rotate", "A", "B"), ("record", "B"), ("record", "A"), ("rotate", "A", "X"),
      ("record", "X")], "A", 5, "retired at seq 3"),
    ("B hands back to the retired A, A signs", [("record", "A"), ("rotate", "A", "B"), ("record", "B"), ("rotate", "B", "A"),
                                               ("record", "A")], "A", 5, "retired at seq 2"),
    ("A and B both pinned: A signs after handing over", [("record", "A"), ("rotate", "A", "B"), ("record", "A")], "AB", 3,
     "retired at seq 2"),
    ("B signs before A hands over to it", [("record", "B"), ("rotate", "A", "B")], "A", 1, "before the rotation (seq 2)"),
]


@pytest.mark.parametrize(("case", "script", "pinned", "seq", "says"), ROTATION_CASES, ids=[c[0] for c in ROTATION_CASES])
def test_a_rotation_retires_the_key_that_handed_over(tmp_path, monkeypatch, case, script, pinned, seq, says) -> None:
    root = _rotation_store(tmp_path, script, monkeypatch)
    v = AuditStore(root).verify(trusted={_kid(n): ROTATION_KEYS[n].private_key.public_key() for n in pinned})
    if seq is None:
        assert v.problem is None and v.pinned and not v.demo_signed, v.problem
        return
    assert v.problem is not None and v.problem.kind.value == "untrusted" and v.problem.seq == seq, v.problem
    assert says in v.problem.detail and v.problem.decision_id, v.problem


def test_the_probe_fails_verify_on_the_command_line_naming_the_entry(tmp_path, monkeypatch) -> None:
    root = _rotation_store(tmp_path, ROTATION_CASES[5][1], monkeypatch)
    out = cli("verify", str(root), "--key", _pem(tmp_path, "a.pem", ROTATION_KEYS["A"]))
    assert out.returncode == 1, out.stdout
    assert re.search(r"FAIL seq 5, decision [a-z0-9-]+, line 5: untrusted: signed by key [0-9a-f]{16}\.\.\., which was "
                     r"retired at seq 3", out.stdout), out.stdout
    assert "checked before it: 4 entries hold" in out.stdout, out.stdout


@pytest.mark.parametrize(("case", "then"), [
    ("the retired key records a decision", ("record", "A")),
    ("the retired key rotates again", ("rotate", "A", "X")),
    ("a rotation hands back to a retired key", ("rotate", "B", "A")),
])
def test_the_store_refuses_to_sign_with_a_retired_key(tmp_path, monkeypatch, case, then) -> None:
    from promotion_gate.audit_store.key_rotation import record_rotation
    from promotion_gate.audit_store.store import LedgerError

    root = _rotation_store(tmp_path, [("record", "A"), ("rotate", "A", "B")], monkeypatch, insider=False)
    lines = (root / "ledger.jsonl").read_bytes()
    with pytest.raises((LedgerError, ValueError), match="retired at seq 2"):
        if then[0] == "record":
            AuditStore(root, ROTATION_KEYS[then[1]]).record(decision("blocked"))
        else:
            record_rotation(AuditStore(root, ROTATION_KEYS[then[1]]), public_pem(ROTATION_KEYS[then[2]].private_key.public_key()),
                            NOW + timedelta(hours=1))
    assert (root / "ledger.jsonl").read_bytes() == lines  # nothing appended
