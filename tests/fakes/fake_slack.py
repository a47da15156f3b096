"""A stateful fake of Slack's Web API on 127.0.0.1, for the real slack_sdk WebClient.

    fake = FakeSlack().start()
    fake.add_user("U1", "alice", "alice@example.com")
    client = WebClient(token=FakeSlack.BOT_TOKEN, base_url=fake.base_url)
    ...                                  # the code under test posts the sign-off request
    message = fake.messages("C_SIGNOFF")[-1]
    payload = fake.click("C_SIGNOFF", message["ts"], "signoff_approve", "U1")
    body, headers = build_interaction_request(payload, signing_secret)   # slack_payloads
    fake.fail_next("chat.postMessage", error="ratelimited", retry_after=0)

Answers are Slack's: HTTP 200 with {"ok": false, "error": ...} for errors, 429 with
Retry-After for `ratelimited`. The token comes from "Authorization: Bearer" or a `token` field.
"""

from __future__ import annotations

import json
import threading
import traceback
from fnmatch import fnmatchcase
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .server import BackgroundServer, CallLog, Fault, FaultQueue, RecordedCall
from .slack_methods import METHODS, Channel, SlackError, SlackUser, Usergroup, Workspace
from .slack_payloads import click_payload, view_submission_payload

JSON_FIELDS = ("blocks", "attachments", "view", "metadata")


@dataclass(frozen=True)
class SlackCall:
    """One Web API call: the method, its arguments, and what the fake answered."""

    method: str
    args: dict[str, Any]
    status: int
    ok: bool
    error: str | None
    token: str | None


PAGE = "_html_page"  # a fault answered as an HTML page, not JSON


