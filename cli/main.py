"""The `promotion-gate` command. Each subcommand imports what it needs, so `check` stays fast
(it never imports Prefect)."""

from __future__ import annotations

import argparse
import gc
import json
import os
import re
import sys
import types
from contextlib import contextmanager
from datetime import datetime, timezone

from promotion_gate import __version__

EXIT_PASS, EXIT_BLOCKED, EXIT_UNUSABLE = 0, 1, 2
PLUGIN_LOADER = "pydantic.plugin._loader"
EXIT_PIPE = 141  # 128 + SIGPIPE, as a shell reports a reader that went away

CHECK_EXITS = """exit codes:
  0  the automated items would pass (sign-off may still be needed)
  1  it would be blocked (each failed item is listed with its fix)
  2  unusable input: no manifest, a manifest or evidence that does not parse, a bad policy
141  the reader of the output went away (a closed pipe)"""
RUN_EXITS = """exit codes:
  0  promoted
  1  not promoted (blocked, rejected, expired, withdrawn or error: the decision says which)
  2  unusable input: no such repository or commit, a bad request, a bad policy"""
VERIFY_EXITS = """exit codes:
  0  the store verifies: chain, digests, signatures and anchor
  1  a finding: the first bad entry and the kind of tampering are named (untrusted key included)
  2  no verdict: no such store, an unreadable key or anchor; 0 entries (nothing to verify)
  3  untrusted: no pinned key (--key or PROMOTION_GATE_TRUSTED_KEYS); the store's own keys held
  4  signed with a DEMO key: not evidence (everything else holds)"""


def _error(args: argparse.Namespace, message: str, code: int = EXIT_UNUSABLE) -> int:
    """One line on stderr, or a JSON object on stdout under --format json; never a traceback."""
    if getattr(args, "format", None) == "json":
        print(json.dumps({"error": message, "exit": code}, sort_keys=True))
    else:
        print(f"error: {message}", file=sys.stderr)
    return code


def _policy_flag_or_setting(args: argparse.Namespace) -> tuple[str | None, str]:
    from promotion_gate.config.policy_source import policy_origin

    return policy_origin(getattr(args, "policy", None), os.environ.get("PROMOTION_GATE_POLICY_PATH") or None)


@contextmanager
def _lasting_imports(own_process: bool):
    """Imports whose objects live as long as the process: the core's modules and the ~50 pydantic
    models they build (some 48,000 objects). In a process of its own (``entry``: the console script,
    ``python -m``), the cyclic collector is held off while they are made (each of its passes would
    walk them all and find no garbage) and they are then frozen (``gc.freeze``), so that the passes
    after, and the one at exit, skip them (docs/benchmarks.md, `check`, has the figures). The
    collector runs as usual afterwards, on what reading the evidence makes. An in-process caller
    (a test) keeps its collector untouched."""
    if not own_process or not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        gc.enable()


def _without_pydantic_plugins() -> None:
    """`check` in a process of its own builds its models with no pydantic plugin loaded: unless
    told otherwise, pydantic's plugin loader reads the entry points of every installed
    distribution when the first model is built, and importing the loader imports
    ``importlib.metadata`` (with email, zipfile, csv...: about 13 ms of `check`'s 190;
    docs/benchmarks.md). `check` uses none, and its verdict then depends on no third-party code an
    installed package registers. So before any model is built, the loader's module is a stand-in
    whose ``get_plugins`` gives what pydantic's own gives with plugins disabled (nothing), or, when
    the loader is already imported, its cache is given its "no plugin found" value. The
    environment is not written (the shell never writes it: tests/test_settings_once.py): a user who
    sets PYDANTIC_DISABLE_PLUGINS, to anything, gets pydantic's own behaviour (an empty value loads
    every installed plugin; a list of names disables those). Should a pydantic release move the
    loader, the stand-in is never asked and the loader scans as before: only slower, never
    different."""
    if os.environ.get("PYDANTIC_DISABLE_PLUGINS") is not None:
        return
    loader = sys.modules.get(PLUGIN_LOADER)
    if loader is None:
        stand_in = types.ModuleType(PLUGIN_LOADER, "promotion-gate check: no pydantic plugin (cli/main.py)")
        stand_in.get_plugins = tuple  # type: ignore[attr-defined]  # () : pydantic's answer with plugins disabled
        sys.modules[PLUGIN_LOADER] = stand_in
    elif getattr(loader, "_plugins", ...) is None:  # pydantic 2: None until the first scan
        loader._plugins = {}


