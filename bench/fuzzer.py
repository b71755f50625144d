"""The fuzz engine shared by `python -m bench fuzz` and tests/test_fuzz.py.

Random updates from random people go to the real Application (built by the production factory)
through the fake Bot API: button presses on what the bot showed them, junk and mutated callback
data, replays of buttons the bot sent to someone else, every registered command (in whatever flow
the person is in), texts full of control, format and bidi characters up to and past 4096, media.
After each step the engine checks three things:

- no ERROR log record at all (the Application's error handler logs every unhandled exception);
- every Bot API call the bot made is within Telegram's limits, and none earned a 400;
- the database changed only where the actor had a right to change it.

The last check reads the bot's SQLite file by SQL and is generic over the schema: a row belongs
to the actor when it is their own (SELF_COLUMNS), when one of its org columns names an org the
actor leads (or one below it), or when the row it references (by foreign key) belongs to them.
Everything else is protected and must be the same after the actor's step. This is a lenient
reading of the rights (an organiser may do anything below their org), so it has no false alarms
from legitimate work, yet a forged or replayed button that touches someone else's ticket,
meeting, role, block or wall is caught whatever table it lands in.

Steps are generated one at a time from a seeded random generator and what the fake server has
recorded, so a run is reproduced by the same seed and step count; a failure prints the steps.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import re
import sqlite3
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.fakebotapi import TOKEN, Call, FakeBotApi, FakeUser
from bot.app import build_application, start_application, stop_application
from bot.clock import SettableClock, to_db
from bot.config import Settings
from schedules.delivery import Limits as DeliveryLimits

START = datetime(2026, 11, 27, 1, 0, tzinfo=UTC)  # a Friday, 09:00 in Shanghai
ADMIN = 9001
GROUP = -1001000000001  # a group that could be an echo wall; the secretary and two others run it
GROUP_MEMBERS = {1001: "administrator", 1003: "administrator", 1002: "administrator", 3001: "member",
                 4001: "member"}
GROUP_SAYS = ["/bindwall", "/bindwall@branch_test_bot", "/start", "/help", "/inbox", "/wall", "/cancel",
              "村道路灯坏了"]

ORGS = """
orgs:
  - code: danfeng
    name: 中共丹凤县委
    kind: county
    children:
      - code: longjuzhai
        name: 龙驹寨街道党工委
        kind: township
        children:
          - {code: sanyi, name: 三义村党支部, kind: village_branch}
          - {code: erlang, name: 二郎村党支部, kind: village_branch}
      - code: tiechu
        name: 铁炉子镇党委
        kind: township
        children:
          - {code: xiaozhuang, name: 小庄村党支部, kind: village_branch}
people:
  - {telegram_id: 1001, name: 王建国, roles: [secretary@sanyi, member@sanyi]}
  - {telegram_id: 1002, name: 李明, roles: [organizer@longjuzhai]}
  - {telegram_id: 1003, name: 赵强, roles: [secretary@erlang, member@erlang]}
  - {telegram_id: 1004, name: 孙丽, roles: [organizer@tiechu]}
  - {telegram_id: 1005, name: 周平, roles: [secretary@xiaozhuang, member@xiaozhuang]}
  - {telegram_id: 2001, name: 老张, roles: [resident@sanyi]}
  - {telegram_id: 2002, name: 小李, roles: [resident@sanyi]}
  - {telegram_id: 2101, name: 刘大, roles: [resident@erlang]}
  - {telegram_id: 3001, name: 陈红, roles: [member@sanyi]}
  - {telegram_id: 3002, name: 何平, roles: [member@sanyi]}
