"""The pending signal, set by the gateway itself once a verified ``Promote`` delivery was handed off.

The request run sets the same signal, but only after a worker started it (two Python processes,
seconds); the gateway has the PR in hand within milliseconds. So, in the background after the
202, and only for a delivery whose signature held and that parsed into a ``Promote`` whose
``promotion-request`` run Prefect created (or found) and no worker has picked up yet:

- read the PR's changed files (the systems, as the request run reads them) and the commit's
  statuses (token) or its aggregate check run (App);
- token: set ``promotion-gate/<system>`` pending, exactly the status the request run sets (same
  context, text and link: the request run's own page), so its later write simply replaces it;
- App: the aggregate check run ``promotion-gate`` in progress, found or created by the key the
  request run uses (``aggregate_key``), so the request run edits this run instead of adding one.

Nothing is written where the signal is already there or the commit was decided in a way a new
request does not reopen: a status or aggregate already pending or in progress (a redelivery, the
request run first) or successful (promoted: the request run starts nothing new). A failed or
errored one is a new attempt, which the request run sets pending too.

Then the gate runs themselves (``gateway_early_gates``, on by default), once the signal is written
or found: for each system, the ``promotion-gate`` run the request run would start (same request,
same key, prefect_api.gate_runs.start_gate_run), tagged with the event's identity (its signed body's digest). So the first
decision of a label waits for one process start (the gate run's), not two (the request run's,
then the gate run's). Once: the request run of the same delivery finds that run by its tag, done
or not, and starts nothing (a concurrent start of the same key is one run: Prefect's idempotency
key); an ask without an identity (the webhook gives every one its body's) is left to the request run. The request run still does the rest
(the policy-impact check, the lock files, the no-system comment) and starts whatever the gateway
did not (a failure here is counted at ``/metrics`` as ``early_gates`` and logged, nothing more).

Early or not at all: one try per call (no retries), each call's timeout at most ``CALL_SECONDS``,
at most ``CONCURRENCY`` at once, and no call started past ``settings.gateway_pending_seconds``
after the delivery (then the request run sets it). Why it cannot land after the decision: the
statuses are read just before the write, and a decision is always preceded by the request run's
pending status and the gate run's own (a process start and an evaluation later), so the read
sees the signal and nothing is written, unless all of that happens during one call. A failure is
logged (GitHub's status and message only) and counted at ``/metrics``; it never touches the
delivery, which was answered already. Credentials are read once, at start-up
(config/secrets.py), and live only in the settings copy this object keeps (SecretStr).

GitHub calls per labelled PR, beyond the request run's budget (tests/test_github_flow.py): token,
3 (the file list, the combined status, one status per system); App, 3 (the file list, the
aggregate's lookup, its create or edit). A PR that touches no system: the file list only.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone

from prefect.client.orchestration import get_client
from promotion_gate.config.secrets import read_secret
from promotion_gate.config.settings import Settings
from promotion_gate.github_api.checks import find_check_run, uses_checks
from promotion_gate.github_api.client import GitHubError, Retrying, open_github
from promotion_gate.github_api.source import complete_listing
from promotion_gate.github_api.writes import set_status
from promotion_gate.notifications.checks_bodies import AGGREGATE, SeenRun, aggregate_key, build_aggregate_check, system_check_name
from promotion_gate.notifications.github_bodies import build_pending_status, status_context
from promotion_gate.notifications.github_events import Ask, Promote, parse_changed_systems, request_for
from promotion_gate.prefect_api.gate_runs import start_gate_run
from promotion_gate.prefect_api.run_links import run_url

log = logging.getLogger("promotion_gate.gateway")
CONCURRENCY = 8  # as many as the handoff's starts at once
CALL_SECONDS = 10
START_THREADS = 2  # gate starts at once (a few Prefect calls each), beside the GitHub writes
ALREADY = frozenset({"pending", "success"})  # the request run either keeps these or writes them itself
SIGNALLED = frozenset({"written", "skipped: already set"})  # the signal is on GitHub: the gate runs may start


class EarlyPending:
    def __init__(self, settings: Settings, clock=time.monotonic) -> None:
        self.settings, self.clock = settings, clock
        self.outcomes: Counter[str] = Counter()
        self.gates: Counter[str] = Counter()  # the gate runs' starts, counted on the event loop as the writes are
        self.in_flight: set[asyncio.Task] = set()
        self._slots: asyncio.Semaphore | None = None
        self._starts: ThreadPoolExecutor | None = None
        self._starting: dict[str, tuple[asyncio.Lock, int]] = {}  # per PR and commit: (its lock, starts holding or awaiting it)

    @classmethod
    def from_settings(cls, settings: Settings) -> "EarlyPending | None":
        """None without GitHub credentials (the request run alone sets the signal). The secrets are
        read here, once: a Prefect Secret block is not loaded again for every delivery."""
        settings = settings.model_copy(update={"github_timeout_seconds": min(settings.github_timeout_seconds, CALL_SECONDS)})
        token = read_secret(settings, "github_token")
        if token is not None:
            return cls(settings.model_copy(update={"github_token": token, "github_token_block": None}))
        if settings.github_app_id is None:
            log.info("no GitHub credentials: the pending signal comes from the request run only")
            return None
        key = read_secret(settings, "github_app_private_key")
        if key is None:
            return None
        return cls(settings.model_copy(update={"github_app_private_key": key, "github_app_private_key_path": None,
                                               "github_app_private_key_block": None}))

    def after_start(self, ask: Ask, run_id: str, received: float) -> None:
        """Called once Prefect holds the run: schedule the early write (a Promote nobody runs yet).
        A starter that does not say whether its run is scheduled (a plain id) counts as scheduled."""
        scheduled = getattr(run_id, "scheduled", True)
        if not isinstance(ask, Promote) or not scheduled:
            self.outcomes["skipped: not a new label" if not isinstance(ask, Promote) else "skipped: the run has started"] += 1
            return
        task = asyncio.ensure_future(self._write(ask, str(run_id), received))
        self.in_flight.add(task)
        task.add_done_callback(self.in_flight.discard)

    async def _write(self, ask: Promote, run_id: str, received: float) -> None:
        if self._slots is None:
            self._slots = asyncio.Semaphore(CONCURRENCY)
        async with self._slots:
            outcome, systems = await asyncio.to_thread(self.signal, ask, run_id, received)
        self.outcomes[outcome] += 1
        if systems:  # the signal is on GitHub; on threads of their own: the next labels' signals do not wait for Prefect
            if self._starts is None:
                self._starts = ThreadPoolExecutor(START_THREADS, thread_name_prefix="early-gates")
            deadline = received + self.settings.gateway_pending_seconds
            context = contextvars.copy_context()  # as asyncio.to_thread does: Prefect's settings context goes along
            async with self._one_start_at_a_time(f"{ask.repository}#{ask.pull_request}@{ask.head_sha}"):
                self.gates.update(await asyncio.get_running_loop().run_in_executor(
                    self._starts, context.run, self.start_gates, ask, systems, deadline))

    @contextlib.asynccontextmanager
    async def _one_start_at_a_time(self, commit: str):
        """The starts for one PR's commit (a delivery and its redelivery, two labels) one after the
        other in this gateway: the second then finds the first's run ("found") instead of making
        the same key at the same moment, which Prefect would make one run all the same but which
        both would count as "started"."""
        lock, holders = self._starting.get(commit, (asyncio.Lock(), 0))
        self._starting[commit] = (lock, holders + 1)
        try:
            async with lock:
                yield
        finally:
            lock, holders = self._starting[commit]
            if holders == 1:
                del self._starting[commit]
            else:
                self._starting[commit] = (lock, holders - 1)

    def signal(self, ask: Promote, run_id: str, received: float) -> tuple[str, list[str]]:
        """The early write for one delivery (blocking: PyGithub): its outcome, for /metrics, and the
        systems the PR touches (none unless the outcome says the signal is on GitHub)."""
        deadline = received + self.settings.gateway_pending_seconds
        call = Retrying(retries=0)
        try:
            if self.clock() > deadline:
                return "skipped: too late", []
            repo = open_github(self.settings, ask.repository).get_repo(ask.repository, lazy=True)
            pull = repo.get_pull(ask.pull_request)
            files = call(f"list the files of #{ask.pull_request}", lambda: list(pull.get_files()))
            complete_listing(pull, len(files))  # past GitHub's 3000: the request run refuses it, loudly
            changed = [p for f in files for p in (f.filename, f.previous_filename) if p]
            systems = parse_changed_systems(changed)
            if not systems:
                return "skipped: no system", []
            link = run_url(self.settings, run_id)
            if self.clock() > deadline:
                return "skipped: too late", []
            if uses_checks(self.settings):
                outcome = self._aggregate(call, repo, ask, systems, link, deadline)
            else:
                outcome = self._statuses(call, repo, ask, systems, link, deadline)
            return outcome, systems if outcome in SIGNALLED else []
        except GitHubError as exc:
            log.warning("early pending signal for %s not set (the request run sets it): %s", ask.repository, exc)
            return "failed", []
        except Exception as exc:  # never the delivery's problem: it was answered; the request run sets it
            log.warning("early pending signal for %s not set (the request run sets it): %s", ask.repository,
                        type(exc).__name__)
            return "failed", []

    def start_gates(self, ask: Promote, systems: list[str], deadline: float) -> list[str]:
        """Start each system's gate run, as the request run would (see the module docstring): the
        outcomes, for /metrics. Never raises: whatever is not started here, the request run starts."""
        if not self.settings.gateway_early_gates:
            return ["skipped: off"]
        if not ask.delivery:
            return ["skipped: no delivery id"]
        if self.clock() > deadline:
            return ["skipped: too late"]
        at, outcomes = datetime.now(timezone.utc), []
        try:
            with get_client(sync_client=True) as client:
                for system in systems:
                    run = start_gate_run(client, self.settings.gate_deployment, request_for(ask, system, at), ask.delivery)
                    outcomes.append("started" if run.started else "found")
        except Exception as exc:  # the request run starts it: never the delivery's problem
            log.warning("gate runs of %s#%s not started by the gateway (the request run starts them): %s",
                        ask.repository, ask.pull_request, type(exc).__name__)
            outcomes.append("failed")
        return outcomes

    def gate_metrics(self) -> dict[str, int]:
        return dict(self.gates)

    def _statuses(self, call: Retrying, repo, ask: Promote, systems: list[str], link: str | None, deadline: float) -> str:
        commit = repo.get_commit(ask.head_sha)
        combined = call(f"read the statuses of {ask.head_sha[:7]}", commit.get_combined_status)
        seen = {s.context: s.state for s in combined.statuses}
        todo = [s for s in systems if seen.get(status_context(s)) not in ALREADY]
        if not todo:
            return "skipped: already set"
        for system in todo:
            if self.clock() > deadline:
                return "skipped: too late"
            set_status(call, repo, ask.head_sha, build_pending_status(system, link))
        return "written"

    def _aggregate(self, call: Retrying, repo, ask: Promote, systems: list[str], link: str | None, deadline: float) -> str:
        key = aggregate_key(request_for(ask, systems[0], datetime.now(timezone.utc)))  # the request run's key: it finds (and edits) the run written here
        existing = call(f"find the check run {AGGREGATE}", find_check_run, repo, ask.head_sha, AGGREGATE, key)
        if existing is not None and (existing.status != "completed" or existing.conclusion == "success"):
            return "skipped: already set"
        body = build_aggregate_check(key, [SeenRun(system_check_name(s), "queued", None) for s in systems], link)
        if body is None or self.clock() > deadline:
            return "skipped: too late"
        extra = {"details_url": body.details_url} if body.details_url else {}
        # one try, no retry: a create that failed is not repeated here (the request run writes the aggregate)
        call(f"check run {AGGREGATE}", repo.create_check_run, body.name, ask.head_sha, external_id=key,
             status=body.status, output=body.outputs()[0], **extra)
        return "written"

    def metrics(self) -> dict[str, int]:
        return dict(self.outcomes)

    async def drain(self, timeout: float = 30) -> None:
        if self.in_flight:
            await asyncio.wait(list(self.in_flight), timeout=timeout)
        if self._starts is not None:
            self._starts.shutdown(wait=False)