def cmd_check(args: argparse.Namespace) -> int:
    own_process = getattr(args, "own_process", False)
    if own_process:
        _without_pydantic_plugins()
    with _lasting_imports(own_process):
        from pathlib import Path

        from promotion_gate.checklists.checklist import evaluate
        from promotion_gate.checklists.checks import unusable_items
        from promotion_gate.checklists.manifest import NAME_RE
        from promotion_gate.checklists.policy import PolicyError
        from promotion_gate.config.policy_source import load_policy
        from promotion_gate.forge.candidate_reader import WorkingTree, read_candidate
        from promotion_gate.notifications.terminal import render_checklist_json, render_checklist_table

    root = Path(args.path)
    if not (root / "ai-systems").is_dir():
        return _error(args, f"{root}: no ai-systems/ folder here (give the repository's root)")
    if not re.fullmatch(NAME_RE, args.system):
        return _error(args, f"--system: {args.system!r} is not a system name (lower-case letters, digits and '-': "
                            "its folder under ai-systems/)")
    policy_path, origin = _policy_flag_or_setting(args)
    try:
        policy = load_policy(policy_path)
    except PolicyError as exc:
        return _error(args, f"policy: {exc}")
    if args.format != "json":
        print(f"policy: {origin}, version {policy.version}", file=sys.stderr)
    tree = WorkingTree(root)
    candidate = read_candidate(tree, args.system, "0" * 40 if args.commit is None else args.commit, baseline=tree)
    checklist = evaluate(candidate, policy, args.now or datetime.now(timezone.utc))
    print(render_checklist_json(checklist) if args.format == "json" else render_checklist_table(checklist))
    if candidate.manifest is None or unusable_items(checklist.results):  # what the flow decides as an error
        return EXIT_UNUSABLE
    return EXIT_BLOCKED if checklist.blocked else EXIT_PASS


def cmd_schema(args: argparse.Namespace) -> int:
    from promotion_gate.checklists.manifest import manifest_json_schema

    print(json.dumps(manifest_json_schema(), indent=2))
    return EXIT_PASS


def cmd_demo(args: argparse.Namespace) -> int:
    from promotion_gate.cli.demo import run_demo

    return _with_local_prefect(lambda: run_demo(workdir=args.workdir, store=args.store))


def cmd_run(args: argparse.Namespace) -> int:
    from promotion_gate.cli.local_run import run_local

    return _with_local_prefect(lambda: run_local(args.repo, args.system, args.commit, requester=args.requester, approvals=args.approve,
                                                 store=args.store, production_branch=args.production_branch, policy=args.policy))


def _with_local_prefect(run) -> int:
    """`demo` and `run` start Prefect's embedded server; one that never answers is one line, not a traceback."""
    try:
        return run()
    except RuntimeError as exc:
        if "ephemeral Prefect API server" not in str(exc):
            raise
        print("error: Prefect's embedded server did not start in time (PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS); "
              "try again on a less busy machine, raise that setting, or set PREFECT_API_URL to a running server", file=sys.stderr)
        return EXIT_UNUSABLE


def cmd_audit(args: argparse.Namespace) -> int:
    from promotion_gate.cli import audit as audit_cli

    if args.audit_command == "verify":
        return audit_cli.run_verify(args.store, anchor=args.anchor, allow_newer=args.allow_newer, keys=args.key,
                                    limits=audit_cli.limits_of(args), anchor_ref=args.anchor_ref, anchor_files=args.anchor_file)
    if args.audit_command == "index":
        return audit_cli.run_index(args.store, keys=args.key)
    if args.audit_command == "rotate-key":
        from promotion_gate.audit_store.key_rotation import run_rotate_key

        return run_rotate_key(args.store, args.new_key)
    if args.audit_command == "anchor":
        from promotion_gate.cli.anchor import run_anchor_export

        return run_anchor_export(args.store, anchor_ref=args.anchor_ref, out=args.out)
    return audit_cli.run_schema()


