"""A waiting promotion, as kept on its own flow run by the Prefect server.

Three kinds of flow-run input, each plain validated JSON:

- ``promotion-gate-slack-<version>``: the :class:`WaitingPromotion` record, written by the flow
  (a new version as it changes; the newest is the record): the messages posted, the deadline,
  the answers applied so far;
- ``promotion-gate-refused-<uuid>``: a refused click, written by the gateway; it never wakes
  the flow, which reads them all when it closes;
- ``promotion-gate-taken-<interaction>``: a Slack interaction a gateway took for the run
  (:func:`claim_interaction`), so a repeat is judged once whichever gateway process receives it;
- the suspend's own input (:class:`SignoffInput`), sent by resuming the run (:func:`send_answer`):
  by the gateway for a counted click, by the sweeper for a reminder or the deadline, each sealed
  for the run by its sender (a void too, by whoever holds the key; the flow acts on none unsealed).

A resumed run re-enters the flow from the top; the record is what makes its side effects run once.
"""

from __future__ import annotations

import time
from typing import Literal
from uuid import UUID, uuid4

from prefect.client.orchestration import get_client
from prefect.exceptions import ObjectNotFound, PrefectHTTPStatusError
from prefect.input import RunInput
from promotion_gate.checklists.signoff import RefusedClick
from promotion_gate.notifications.slack_interactions import SignoffAnswer, WaitingPromotion

RECORD_KEY = "promotion-gate-slack"
REFUSED_PREFIX = "promotion-gate-refused-"
KEPT_PREFIX = "promotion-gate-kept-"
DELIVERED_PREFIX = "promotion-gate-delivered-"
TAKEN_PREFIX = "promotion-gate-taken-"
MAX_REFUSED = 200
MAX_VERSIONS = 1000
Delivery = Literal["sent", "closed", "busy"]


class SignoffInput(RunInput, SignoffAnswer):
    """The typed input the flow suspends for (the server validates run input against its schema)."""


def read_waiting(run_id: str | UUID) -> WaitingPromotion | None:
    """The newest version of the run's record, or None before the flow asked anyone."""
    with get_client(sync_client=True) as client:
        found = client.filter_flow_run_input(UUID(str(run_id)), f"{RECORD_KEY}-", MAX_VERSIONS, set())
    newest = max(found, key=lambda i: i.key, default=None)
    return WaitingPromotion.model_validate_json(newest.value) if newest else None


def read_first(run_id: str | UUID) -> WaitingPromotion | None:
    """The record's first version (``-000001``): what the flow wrote when it posted the requests, its
    deadline included; None before the flow asked anyone. Later versions only add answers and the outcome."""
    with get_client(sync_client=True) as client:
        try:
            value = client.read_flow_run_input(key=f"{RECORD_KEY}-{1:06d}", flow_run_id=UUID(str(run_id)))
        except ObjectNotFound:
            return None
        except PrefectHTTPStatusError as exc:
            if exc.response.status_code == 404:
                return None
            raise
    return WaitingPromotion.model_validate_json(value) if value else None


def pin_to_first(record: WaitingPromotion, first: WaitingPromotion | None, run: str) -> WaitingPromotion:
    """``record`` with what no later version may change: the run it is (``run``, whatever a version
    says), and the posting, deadline and reminder times of the first version, as the flow wrote it."""
    update: dict = {"run": run}
    if first is not None and first.run == run:
        update |= {"posted_at": first.posted_at, "deadline": first.deadline, "remind_at": first.remind_at}
    return record.model_copy(update=update)


def read_pinned(run_id: str | UUID) -> WaitingPromotion | None:
    """The newest record, pinned to its first version (:func:`pin_to_first`). For the gateway and the
    sweeper; the flow pins more (slack_api.signoff.as_the_flow_knows_it)."""
    record = read_waiting(run_id)
    return None if record is None else pin_to_first(record, read_first(run_id), str(run_id))


def write_waiting(record: WaitingPromotion) -> WaitingPromotion:
    """Store the next version of the record (appended, never rewritten: no moment without one)."""
    record = record.model_copy(update={"version": record.version + 1})
    with get_client(sync_client=True) as client:
        try:
            client.create_flow_run_input(UUID(record.run), f"{RECORD_KEY}-{record.version:06d}",
                                         record.model_dump_json(), sender="promotion-gate")
        except PrefectHTTPStatusError as exc:
            if exc.response.status_code != 409:  # 409: this version is stored already (a replay after a crash)
                raise
    return record


