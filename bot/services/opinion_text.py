"""The opinion map's published result in words (chat, wall, ledger): the statements that bridge
all groups, each group's most representative statements, the most divisive ones. Masked texts
and shares only; never a person."""

from __future__ import annotations

from typing import Any

from bot.formatting import Formatter
from bot.i18n import Translator


def share(part: int, whole: int) -> int:
    return round(100 * part / whole) if whole else 0


def group_shares(snapshot: dict[str, Any], sid: int) -> list[int]:
    """The agree share in each group for one statement."""
    return [share(a, a + d + p) for a, d, p in snapshot["statements"][str(sid)]["g"]]


def result_lines(t: Translator, fmt: Formatter, lang: str, title: str, snapshot: dict[str, Any]) -> list[str]:
    statements = snapshot["statements"]
    k = int(snapshot["k"])
    lines = [t(lang, "om.result.head", title=title),
             t(lang, "om.result.figures", people=snapshot["participants"], statements=len(statements),
               groups=k if k > 1 else 1)]
    if not statements:
        return [*lines, t(lang, "om.result.none")]
    lines.append("")
    lines.append(t(lang, "om.result.bridging_head"))
    for sid in snapshot["bridging"]:
        s = statements[str(sid)]
        lines.append(t(lang, "om.result.bridging", text=s["text"], agree=share(s["a"], s["a"] + s["d"] + s["p"])))
    if not snapshot["bridging"]:
        lines.append(t(lang, "om.result.nothing"))
    if k > 1:
        for g, group in enumerate(snapshot["representative"]):
            lines.append("")
            lines.append(t(lang, "om.result.group_head", n=g + 1, size=snapshot["sizes"][g]))
            for sid, direction in group:
                s = statements[str(sid)]
                a, d, p = s["g"][g]
                key = "om.result.rep_agree" if direction > 0 else "om.result.rep_disagree"
                lines.append(t(lang, key, text=s["text"], percent=share(a if direction > 0 else d, a + d + p)))
            if not group:
                lines.append(t(lang, "om.result.nothing"))
        lines.append("")
        lines.append(t(lang, "om.result.divisive_head"))
        for sid in snapshot["divisive"]:
            shares = fmt.join(lang, [t(lang, "om.result.group_share", n=g + 1, percent=pc)
                                     for g, pc in enumerate(group_shares(snapshot, sid))])
            lines.append(t(lang, "om.result.divisive", text=statements[str(sid)]["text"], shares=shares))
        if not snapshot["divisive"]:
            lines.append(t(lang, "om.result.nothing"))
    lines.append("")
    lines.append(t(lang, "om.result.footer"))
    return lines
