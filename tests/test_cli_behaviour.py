"""The CLI as a shell sees it: help for every argument with the exit codes, errors as JSON under
--format json, a quiet end on a closed pipe, one policy source, and local runs that write only
into the repository they were given."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from promotion_gate.cli.main import build_parser

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples" / "repo"
NOW = "2026-11-24T12:00:00Z"


def cli(*args: str, env: dict | None = None, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("PROMOTION_GATE_")} | (env or {})
    return subprocess.run([sys.executable, "-m", "promotion_gate.cli", *args], cwd=cwd, capture_output=True,
                          text=True, env=full_env, timeout=300)


def _subparsers(parser):
    for action in parser._actions:
        if action.__class__.__name__ == "_SubParsersAction":
            for name, sub in action.choices.items():
                yield name, sub
                for inner_name, inner in _subparsers(sub):
                    yield f"{name} {inner_name}", inner


def test_every_argument_of_every_subcommand_has_help():
    missing = []
    for name, sub in _subparsers(build_parser()):
        for action in sub._actions:
            if action.__class__.__name__ in ("_HelpAction", "_SubParsersAction") or action.help == "==SUPPRESS==":
                continue
            if not action.help:
                missing.append(f"{name}: {'/'.join(action.option_strings) or action.dest}")
    assert missing == []


def test_the_parser_built_for_one_subcommand_reads_it_as_the_whole_parser_does():
    """`main` builds the arguments of the subcommand its command line starts with and no other's
    (docs/benchmarks.md, `check`): what a user reads, and what parses, must be the same. The top
    level (its help, and its usage in an "unrecognized arguments" error) lists every subcommand."""
    from promotion_gate.cli.main import COMMANDS

    whole = dict(_subparsers(build_parser()))
    assert tuple(name for name in whole if " " not in name) == COMMANDS
    for command in COMMANDS:
        part = build_parser(only=command)
        assert part.format_help() == build_parser().format_help()
        mine = {name: sub for name, sub in _subparsers(part) if name == command or name.startswith(command + " ")}
        assert {name: sub.format_help() for name, sub in mine.items()} == \
               {name: sub.format_help() for name, sub in whole.items() if name in mine}
        assert set(mine) == {name for name in whole if name == command or name.startswith(command + " ")}


def test_a_subcommand_word_after_another_is_not_taken_for_the_command():
    """Only the first word picks the parser: `check` as a later argument (a folder named check)
    is an argument, and an unknown first word gets the whole parser's error."""
    out = cli("check", "check", "--system", "x")
    assert out.returncode == 2 and "no ai-systems/ folder" in out.stderr
    out = cli("chek", "examples/repo")
    assert out.returncode == 2 and "invalid choice: 'chek'" in out.stderr and "check" in out.stderr


@pytest.mark.parametrize("command", [("check",), ("run",), ("audit", "verify")])
def test_help_lists_the_exit_codes(command):
    out = cli(*command, "--help")
    assert out.returncode == 0
    assert "exit codes:" in out.stdout and "  0  " in out.stdout and "  2  " in out.stdout


@pytest.mark.parametrize("args, needle", [
    (["check", "/nonexistent", "--system", "x"], "no ai-systems/ folder"),
    (["check", str(EXAMPLES), "--system", "x", "--policy", "/nonexistent/policy.yaml"], "cannot read the policy"),
    (["check", str(EXAMPLES), "--system", "../../outside"], "--system: '../../outside' is not a system name"),
    (["check", str(EXAMPLES), "--system", "Support-Assistant"], "is not a system name"),
    (["check", str(EXAMPLES), "--system", "support-assistant/"], "is not a system name"),
])
def test_an_unusable_input_is_one_json_object_under_format_json(args, needle):
    out = cli(*args, "--format", "json")
    assert out.returncode == 2
    body = json.loads(out.stdout)
    assert body["exit"] == 2 and needle in body["error"]
    assert "Traceback" not in out.stdout + out.stderr


def test_an_unusable_input_is_one_line_on_stderr_in_table_format():
    out = cli("check", "/nonexistent", "--system", "x")
    assert out.returncode == 2 and out.stdout == ""
    assert out.stderr.strip().startswith("error: ") and len(out.stderr.strip().splitlines()) == 1


def test_a_closed_pipe_ends_quietly_without_a_traceback():
    proc = subprocess.run(f"{sys.executable} -m promotion_gate.cli check {EXAMPLES} --system loan-prescreener --now {NOW}"
                          f" --format json | head -c 10 >/dev/null; echo \"${{PIPESTATUS[0]}}\"",
                          shell=True, executable="/bin/bash", cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert "Traceback" not in proc.stderr and "BrokenPipeError" not in proc.stderr
    assert proc.stdout.strip() in {"1", "141"}  # finished before the reader left, or stopped quietly at 141


def test_check_says_which_policy_it_used_and_honours_the_setting(tmp_path):
    embedded = cli("check", str(EXAMPLES), "--system", "helpdesk-summarizer", "--now", NOW)
    assert "policy: the embedded policy" in embedded.stderr
    broken = tmp_path / "policy.yaml"
    broken.write_text("version: [not, a, policy\n")
    via_setting = cli("check", str(EXAMPLES), "--system", "helpdesk-summarizer", "--now", NOW,
                      env={"PROMOTION_GATE_POLICY_PATH": str(broken)})
    assert via_setting.returncode == 2 and str(broken) in via_setting.stderr
    flag_wins = cli("check", str(EXAMPLES), "--system", "helpdesk-summarizer", "--now", NOW, "--policy", str(broken),
                    env={"PROMOTION_GATE_POLICY_PATH": "/nonexistent"})
    assert flag_wins.returncode == 2 and str(broken) in flag_wins.stderr


def test_run_refuses_a_folder_inside_a_larger_checkout_and_writes_nothing(tmp_path):
    outer = tmp_path / "outer"
    inner = outer / "governed"
    subprocess.run(["git", "init", "-q", str(outer)], check=True)
    subprocess.run(["cp", "-r", str(EXAMPLES), str(inner)], check=True)
    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com"}
    subprocess.run(["git", "-C", str(outer), "add", "."], check=True)
    subprocess.run(["git", "-C", str(outer), "commit", "-qm", "x"], check=True, env={**os.environ, **env})
    before = subprocess.run(["git", "-C", str(outer), "for-each-ref"], capture_output=True, text=True).stdout
    out = cli("run", str(inner), "--system", "helpdesk-summarizer", "--requester", "dana-dev",
              "--store", str(tmp_path / "store"), cwd=tmp_path)
    assert out.returncode == 2
    assert "not the root of its git repository" in out.stderr and len(out.stderr.strip().splitlines()) == 1
    assert subprocess.run(["git", "-C", str(outer), "for-each-ref"], capture_output=True, text=True).stdout == before
    assert not (tmp_path / "store").exists()


def test_version_is_the_packaged_release_and_the_one_records_carry():
    """`--version` prints the release pyproject.toml builds, which the audit store stamps on every
    record: one number, so a report's "recorded by" names the release an auditor can install."""
    import tomllib

    from promotion_gate import __version__

    released = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert __version__ == released
    done = cli("--version")
    assert (done.returncode, done.stdout, done.stderr) == (0, f"promotion-gate {released}\n", "")


def test_readme_and_docs_point_only_inside_the_repository():
    offenders = [str(p.relative_to(ROOT)) for p in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
                 if "../shared" in p.read_text()]
    assert offenders == []