"""


@dataclass(frozen=True)
class Actor:
    id: int
    name: str
    label: str
    drives: bool  # mostly pushes real flows forward (so that real buttons exist); checked all the same
    language: str = "zh-hans"


FOCUS = 14  # steps a driving actor gives to what it has just started (scheduling a meeting takes ~9)
# How often each driving actor acts (the secretary has the longest flows).
DRIVE_WEIGHT = {"secretary": 3.0, "resident": 2.0, "organizer": 1.0, "admin": 0.5, "member": 1.5}
# What a driving actor starts when it sets out to do something (texts start a problem report).
PURPOSES = {
    "secretary": ["/newmeeting"] * 4 + ["/inbox"] * 3 + ["/meetings", "/blocked", "/committee", "/meetingsettings",
                                                         "/invite", "/checkin", "/ledger", "group:/bindwall",
                                                         "/newdeliberation", "/deliberations"],
    "resident": ["村道路灯坏了，晚上很黑", "/my", "/my", "/wall", "垃圾没人清理", "/submit"],
    "organizer": ["/appoint", "/newmeeting", "/inbox", "/meetingsettings", "/ledger", "/org"],
    "admin": ["/appoint", "/org"],
    "member": ["/meetings", "/checkin", "/meetings", "/my", "/deliberations"],
}
# Labels of buttons that leave a flow (both languages).
GIVING_UP = ("✖", "取消", "不安排", "返回", "Cancel", "cancel", "Back", "back", "Abort", "Don't", "Keep")
# Plausible answers to a question that wants typing (places, topics, names, times, reasons).
ANSWERS = {
    "secretary": ["村委会会议室", "学习党章", "15:00", "明天下午3点", "陈红", "何平", "已安排人修理，本周内修好",
                  "请说明具体位置", "不属于本村，转交街道"],
    "resident": ["在村口第三根电杆", "还是没修好", "好的", "第5组12号门口"],
    "organizer": ["街道会议室", "学习党的二十届四中全会精神", "王建国", "10:00"],
    "admin": ["王建国", "赵强"],
    "member": ["家里有事", "在外地打工", "好的"],
}


ACTORS = [
    Actor(1001, "王建国", "secretary", True),
    Actor(2001, "老张", "resident", True),
    Actor(1002, "李明", "organizer", True),
    Actor(ADMIN, "Admin", "admin", True, "en"),
    Actor(3001, "陈红", "member", True),
    Actor(3002, "何平", "member2", False, "en"),
    Actor(2002, "小李", "resident2", False),
    Actor(2101, "刘大", "other_village_resident", False),
    Actor(1003, "赵强", "sibling_secretary", False),
    Actor(1004, "孙丽", "organizer_elsewhere", False),
    Actor(1005, "周平", "secretary_elsewhere", False, "en"),
    Actor(4001, "路人", "stranger", False),
    Actor(4002, "Eve", "stranger2", False, "en"),
]

# Tables that are not "state someone could have a right to": the outbox holds messages (what a
# step sends is checked by the limit checks instead); open_questions records what someone was asked
# (a secretary's 要求补充 asks the resident; answering it goes through the service, which checks the
# right on the ticket or meeting, and that change is protected); screens, which messages are kept
# true (bot/services/screens.py), follow the changes the rights allowed.
# ballot_tallies and appraisal_comments name nobody by design (secret ballots): what guards them is
# the voter's own ballot_voters row (or comment step) that the same step must add.
# digests records the daily digests the system built (messages, like the outbox).
# privacy_log records each export of a person's data (/mydata: anyone's own) and names nobody (a
# keyed hash), so no row of it is anyone's to own; the service checks the right.
# point_statement_runs only marks which month's statements the periodic job has queued.
UNPROTECTED = frozenset({"outbox", "open_questions", "screens", "ballot_tallies", "appraisal_comments",
                         "digests", "privacy_log", "point_statement_runs"})
# Columns that make a row the actor's own. Roles are deliberately not here: nobody may grant
# themselves a role. A name listed here that the schema no longer has fails the run (the
# engine would otherwise silently protect too much or too little).
SELF_COLUMNS = {
    "people": ("telegram_id",),
    "flows": ("person_id",),
    "kept_messages": ("person_id",),
    "tickets": ("resident_id", "assignee_id"),
    "meeting_attendees": ("person_id",),
    "delib_opinions": ("author_id",),
    "delib_supports": ("person_id",),
    "delib_events": ("actor_id",),
    "ballot_voters": ("person_id",),
    "ballots_open": ("person_id",),
    "notice_settings": ("person_id",),  # how one's own low-priority notices come (digests)
    "pledges": ("person_id",),          # a member's own pledge or post taken
    "pledge_reports": ("person_id",),   # a member's own 践诺
}
LEADING_ROLES = ("secretary", "organizer")
# Bot API methods that only read: a 400 there answers input the person typed (an unknown channel).
# An edit that changes nothing gets 400 "message is not modified" from Telegram too; a handler that
# lets it escape is caught by the error check, one that expects it (a repeated tap) is fine.
READ_METHODS = frozenset({"getChat", "getChatMember", "getChatAdministrators", "getFile", "getMe", "getUpdates",
                          "getChatMemberCount", "getMyCommands", "getWebhookInfo"})
MAX_TEXT, MAX_CAPTION, MAX_DATA, MAX_BUTTONS, MAX_ALERT = 4096, 1024, 64, 100, 200


def utf16(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


# --------------------------------------------------------------------------- what people send

ZERO_WIDTH = ["\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u00ad", "\u180e"]
BIDI = ["\u202e", "\u202d", "\u202a", "\u200f", "\u200e", "\u2066", "\u2067", "\u2069", "\u061c"]
CONTROL = ["\x00", "\x01", "\x07", "\x08", "\x1b", "\x7f", "\u0085", "\r", "\t", "\n", "\u2028", "\u2029", "\x0b"]
EMOJI = ["😀", "👍🏽", "👨‍👩‍👧‍👦", "🇨🇳", "❤️", "🧑‍🌾", "𠀀", "𝔘", "\U000e0001"]
MARKUP = ["<b>", "</i>", "&amp;", "&", "<a href='tg://x'>", "*", "_", "`", "```", "[x](y)", "\\", "{name}", "{",
          "}", "%s", "%(id)s", "${x}", "||", "~"]
WORDS = ["村道路灯坏了", "垃圾没人清理，请尽快处理", "村委会会议室", "学习党章", "明天下午3点", "12月5日 15:00",
         "2026-12-05 15:00", "15:00", "王建国", "陈红", "@branch_test_bot", "1", "0", "-1", "2", "是", "否",
         "99999999999999999999", "138 0013 8000", "取消", "确认", "ok", "yes", "Road lamp broken", "   ",
         "ＡＢＣ１２３", "零一二三", "第5组12号"]
FILE_NAMES = ["a.pdf", "会议记录.docx", "x" * 200 + ".pdf", "../../etc/passwd", "note.txt", "\u202egpj.exe",
              "photo.jpg", "empty"]


def random_text(rng: random.Random) -> str:
    """Plausible answers, hostile mixtures, and texts at and past Telegram's 4096."""
    roll = rng.random()
    if roll < 0.35:
        return rng.choice(WORDS)
    if roll < 0.8:
        pools = [WORDS, ZERO_WIDTH, BIDI, CONTROL, EMOJI, MARKUP]
        parts = [rng.choice(rng.choice(pools)) for _ in range(rng.randint(1, 30))]
        text = "".join(parts)
        return text if text.strip() else text + "问题"
    unit = rng.choice(["测", "a", "😀", "路灯坏了。", "\u200b测", "<b>&"])
    target = rng.choice([1000, 1025, 2000, 4000, 4095, 4096, 4097, 5000])
    text = (unit * (target // len(unit) + 1))[:target]
    return text


def random_args(rng: random.Random) -> str:
    roll = rng.random()
    if roll < 0.5:
        return ""
    if roll < 0.7:
        return " " + rng.choice(["1", "-5", "0", "99999999999999999999", "@nobody", "-1001234567890", "sanyi",
                                 "2020-01-01 2030-12-31", "2026-01-01 2026-12-31", "j-", "j-abc", "j-" + "x" * 60])
    return " " + random_text(rng)[:300]


def mutate(rng: random.Random, data: str, prefixes: list[str]) -> str:
    """A near miss of real data: another id, another action, a field more or less, odd numbers."""
    parts = data.split(":")
    how = rng.randrange(8)
    if how == 0 and len(data) > 1:
        out = data[: rng.randrange(1, len(data))]
    elif how == 1:
        out = ":".join(parts[:-1]) if len(parts) > 1 else data + ":"
    elif how == 2:
        out = data + ":" + rng.choice(["1", "y", "send", "0", "-1", "x"])
    elif how == 3:
        numeric = [i for i, p in enumerate(parts) if p.lstrip("-").isdigit()]
        i = rng.choice(numeric) if numeric else len(parts) - 1
        parts[i] = rng.choice(["0", "-1", "1", "2", "3", str(10 ** 19), str(2 ** 63), "01", " 1", "١", "1e3",
                               str(int(parts[i]) + rng.choice([-1, 1])) if parts[i].lstrip("-").isdigit() else "1"])
        out = ":".join(parts)
    elif how == 4 and prefixes:
        parts[0] = rng.choice(prefixes)
        out = ":".join(parts)
    elif how == 5 and len(parts) > 1:
        i = rng.randrange(1, len(parts))
        parts[i] = rng.choice(["a", "r", "g", "o", "s", "m", "b", "x", "ok", "p", "c", "z", "t", "d", "h", "i"])
        out = ":".join(parts)
    elif how == 6:
        out = data.replace(":", "::", 1)
    else:
        out = data + rng.choice(["é", "😀", "\u200b", " ", "\x00"])
    raw = out.encode()[:MAX_DATA]
    return raw.decode(errors="ignore") or "x"


def junk(rng: random.Random, prefixes: list[str]) -> str:
    roll = rng.random()
    if roll < 0.4 and prefixes:
        tail = ":".join(str(rng.choice([0, 1, -1, 7, 10 ** 18])) for _ in range(rng.randint(0, 4)))
        return (rng.choice(prefixes) + (":" + tail if tail else ""))[:MAX_DATA]
    alphabet = "abcdefghijklmnopqrstuvwxyz0123456789:_-" + "".join(ZERO_WIDTH + EMOJI[:2])
    text = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 64)))
    return text.encode()[:MAX_DATA].decode(errors="ignore") or ":"


