"""What the fake Slack workspace knows, and the Web API methods that read and change it.

No HTTP here. A method takes the workspace and the call's arguments and returns the body of an
`ok` answer, or raises SlackError with Slack's error code.
"""

from __future__ import annotations

import hashlib
import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass, field


class SlackError(Exception):
    def __init__(self, error: str) -> None:
        super().__init__(error)
        self.error = error


@dataclass
class SlackUser:
    id: str
    name: str
    email: str | None = None
    real_name: str | None = None
    is_bot: bool = False
    deleted: bool = False
    is_app_user: bool = False
    is_restricted: bool = False
    is_ultra_restricted: bool = False
    team_id: str | None = None


@dataclass
class Usergroup:
    id: str
    handle: str
    users: list[str]


@dataclass
class Channel:
    id: str
    name: str


@dataclass
class Message:
    channel: str
    ts: str
    versions: list[dict] = field(default_factory=list)  # oldest first; the last one is current

    @property
    def current(self) -> dict:
        return self.versions[-1]


@dataclass
class Workspace:
    team_id: str = "T0FAKE"
    bot_user_id: str = "U0BOT"
    bot_id: str = "B0FAKE"
    app_id: str = "A0FAKE"
    strict_channels: bool = False
    users: dict[str, SlackUser] = field(default_factory=dict)
    usergroups: dict[str, Usergroup] = field(default_factory=dict)
    channels: dict[str, Channel] = field(default_factory=dict)
    messages: dict[tuple[str, str], Message] = field(default_factory=dict)
    ephemerals: list[dict] = field(default_factory=list)
    views: dict[str, dict] = field(default_factory=dict)
    _counter: itertools.count = field(default_factory=lambda: itertools.count(1))

    def next_ts(self) -> str:
        return f"{int(time.time())}.{next(self._counter):06d}"

    def next_id(self, prefix: str) -> str:
        return f"{prefix}{next(self._counter):08d}"

    def channel(self, given: str | None) -> Channel:
        """The channel a `channel` argument names: an id, a name (with or without #) or a
        user id (the bot's DM with that user). Unknown ones exist unless strict_channels."""
        if not given:
            raise SlackError("channel_not_found")
        if given in self.channels:
            return self.channels[given]
        name = given.removeprefix("#")
        for channel in self.channels.values():
            if channel.name == name:
                return channel
        if given[0] in "UW" and (given in self.users or not self.strict_channels):
            return self.channels.setdefault(f"D{given[1:]}", Channel(f"D{given[1:]}", given))
        if self.strict_channels:
            raise SlackError("channel_not_found")
        channel_id = given if given[0] in "CGD" and given.isupper() else "C" + hashlib.sha1(
            name.encode()).hexdigest()[:10].upper()
        return self.channels.setdefault(channel_id, Channel(channel_id, name.lower()))

    def user(self, user_id: str | None) -> SlackUser:
        if not user_id or user_id not in self.users:
            raise SlackError("user_not_found")
        return self.users[user_id]


def _content(args: dict) -> dict:
    if not (args.get("text") or args.get("blocks") or args.get("attachments")):
        raise SlackError("no_text")
    blocks = args.get("blocks")
    if blocks is not None and (
        not isinstance(blocks, list) or not all(isinstance(b, dict) and b.get("type") for b in blocks)
    ):
        raise SlackError("invalid_blocks")
    if len(args.get("text") or "") > 40000:
        raise SlackError("msg_too_long")
    content = {"text": args.get("text") or ""}
    for name in ("blocks", "attachments", "thread_ts", "metadata"):
        if args.get(name) is not None:
            content[name] = args[name]
    return content


def _bot_message(ws: Workspace, ts: str, content: dict) -> dict:
    return {
        "type": "message", "user": ws.bot_user_id, "bot_id": ws.bot_id, "app_id": ws.app_id,
        "ts": ts, "team": ws.team_id,
        "bot_profile": {"id": ws.bot_id, "app_id": ws.app_id, "name": "promotion-gate",
                        "team_id": ws.team_id, "deleted": False},
    } | content


def chat_post_message(ws: Workspace, args: dict) -> dict:
    channel = ws.channel(args.get("channel"))
    content, ts = _content(args), ws.next_ts()
    message = Message(channel.id, ts, [_bot_message(ws, ts, content)])
    ws.messages[(channel.id, ts)] = message
    return {"channel": channel.id, "ts": ts, "message": message.current}


def chat_update(ws: Workspace, args: dict) -> dict:
    channel = ws.channel(args.get("channel"))
    message = ws.messages.get((channel.id, args.get("ts") or ""))
    if message is None:
        raise SlackError("message_not_found")
    content = _content(_retained(message.current, args))
    edited = {"edited": {"user": ws.bot_user_id, "ts": ws.next_ts()}}
    message.versions.append(_bot_message(ws, message.ts, content) | edited)
    return {"channel": channel.id, "ts": message.ts, "text": content["text"], "message": message.current}


def _retained(previous: dict, args: dict) -> dict:
    """chat.update keeps the text, blocks and attachments it is not given; [] removes them."""
    merged = dict(args)
    for name in ("text", "blocks", "attachments"):
        if name not in args and name in previous:
            merged[name] = previous[name]
    for name in ("blocks", "attachments"):
        if merged.get(name) == []:
            del merged[name]
    return merged


