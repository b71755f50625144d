"""The echo wall on the web: `python -m bot run --web 127.0.0.1:8080` also serves `/wall/<org code>`.

Three parts, one at a time, with a row of large buttons to switch (`?show=rounds`, `?show=matters`;
the problems without the parameter): the answered problems, the results of deliberation rounds, and
the village decisions published under 四议两公开. Each part is its own list, newest first, with its
own keyset paging. Not one merged timeline: a village answers hundreds of problems a year and holds
a handful of rounds and decisions, which would be buried under them; and not three paged lists on
one page, which would put three pairs of page buttons on a phone's screen.

Read-only and public: GET and HEAD only (anything else is 405), no login, no cookies, no scripts,
no person's name or id; texts are masked as in chat (bot/services/echo_wall.py) and HTML-escaped here.
Mobile-first and sized in rem, so a phone's large-text setting makes everything larger.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import string
from collections.abc import Awaitable, Callable
from datetime import date, datetime
from html import escape
from typing import Any
from urllib.parse import urlencode

from aiohttp import web
from babel.dates import format_date

from bot.core import Core
from bot.services.echo_wall import BadCursor, MatterEntry, Page, RoundEntry, StageLine, StageVote, WallEntry
from bot.services.matters import OUTCOME_KEYS, STAGE_KEYS
from bot.services.opinion_text import result_lines
from bot.services.orgs import NotFound
from bot.services.tickets import status_word

log = logging.getLogger(__name__)

LANGS = ("zh_CN", "en")
HTML_LANG = {"zh_CN": "zh-CN", "en": "en"}
# The wall's parts (`?show=`), the first without the parameter, with each part's texts.
VIEWS = ("problems", "rounds", "matters")
TAB_KEYS = {"problems": "web.tab.problems", "rounds": "web.tab.rounds", "matters": "web.tab.matters"}
SUBTITLE_KEYS = {"problems": "web.subtitle", "rounds": "web.rounds.subtitle", "matters": "web.matters.subtitle"}
HOW_KEYS = {"problems": "web.how", "rounds": "web.rounds.how", "matters": "web.matters.how"}
EMPTY_KEYS = {"problems": "web.empty", "rounds": "web.rounds.empty", "matters": "web.matters.empty"}
PRIVACY_KEYS = {"problems": "web.privacy", "rounds": "web.rounds.privacy", "matters": "web.matters.privacy"}

CSS = """
html{font-size:125%;-webkit-text-size-adjust:100%;text-size-adjust:100%}
body{margin:0;background:#fbf7ee;color:#1a1a1a;line-height:1.75;
font-family:"Noto Sans CJK SC","Source Han Sans SC","PingFang SC","Microsoft YaHei","WenQuanYi Zen Hei",sans-serif}
header{background:#a8141c;color:#fff;padding:1rem 1rem .8rem}
header h1{margin:0;font-size:1.5rem;line-height:1.35}
header h1 span{display:inline-block}
header p{margin:.3rem 0 0;font-size:1rem}
.lang{float:right;color:#fff;font-size:.9rem;padding:.2rem .5rem;border:1px solid #fff;border-radius:.4rem;
text-decoration:none;margin-left:.5rem}
main{max-width:46rem;margin:0 auto;padding:.6rem .8rem 2rem}
.note{font-size:.9rem;color:#444;margin:.6rem 0}
article{background:#fff;border:2px solid #d9c9a8;border-radius:.7rem;padding:.8rem 1rem;margin:1rem 0}
.meta{font-size:.85rem;color:#555;margin:0 0 .4rem}
.tag{display:inline-block;background:#f3e3c3;color:#5a3b00;border-radius:.4rem;padding:0 .45rem;margin-right:.4rem}
.qa{margin:.35rem 0;white-space:pre-wrap;overflow-wrap:anywhere}
.qa b{color:#a8141c;margin-right:.3rem}
.answer{background:#fdf1f1;border-radius:.5rem;padding:.4rem .6rem}
nav{display:flex;flex-wrap:wrap;gap:.8rem;justify-content:space-between;margin:1.5rem 0}
nav a{display:inline-block;min-height:2.6rem;padding:.5rem 1rem;border:2px solid #a8141c;border-radius:.6rem;
color:#a8141c;background:#fff;text-decoration:none;font-size:1.05rem}
.empty{font-size:1.1rem;padding:1.5rem 0}
a{color:#a8141c}
nav.tabs{justify-content:flex-start;gap:.5rem;margin:.9rem 0 .3rem}
nav.tabs a{flex:1 1 auto;display:flex;align-items:center;justify-content:center;text-align:center;
min-height:2.4rem;padding:.25rem .6rem;font-size:1rem;line-height:1.4}
nav.tabs a[aria-current]{background:#a8141c;color:#fff}
article>p{margin:.45rem 0}
article h2{font-size:1.2rem;line-height:1.45;margin:.1rem 0 .3rem;overflow-wrap:anywhere}
article h3{font-size:1.02rem;color:#a8141c;margin:.8rem 0 .2rem}
.counts,.top,.stages{margin:.3rem 0;padding-left:1.3rem}
.counts li,.top li,.stages li{margin:.3rem 0;overflow-wrap:anywhere}
.counts b{margin-left:.4rem}
progress{display:block;width:100%;height:.9rem;accent-color:#a8141c}
.sub{margin:.5rem 0 .1rem;font-weight:bold}
.stages span{display:block;font-size:.92rem;color:#333}
footer{font-size:.85rem;color:#555;border-top:1px solid #d9c9a8;padding-top:.8rem}
@media (min-width:48rem){html{font-size:131%}header{padding:1.4rem calc(50% - 22.2rem) 1rem}}
"""
_CSS_HASH = base64.b64encode(hashlib.sha256(CSS.encode()).digest()).decode()
HEADERS = {
    # No scripts, no images, no forms, no framing; only our one inline style.
    "Content-Security-Policy": f"default-src 'none'; style-src 'sha256-{_CSS_HASH}'; base-uri 'none';"
                               " form-action 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "public, max-age=60",
}
READ_ONLY = ("GET", "HEAD")


class WallSite:
    """The aiohttp application and, once started, its listening socket."""

    def __init__(self, core: Core) -> None:
        self.core = core
        self.wall = core.echo_wall
        self.runner: web.AppRunner | None = None

    def application(self) -> web.Application:
        app = web.Application(middlewares=[_read_only])
        app.router.add_get("/wall/{code}", self.wall_page)
        app.router.add_get("/{tail:.*}", self.not_found)
        return app

    async def start(self, host: str, port: int) -> None:
        self.runner = web.AppRunner(self.application(), access_log=None)
        await self.runner.setup()
        await web.TCPSite(self.runner, host, port).start()
        log.info("echo wall web page on http://%s:%s/wall/<org code>", host, port)

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None

    # --- pages ----------------------------------------------------------------------------------
    async def wall_page(self, request: web.Request) -> web.Response:
        lang = self._lang(request)
        code = request.match_info["code"]
        view = request.query.get("show", VIEWS[0])
        if view not in VIEWS:
            return self._message(lang, 404, "web.not_found")
        fetch = {"problems": self.wall.page, "rounds": self.wall.rounds, "matters": self.wall.matters}[view]
        try:
            page: Page[Any] = await fetch(code, lang, before=request.query.get("before"),
                                          after=request.query.get("after"))
        except NotFound:
            return self._message(lang, 404, "web.no_org")
        except BadCursor:
            return self._message(lang, 400, "web.bad_page")
        here = {k: request.query[k] for k in ("before", "after") if k in request.query}
        return _html(self._render(lang, view, page, here))

    async def not_found(self, request: web.Request) -> web.Response:
        lang = self._lang(request)
        return self._message(lang, 404, "web.not_found")

    def _lang(self, request: web.Request) -> str:
        """The page's language: ?lang=…, else the bot's default."""
        asked = request.query.get("lang", "")
        return asked if asked in LANGS else self.core.settings.locale

    def _message(self, lang: str, status: int, key: str) -> web.Response:
        body = f"<main><p class=\"empty\">{self._h(lang, key)}</p></main>"
        return _html(_document(lang, self._h(lang, "web.title_plain"), body), status)

    # --- rendering ------------------------------------------------------------------------------
    def _h(self, lang: str, key: str, /, **values: Any) -> str:
        """A catalog text as HTML: the catalog's own words and every value escaped."""
        template = self.core.t(lang, key)
        return "".join(escape(literal) + (escape(str(values[name])) if name is not None else "")
                       for literal, name, _, _ in string.Formatter().parse(template))

    def _render(self, lang: str, view: str, page: Page[Any], here: dict[str, str]) -> str:
        org = page.org
        other = next(code for code in LANGS if code != lang)
        switch = _link(org.code, other, view, here)
        parts = [
            "<header>",
            f"<a class=\"lang\" href=\"{escape(switch)}\" hreflang=\"{HTML_LANG[other]}\">"
            f"{self._h(lang, 'web.switch')}</a>",
            f"<h1><span>{escape(org.name)}</span> <span>{self._h(lang, 'web.title_plain')}</span></h1>",
            f"<p>{self._h(lang, SUBTITLE_KEYS[view])}</p>",
            "</header><main>",
            self._tabs(lang, org.code, view),
            f"<p class=\"note\">{self._h(lang, HOW_KEYS[view])}</p>",
        ]
        if not page.entries:
            parts.append(f"<p class=\"empty\">{self._h(lang, EMPTY_KEYS[view])}</p>")
        article = {"problems": self._article, "rounds": self._round, "matters": self._matter}[view]
        parts.extend(article(lang, entry) for entry in page.entries)
        nav = []
        if page.newer:
            nav.append(f"<a href=\"{escape(_link(org.code, lang, view, {'after': page.newer}))}\" rel=\"prev\">"
                       f"{self._h(lang, 'web.newer')}</a>")
        if page.older:
            nav.append(f"<a href=\"{escape(_link(org.code, lang, view, {'before': page.older}))}\" rel=\"next\">"
                       f"{self._h(lang, 'web.older')}</a>")
        if nav:
            parts.append("<nav>" + "".join(nav) + "</nav>")
        if page.newer:
            first = escape(_link(org.code, lang, view, {}))
            parts.append(f"<p><a href=\"{first}\">{self._h(lang, 'web.first')}</a></p>")
        parts.append(f"<footer>{self._h(lang, PRIVACY_KEYS[view])}</footer></main>")
        return _document(lang, self._h(lang, "web.title", org=org.name), "".join(parts))

    def _tabs(self, lang: str, code: str, view: str) -> str:
        """The row of buttons between the wall's parts; the part shown is marked (filled)."""
        current = ' aria-current="page"'
        links = [f"<a href=\"{escape(_link(code, lang, name, {}))}\"{current if name == view else ''}>"
                 f"{self._h(lang, TAB_KEYS[name])}</a>" for name in VIEWS]
        return f"<nav class=\"tabs\" aria-label=\"{self._h(lang, 'web.tab.label')}\">{''.join(links)}</nav>"

    def _day(self, lang: str, when: date | datetime) -> str:
        return self.core.formatter.day(lang, when, weekday=False, year=True)

    def _article(self, lang: str, entry: WallEntry) -> str:
        tz = self.core.settings.tz
        key = f"ticket.category.{entry.category}"
        category = self.core.t(lang, key) if key in self.core.t.catalogs.get(lang, {}) else entry.category
        status = status_word(self.core.t, lang, entry.status)
        problem = escape(entry.problem) if entry.problem else self._h(lang, "web.no_text")
        dates = self._h(lang, "web.dates", submitted=format_date(entry.created_at.astimezone(tz), "long", locale=lang),
                        answered=format_date(entry.answered_at.astimezone(tz), "long", locale=lang))
        return (
            f"<article id=\"p{entry.id}\"><p class=\"meta\"><span class=\"tag\">{escape(category)}</span>"
            f"#{entry.id} · {escape(status)}</p>"
            f"<p class=\"qa\"><b>{self._h(lang, 'web.problem')}</b>{problem}</p>"
            f"<p class=\"qa answer\"><b>{self._h(lang, 'web.answer')}</b>{escape(entry.answer)}</p>"
            f"<p class=\"meta\">{dates}</p></article>"
        )

    def _round(self, lang: str, entry: RoundEntry) -> str:
        """A closed round's result in the chat result's words: counts (with a bar), turnout, proxy
        ballots, the most supported opinions; a secret ballot says what it keeps secret."""
        fmt = self.core.formatter
        parts = [f"<article id=\"r{entry.id}\" class=\"round\"><h2>{escape(entry.title)}</h2>"
                 f"<p class=\"meta\"><span class=\"tag\">{self._h(lang, 'web.rounds.tag')}</span>"
                 f"{self._h(lang, 'web.rounds.closed', day=self._day(lang, entry.closed_at))}</p>"]
        if entry.voted:
            if entry.secret:
                parts.append(f"<p class=\"meta\">{self._h(lang, 'web.rounds.secret')}</p>")
            rows = [f"<li>{escape(label)}<b>{escape(fmt.count(lang, 'delib.result.votes', n))}</b>"
                    f"<progress max=\"{max(entry.ballots, n, 1)}\" value=\"{n}\"></progress></li>"
                    for label, n in entry.options]
            parts.append(f"<ul class=\"counts\">{''.join(rows)}</ul>")
            turnout = self._h(lang, "delib.result.turnout", ballots=entry.ballots, eligible=entry.eligible,
                              percent=entry.turnout)
            parts.append(f"<p>{turnout}</p>")
            if entry.proxies:
                parts.append(f"<p>{self._h(lang, 'delib.result.proxies', n=entry.proxies)}</p>")
        elif entry.had_vote:
            parts.append(f"<p>{self._h(lang, 'delib.result.no_vote')}</p>")
        parts.append(f"<p>{escape(fmt.count(lang, 'delib.result.opinions', entry.opinions))}</p>")
        if entry.top:
            items = "".join(
                "<li>" + self._h(lang, "web.rounds.top", text=text, supports=fmt.count(lang, "web.rounds.supports", n))
                + "</li>" for text, n in entry.top)
            parts.append(f"<p class=\"sub\">{self._h(lang, 'delib.result.top_head')}</p><ul class=\"top\">{items}</ul>")
        if entry.early_reason:
            parts.append(f"<p class=\"meta\">{self._h(lang, 'delib.result.early', reason=entry.early_reason)}</p>")
        if entry.opinion_map is not None:  # the opinion map's three parts, in the chat result's words
            lines = result_lines(self.core.t, fmt, lang, entry.title, entry.opinion_map)
            parts += [f"<p class=\"sub\">{escape(line)}</p>" if i == 0 else f"<p>{escape(line)}</p>"
                      for i, line in enumerate(lines) if line]
        return "".join(parts) + "</article>"

    def _matter(self, lang: str, entry: MatterEntry) -> str:
        """决议公开 (the decision and the four stages it passed), then 实施结果公开 once published.
        The result's photos are not on the web: they are Telegram messages, and fetching them would
        put the bot's token in a URL; the page says how many there are and where to see them."""
        parts = [f"<article id=\"m{entry.id}\" class=\"matter\"><h2>{escape(entry.title)}</h2>"
                 f"<p class=\"meta\"><span class=\"tag\">{self._h(lang, 'web.matters.tag')}</span>"]
        if entry.estimate:
            parts.append(self._h(lang, "matter.card.estimate", estimate=entry.estimate))
        parts.append("</p>")
        parts.append(f"<h3>{self._h(lang, 'web.matters.decision', day=self._day(lang, entry.decided_at))}</h3>"
                     f"<p class=\"qa\">{escape(entry.decision)}</p>")
        if entry.stages:
            lines = "".join(self._stage(lang, stage) for stage in entry.stages)
            parts.append(f"<p class=\"sub\">{self._h(lang, 'web.matters.path')}</p><ol class=\"stages\">{lines}</ol>")
        if entry.result is not None and entry.result_at is not None:
            parts.append(f"<h3>{self._h(lang, 'web.matters.result', day=self._day(lang, entry.result_at))}</h3>"
                         f"<p class=\"qa\">{escape(entry.result)}</p>")
            if entry.photos:
                photos = self.core.formatter.count(lang, "web.matters.photos", entry.photos)
                parts.append(f"<p class=\"meta\">{escape(photos)}</p>")
        else:
            parts.append(f"<p class=\"meta\">{self._h(lang, 'web.matters.no_result')}</p>")
        return "".join(parts) + "</article>"

    def _stage(self, lang: str, stage: StageLine) -> str:
        head = self._h(lang, "web.matters.stage", stage=self.core.t(lang, STAGE_KEYS[stage.stage]),
                       day=self._day(lang, stage.held_on),
                       outcome=self.core.t(lang, OUTCOME_KEYS["passed" if stage.passed else "rejected"]))
        extra = []
        if stage.meeting and stage.meeting_day is not None:
            extra.append(self._h(lang, "web.matters.meeting", topic=stage.meeting,
                                 day=self._day(lang, stage.meeting_day)))
        if stage.vote is not None:
            extra.append(self._vote(lang, stage.vote))
        if stage.note:
            extra.append(self._h(lang, "matter.card.note", note=stage.note))
        return f"<li><b>{head}</b>" + "".join(f"<span>{line}</span>" for line in extra) + "</li>"

    def _vote(self, lang: str, vote: StageVote) -> str:
        """A stage's vote in the chat publication's words (matters' own texts), except each choice's
        count, set apart from its label here: "先不修，有事打138****5678：1票", not "…56781票"."""
        if vote.kind == "paper":
            text = self._h(lang, "matter.vote.paper", yes=vote.yes, no=vote.no, abstain=vote.abstain)
            return text + (self._h(lang, "matter.vote.present", n=vote.present) if vote.present else "")
        counts = self.core.t(lang, "matter.vote.list_sep").join(
            self.core.t(lang, "web.matters.option", label=label, n=n) for label, n in vote.options)
        return self._h(lang, "matter.vote.round", title=vote.title, counts=counts, ballots=vote.ballots,
                       eligible=vote.eligible)


def _link(code: str, lang: str, view: str, query: dict[str, str]) -> str:
    """A link that keeps the page's part and language (the first of each, the default, needs no
    parameter)."""
    params = {"show": view} if view != VIEWS[0] else {}
    params.update(query)
    if lang != LANGS[0]:
        params["lang"] = lang
    return f"/wall/{code}" + (f"?{urlencode(params)}" if params else "")


def _document(lang: str, title: str, body: str) -> str:
    return (
        f"<!DOCTYPE html><html lang=\"{HTML_LANG.get(lang, 'zh-CN')}\"><head><meta charset=\"utf-8\">"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
        "<meta name=\"robots\" content=\"noindex\">"
        f"<title>{title}</title><style>{CSS}</style></head><body>{body}</body></html>"
    )


def _html(text: str, status: int = 200) -> web.Response:
    return web.Response(text=text, status=status, content_type="text/html", charset="utf-8", headers=HEADERS)


@web.middleware
async def _read_only(request: web.Request,
                     handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
    """Every path answers GET and HEAD only: nothing on this site changes anything."""
    if request.method not in READ_ONLY:
        return web.Response(status=405, text="405: read-only", headers={**HEADERS, "Allow": ", ".join(READ_ONLY)})
    return await handler(request)


def parse_address(text: str, option: str = "--web") -> tuple[str, int]:
    """`127.0.0.1:8080` or `[::1]:8080` → (host, port) (port 0: any free one); ValueError otherwise."""
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) < 65536:
        raise ValueError(f"{option} expects HOST:PORT, e.g. 127.0.0.1:8080, not {text!r}")
    return host.strip("[]"), int(port)


def attach(app: Any, address: str) -> WallSite:
    """Serve the web page alongside the bot: started after the bot's post_init (the database is open
    then), stopped before its post_shutdown closes the database."""
    host, port = parse_address(address)
    site = WallSite(app.core)
    inner_init, inner_shutdown = app.post_init, app.post_shutdown

    async def post_init(application: Any) -> None:
        if inner_init is not None:
            await inner_init(application)
        await site.start(host, port)

    async def post_shutdown(application: Any) -> None:
        await site.stop()
        if inner_shutdown is not None:
            await inner_shutdown(application)

    app.post_init, app.post_shutdown = post_init, post_shutdown
    return site