# --------------------------------------------------------------------------- steps


@dataclass
class Step:
    """One concrete update (or a clock move); `describe()` is how a failure is reproduced."""

    index: int
    actor: int | None  # None: time passes
    kind: str
    args: dict[str, Any]
    replay_of: int | None = None  # the chat the replayed button was sent to

    def describe(self) -> str:
        who = "clock" if self.actor is None else f"{_label(self.actor)}({self.actor})"
        shown = {k: (v if not isinstance(v, str) or len(v) <= 80 else f"{v[:60]!r}…[{len(v)} chars]")
                 for k, v in self.args.items()}
        extra = f" replaying a button sent to {self.replay_of}" if self.replay_of is not None else ""
        return f"#{self.index} {who} {self.kind} {shown}{extra}"


def _pressable(buttons: list[tuple[str, str | None]]) -> list[tuple[str, str]]:
    return [(label, d) for label, d in buttons if d is not None and not d.startswith(("http", "tg://"))]


def _onward(buttons: list[tuple[str, str | None]]) -> list[tuple[str, str]]:
    return [(label, d) for label, d in _pressable(buttons) if not any(word in label for word in GIVING_UP)]


def _label(actor_id: int) -> str:
    return next((a.label for a in ACTORS if a.id == actor_id), "?")


@dataclass
class Finding:
    step: int
    kind: str  # error | limit | unauthorised
    detail: str

    def signature(self) -> str:
        """What makes two findings the same bug: the kind, the place in our code and the exception."""
        lines = self.detail.splitlines()
        ours = [ln.strip() for ln in lines if ln.strip().startswith("File") and "site-packages" not in ln
                and "/schedules/delivery.py" not in ln]
        errors = [ln for ln in lines if ln and not ln.startswith(" ") and ("Error" in ln or "Exception" in ln
                                                                          or ln.startswith("bot."))]
        if self.kind == "unauthorised":
            return f"{self.kind}:{self.detail.split(':', 2)[-1].split('{')[0]}"
        if self.kind == "limit":
            return f"{self.kind}:{re.sub(r'[0-9]+', 'N', self.detail.split('(')[0])}"
        return f"{self.kind}:{ours[-1:]}:{[e.split(':')[0] for e in errors]}"