def cmd_inventory(args: argparse.Namespace) -> int:
    from promotion_gate.cli.inventory import run_inventory

    return run_inventory(args.path, github=args.github, fmt=args.format, policy=args.policy,
                         production_branch=args.production_branch, store=args.store, keys=args.key)


def cmd_policy(args: argparse.Namespace) -> int:
    if args.policy_command == "show":
        return cmd_policy_show(args)
    from promotion_gate.cli.inventory import run_policy_diff

    return run_policy_diff(args.old, args.new, inventory=args.inventory, github=args.github,
                           production_branch=args.production_branch, fmt=args.format, store=args.store, keys=args.key)


def cmd_policy_show(args: argparse.Namespace) -> int:
    from promotion_gate.checklists.policy import PolicyError
    from promotion_gate.config.policy_source import load_policy
    from promotion_gate.notifications.terminal import render_policy_json, render_policy_show

    policy_path, origin = _policy_flag_or_setting(args)
    try:
        policy = load_policy(policy_path)
    except PolicyError as exc:
        return _error(args, f"policy: {exc}")
    print(render_policy_json(policy, origin) if args.format == "json" else render_policy_show(policy, origin))
    return EXIT_PASS


def cmd_serve(args: argparse.Namespace) -> int:
    from promotion_gate.gateway.app import serve

    return serve(args.host, args.port)


def _iso_time(text: str) -> datetime:
    try:
        at = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an ISO time (e.g. 2026-11-24T12:00:00Z)") from None
    return at if at.tzinfo else at.replace(tzinfo=timezone.utc)


def _lock_trust_arguments(p: argparse.ArgumentParser) -> None:
    """Where production's locks are verified (as the lock guard verifies one): a lock that fails is out of policy."""
    p.add_argument("--store", help="the audit store whose ledger records the decisions behind the locks, and their "
                   "approvers (default: PROMOTION_GATE_AUDIT_STORE, else ./audit-store)")
    p.add_argument("--key", action="append", metavar="PEM", help="a public key the locks must be signed with (repeatable; "
                   "default: PROMOTION_GATE_TRUSTED_KEYS, else the gate's signing key, else the demo key)")


