"""The `promotion-gate` command: exit codes, formats, and bad input that never yields a traceback."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from tests.conftest import NOW, ROOT

EXAMPLES = ROOT / "examples" / "repo"


def cli(*args: str) -> subprocess.CompletedProcess:
    if args[:1] == ("check",) and "--now" not in args:  # judged at the suite's fixed time, never the clock
        args = (*args, "--now", NOW.isoformat())
    return subprocess.run([sys.executable, "-m", "promotion_gate.cli", *args], cwd=ROOT, capture_output=True, text=True)


@pytest.fixture()
def tree(tmp_path):
    target = tmp_path / "repo"
    shutil.copytree(EXAMPLES, target)
    return target


@pytest.mark.parametrize(("system", "code"), [("helpdesk-summarizer", 0), ("support-assistant", 0), ("loan-prescreener", 1)])
def test_check_exit_codes_on_examples(system: str, code: int) -> None:
    out = cli("check", str(EXAMPLES), "--system", system)
    assert out.returncode == code, out.stderr
    assert system in out.stdout and "Traceback" not in out.stderr


def test_check_json_is_machine_readable() -> None:
    out = cli("check", str(EXAMPLES), "--system", "loan-prescreener", "--format", "json")
    body = json.loads(out.stdout)
    assert body["blocked"] is True and body["tier"] == "high"
    assert "PG-FALLBACK-001" in {r["id"] for r in body["results"] if r["outcome"] == "fail"}


def test_schema_is_the_manifest_json_schema() -> None:
    schema = json.loads(cli("schema").stdout)
    assert schema["title"].startswith("promotion-gate manifest v1")
    assert schema["additionalProperties"] is False
    assert {"owner", "use_case", "model", "evaluations"} <= set(schema["properties"])


def write(tree, system: str, rel: str, data: bytes | str) -> None:
    path = tree / "ai-systems" / system / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode() if isinstance(data, str) else data)


BAD_INPUT = [
    ("malformed yaml", "promotion.yaml", "schema_version: 1\nname: helpdesk-summarizer\nowner: [\n", 2, "promotion.yaml:4: malformed YAML"),
    ("unknown key", None, "colour: red\n", 2, "promotion.yaml:43: colour: unknown key"),
    ("empty manifest", "promotion.yaml", "", 2, "file is empty"),
    # evidence that cannot be judged is unusable input (the flow's decision is an error), never "blocked"
    ("missing evidence", "evals/junit.xml", None, 2, "evals/junit.xml: file not found"),
    ("corrupt evidence", "evals/junit.xml", "<testsuites><testsuite name='x' tests='3'><testcase name=", 2, "evals/junit.xml"),
    ("empty evidence", "evals/promptfoo.json", "", 2, "evals/promptfoo.json"),
    ("NaN in evidence", "evals/junit.xml", None, 2, "evals/junit.xml"),
    ("evidence in another format than declared", "evals/junit.xml", '{"results": []}', 2, "evals/junit.xml"),
    ("a threshold looser than the policy's floor", None, None, 1, "PG-EVAL-002"),
]


@pytest.mark.parametrize(("label", "rel", "content", "code", "message"), BAD_INPUT, ids=[b[0] for b in BAD_INPUT])
def test_bad_input_gives_a_clear_message_and_never_passes(tree, label, rel, content, code, message) -> None:
    system = "helpdesk-summarizer"
    if rel is None and content is not None:
        with open(tree / "ai-systems" / system / "promotion.yaml", "a") as fh:
            fh.write(content)
    elif label == "NaN in evidence":
        path = tree / "ai-systems" / system / rel
        path.write_text(path.read_text().replace('tests="240"', 'tests="NaN"', 1))
    elif label == "a threshold looser than the policy's floor":
        path = tree / "ai-systems" / system / "promotion.yaml"
        text = path.read_text()
        assert "{pass_rate: {min: 0.90}}" in text
        path.write_text(text.replace("{pass_rate: {min: 0.90}}", "{pass_rate: {min: 0.10}}", 1))
    elif content is None:
        (tree / "ai-systems" / system / rel).unlink()
    else:
        write(tree, system, rel, content)
    out = cli("check", str(tree), "--system", system)
    assert out.returncode == code, out.stdout + out.stderr
    assert message in out.stdout
    assert "Traceback" not in out.stdout + out.stderr


#   an edit of the manifest a team might make (or a fuzzer), and how check answers: never a traceback
MANIFEST_EDITS = [
    ("a threshold of 400 digits", "{pass_rate: {min: 0.90}}", "{pass_rate: {min: " + "9" * 400 + "}}", "400-digit number"),
    ("a tolerance of 400 digits", "{pass_rate: {min: 0.90}}", "{pass_rate: {min: 0.90}}\n    max_regression: {pass_rate: " + "9" * 400 + "}",
     "400-digit number"),
    ("an integer past Python's 4300 digits", "retention_days: 30", "retention_days: " + "9" * 5000, "bad value: Exceeds the limit"),
    ("an evidence path too long for the file system", "path: evals/junit.xml", "path: evals/" + "a" * 5000 + ".xml",
     "cannot be read (File name too long)"),
    ("yes for a number of requests", "expected_monthly_requests: 20000", "expected_monthly_requests: yes", "expected_monthly_requests"),
    ("true for a number of days", "retention_days: 30", "retention_days: true", "retention_days"),
    ("a number of requests in quotes", "expected_monthly_requests: 20000", 'expected_monthly_requests: "20000"', "expected_monthly_requests"),
    ("true for the schema version", "schema_version: 1", "schema_version: true", "schema_version must be the number 1"),
]


@pytest.mark.parametrize(("label", "old", "new", "message"), MANIFEST_EDITS, ids=[e[0] for e in MANIFEST_EDITS])
def test_a_manifest_edit_that_cannot_be_judged_is_unusable_input(tree, label, old, new, message) -> None:
    path = tree / "ai-systems" / "helpdesk-summarizer" / "promotion.yaml"
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))
    out = cli("check", str(tree), "--system", "helpdesk-summarizer", "--format", "json")
    assert out.returncode == 2, out.stdout + out.stderr
    assert message in out.stdout and "Traceback" not in out.stdout + out.stderr
    json.loads(out.stdout)


def test_evidence_path_leaving_the_folder_is_refused(tree) -> None:
    manifest = (tree / "ai-systems/helpdesk-summarizer/promotion.yaml").read_text()
    write(tree, "helpdesk-summarizer", "promotion.yaml", manifest.replace("path: evals/junit.xml", "path: ../support-assistant/evals/fallback-drill.xml"))
    out = cli("check", str(tree), "--system", "helpdesk-summarizer")
    assert out.returncode == 2
    assert "must stay inside the system's folder" in out.stdout


def test_evidence_symlink_leaving_the_folder_is_refused(tree) -> None:
    target = tree / "ai-systems/helpdesk-summarizer/evals/junit.xml"
    target.unlink()
    target.symlink_to(tree / "ai-systems/support-assistant/evals/fallback-drill.xml")
    out = cli("check", str(tree), "--system", "helpdesk-summarizer")
    assert out.returncode == 2
    assert "resolves outside" in out.stdout


def test_unknown_system_and_missing_repository_are_unusable(tree) -> None:
    out = cli("check", str(tree), "--system", "nope")
    assert out.returncode == 2 and "file not found" in out.stdout
    out = cli("check", str(tree / "missing"), "--system", "nope")
    assert out.returncode == 2 and "no ai-systems/ folder" in out.stderr


def test_bad_policy_file_is_unusable_and_named(tree, tmp_path) -> None:
    bad = tmp_path / "policy.yaml"
    bad.write_text("version: 1\nproviders: {}\nsurprise: true\n")
    out = cli("check", str(tree), "--system", "helpdesk-summarizer", "--policy", str(bad))
    assert out.returncode == 2
    assert "policy.yaml" in out.stderr and "surprise: unknown key" in out.stderr


def test_check_is_judged_at_the_time_given_not_the_clock() -> None:
    fresh = cli("check", str(EXAMPLES), "--system", "support-assistant", "--now", "2026-11-24T12:00:00Z", "--format", "json")
    stale = cli("check", str(EXAMPLES), "--system", "support-assistant", "--now", "2027-06-01T00:00:00+00:00", "--format", "json")
    assert fresh.returncode == 0 and stale.returncode == 1
    assert "PG-EVAL-001" in {r["id"] for r in json.loads(stale.stdout)["results"] if r["outcome"] == "fail"}
    bad = cli("check", str(EXAMPLES), "--system", "support-assistant", "--now", "next tuesday")
    assert bad.returncode == 2 and "not an ISO time" in bad.stderr and "Traceback" not in bad.stderr