@dataclass
class Report:
    steps: int
    seed: int
    seconds: float = 0.0
    replays: int = 0
    replays_refused: int = 0
    potent_replays: int = 0  # replays of data whose owner's press had changed something
    unanswered: int = 0  # button presses the bot never answered (the spinner keeps turning)
    protected_checks: int = 0  # steps whose protected state was compared
    protected_rows: dict[str, int] = field(default_factory=dict)  # most protected rows seen, by table
    final_rows: dict[str, int] = field(default_factory=dict)  # rows of each table at the end
    replayed_kinds: dict[str, list[int]] = field(default_factory=dict)  # data prefix -> [replays, refused]
    commands_in_flows: dict[str, int] = field(default_factory=dict)  # flow name -> commands sent in it
    findings: list[Finding] = field(default_factory=list)
    trace: list[Step] = field(default_factory=list)

    def count(self, kind: str) -> int:
        return sum(1 for f in self.findings if f.kind == kind)

    @property
    def ok(self) -> bool:
        return not self.findings

    def line(self) -> str:
        return (f"fuzz: {self.steps} steps, seed={self.seed}, {self.replays_refused} replays refused,"
                f" {self.count('error')} errors, {self.count('limit')} limit violations,"
                f" {self.count('unauthorised')} unauthorised changes, {self.seconds:.1f} s")

    def details(self, full_trace: int = 150) -> list[str]:
        """Each kind of finding once (with how often and where), then the steps that reproduce the
        first: all of them when there are few, else the last ones and every step of that actor."""
        lines = [f"  replays: {self.replays} ({self.potent_replays} of data that had changed something for its"
                 f" owner), unanswered presses: {self.unanswered}, protected checks: {self.protected_checks}",
                 "  commands typed in the middle of a flow: " + ", ".join(
                     f"{flow} {n}" for flow, n in sorted(self.commands_in_flows.items())),
                 "  replayed (refused/all) by kind: " + ", ".join(
                     f"{kind} {refused}/{n}" for kind, (n, refused) in sorted(self.replayed_kinds.items()))]
        groups: dict[str, list[Finding]] = {}
        for finding in self.findings:
            groups.setdefault(finding.signature(), []).append(finding)
        for same in groups.values():
            steps = ", ".join(f"#{f.step}" for f in same[:10]) + (" …" if len(same) > 10 else "")
            lines.append(f"  [{same[0].kind}] {len(same)}x at steps {steps}: {same[0].detail}")
        if self.findings:
            first = self.findings[0].step
            lines.append(f"  reproduce: python -m bench fuzz --n {first + 1} --seed {self.seed}"
                         f" (or --replay with the steps saved as JSON); the steps:")
            steps = self.trace[: first + 1]
            if len(steps) > full_trace:
                actor = steps[-1].actor
                lines.append(f"    ({len(steps) - 40} earlier steps not shown but those of the same actor)")
                steps = [s for s in steps[:-40] if s.actor == actor] + steps[-40:]
            lines += ["    " + step.describe() for step in steps]
        return lines


# --------------------------------------------------------------------------- reading the database


