"""Command line: `branchbot [run]` (or `python -m bot`), `orgs import|export`, `invite`, `check`, `db migrate`, …"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.actors import SYSTEM_ACTOR
from bot.config import Settings, SettingsError, load_settings
from bot.core import Core
from bot.logs import TEXT_FORMAT
from bot.logs import setup as setup_logging
from bot.services.orgs import ROLES, NotFound

log = logging.getLogger("bot")


def build_parser() -> argparse.ArgumentParser:
    """Every command and its options (the command line's whole surface, in one place)."""
    parser = argparse.ArgumentParser(prog="branchbot", description="Party branch Telegram bot")
    sub = parser.add_subparsers(dest="command")
    _add_run_parser(sub)

    orgs = sub.add_parser("orgs", help="import or export the org tree (YAML)")
    orgs_sub = orgs.add_subparsers(dest="orgs_command", required=True)
    imp = orgs_sub.add_parser("import", help="check a YAML file and, if it has no problem, load it")
    imp.add_argument("file", type=Path)
    exp = orgs_sub.add_parser("export", help="print the tree and people in the import format")
    exp.add_argument("--out", type=Path, help="write to this file instead of standard output")

    inv = sub.add_parser("invite", help="make, list or revoke join links")
    inv.add_argument("org_code", nargs="?", help="the org the link joins")
    inv.add_argument("--role", choices=ROLES, help="the role the link gives")
    inv.add_argument("--qr", type=Path, metavar="FILE.png", help="also write a printable QR code of the link")
    inv.add_argument("--revoke-old", action="store_true", help="revoke the org's earlier links for this role")
    inv.add_argument("--revoke", metavar="PAYLOAD", help="revoke the link with this payload")
    inv.add_argument("--list", action="store_true", help="list links (of ORG_CODE if given)")

    tk = sub.add_parser("tickets", help="problem-wall settings of an org: deadlines, categories, who answers")
    tk_sub = tk.add_subparsers(dest="tickets_command", required=True)
    tk_set = tk_sub.add_parser("settings", help="working days to accept and to answer; the category list")
    tk_set.add_argument("org_code")
    tk_set.add_argument("--accept-days", type=int)
    tk_set.add_argument("--answer-days", type=int)
    tk_set.add_argument("--categories", help="comma-separated names, e.g. 基础设施,环境卫生,其他")
    tk_assign = tk_sub.add_parser("assign", help="route one category of an org to one person (or 'none')")
    tk_assign.add_argument("org_code")
    tk_assign.add_argument("category", help="a category name, or its code (infrastructure, sanitation, ...)")
    tk_assign.add_argument("person", help="a Telegram id, or 'none' to go back to the secretary")

    cal = sub.add_parser("calendar", help="China's working-day calendar: show a year, load an official list")
    cal_sub = cal.add_subparsers(dest="calendar_command", required=True)
    cal_show = cal_sub.add_parser("show", help="holidays and make-up working days of a year, and their source")
    cal_show.add_argument("year", type=int)
    cal_load = cal_sub.add_parser("load", help="load a year's official list: {year, holidays: [...], workdays: [...]}")
    cal_load.add_argument("file", type=Path)

    led = sub.add_parser("ledger", help="write an org's meeting ledger (台账) as an Excel workbook")
    led.add_argument("org_code")
    led.add_argument("--from", dest="date_from", required=True, metavar="YYYY-MM-DD")
    led.add_argument("--to", dest="date_to", required=True, metavar="YYYY-MM-DD")
    led.add_argument("--out", type=Path, metavar="FILE.xlsx",
                     help="default: the ledger's own name (台账-<org>-<period>.xlsx) here")

    add_report_parser(sub)

    poster = sub.add_parser("poster", help="an org's monthly echo-wall poster: A4 PDF with the residents' join QR code")
    poster.add_argument("org_code")
    poster.add_argument("--month", metavar="YYYY-MM", help="the month (default: last month)")
    poster.add_argument("--out", type=Path, metavar="FILE.pdf", help="default: 回音壁-<org>-<month>.pdf here")
    poster.add_argument("--lang", choices=("zh_CN", "en"), help="the poster's language (default: the bot's)")

    add_outbox_parser(sub)
    _add_check_commands(sub)
    add_privacy_parsers(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "check":
        return check_command()
    logging.basicConfig(level=logging.INFO, format=TEXT_FORMAT)
    if args.command == "migrate":
        return asyncio.run(copy_command(args.source, args.target))
    logging.getLogger("httpx").setLevel(logging.WARNING)
    # A line per run of every periodic job (some run every second); their lag is in /metrics.
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    try:
        settings = load_settings()
        setup_logging(settings.log_format, [settings.token.get_secret_value()] if settings.token else [])
        if args.command in (None, "run"):
            return run(settings, RunOptions.of(args))
        if args.command == "poster":
            from bot.poster import cli as poster_cli

            return asyncio.run(poster_cli(settings, args))
        if args.command == "orgs":
            return asyncio.run(orgs_command(settings, args))
        if args.command == "tickets":
            return asyncio.run(tickets_command(settings, args))
        if args.command == "db":
            return asyncio.run(db_command(settings))
        if args.command == "calendar":
            return asyncio.run(calendar_command(settings, args))
        if args.command == "outbox":
            return asyncio.run(outbox_command(settings, args))
        if args.command == "ledger":
            return asyncio.run(ledger_command(settings, args))
        if args.command in ("backup", "restore", "person"):
            return privacy_command(settings, args)
        if args.command == "report":
            return asyncio.run(report_command(settings, args))
        if args.command == "invite":
            if not (args.revoke or args.list) and not (args.org_code and args.role):
                parser.error("invite needs ORG_CODE and --role (or --list, or --revoke PAYLOAD)")
            return asyncio.run(invite_command(settings, args))
    except SettingsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


def _add_run_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    run_parser = sub.add_parser("run", help="run the bot (long polling, or a webhook); the default")
    run_parser.add_argument("--web", metavar="HOST:PORT", help="also serve the echo wall web page, e.g. 127.0.0.1:8080")
    run_parser.add_argument("--health", metavar="HOST:PORT",
                            help="also serve /healthz and /metrics (Prometheus), e.g. 127.0.0.1:9100")
    run_parser.add_argument("--webhook", metavar="URL",
                            help="webhook mode: Telegram posts updates to this public https:// URL (set at start)")
    run_parser.add_argument("--listen", metavar="HOST:PORT",
                            help="where this process receives the webhook's requests, e.g. 127.0.0.1:8443"
                                 " (behind the reverse proxy that URL reaches)")


def _add_check_commands(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """What an operator (and CI) runs to see that an installed bot is whole."""
    sub.add_parser("check", help="check that every text the code uses exists in every language")
    db = sub.add_parser("db", help="the database file (BOT_DATABASE)")
    db_sub = db.add_subparsers(dest="db_command", required=True)
    db_sub.add_parser("migrate", help="create the database or bring it to the latest schema")
    mig = sub.add_parser("migrate", help="copy a SQLite database into an empty PostgreSQL database, verified")
    mig.add_argument("--from", dest="source", type=Path, required=True, metavar="FILE", help="the SQLite file")
    mig.add_argument("--to", dest="target", required=True, metavar="URL", help="postgresql://… (must be empty)")


def check_command() -> int:
    """Every catalog key the installed code uses resolves in every language; exit 1 if not."""
    from bot import catalog_check
    from bot.i18n import Translator
    from handlers import all_commands

    catalogs = Translator().catalogs
    usage = catalog_check.scan()
    expansions = {"command.{}": [cmd.name for cmd in all_commands()]}
    found = catalog_check.problems(catalogs, usage, expansions)
    keys = [set(catalog) for catalog in catalogs.values()]
    found += [f"{locale}: {key!r} is not in every language" for locale, catalog in catalogs.items()
              for key in sorted(set.union(*keys) - set(catalog))]
    for problem in found:
        print(problem, file=sys.stderr)
    if found:
        print(f"{len(found)} problem(s)", file=sys.stderr)
        return 1
    sizes = ", ".join(f"{len(catalog)} in {locale}" for locale, catalog in catalogs.items())
    print(f"catalogs: {sizes}; the code uses {len(usage.literals)} keys and {len(usage.patterns)} key patterns,"
          " all found in every language")
    return 0


async def copy_command(source: Path, target: str) -> int:
    """`migrate --from FILE --to URL`: exit 1 with the reason when refused or not verified."""
    from bot.database import is_postgres_url
    from bot.pgcopy import CopyRefused, copy_sqlite_to_pg

    if not is_postgres_url(target):
        print("error: --to must be a postgresql://… URL", file=sys.stderr)
        return 2
    try:
        report = await copy_sqlite_to_pg(source, target)
    except CopyRefused as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except RuntimeError as exc:  # verification failed: the copy was rolled back, the target is empty
        print(f"error: {exc}", file=sys.stderr)
        return 1
    rows = sum(report.tables.values())
    print(f"copied {rows} rows in {len(report.tables)} tables at schema version {report.version};"
          " row counts and checksums verified")
    return 0


async def db_command(settings: Settings) -> int:
    from bot.database import open_database

    db = open_database(settings.database)
    await db.connect()  # applies what is missing
    try:
        version = await db.fetchval("SELECT MAX(version) FROM schema_migrations")
    finally:
        await db.close()
    applied = ", ".join(db.applied) or "nothing to apply"
    print(f"{settings.database}: schema version {version} ({applied})")
    return 0


@asynccontextmanager
async def open_core(settings: Settings) -> AsyncIterator[Core]:
    """The services on the bot's database, for one command-line call."""
    core = Core.build(settings)
    await core.open()
    try:
        yield core
    finally:
        await core.close()


async def ledger_command(settings: Settings, args: argparse.Namespace) -> int:
    """`ledger ORG_CODE --from DATE --to DATE [--out FILE.xlsx]`: an operator, acting as the system; the
    file is named as the chat names it (台账-三义村党支部-2026.xlsx) unless --out says otherwise."""
    from datetime import date

    from bot.services.meetings import Refused

    try:
        first, last = date.fromisoformat(args.date_from), date.fromisoformat(args.date_to)
    except ValueError as exc:
        print(f"error: {exc} (expected YYYY-MM-DD)", file=sys.stderr)
        return 2
    async with open_core(settings) as core:
        org = await core.orgs.by_code(args.org_code)
        if org is None:
            print(f"error: no org with code {args.org_code!r}", file=sys.stderr)
            return 1
        try:
            name, content = await core.ledger(SYSTEM_ACTOR, org.id, first, last, settings.locale)
        except Refused as exc:
            print(f"error: {core.t(settings.locale, exc.key, **exc.values)}", file=sys.stderr)
            return 2
        out: Path = args.out or Path(name)
        await asyncio.to_thread(_write_file, out, content)
        print(f"{out}: ledger of {org.code} ({org.name}) from {first} to {last}"
              " (meetings, deliberation rounds, 四议两公开 matters)")
        return 0


def add_report_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    rep = sub.add_parser("report", help="an org's supervision bulletin (督查通报): its text, workbook and chart")
    rep.add_argument("org_code")
    rep.add_argument("--period", required=True, metavar="2026-11 | 2026-Q4 | 2026",
                     help="a month, a quarter or a year")
    rep.add_argument("--out", type=Path, metavar="FILE.xlsx",
                     help="default: the bulletin's own name (督查通报-<org>-<period>.xlsx) here")
    rep.add_argument("--chart", type=Path, metavar="FILE.png", help="also write the chart here")


async def report_command(settings: Settings, args: argparse.Namespace) -> int:
    """`report ORG_CODE --period P [--out F.xlsx] [--chart F.png]`: an operator, acting as the system;
    prints the 通报 and writes the workbook (and the chart)."""
    from datetime import date

    from bot.services.orgs import Refused
    from bot.services.supervision import parse

    period = parse(args.period, date.today())
    if period is None:
        print(f"error: {args.period!r} is not a period (2026-11, 2026-Q4 or 2026)", file=sys.stderr)
        return 2
    async with open_core(settings) as core:
        org = await core.orgs.by_code(args.org_code)
        if org is None:
            print(f"error: no org with code {args.org_code!r}", file=sys.stderr)
            return 1
        try:
            built = await core.supervision.build(SYSTEM_ACTOR, org.id, *period, settings.locale)
        except Refused as exc:
            print(f"error: {core.t(settings.locale, exc.key, **exc.values)}", file=sys.stderr)
            return 2
        out: Path = args.out or Path(built.workbook_name)
        await asyncio.to_thread(_write_file, out, built.workbook)
        if args.chart:
            await asyncio.to_thread(_write_file, args.chart, built.chart)
        print("\n".join(built.texts))
        print(f"{out}: bulletin of {org.code} ({org.name}) from {period[0]} to {period[1]}"
              + (f"; chart {args.chart}" if args.chart else ""))
        return 0


def _write_file(path: Path, content: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)


@dataclass(frozen=True)
class RunOptions:
    """`run`'s options: the servers beside the bot, and polling or a webhook."""

    web: str | None = None
    health: str | None = None
    webhook: str | None = None
    listen: str | None = None

    @classmethod
    def of(cls, args: argparse.Namespace) -> RunOptions:
        return cls(*(getattr(args, name, None) for name in ("web", "health", "webhook", "listen")))


def run(settings: Settings, options: RunOptions | None = None) -> int:
    from telegram.error import InvalidToken

    from bot.app import ALLOWED_UPDATES, build_application, close_requests, serve_polling, serve_webhook

    options = options or RunOptions()
    if settings.tokens is not None:  # every bot's orgs exist, before any bot talks to Telegram
        asyncio.run(_check_bots(settings))
    app = build_application(settings)
    if app.bot_data["siblings"] and options.webhook:
        raise SettingsError("--webhook: serves one bot; with several (BOT_TOKENS) the bots poll")
    webhook = _attach_servers(app, settings, options)
    _log_network_retries()
    try:
        if app.bot_data["siblings"]:
            log.info("starting long polling for %d bots against %s", 1 + len(app.bot_data["siblings"]),
                     settings.api_url)
            asyncio.run(serve_polling(app))
            return 0
        if webhook is not None:
            log.info("starting in webhook mode against %s", settings.api_url)
            asyncio.run(serve_webhook(app, webhook))
            return 0
        log.info("starting long polling against %s", settings.api_url)
        try:
            # bootstrap_retries=-1: with no network at start-up, keep retrying instead of exiting.
            app.run_polling(bootstrap_retries=-1, allowed_updates=ALLOWED_UPDATES, close_loop=False)
        finally:
            loop = asyncio.get_event_loop()
            loop.run_until_complete(close_requests(app))
            loop.close()
    except InvalidToken:
        raise SettingsError("BOT_TOKEN: rejected by Telegram (check the token from @BotFather)") from None
    return 0


async def _check_bots(settings: Settings) -> None:
    async with open_core(settings) as core:
        await core.bots.configure()


def _attach_servers(app: Any, settings: Settings, options: RunOptions) -> Any:
    """The web wall, the health endpoints and the webhook's server; returns the webhook (None: polling).
    A malformed option stops start-up with one line, like a malformed setting."""
    from bot import ops, web

    try:
        if options.listen and not options.webhook:
            raise ValueError("--listen is for webhook mode: give --webhook URL too")
        if options.web and options.web in (options.health, options.listen):
            raise ValueError("--web needs an address of its own (the web wall answers GET only)")
        if options.web:
            web.attach(app, options.web)
        webhook = None
        if options.webhook:
            secret = settings.webhook_secret.get_secret_value() if settings.webhook_secret else None
            webhook = ops.Webhook(options.webhook, secret) if secret else ops.Webhook(options.webhook)
        ops.attach(app, health=options.health, listen=options.listen, webhook=webhook)
        return webhook
    except ValueError as exc:
        raise SettingsError(str(exc)) from None


def _log_network_retries() -> None:
    """PTB retries a lost connection (waiting up to 30 s between tries) but logs it at DEBUG only;
    show those lines as warnings so an operator sees the bot is waiting for the network."""

    def filter_ptb_debug(record: logging.LogRecord) -> bool:
        if record.levelno >= logging.INFO or not record.name.startswith("telegram"):
            return True
        message = record.getMessage()
        if "Network Retry Loop" in message and "Retrying" in message:
            record.levelno, record.levelname = logging.WARNING, "WARNING"
            return True
        return False

    logging.getLogger("telegram.ext").setLevel(logging.DEBUG)
    for handler in logging.getLogger().handlers:
        handler.addFilter(filter_ptb_debug)


async def orgs_command(settings: Settings, args: argparse.Namespace) -> int:
    from bot.services import orgfile

    async with open_core(settings) as core:
        if args.orgs_command == "export":
            text = await orgfile.export(core.orgs)
            if args.out:
                args.out.write_text(text, encoding="utf-8")
            else:
                sys.stdout.write(text)
            return 0
        try:
            text = args.file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            print(f"error: cannot read {args.file}: {exc}", file=sys.stderr)
            return 2
        known = {r["code"] for r in await core.db.fetchall("SELECT code FROM orgs")}
        try:
            plan = orgfile.parse(text, known)
        except orgfile.OrgFileError as exc:
            for problem in exc.problems:
                print(f"{args.file}: {problem}", file=sys.stderr)
            print(f"{len(exc.problems)} problem(s); nothing was changed.", file=sys.stderr)
            return 1
        async with core.db.transaction() as tx:
            report = await orgfile.apply(core.orgs, tx, plan, source_note=str(args.file))
        print(f"orgs: {report.orgs_added} added, {report.orgs_changed} changed; people: {report.people_added} added;"
              f" roles: {report.roles_granted} granted, {report.roles_revoked} revoked")
        if report.orgs_not_in_file:
            print("kept (in the database but not in the file): " + ", ".join(report.orgs_not_in_file))
        return 0


async def tickets_command(settings: Settings, args: argparse.Namespace) -> int:

    async with open_core(settings) as core:
        service = core.tickets
        try:
            if args.tickets_command == "settings":
                categories = [c.strip() for c in args.categories.split(",")] if args.categories else None
                await service.configure(SYSTEM_ACTOR, args.org_code, accept_days=args.accept_days,
                                        answer_days=args.answer_days, categories=categories)
            else:
                person = None if args.person.lower() == "none" else int(args.person)
                await service.assign_category(SYSTEM_ACTOR, args.org_code, args.category, person)
        except (NotFound, ValueError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        print("saved")
        return 0


async def calendar_command(settings: Settings, args: argparse.Namespace) -> int:
    from datetime import date, timedelta

    from bot.services.workdays import CalendarFileError

    async with open_core(settings) as core:
        if args.calendar_command == "load":
            try:
                year, holidays, workdays = await core.calendar.load_file(args.file.read_text(encoding="utf-8"))
            except OSError as exc:
                print(f"error: cannot read {args.file}: {exc}", file=sys.stderr)
                return 2
            except CalendarFileError as exc:
                for problem in exc.problems:
                    print(f"{args.file}: {problem}", file=sys.stderr)
                print("nothing was loaded.", file=sys.stderr)
                return 1
            print(f"{year}: {holidays} holidays and {workdays} make-up working days loaded")
            return 0
        year = args.year
        print(f"{year}: source {core.calendar.source(year)}")
        day = date(year, 1, 1)
        while day.year == year:
            working, weekday = core.calendar.is_working_day(day), day.weekday() < 5
            if working != weekday:
                print(f"{day.isoformat()} {'workday' if working else 'holiday'}")
            day += timedelta(days=1)
        return 0


async def invite_command(settings: Settings, args: argparse.Namespace) -> int:
    async with open_core(settings) as core:
        if args.revoke:
            try:
                invite = await core.invites.revoke(args.revoke, actor=SYSTEM_ACTOR)
            except NotFound as exc:
                print(f"error: {exc}", file=sys.stderr)
                return 1
            print(f"revoked: {invite.payload} ({invite.org.code}, {invite.role})")
            return 0
        if args.list:
            for invite in await core.invites.list(args.org_code, actor=SYSTEM_ACTOR):
                state = "revoked" if invite.revoked else "active"
                print(f"{invite.payload}\t{invite.org.code}\t{invite.role}\t{state}")
            return 0
        org = await core.orgs.by_code(args.org_code)
        username = await core.bot_username(org.id if org else None) or await _fetch_username(settings)
        try:
            invite = await core.invites.create(args.org_code, args.role, SYSTEM_ACTOR, revoke_old=args.revoke_old)
        except NotFound as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        link = f"https://t.me/{username}?start={invite.payload}"
        print(link)
        print(invite.payload)
        if args.qr:
            write_qr(link, args.qr)
            print(f"QR code written to {args.qr}")
        return 0


def add_outbox_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    out = sub.add_parser("outbox", help="what the bot has queued to send, and what failed")
    out_sub = out.add_subparsers(dest="outbox_command", required=True)
    status = out_sub.add_parser(
        "status", help="messages by kind: due, in flight, later, sent, failed, blocked, cancelled",
        description="Counts of outbox messages by kind (purpose, or the key's first part as 'mt:*') and state."
        " due: due now, not tried yet; in flight: tried and being retried (429, 5xx, network);"
        " later: not due yet; failed: refused for good (also logged at ERROR when it happened).")
    status.add_argument("--failures", type=int, default=20, metavar="N",
                        help="also list the latest N failed messages (default 20; 0 for none)")


OUTBOX_COLUMNS = ("due", "in flight", "later", "sent", "failed", "blocked", "cancelled")


async def outbox_command(settings: Settings, args: argparse.Namespace) -> int:
    """`outbox status`: a table of counts, then the latest failures with their keys and errors."""
    async with open_core(settings) as core:
        kinds = await core.outbox.status()
        failures = await core.outbox.failures(args.failures) if args.failures > 0 else []
    table = [(k.kind, k.due, k.in_flight, k.later, k.sent, k.failed, k.blocked, k.cancelled) for k in kinds]
    table.append(("total", *(sum(row[i] for row in table) for i in range(1, len(OUTBOX_COLUMNS) + 1))))
    width = max(len("kind"), *(len(row[0]) for row in table))
    print(f"{'kind':<{width}}  " + "  ".join(f"{c:>9}" for c in OUTBOX_COLUMNS))
    for kind, *counts in table:
        print(f"{kind:<{width}}  " + "  ".join(f"{n:>9}" for n in counts))
    if failures:
        print(f"\nlatest failed ({len(failures)}):")
        for f in failures:
            about = f"{f.purpose or '-'} {f.subject_id if f.subject_id is not None else '-'}"
            print(f"{f.key}\tchat {f.chat_id}\t{f.method}\t{about}\tafter {f.attempts} tries\t{f.error or ''}")
    return 0


def add_privacy_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Backups and the rights of the person (PIPL)."""
    bk = sub.add_parser("backup", help="a consistent copy of the database, safe while the bot runs")
    bk.add_argument("--out", type=Path, required=True, metavar="FILE")
    rs = sub.add_parser("restore", help="restore a backup into an empty database (BOT_DATABASE)")
    rs.add_argument("file", type=Path)
    person = sub.add_parser("person", help="a person's data: export it, or forget the person")
    person_sub = person.add_subparsers(dest="person_command", required=True)
    exp = person_sub.add_parser("export", help="everything stored about a person, as JSON")
    exp.add_argument("telegram_id", type=int)
    exp.add_argument("--out", type=Path, required=True, metavar="FILE.json")
    forget = person_sub.add_parser("forget", help="anonymise a person everywhere (counts and votes stay)")
    forget.add_argument("telegram_id", type=int)


def privacy_command(settings: Settings, args: argparse.Namespace) -> int:
    """`backup`, `restore` and `person export|forget`: an operator, acting as the system."""
    from bot.backup import BackupError

    try:
        if args.command == "backup":
            return _backup(settings, args.out)
        if args.command == "restore":
            return asyncio.run(_restore(settings, args.file))
        return asyncio.run(person_command(settings, args))
    except BackupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


def _backup(settings: Settings, out: Path) -> int:
    from bot.backup import backup

    report = backup(settings.database, out)
    print(f"{out}: backup of {settings.database} at {report.taken_at}, schema version {report.schema_version},"
          f" {report.rows} rows in {len(report.counts)} tables; integrity ok")
    return 0


async def _restore(settings: Settings, file: Path) -> int:
    from bot.backup import restore
    from bot.database import open_database

    report = await asyncio.to_thread(restore, file, settings.database)
    db = open_database(settings.database)
    await db.connect()  # a backup from an older version gets the newer migrations
    try:
        version = await db.fetchval("SELECT MAX(version) FROM schema_migrations")
    finally:
        await db.close()
    print(f"{settings.database}: restored from {file} (taken at {report.taken_at}, {report.rows} rows in"
          f" {len(report.counts)} tables, all counted again); schema version {version}")
    return 0


async def person_command(settings: Settings, args: argparse.Namespace) -> int:
    async with open_core(settings) as core:
        if args.person_command == "export":
            data = await core.privacy.export(SYSTEM_ACTOR, args.telegram_id, via="cli")
            await asyncio.to_thread(_write_file, args.out, core.privacy.to_json(data))
            tickets = len(data["tickets"]["submitted"])
            print(f"{args.out}: everything stored about person {args.telegram_id} ({tickets} problem(s),"
                  f" {len(data['meetings'])} meeting(s), {len(data['roles']['current'])} role(s))")
            return 0
        report = await core.privacy.forget(SYSTEM_ACTOR, args.telegram_id, via="cli")
        print(f"person {args.telegram_id} forgotten: " + ", ".join(f"{k.replace('_', ' ')} {v}"
                                                                  for k, v in report.as_dict().items()))
        return 0


async def _fetch_username(settings: Settings) -> str:
    """The bot's username from Telegram, when the bot has never run against this database."""
    from telegram import Bot

    if settings.token is None and settings.tokens is None:
        raise SettingsError("BOT_TOKEN: missing; it is needed to learn the bot's username (or run the bot once)")
    async with Bot(settings.bots()[0].token, base_url=settings.api_url) as bot:
        return bot.username


def write_qr(link: str, path: Path) -> None:
    """A QR code large enough to print on A4 and scan from a metre away."""
    import qrcode
    from qrcode.constants import ERROR_CORRECT_M

    code = qrcode.QRCode(error_correction=ERROR_CORRECT_M, box_size=12, border=4)
    code.add_data(link)
    code.make(fit=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    code.make_image(fill_color="black", back_color="white").save(path)


if __name__ == "__main__":
    sys.exit(main())
