"""The echo wall on the web: `python -m bot run --web 127.0.0.1:8080` also serves `/wall/<org code>`.

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
from html import escape
from typing import Any
from urllib.parse import urlencode

from aiohttp import web
from babel.dates import format_date

from bot.core import Core
from bot.services.echo_wall import BadCursor, WallEntry, WallPage
from bot.services.orgs import NotFound
from bot.services.tickets import status_word

log = logging.getLogger(__name__)

LANGS = ("zh_CN", "en")
HTML_LANG = {"zh_CN": "zh-CN", "en": "en"}

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
        try:
            page = await self.wall.page(code, lang, before=request.query.get("before"),
                                        after=request.query.get("after"))
        except NotFound:
            return self._message(lang, 404, "web.no_org")
        except BadCursor:
            return self._message(lang, 400, "web.bad_page")
        here = {k: request.query[k] for k in ("before", "after") if k in request.query}
        return _html(self._render(lang, page, here))

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

    def _render(self, lang: str, page: WallPage, here: dict[str, str]) -> str:
        org = page.org
        other = next(code for code in LANGS if code != lang)
        switch = _link(org.code, other, here)
        parts = [
            "<header>",
            f"<a class=\"lang\" href=\"{escape(switch)}\" hreflang=\"{HTML_LANG[other]}\">"
            f"{self._h(lang, 'web.switch')}</a>",
            f"<h1><span>{escape(org.name)}</span> <span>{self._h(lang, 'web.title_plain')}</span></h1>",
            f"<p>{self._h(lang, 'web.subtitle')}</p>",
            "</header><main>",
            f"<p class=\"note\">{self._h(lang, 'web.how')}</p>",
        ]
        if not page.entries:
            parts.append(f"<p class=\"empty\">{self._h(lang, 'web.empty')}</p>")
        parts.extend(self._article(lang, entry) for entry in page.entries)
        nav = []
        if page.newer:
            nav.append(f"<a href=\"{escape(_link(org.code, lang, {'after': page.newer}))}\" rel=\"prev\">"
                       f"{self._h(lang, 'web.newer')}</a>")
        if page.older:
            nav.append(f"<a href=\"{escape(_link(org.code, lang, {'before': page.older}))}\" rel=\"next\">"
                       f"{self._h(lang, 'web.older')}</a>")
        if nav:
            parts.append("<nav>" + "".join(nav) + "</nav>")
        if page.newer:
            parts.append(f"<p><a href=\"{escape(_link(org.code, lang, {}))}\">{self._h(lang, 'web.first')}</a></p>")
        parts.append(f"<footer>{self._h(lang, 'web.privacy')}</footer></main>")
        return _document(lang, self._h(lang, "web.title", org=org.name), "".join(parts))

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


def _link(code: str, lang: str, query: dict[str, str]) -> str:
    """A link that keeps the page's language (the first language, the default, needs no parameter)."""
    params = dict(query)
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


def parse_address(text: str) -> tuple[str, int]:
    """`127.0.0.1:8080` or `[::1]:8080` → (host, port) (port 0: any free one); ValueError otherwise."""
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) < 65536:
        raise ValueError(f"--web expects HOST:PORT, e.g. 127.0.0.1:8080, not {text!r}")
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