class FakeSlack:
    BOT_TOKEN = "xoxb-fake-bot-token"

    def __init__(self, strict_channels: bool = False, tokens: tuple[str, ...] = (BOT_TOKEN,)):
        """`strict_channels`: posting to a channel not given to `add_channel` fails with
        channel_not_found (a user id is a DM and needs `add_user`)."""
        self._strict_default, self._tokens_default = strict_channels, tuple(tokens)
        self._lock = threading.RLock()
        app = Starlette(routes=[Route("/api/{method}", self._endpoint, methods=["GET", "POST"])])
        self._server = BackgroundServer(app, "fake-slack")
        self._faults, self._log = FaultQueue(), CallLog()
        self._calls: list[SlackCall] = []
        self.base_url = ""
        self.reset()

    # lifecycle

    def start(self) -> FakeSlack:
        port = self._server.start()
        self.base_url = f"http://127.0.0.1:{port}/api/"
        return self

    def stop(self) -> None:
        self._server.stop()

    def __enter__(self) -> FakeSlack:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def reset(self) -> None:
        """Forget users, channels, messages, views, recorded calls and armed faults."""
        with self._lock:
            self.workspace = Workspace(strict_channels=self._strict_default)
            self.tokens = set(self._tokens_default)
            self._calls = []
            self.server_errors: list[str] = []
        self._faults.clear()
        self._log.clear()

    @property
    def strict_channels(self) -> bool:
        return self.workspace.strict_channels

    @strict_channels.setter
    def strict_channels(self, value: bool) -> None:
        self.workspace.strict_channels = value

    # HTTP

    async def _endpoint(self, request: Request) -> Response:
        method = request.path_params["method"]
        try:
            args = _arguments(dict(request.query_params), request.headers.get("content-type", ""),
                              await request.body())
        except ValueError:
            args = {"_unparsed": True}
        token = _bearer(request.headers.get("authorization", "")) or args.pop("token", None)
        fault = self._faults.take(method)
        with self._lock:
            status, body, headers = self._fault_answer(fault) if fault else self._answer(method, args, token)
            self._calls.append(SlackCall(method, args, status, bool(body.get("ok")), body.get("error"), token))
        self._log.add(RecordedCall(request.method, method, status, {}, args, token))
        if PAGE in body:  # a load balancer's error page, as Slack's edge sometimes answers
            return Response(body[PAGE], status, headers, media_type="text/html; charset=utf-8")
        return Response(json.dumps(body), status, headers, media_type="application/json; charset=utf-8")

    def _answer(self, method: str, args: dict, token: str | None) -> tuple[int, dict, dict]:
        try:
            if not token:
                raise SlackError("not_authed")
            if token not in self.tokens:
                raise SlackError("invalid_auth")
            if method not in METHODS:
                raise SlackError("unknown_method")
            if args.get("_unparsed"):
                raise SlackError("invalid_json")
            return 200, {"ok": True} | METHODS[method](self.workspace, args), {}
        except SlackError as error:
            return 200, {"ok": False, "error": error.error}, {}
        except Exception:  # a bug in the fake: answer fatal_error and keep the traceback
            self.server_errors.append(traceback.format_exc())
            return 500, {"ok": False, "error": "fatal_error"}, {}

    @staticmethod
    def _fault_answer(fault: Fault) -> tuple[int, dict, dict]:
        return fault.status, fault.body, dict(fault.headers)

    # faults

    def fail_next(self, method: str, error: str | None = None, status: int | None = None,
                  retry_after: int | None = None, times: int = 1, page: str | None = None) -> None:
        """Answer the next `times` calls of `method` (fnmatch, e.g. "chat.*") with an error.
        error="ratelimited" defaults to HTTP 429 with Retry-After: 1; another error to HTTP 200
        {"ok": false, "error": error}; status alone (say 500) to that status, error
        "internal_error"."""
        if error is None and status is None:
            raise ValueError("give an error, a status, or both")
        if error == "ratelimited":
            status, retry_after = status or 429, 1 if retry_after is None else retry_after
        error = error or "internal_error"
        headers = {} if retry_after is None else {"Retry-After": str(retry_after)}
        body = {"ok": False, "error": error} if page is None else {"ok": False, "error": None, PAGE: page}
        self._faults.arm(Fault(method, status or 200, times, headers, body))

    # recorded calls

    @property
    def requests(self) -> list[tuple[str, str, int]]:
        """(HTTP method, API method, HTTP status) of each call."""
        return [(c.method, c.path, c.status) for c in self._log.all()]

    def calls(self, method: str | None = None) -> list[SlackCall]:
        """Recorded calls, optionally of one API method (fnmatch)."""
        with self._lock:
            return [c for c in self._calls if method is None or fnmatchcase(c.method, method)]

    # arranging state

    def add_user(self, id: str, name: str, email: str | None = None, real_name: str | None = None,
                 is_bot: bool = False, deleted: bool = False, *, is_app_user: bool = False,
                 is_restricted: bool = False, is_ultra_restricted: bool = False, team_id: str | None = None) -> None:
        with self._lock:
            self.workspace.users[id] = SlackUser(id, name, email, real_name, is_bot, deleted, is_app_user,
                                                 is_restricted, is_ultra_restricted, team_id)

    def add_usergroup(self, id: str, handle: str, users: list[str]) -> None:
        with self._lock:
            self.workspace.usergroups[id] = Usergroup(id, handle, list(users))

    def add_channel(self, id: str, name: str) -> None:
        with self._lock:
            self.workspace.channels[id] = Channel(id, name.removeprefix("#"))

    def add_token(self, token: str) -> None:
        with self._lock:
            self.tokens.add(token)

    # asserting end state

    def messages(self, channel: str | None = None) -> list[dict]:
        """The current version of each message (in `channel`, an id or a name), oldest first."""
        with self._lock:
            wanted = self._channel_id(channel)
            return [m.current | {"channel": m.channel} for m in self.workspace.messages.values()
                    if wanted is None or m.channel == wanted]

    def message(self, channel: str, ts: str) -> dict:
        return self.message_history(channel, ts)[-1]

    def message_history(self, channel: str, ts: str) -> list[dict]:
        """Every version of one message, as posted then as updated, oldest first."""
        with self._lock:
            found = self.workspace.messages.get((self._channel_id(channel), ts))
            if found is None:
                raise KeyError(f"no message {ts} in {channel}")
            return [version | {"channel": found.channel} for version in found.versions]

    def ephemerals(self, channel: str | None = None) -> list[dict]:
        with self._lock:
            wanted = self._channel_id(channel)
            return [e for e in self.workspace.ephemerals if wanted is None or e["channel"] == wanted]

    def views(self) -> list[dict]:
        """Views opened (as last updated), oldest first; each keeps the trigger_id it used."""
        with self._lock:
            return list(self.workspace.views.values())

    def _channel_id(self, channel: str | None) -> str | None:
        if channel is None:
            return None
        for known in self.workspace.channels.values():
            if channel in (known.id, known.name, f"#{known.name}") or (
                known.id[0] == "D" and known.name == channel
            ):
                return known.id
        return channel

    # interaction payloads from the current state

    def click(self, channel: str, ts: str, action_id: str, user_id: str) -> dict:
        """The block_actions payload Slack would send when `user_id` clicks the element
        `action_id` of that message, as it is now."""
        message = self.message(channel, ts)
        user = self.workspace.users.get(user_id)
        return click_payload(message, message["channel"], action_id, user_id, user.name if user else None)

    def submit_view(self, view_id: str, user_id: str, values: dict[str, dict[str, str | dict]]) -> dict:
        """The view_submission payload of an opened modal, with its inputs holding `values`."""
        with self._lock:
            view = self.workspace.views[view_id]
        user = self.workspace.users.get(user_id)
        return view_submission_payload(
            callback_id=view["callback_id"], user_id=user_id, values=values,
            private_metadata=view["private_metadata"], view_id=view_id, blocks=view["blocks"],
            user_name=user.name if user else None,
        )


def _bearer(header: str) -> str | None:
    scheme, _, credential = header.partition(" ")
    if scheme.lower() != "bearer":
        return None
    return credential.strip() or None


def _arguments(query: dict, content_type: str, raw: bytes) -> dict:
    """The call's arguments from the query, a JSON body or a form body (where blocks, view
    and attachments arrive as JSON strings)."""
    args = dict(query)
    if raw and content_type.startswith("application/json"):
        args |= json.loads(raw)
    elif raw:
        args |= dict(parse_qsl(raw.decode(), keep_blank_values=True))
    for name in JSON_FIELDS:
        if isinstance(args.get(name), str) and args[name][:1] in "[{":
            args[name] = json.loads(args[name])
    return args
