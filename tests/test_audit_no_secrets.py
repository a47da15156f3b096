"""No secret ever reaches an output: with a signing key and tokens configured, every file the test
session wrote (audit stores, indexes, test artifacts), the CLI's output and the flow's Prefect
artifacts and logs are scanned for every form of every secret.
"""

from __future__ import annotations

import base64
import secrets as random_secrets
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from promotion_gate.cli.audit import run_index
from promotion_gate.audit_store.store import AuditStore
from tests.audit_support import every_kind, signing_key, write_key_pem
from tests.conftest import ROOT

MAX_SCAN_BYTES = 64 << 20


def secret_forms(key_pem: Path, tokens: dict[str, str]) -> dict[str, bytes]:
    """Every way a secret could leak: whole, per PEM line, the raw key in hex and base64."""
    pem = key_pem.read_bytes()
    key = serialization.load_pem_private_key(pem, password=None)
    raw = key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption())
    forms = {"signing key PEM": pem, "raw key hex": raw.hex().encode(), "raw key base64": base64.b64encode(raw)[:40]}
    body = [line for line in pem.splitlines() if line and not line.startswith(b"-----")]
    forms.update({f"PEM line {i}": line[:40] for i, line in enumerate(body) if len(line) >= 20})
    forms.update({name: value.encode() for name, value in tokens.items()})
    return forms


def scan(paths: list[Path], forms: dict[str, bytes], skip: Path) -> list[str]:
    found, scanned = [], 0
    for base in paths:
        for path in [base] if base.is_file() else base.rglob("*"):
            if not path.is_file() or path.is_relative_to(skip) or path.stat().st_size > MAX_SCAN_BYTES:
                continue
            data, scanned = path.read_bytes(), scanned + 1
            found += [f"{path}: {name}" for name, form in forms.items() if form in data]
    assert scanned > 0
    return found


@pytest.fixture()
def configured(tmp_path_factory, monkeypatch):
    keys = tmp_path_factory.mktemp("secrets-held-outside-the-outputs")
    key_pem = write_key_pem(keys / "signing.pem", signing_key("secret"))
    tokens = {
        "PROMOTION_GATE_GITHUB_TOKEN": "ghp_" + random_secrets.token_hex(18),
        "PROMOTION_GATE_GITHUB_WEBHOOK_SECRET": "whsec-" + random_secrets.token_hex(16),
        "PROMOTION_GATE_SLACK_BOT_TOKEN": "xoxb-" + random_secrets.token_hex(16),
        "PROMOTION_GATE_SLACK_SIGNING_SECRET": "slsec-" + random_secrets.token_hex(16),
    }
    for name, value in tokens.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("PROMOTION_GATE_SIGNING_KEY_PATH", str(key_pem))
    return keys, key_pem, tokens


def test_no_output_holds_a_secret(configured, tmp_path, tmp_path_factory) -> None:
    keys, key_pem, tokens = configured
    store = AuditStore(tmp_path / "store")  # the key comes from the settings, as in the flow
    for d in every_kind().values():
        store.record(d)
    assert run_index(str(store.root)) == 0
    pub = tmp_path / "gate.pub.pem"  # the auditor's pinned copy
    pub.write_bytes((store.root / "keys" / f"{store.signing_key.key_id}.pub.pem").read_bytes())
    verify = subprocess.run([sys.executable, "-m", "promotion_gate.cli", "audit", "verify", str(store.root), "--key", str(pub)],
                            cwd=ROOT, capture_output=True, text=True)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    (tmp_path / "verify.out").write_text(verify.stdout + verify.stderr)
    (tmp_path / "repr.txt").write_text(repr(store.signing_key) + str(store.signing_key))
    forms = secret_forms(key_pem, tokens)
    outputs = [tmp_path_factory.getbasetemp()] + [p for p in (ROOT / "test-artifacts",) if p.exists()]
    assert scan(outputs, forms, skip=keys) == []


def test_the_flow_leaks_no_secret_to_its_artifacts_logs_or_store(configured, tmp_path, example_repo, prefect_harness) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, FlowRunFilter, LogFilter

    from promotion_gate.checklists.decision import PromotionRequest
    from promotion_gate.flows.promotion import promotion_gate

    keys, key_pem, tokens = configured
    repo, commit = example_repo
    request = PromotionRequest(repository=str(repo), system="support-assistant", commit=commit, requester="dana-dev",
                               requested_at=datetime.now(timezone.utc))
    state = promotion_gate(request, approvals=["dana", "sam", "rene"], store=str(tmp_path / "store"), return_state=True)
    run_id = state.state_details.flow_run_id
    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(flow_run_filter=FlowRunFilter(id={"any_": [run_id]}), artifact_filter=ArtifactFilter())
        logs = client.read_logs(log_filter=LogFilter(flow_run_id={"any_": [run_id]}))
    assert artifacts, "the flow made no artifact"
    (tmp_path / "artifacts.txt").write_text("\n".join(str(a.data) + str(a.description) for a in artifacts))
    (tmp_path / "logs.txt").write_text("\n".join(log.message for log in logs))
    (tmp_path / "state.txt").write_text(repr(state) + repr(state.result()))
    assert scan([tmp_path], secret_forms(key_pem, tokens), skip=keys) == []
    v = AuditStore(tmp_path / "store").verify()
    assert v.ok and not v.demo_keys and not (tmp_path / "store" / ".demo-signing-key.pem").exists()


def test_the_scan_finds_a_planted_secret(configured, tmp_path) -> None:
    keys, key_pem, tokens = configured
    forms = secret_forms(key_pem, tokens)
    body = key_pem.read_bytes().splitlines()[1]
    (tmp_path / "leak.txt").write_bytes(b"log line: " + body + b" and " + tokens["PROMOTION_GATE_SLACK_BOT_TOKEN"].encode())
    found = scan([tmp_path], forms, skip=keys)
    assert any("PEM line 0" in f for f in found) and any("SLACK_BOT_TOKEN" in f for f in found)