def read_refused(run_id: str | UUID) -> list[RefusedClick]:
    with get_client(sync_client=True) as client:
        found = client.filter_flow_run_input(UUID(str(run_id)), REFUSED_PREFIX, MAX_REFUSED, set())
    return sorted((RefusedClick.model_validate_json(i.value) for i in found), key=lambda c: c.at)


def claim_interaction(run_id: str | UUID, interaction: str) -> bool:
    """True for the first gateway process (since any restart) to take this Slack interaction for the
    run; False for every later copy of it (a replay, a Slack retry). The Prefect server keeps one
    input per (run, key) and answers 409 to a second writer, so the claim holds across processes and
    restarts without a read-then-write race. The flow applies one interaction once in any case
    (slack_api.signoff.apply_answer); this spares the repeat the judging, the telling and the recording."""
    with get_client(sync_client=True) as client:
        try:
            client.create_flow_run_input(UUID(str(run_id)), TAKEN_PREFIX + interaction, "true", sender="gateway")
        except PrefectHTTPStatusError as exc:
            if exc.response.status_code != 409:
                raise
            return False
    return True


def keep_answer(run_id: str | UUID, answer: SignoffAnswer) -> str:
    """Keep an answer the run could not take now (busy, or its worker gone) on the run itself; the
    sweeper delivers it once the run waits again. Returns the kept answer's key."""
    key = f"{KEPT_PREFIX}{uuid4()}"
    with get_client(sync_client=True) as client:
        client.create_flow_run_input(UUID(str(run_id)), key, answer.model_dump_json(), sender="gateway")
    return key


def read_kept(run_id: str | UUID) -> list[tuple[str, SignoffAnswer]]:
    """Kept answers not delivered yet, oldest first, as (key, answer)."""
    run = UUID(str(run_id))
    with get_client(sync_client=True) as client:
        kept = client.filter_flow_run_input(run, KEPT_PREFIX, MAX_REFUSED, set())
        done = {i.key.removeprefix(DELIVERED_PREFIX) for i in client.filter_flow_run_input(run, DELIVERED_PREFIX, MAX_REFUSED, set())}
    answers = [(i.key, SignoffAnswer.model_validate_json(i.value)) for i in kept if i.key.removeprefix(KEPT_PREFIX) not in done]
    return sorted(answers, key=lambda pair: pair[1].at)


def mark_delivered(run_id: str | UUID, key: str) -> None:
    with get_client(sync_client=True) as client:
        try:
            client.create_flow_run_input(UUID(str(run_id)), DELIVERED_PREFIX + key.removeprefix(KEPT_PREFIX), "true",
                                         sender="promotion-gate-sweeper")
        except PrefectHTTPStatusError as exc:
            if exc.response.status_code != 409:
                raise


def read_run_state(run_id: str | UUID):
    """The run's state, or None when there is no such run."""
    with get_client(sync_client=True) as client:
        try:
            return client.read_flow_run(UUID(str(run_id))).state
        except ObjectNotFound:
            return None


def send_answer(run_id: str | UUID, answer: SignoffAnswer, wait_seconds: float = 30, poll: float = 0.2) -> Delivery:
    """Resume the waiting run with `answer`. A run busy with an earlier answer is waited for (it
    suspends again within seconds); "closed" when the run ended; "busy" when it never came back."""
    run = UUID(str(run_id))
    payload = SignoffInput.model_validate(answer.model_dump()).model_dump(mode="json")
    deadline = time.monotonic() + wait_seconds
    with get_client(sync_client=True) as client:
        while True:
            state = client.read_flow_run(run).state
            if state is None or state.is_final():
                return "closed"
            if state.is_paused() and _resumed(client, run, payload):
                return "sent"
            if time.monotonic() > deadline:
                return "busy"
            time.sleep(poll)


def _resumed(client, run: UUID, payload: dict) -> bool:
    """One resume attempt; False when another answer got there first (the run is no longer paused)
    or the server failed (SQLite busy): the caller looks at the run again and retries."""
    try:
        result = client.resume_flow_run(run, run_input=payload)
    except PrefectHTTPStatusError as exc:
        if exc.response.status_code < 500:
            raise
        return False
    status = result.status.value
    if status == "REJECT":
        raise ValueError(f"the run refused the answer: {result.details.reason}")
    return status == "ACCEPT"