def chat_post_ephemeral(ws: Workspace, args: dict) -> dict:
    channel = ws.channel(args.get("channel"))
    if ws.users and args.get("user") not in ws.users:
        raise SlackError("user_not_in_channel")
    ts = ws.next_ts()
    ws.ephemerals.append({"channel": channel.id, "user": args.get("user"), "ts": ts} | _content(args))
    return {"message_ts": ts}


def _view(ws: Workspace, view: object, view_id: str) -> dict:
    if not isinstance(view, dict) or view.get("type") not in ("modal", "home"):
        raise SlackError("invalid_arguments")
    return {
        "id": view_id, "team_id": ws.team_id, "type": view["type"], "blocks": view.get("blocks", []),
        "private_metadata": view.get("private_metadata", ""), "callback_id": view.get("callback_id", ""),
        "state": {"values": {}}, "hash": f"{int(time.time())}.{view_id}", "title": view.get("title"),
        "clear_on_close": bool(view.get("clear_on_close")),
        "notify_on_close": bool(view.get("notify_on_close")), "close": view.get("close"),
        "submit": view.get("submit"), "previous_view_id": None, "root_view_id": view_id,
        "app_id": ws.app_id, "external_id": view.get("external_id", ""),
        "app_installed_team_id": ws.team_id, "bot_id": ws.bot_id,
    }


def views_open(ws: Workspace, args: dict) -> dict:
    if not args.get("trigger_id"):
        raise SlackError("invalid_arguments")
    view = _view(ws, args.get("view"), ws.next_id("V"))
    ws.views[view["id"]] = view | {"trigger_id": args["trigger_id"]}
    return {"view": view}


def views_update(ws: Workspace, args: dict) -> dict:
    found = ws.views.get(args.get("view_id") or "") or next(
        (v for v in ws.views.values() if args.get("external_id") and v["external_id"] == args["external_id"]),
        None,
    )
    if found is None:
        raise SlackError("not_found")
    view = _view(ws, args.get("view"), found["id"])
    ws.views[view["id"]] = view | {"trigger_id": found["trigger_id"]}
    return {"view": view}


def user_json(ws: Workspace, user: SlackUser) -> dict:
    real_name = user.real_name or user.name
    profile = {"real_name": real_name, "display_name": user.name, "real_name_normalized": real_name,
               "display_name_normalized": user.name, "email": user.email, "team": ws.team_id,
               "image_48": "https://fake.slack/avatar.png"}
    return {"id": user.id, "team_id": user.team_id or ws.team_id, "name": user.name, "deleted": user.deleted,
            "real_name": real_name, "tz": "Europe/London", "tz_label": "Greenwich Mean Time",
            "tz_offset": 0, "profile": profile, "is_admin": False, "is_owner": False,
            "is_bot": user.is_bot, "is_app_user": user.is_app_user, "is_restricted": user.is_restricted,
            "is_ultra_restricted": user.is_ultra_restricted, "updated": 1700000000}


def users_info(ws: Workspace, args: dict) -> dict:
    return {"user": user_json(ws, ws.user(args.get("user")))}


def users_lookup_by_email(ws: Workspace, args: dict) -> dict:
    for user in ws.users.values():
        if user.email and user.email.lower() == str(args.get("email", "")).lower():
            return {"user": user_json(ws, user)}
    raise SlackError("users_not_found")


def usergroups_users_list(ws: Workspace, args: dict) -> dict:
    group = ws.usergroups.get(args.get("usergroup") or "")
    if group is None:
        raise SlackError("no_such_subteam")
    return {"users": list(group.users)}


def usergroups_list(ws: Workspace, args: dict) -> dict:
    return {"usergroups": [
        {"id": g.id, "team_id": ws.team_id, "is_usergroup": True, "name": g.handle,
         "handle": g.handle, "description": "", "user_count": len(g.users)}
        | ({"users": list(g.users)} if str(args.get("include_users")).lower() in ("1", "true") else {})
        for g in ws.usergroups.values()
    ]}


def auth_test(ws: Workspace, args: dict) -> dict:
    return {"url": "https://fake-workspace.slack.com/", "team": "Fake Workspace",
            "user": "promotion-gate", "team_id": ws.team_id, "user_id": ws.bot_user_id,
            "bot_id": ws.bot_id, "is_enterprise_install": False}


def conversations_info(ws: Workspace, args: dict) -> dict:
    channel = ws.channels.get(args.get("channel") or "")
    if channel is None:
        raise SlackError("channel_not_found")
    return {"channel": {"id": channel.id, "name": channel.name, "is_channel": channel.id[0] == "C",
                        "is_im": channel.id[0] == "D", "is_private": False, "is_archived": False,
                        "is_member": True, "created": 1700000000, "creator": ws.bot_user_id}}


def api_test(ws: Workspace, args: dict) -> dict:
    return {"args": {k: v for k, v in args.items() if k != "token"}}


METHODS: dict[str, Callable[[Workspace, dict], dict]] = {
    "chat.postMessage": chat_post_message,
    "chat.update": chat_update,
    "chat.postEphemeral": chat_post_ephemeral,
    "views.open": views_open,
    "views.update": views_update,
    "users.info": users_info,
    "users.lookupByEmail": users_lookup_by_email,
    "usergroups.users.list": usergroups_users_list,
    "usergroups.list": usergroups_list,
    "auth.test": auth_test,
    "conversations.info": conversations_info,
    "api.test": api_test,
}