COMMANDS = ("check", "schema", "demo", "run", "audit", "inventory", "policy", "serve")
"""The subcommands, in the order ``--help`` lists them."""


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The whole command line; with ``only``, every subcommand is listed as before (names, help,
    descriptions: what the top level prints) but only ``only`` gets its arguments, which is all a
    command line starting with that subcommand can reach (argparse hands the rest to it alone)."""
    p = argparse.ArgumentParser(prog="promotion-gate", description="Decide whether an AI system may move from sandbox to production.")
    p.add_argument("--version", action="version", version=f"promotion-gate {__version__}",
                   help="print the release (every decision records the release that recorded it) and exit")
    sub = p.add_subparsers(dest="command", required=True)

    c = sub.add_parser("check", help="run the checklist offline on a working tree (no Prefect)",
                       description="Run the tier's checklist on a working tree, offline, exactly as the gate will.",
                       epilog=CHECK_EXITS, formatter_class=argparse.RawDescriptionHelpFormatter)
    if only in (None, "check"):
        c.add_argument("path", help="the repository's root (holds ai-systems/)")
        c.add_argument("--system", required=True, help="the system's folder name under ai-systems/")
        c.add_argument("--format", choices=("table", "json"), default="table",
                       help="a readable table (default) or JSON on stdout; errors are JSON too under --format json")
        c.add_argument("--policy", help="a policy YAML file (default: PROMOTION_GATE_POLICY_PATH, then the embedded policy)")
        c.add_argument("--commit", help=argparse.SUPPRESS)
        c.add_argument("--now", type=_iso_time, metavar="ISO-TIME",
                       help="judge as of this time (e.g. 2026-11-24T12:00:00Z), for reproducible runs; default: the clock")
        c.set_defaults(func=cmd_check)

    s = sub.add_parser("schema", help="print the manifest's JSON Schema")
    if only in (None, "schema"):
        s.set_defaults(func=cmd_schema)

    d = sub.add_parser("demo", help="run the real flow on the bundled example repository")
    if only in (None, "demo"):
        d.add_argument("--workdir", help="where to create the example repository (default: a temporary folder)")
        d.add_argument("--store", help="the audit store (default: ./audit-store)")
        d.set_defaults(func=cmd_demo)

    r = sub.add_parser("run", help="run the flow for one system at one commit of a local repository",
                       description="One promotion on a local git repository, with sign-offs given at the console "
                                   "(recorded as asserted, not authenticated).",
                       epilog=RUN_EXITS, formatter_class=argparse.RawDescriptionHelpFormatter)
    if only in (None, "run"):
        r.add_argument("repo", help="the root of the governed git repository (it holds ai-systems/)")
        r.add_argument("--system", required=True, help="the system's folder name under ai-systems/")
        r.add_argument("--commit", default="HEAD", help="the candidate commit (default: HEAD)")
        r.add_argument("--policy", help="a policy YAML file (default: PROMOTION_GATE_POLICY_PATH, then the embedded policy)")
        r.add_argument("--requester", required=True, help="who asks (a policy identity or GitHub login)")
        r.add_argument("--approve", action="append", default=[], metavar="WHO[:reject:REASON|:waive:ITEM[:YYYY-MM-DD]]",
                       help="a console sign-off; repeat for each reviewer; WHO:waive:ITEM grants the manifest's waiver "
                            "request for ITEM (a role the policy lets waive it); omit to be asked at the terminal")
        r.add_argument("--store", help="the audit store (default: ./audit-store)")
        r.add_argument("--production-branch", default="main", help="the branch the promotion branch starts from (default: main)")
        r.set_defaults(func=cmd_run)

    a = sub.add_parser("audit", help="verify the audit store, write its index, print decision.json's schema")
    if only in (None, "audit"):
        a.set_defaults(func=cmd_audit)
        asub = a.add_subparsers(dest="audit_command", required=True)
        av = asub.add_parser("verify", help="check the ledger's chain, every file digest, every signature, the anchor",
                             epilog=VERIFY_EXITS, formatter_class=argparse.RawDescriptionHelpFormatter)
        av.add_argument("store", help="the audit store folder")
        av.add_argument("--anchor", metavar="HASH", help="a ledger head recorded outside the store (PR, artifact)")
        av.add_argument("--allow-newer", action="store_true", help="accept entries newer than the anchor")
        av.add_argument("--key", action="append", metavar="PUB.pem", help="trust only this public key (repeat for several)")
        av.add_argument("--anchor-ref", metavar="PATH|OWNER/REPO", help="read the checkpoint ref refs/promotion-gate/ledger of this repository")
        av.add_argument("--anchor-file", action="append", metavar="checkpoint.json", help="a checkpoint exported earlier (audit anchor export)")
        av.add_argument("--max-line-bytes", type=int, metavar="N", help="refuse a ledger line longer than N bytes (default 1 MiB)")
        av.add_argument("--max-file-bytes", type=int, metavar="N", help="refuse a store file larger than N bytes (default 32 MiB)")
        ai = asub.add_parser("index", help="write STORE/index.html for auditors")
        ai.add_argument("store", help="the audit store folder")
        ai.add_argument("--key", action="append", metavar="PUB.pem", help="trust only this public key (repeat for several)")
        ar = asub.add_parser("rotate-key", help="record a key rotation: an entry signed by the current key naming the new one")
        ar.add_argument("store", help="the audit store folder")
        ar.add_argument("--new-key", required=True, metavar="NEW.pub.pem", help="the public half of the key the gate signs with next")
        ae = asub.add_parser("anchor", help="export the anchored ledger head as a checkpoint file (audit anchor export)")
        ae.add_argument("anchor_action", choices=["export"], help="export")
        ae.add_argument("store", help="the audit store folder")
        ae.add_argument("--anchor-ref", metavar="PATH|OWNER/REPO", help="export the newest checkpoint of this repository's ref (else the store's head)")
        ae.add_argument("--out", default="checkpoint.json", help="where to write it (default: checkpoint.json; - for stdout)")
        asub.add_parser("schema", help="print the JSON Schema of decision.json")

    inv = sub.add_parser("inventory", help="list every AI system in production, from the lock files on the production branch")
    if only in (None, "inventory"):
        inv.add_argument("path", nargs="?", help="a local repository (omit with --github)")
        inv.add_argument("--github", nargs="*", metavar="OWNER/REPO", help="read these GitHub repositories instead, as one inventory "
                         "(none named: every repository the GitHub App is installed on)")
        inv.add_argument("--format", choices=("table", "json", "csv"), default="table", help="a readable table (default), JSON or CSV")
        inv.add_argument("--policy", help="judge under this policy YAML (default: the configured policy)")
        inv.add_argument("--production-branch", help="the production branch (default: the setting, else main / the default branch)")
        _lock_trust_arguments(inv)
        inv.set_defaults(func=cmd_inventory)

    pol = sub.add_parser("policy", help="policy tools: what a policy change does to production")
    if only in (None, "policy"):
        pol.set_defaults(func=cmd_policy)
        psub = pol.add_subparsers(dest="policy_command", required=True)
        ps = psub.add_parser("show", help="what a team may declare: approved providers, models, pinned versions, data classes, tiers")
        ps.add_argument("--policy", help="a policy YAML file (default: PROMOTION_GATE_POLICY_PATH, then the embedded policy)")
        ps.add_argument("--format", choices=("table", "json"), default="table", help="a readable listing (default) or JSON")
        pd = psub.add_parser("diff", help="list the production systems a policy change would put out of policy, with reasons")
        pd.add_argument("old", help="the current policy YAML")
        pd.add_argument("new", help="the proposed policy YAML")
        pd.add_argument("--inventory", metavar="PATH", help="a local repository whose production branch is the inventory")
        pd.add_argument("--github", nargs="*", metavar="OWNER/REPO", help="GitHub repositories whose production branches are the inventory "
                        "(none named: every repository the GitHub App is installed on)")
        pd.add_argument("--production-branch", help="the production branch (default: the setting, else main / the default branch)")
        pd.add_argument("--format", choices=("text", "json"), default="text", help="readable text (default) or JSON")
        _lock_trust_arguments(pd)

    g = sub.add_parser("serve", help="run the gateway: GitHub webhooks in, Prefect runs out (needs the webhook secret)")
    if only in (None, "serve"):
        g.add_argument("--host", default="127.0.0.1", help="the address to listen on (default: 127.0.0.1)")
        g.add_argument("--port", type=int, default=8000, help="the port to listen on (default: 8000; 0 picks a free one)")
        g.set_defaults(func=cmd_serve)
    return p


def main(argv: list[str] | None = None, *, own_process: bool = False) -> int:
    """Runs one command; ``own_process`` says the process ends when it returns (``entry``)."""
    words = sys.argv[1:] if argv is None else argv
    args = build_parser(only=words[0] if words and words[0] in COMMANDS else None).parse_args(argv)
    args.own_process = own_process
    try:
        code = args.func(args)
        sys.stdout.flush()
        return code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (`check ... | head`): stop quietly, and keep Python's exit-time
        # flush of stdout from raising again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_PIPE


def entry() -> int:
    """The `promotion-gate` console script and ``python -m promotion_gate.cli``: ``main`` in a
    process that ends when it returns."""
    return main(own_process=True)


if __name__ == "__main__":
    sys.exit(entry())