class Database:
    """A read-only view of the bot's SQLite file: whole tables, their keys and references."""

    def __init__(self, path: Path) -> None:
        self.conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None)
        self.tables: dict[str, list[str]] = {}
        self.refs: dict[str, list[tuple[int, str, str]]] = {}  # table -> (column index, parent, parent column)

    def close(self) -> None:
        self.conn.close()

    def learn_schema(self) -> None:
        names = [r[0] for r in self.conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")]
        for name in names:
            columns = [r[1] for r in self.conn.execute(f'PRAGMA table_info("{name}")')]
            self.tables[name] = columns
            refs = []
            for fk in self.conn.execute(f'PRAGMA foreign_key_list("{name}")'):
                parent, source, target = fk[2], fk[3], fk[4]
                refs.append((columns.index(source), parent, target or "rowid"))
            self.refs[name] = refs
        for table, columns in SELF_COLUMNS.items():
            missing = [c for c in columns if c not in self.tables.get(table, [])]
            if missing:
                raise RuntimeError(f"the fuzzer's SELF_COLUMNS name {table}.{missing}, which the schema lacks")

    def snapshot(self) -> dict[str, dict[int, tuple[Any, ...]]]:
        state: dict[str, dict[int, tuple[Any, ...]]] = {}
        for table in self.tables:
            if table in UNPROTECTED:
                continue
            try:
                rows = self.conn.execute(f'SELECT rowid, * FROM "{table}"').fetchall()
            except sqlite3.OperationalError:  # a WITHOUT ROWID table: key on the whole row
                rows = [(hash(r), *r) for r in self.conn.execute(f'SELECT * FROM "{table}"')]
            state[table] = {r[0]: tuple(r[1:]) for r in rows}
        return state

    def due_outbox(self, now: datetime) -> int:
        """Outbox rows due and not yet sent (another helper may change the outbox: then 0)."""
        try:
            return int(self.conn.execute("SELECT COUNT(*) FROM outbox WHERE status = 'pending' AND not_before <= ?",
                                         (to_db(now),)).fetchone()[0])
        except sqlite3.Error:
            return 0


Snapshot = dict[str, dict[int, tuple[Any, ...]]]


class Ownership:
    """Which rows of a snapshot belong to one actor (theirs, or under an org they lead)."""

    def __init__(self, db: Database, state: Snapshot, actor: int, admins: Iterable[int],
                 orgs: set[int] | None = None) -> None:
        self.db, self.state, self.actor = db, state, actor
        self._memo: dict[tuple[str, int], bool] = {}
        self._index: dict[tuple[str, str], dict[Any, int]] = {}
        self.orgs = self._led_orgs(set(admins)) if orgs is None else orgs

    def _led_orgs(self, admins: set[int]) -> set[int]:
        org_cols = self.db.tables.get("orgs", [])
        orgs = self.state.get("orgs", {})
        children: dict[Any, list[Any]] = {}
        for row in orgs.values():
            children.setdefault(row[org_cols.index("parent_id")], []).append(row[org_cols.index("id")])
        if self.actor in admins:
            return {row[org_cols.index("id")] for row in orgs.values()}
        role_cols = self.db.tables.get("roles", [])
        led = [row[role_cols.index("org_id")] for row in self.state.get("roles", {}).values()
               if row[role_cols.index("person_id")] == self.actor and row[role_cols.index("role")] in LEADING_ROLES]
        result: set[int] = set()
        while led:
            org = led.pop()
            if org not in result:
                result.add(org)
                led.extend(children.get(org, []))
        return result

    def owns(self, table: str, key: int, row: tuple[Any, ...] | None = None) -> bool:
        if (table, key) in self._memo:
            return self._memo[(table, key)]
        self._memo[(table, key)] = False  # a reference cycle ends here
        row = row if row is not None else self.state.get(table, {}).get(key)
        result = row is not None and self._owns_row(table, row)
        self._memo[(table, key)] = result
        return result

    def _owns_row(self, table: str, row: tuple[Any, ...]) -> bool:
        columns = self.db.tables[table]
        if any(row[columns.index(c)] == self.actor for c in SELF_COLUMNS.get(table, ())):
            return True
        if table != "orgs":
            for i, name in enumerate(columns):
                if (name == "org_id" or name.endswith("_org_id")) and row[i] in self.orgs:
                    return True
        for index, parent, target in self.db.refs.get(table, []):
            if parent == "orgs":
                if row[index] in self.orgs:
                    return True
            elif parent != "people" and row[index] is not None:
                parent_key = self._lookup(parent, target, row[index])
                if parent_key is not None and self.owns(parent, parent_key):
                    return True
        return False

    def _lookup(self, table: str, column: str, value: Any) -> int | None:
        if (table, column) not in self._index:
            columns = self.db.tables.get(table, [])
            i = columns.index(column) if column in columns else None
            rows = self.state.get(table, {})
            self._index[(table, column)] = {(key if i is None else row[i]): key for key, row in rows.items()}
        return self._index[(table, column)].get(value)


def protected_changes(db: Database, before: Snapshot, after: Snapshot, actor: int,
                      admins: Iterable[int]) -> tuple[list[str], dict[str, int]]:
    """What changed in rows the actor does not own; and how many protected rows there were."""
    was = Ownership(db, before, actor, admins)
    # The orgs the actor led before the step: a role they gave themselves must not excuse itself.
    now = Ownership(db, after, actor, admins, orgs=was.orgs)
    changes: list[str] = []
    counted: dict[str, int] = {}
    for table, rows in before.items():
        columns = db.tables[table]
        new_rows = after.get(table, {})
        protected = [key for key in rows if not was.owns(table, key)]
        counted[table] = len(protected)
        for key in protected:
            old, new = rows[key], new_rows.get(key)
            if new is None:
                changes.append(f"{table} row {_row(columns, old)} was deleted")
            elif new != old:
                diff = {c: f"{o!r} -> {n!r}" for c, o, n in zip(columns, old, new, strict=True) if o != n}
                changes.append(f"{table} row {_row(columns, old)} changed: {diff}")
        for key, row in new_rows.items():
            # A row added about something the actor owned before the step (an event of a ticket
            # they just transferred up the tree) is theirs too.
            if key not in rows and not now.owns(table, key, row) and not was.owns(table, key, row):
                changes.append(f"{table} row {_row(columns, row)} was added")
    return changes, counted


def _row(columns: list[str], row: tuple[Any, ...]) -> str:
    text = ", ".join(f"{c}={v!r}" for c, v in zip(columns, row, strict=True))
    return "{" + (text if len(text) <= 400 else text[:400] + "…") + "}"


def changed_at_all(before: Snapshot, after: Snapshot) -> bool:
    return before != after


# --------------------------------------------------------------------------- watching the bot


class ErrorLog(logging.Handler):
    """Every ERROR record, with its traceback."""

    def __init__(self) -> None:
        super().__init__(level=logging.ERROR)
        self.records: list[str] = []
        self.setFormatter(logging.Formatter("%(name)s: %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(self.format(record))


def limit_problems(call: Call) -> list[str]:
    """Why Telegram would refuse this call for its size, or that it earned a 4xx."""
    problems = []
    params = call.params
    text, caption = params.get("text"), params.get("caption")
    if call.method == "answerCallbackQuery":
        if isinstance(text, str) and len(text) > MAX_ALERT:
            problems.append(f"callback answer of {len(text)} characters (limit {MAX_ALERT})")
    elif isinstance(text, str) and utf16(text) > MAX_TEXT:
        problems.append(f"{call.method}: text of {utf16(text)} UTF-16 units (limit {MAX_TEXT}): {text[:60]!r}")
    if isinstance(caption, str) and utf16(caption) > MAX_CAPTION:
        problems.append(f"{call.method}: caption of {utf16(caption)} UTF-16 units (limit {MAX_CAPTION})")
    markup = params.get("reply_markup")
    if isinstance(markup, dict) and isinstance(markup.get("inline_keyboard"), list):
        buttons = [b for row in markup["inline_keyboard"] for b in row if isinstance(b, dict)]
        if len(buttons) > MAX_BUTTONS:
            problems.append(f"{call.method}: {len(buttons)} buttons (limit {MAX_BUTTONS})")
        for b in buttons:
            data = b.get("callback_data")
            if data is not None and not 1 <= len(str(data).encode()) <= MAX_DATA:
                problems.append(f"{call.method}: callback data {data!r} of {len(str(data).encode())} bytes")
    handled = call.method.startswith("edit") and "not modified" in str(call.description)
    if 400 <= call.status < 500 and call.status != 429 and call.method not in READ_METHODS and not handled:
        problems.append(f"{call.method} earned {call.status}: {call.description}"
                        f" (chat {params.get('chat_id')}, {str(text or caption or '')[:80]!r})")
    if call.status >= 500:
        problems.append(f"{call.method} made the fake server fail: {call.description}")
    return problems


def buttons_of(params: dict[str, Any]) -> list[str]:
    markup = params.get("reply_markup")
    if not isinstance(markup, dict):
        return []
    rows = markup.get("inline_keyboard") or []
    return [str(b["callback_data"]) for row in rows for b in row if isinstance(b, dict) and "callback_data" in b]


# --------------------------------------------------------------------------- the run


async def _until(condition: Callable[[], bool], deadline: float, interval: float) -> None:
    """Poll `condition` (state in another process' terms: the fake's queue, the database file)."""
    loop = asyncio.get_running_loop()
    while not condition() and loop.time() < deadline:  # noqa: ASYNC110 - nothing to wait on but polling
        await asyncio.sleep(interval)


class Fuzzer:
    """Starts the bot on a fresh database with the org tree above, then runs steps."""

    def __init__(self, seed: int, workdir: Path) -> None:
        self.rng = random.Random(seed)
        self.report = Report(steps=0, seed=seed)
        self.workdir = workdir
        self.clock = SettableClock(START)
        self.fake = FakeBotApi(limits=None)  # pacing is the throttle's business; see bench/delivery
        self.app: Any = None
        self.db: Database | None = None
        self.users: dict[int, FakeUser] = {}
        self.group: Any = None  # the FakeChat of GROUP
        self.sent_data: list[tuple[int, str]] = []  # (chat, callback data) of every button the bot sent
        self.potent: set[str] = set()  # data whose press by the person it was sent to changed something
        self.calls: list[Call] = []
        self.errors = ErrorLog()
        self.prefixes: list[str] = []
        self.commands: list[str] = []
        self.moved = timedelta()
        self.focus: dict[int, int] = {}  # driving actor -> steps it still gives to what it started

    # ------------------------------------------------------------------ setup

    async def start(self) -> None:
        await self.fake.start()
        self.fake.observers.append(self._seen)
        settings = Settings(token=TOKEN, api_url=self.fake.base_url, file_url=self.fake.base_file_url,
                            database=self.workdir / "fuzz.sqlite3", admins=frozenset({ADMIN}),
                            _env_file=None)  # type: ignore[call-arg]
        # The production factory; only the pacing is loosened (the fake enforces no flood limits
        # here), so that a step costs milliseconds instead of a second per reply.
        fast = DeliveryLimits(per_second=10_000.0, chat_interval=0.0, group_per_minute=100_000)
        self.app = build_application(settings, self.clock, delivery_limits=fast)
        await start_application(self.app, poll_timeout=1)
        await self._load_orgs()
        for actor in ACTORS:
            self.users[actor.id] = self.fake.user(actor.id, first_name=actor.name, language_code=actor.language)
        self.group = self.fake.group(GROUP, "三义村回音壁", type="supergroup")
        for member, status in GROUP_MEMBERS.items():
            self.group.add_member(self.users[member], status)
        self.db = Database(settings.database)
        self.db.learn_schema()
        from handlers import all_commands

        self.commands = sorted({cmd.name for cmd in all_commands()})
        root = logging.getLogger()
        root.addHandler(self.errors)
        if root.level > logging.ERROR or root.level == logging.NOTSET:
            root.setLevel(logging.ERROR)

    async def _load_orgs(self) -> None:
        from bot.services import orgfile

        core = self.app.core
        async with core.db.transaction() as tx:
            await orgfile.apply(core.orgs, tx, orgfile.parse(ORGS), "fuzz")

    async def stop(self) -> None:
        logging.getLogger().removeHandler(self.errors)
        if self.db is not None:
            self.db.close()
        if self.app is not None:
            await stop_application(self.app)
        await self.fake.stop()

    def _seen(self, call: Call) -> None:
        self.calls.append(call)
        if call.ok and call.method in ("sendMessage", "editMessageText", "editMessageReplyMarkup", "sendPhoto",
                                       "sendDocument", "editMessageCaption"):
            chat = call.params.get("chat_id")
            if isinstance(chat, int):
                for data in buttons_of(call.params):
                    self.sent_data.append((chat, data))
                    prefix = data.split(":")[0]
                    if prefix not in self.prefixes:
                        self.prefixes.append(prefix)

    # ------------------------------------------------------------------ waiting

    async def settle(self, timeout: float = 10.0) -> None:
        """Until the update was handled and whatever it queued in the outbox went out."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        db = self.db
        assert db is not None
        await _until(lambda: not self.fake.pending_updates, deadline, 0.002)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.app.update_queue.join(), max(0.1, deadline - loop.time()))
        await _until(lambda: not db.due_outbox(self.clock.now()), deadline, 0.005)
        await asyncio.sleep(0.005)  # the answer to the last outbox call is recorded just after it

    # ------------------------------------------------------------------ choosing a step

    def next_step(self, index: int) -> Step:
        rng = self.rng
        if rng.random() < 0.03 and self.moved < timedelta(days=45):
            return Step(index, None, "time", {"minutes": rng.choice([30, 180, 60 * 24, 60 * 24 * 3])})
        drivers = [a for a in ACTORS if a.drives]
        others = [a for a in ACTORS if not a.drives]
        if self.focus and rng.random() < 0.5:  # someone in the middle of something carries on
            chosen = rng.choice(sorted(self.focus))
            actor = next(a for a in ACTORS if a.id == chosen)
        elif rng.random() < 0.55:
            actor = rng.choices(drivers, [DRIVE_WEIGHT.get(a.label, 1.0) for a in drivers])[0]
        else:
            actor = rng.choice(others)
        weights = ({"button": 45, "text": 18, "command": 14, "menu": 5, "media": 8, "replay": 5, "mutate": 3,
                    "junk": 2, "group": 2} if actor.drives else
                   {"button": 15, "text": 12, "command": 14, "menu": 4, "media": 6, "replay": 32, "mutate": 12,
                    "junk": 5, "group": 3})
        kind = rng.choices(list(weights), list(weights.values()))[0]
        focused = self.focus.get(actor.id, 0)
        if focused:
            self.focus[actor.id] = focused - 1
            if focused == 1:
                del self.focus[actor.id]
        step = None
        if actor.drives and rng.random() < (0.95 if focused else 0.75):
            step = self._purposeful(index, actor, restart=0.0 if focused else 0.18)
        step = step or self._make(index, actor, kind)
        if step is None:  # nothing to press yet: say something instead
            step = self._make(index, actor, "command" if rng.random() < 0.5 else "text")
        assert step is not None
        return step

    def _purposeful(self, index: int, actor: Actor, restart: float) -> Step | None:
        """Start something real, or carry on with what the bot just asked: its newest buttons, or a
        plausible answer to a question that wants typing."""
        rng = self.rng
        messages = self.fake.sent(actor.id)
        if not messages or rng.random() < restart:
            self.focus[actor.id] = FOCUS
            purpose = rng.choice(PURPOSES[actor.label])
            if purpose.startswith("group:"):
                return Step(index, actor.id, "group_text", {"text": purpose.removeprefix("group:")})
            return Step(index, actor.id, "text", {"text": purpose})
        if actor.id in GROUP_MEMBERS and rng.random() < 0.1:
            step = self._group_step(index, actor, press=True)
            if step is not None:
                return step
        recent = next((m for m in reversed(messages[-3:]) if _onward(m.buttons)), None)
        # A question whose only button gives up wants typing; so does one with no buttons (unless
        # it says to use the buttons above).
        wants_typing = not _onward(messages[-1].buttons)
        if recent is not None and rng.random() < (0.5 if wants_typing else 0.85):
            buttons = _pressable(recent.buttons)
            # Going back or giving up is one choice among many, so that flows get to their end.
            weights = [1.0 if (label, d) in _onward(buttons) else 0.15 for label, d in buttons]
            data = rng.choices([d for _, d in buttons], weights)[0]
            return self._own_press(index, actor.id, "press", actor.id, recent.message_id, data)
        return Step(index, actor.id, "text", {"text": rng.choice(ANSWERS[actor.label])})

    def _own_press(self, index: int, actor: int, kind: str, chat: int, message_id: int, data: str) -> Step:
        """A press of a button the bot showed this chat; its place is kept so that a replayed run
        presses the same button even where its data differs (a draft's random token)."""
        message = self.fake.message(chat, message_id)
        places = [i for i, (_, d) in enumerate(message.buttons if message else []) if d == data]
        args: dict[str, Any] = {"message": message_id, "data": data}
        if places:
            args["button"] = places[0]
        return Step(index, actor, kind, args)

    def _own_buttons(self, actor: Actor) -> list[tuple[int, str]]:
        """(message id, data) on the person's current messages, newest first."""
        found = []
        for message in reversed(self.fake.sent(actor.id)):
            for _, data in message.buttons:
                if data is not None and not data.startswith(("http://", "https://", "tg://")):
                    found.append((message.message_id, data))
        return found

    def _any_message(self, actor: Actor) -> int | None:
        """A recent message of the person's chat to press forged data on: one with inline buttons
        (Telegram sends a callback only from those)."""
        messages = [m for m in self.fake.sent(actor.id) if _pressable(m.buttons)]
        return self.rng.choice(messages[-5:]).message_id if messages else None

    def _make(self, index: int, actor: Actor, kind: str) -> Step | None:
        rng = self.rng
        if kind == "button":
            own = self._own_buttons(actor)
            if not own:
                return None
            message_id, data = own[min(int(rng.expovariate(0.4)), len(own) - 1)]
            return self._own_press(index, actor.id, "press", actor.id, message_id, data)
        if kind in ("replay", "mutate", "junk"):
            message_id = self._any_message(actor)
            foreign = [(chat, d) for chat, d in self.sent_data[-400:] if chat != actor.id]
            if message_id is None or (kind != "junk" and not foreign):
                return None
            if kind == "junk":
                return Step(index, actor.id, "press", {"message": message_id, "data": junk(rng, self.prefixes)})
            chat, data = rng.choice(foreign[-60:] if rng.random() < 0.6 else foreign)
            if kind == "mutate":
                return Step(index, actor.id, "press", {"message": message_id, "data": mutate(rng, data, self.prefixes)})
            return Step(index, actor.id, "replay", {"message": message_id, "data": data}, replay_of=chat)
        if kind == "group":
            return self._group_step(index, actor, press=rng.random() < 0.5)
        if kind == "menu":
            labels = self.fake.keyboard(actor.id)
            return Step(index, actor.id, "text", {"text": rng.choice(labels)}) if labels else None
        if kind == "command":
            name = rng.choice([*self.commands, "nosuch", "start"])
            suffix = "@branch_test_bot" if rng.random() < 0.1 else ""
            return Step(index, actor.id, "text", {"text": f"/{name}{suffix}{random_args(rng)}"})
        if kind == "text":
            return Step(index, actor.id, "text", {"text": random_text(rng)})
        return self._media(index, actor)

    def _group_step(self, index: int, actor: Actor, press: bool) -> Step | None:
        """Say something in the group, or press a button the bot showed there (anyone may try)."""
        rng = self.rng
        shown = [(m.message_id, d) for m in self.fake.sent(GROUP)[-5:] for _, d in _pressable(m.buttons)]
        if press and shown:
            message_id, data = rng.choice(shown)
            return self._own_press(index, actor.id, "group_press", GROUP, message_id, data)
        text = rng.choice(GROUP_SAYS) if rng.random() < 0.8 else random_text(rng)
        return Step(index, actor.id, "group_text", {"text": text})

    def _media(self, index: int, actor: Actor) -> Step:
        rng = self.rng
        what = rng.choice(["photo", "voice", "document", "location", "sticker", "contact"])
        args: dict[str, Any] = {}
        if what in ("photo", "document") and rng.random() < 0.6:
            caption = random_text(rng)
            args["caption"] = caption[:1024] if rng.random() < 0.8 else caption
        if what == "document":
            args["filename"] = rng.choice(FILE_NAMES)
        if what == "location":
            args["lat"], args["lon"] = rng.choice([(33.7, 110.3), (90.0, 180.0), (-90.0, -180.0), (0.0, 0.0)])
        if what == "sticker":
            args["emoji"] = rng.choice(EMOJI)
        if what == "contact":
            args["phone"] = rng.choice(["+8613800138000", "13800138000", "", "+" + "9" * 30])
            args["first_name"] = rng.choice(["王五", random_text(rng)[:64] or "x"])
        return Step(index, actor.id, what, args)

    # ------------------------------------------------------------------ running a step

    def _send(self, step: Step) -> dict[str, Any] | None:
        user = self.users[step.actor] if step.actor is not None else None
        a = step.args
        if user is None:
            return None
        if step.kind == "text":
            return user.send(a["text"])
        if step.kind in ("press", "replay", "group_press"):
            chat = self.group if step.kind == "group_press" else None
            data = a["data"]
            shown = self.fake.message(GROUP if chat else user.id, a["message"])
            if "button" in a and shown is not None and a["button"] < len(shown.buttons):
                data = shown.buttons[a["button"]][1] or data
            return user.press_data(a["message"], data, chat=chat)
        if step.kind == "group_text":
            return user.send(a["text"], chat=self.group)
        if step.kind == "photo":
            return user.send_photo(caption=a.get("caption"))
        if step.kind == "voice":
            return user.send_voice()
        if step.kind == "document":
            return user.send_document(filename=a["filename"], caption=a.get("caption"))
        if step.kind == "location":
            return user.send_location(a["lat"], a["lon"])
        if step.kind == "sticker":
            return user.send_sticker(a["emoji"])
        if step.kind == "contact":
            return user.send_contact(a["phone"], a["first_name"])
        raise ValueError(step.kind)

    async def run_step(self, step: Step, before: Snapshot) -> Snapshot:
        """Run one step, check it, and return the state after it."""
        assert self.db is not None
        report = self.report
        report.trace.append(step)
        calls_from, errors_from = len(self.calls), len(self.errors.records)
        update = None
        if step.actor is None:  # time passes: the periodic jobs may change anything, but not fail
            self.moved += timedelta(minutes=step.args["minutes"])
            self.clock.advance(timedelta(minutes=step.args["minutes"]))
            await self._run_jobs()
        else:
            self._count_command_in_flow(step, before)
            update = self._send(step)
        await self.settle()
        after = self.db.snapshot()
        for record in self.errors.records[errors_from:]:
            report.findings.append(Finding(step.index, "error", record))
        for call in self.calls[calls_from:]:
            for problem in limit_problems(call):
                report.findings.append(Finding(step.index, "limit", problem))
        if step.actor is not None:
            if update is not None and "callback_query" in update and self.fake.answers(update) is None:
                report.unanswered += 1
            self._check_rights(step, before, after)
        return after

    def _check_rights(self, step: Step, before: Snapshot, after: Snapshot) -> None:
        """Nothing the actor does not own changed; and how replayed buttons fared."""
        assert self.db is not None and step.actor is not None
        report = self.report
        changes, counted = protected_changes(self.db, before, after, step.actor, {ADMIN})
        report.protected_checks += 1
        for table, n in counted.items():
            report.protected_rows[table] = max(report.protected_rows.get(table, 0), n)
        for change in changes:
            report.findings.append(Finding(step.index, "unauthorised", f"{step.describe()}: {change}"))
        changed = changed_at_all(before, after)
        if step.kind in ("press", "group_press") and changed:
            self.potent.add(step.args["data"])
        if step.kind == "replay":
            report.replays += 1
            report.potent_replays += step.args["data"] in self.potent
            parts = step.args["data"].split(":")
            kind = parts[0] + (f":{parts[1]}" if len(parts) > 1 and parts[1].isalpha() and len(parts[1]) <= 3 else "")
            counts = report.replayed_kinds.setdefault(kind, [0, 0])
            counts[0] += 1
            if not changed:
                report.replays_refused += 1
                counts[1] += 1

    def _count_command_in_flow(self, step: Step, before: Snapshot) -> None:
        """A command typed in the middle of a flow (submitting, scheduling, answering...)."""
        assert self.db is not None
        text = step.args.get("text", "")
        columns = self.db.tables.get("flows", [])
        if not (isinstance(text, str) and text.startswith("/")) or "flow" not in columns:
            return
        for row in before.get("flows", {}).values():
            if row[columns.index("person_id")] == step.actor:
                name = str(row[columns.index("flow")])
                self.report.commands_in_flows[name] = self.report.commands_in_flows.get(name, 0) + 1

    @contextlib.asynccontextmanager
    async def _jobs_held(self) -> AsyncIterator[None]:
        """Keep the periodic jobs (which change tickets and meetings on their own, on the JobQueue's
        real-time interval) out of a person's step, so that what changed in it is theirs."""
        try:
            locks = [lock for _, lock in self.app.bot_data.get("ticks", {}).values()]
        except (TypeError, ValueError):  # another shape of job registry
            locks = []
        for lock in locks:
            await lock.acquire()
        try:
            yield
        finally:
            for lock in locks:
                lock.release()

    async def _run_jobs(self) -> None:
        """The periodic jobs once at the new time (the clock's move also starts them: wait for both)."""
        import schedules

        run_all = getattr(schedules, "run_all", None)
        if run_all is not None:
            await run_all(self.app)
        ticks = self.app.bot_data.get("ticks", {})
        with contextlib.suppress(TypeError, ValueError):  # another shape of job registry: nothing to wait on
            for _ in range(500):
                if not any(lock.locked() for _, lock in ticks.values()):
                    break
                await asyncio.sleep(0.01)

    async def run(self, n: int, steps: list[Step] | None = None) -> Report:
        """`n` new steps, or exactly `steps` (a saved run, replayed)."""
        assert self.db is not None
        started = time.monotonic()
        await self.settle()
        state = self.db.snapshot()
        for index in range(n if steps is None else len(steps)):
            step = self.next_step(index) if steps is None else steps[index]
            if step.actor is None:
                state = await self.run_step(step, state)
            else:
                async with self._jobs_held():
                    state = await self.run_step(step, self.db.snapshot())
            self.report.steps = index + 1
        self.report.final_rows = {table: len(rows) for table, rows in state.items()}
        self.report.seconds = time.monotonic() - started
        return self.report


async def fuzz(n: int, seed: int, workdir: Path | None = None, steps: list[Step] | None = None) -> Report:
    """One run of `n` steps from `seed` on a fresh bot (or of saved `steps`); the report says what it found."""
    with tempfile.TemporaryDirectory() if workdir is None else contextlib.nullcontext(str(workdir)) as tmp:
        fuzzer = Fuzzer(seed, Path(tmp))
        await fuzzer.start()
        try:
            return await fuzzer.run(n, steps)
        finally:
            await fuzzer.stop()


def dump(steps: list[Step]) -> str:
    """Steps as JSON, for `python -m bench fuzz --replay`."""
    return json.dumps([step.__dict__ for step in steps], ensure_ascii=False, indent=0)


def load(text: str) -> list[Step]:
    return [Step(**item) for item in json.loads(text)]
