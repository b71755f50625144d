"""What a person's export holds (bot/services/privacy.py): one function per part, each reading the
person's own rows. Other people appear by no name and no id (an appointer, a handler, a proxy voter
are left out or reduced to a yes/no), and a secret ballot shows only that the person voted."""

from __future__ import annotations

import json
from typing import Any

from bot.database import Tx


def _dicts(rows: list[Any]) -> list[dict[str, Any]]:
    return [dict(r) for r in rows]


async def collect(tx: Tx, person_id: int) -> dict[str, Any]:
    return {
        "person": await _profile(tx, person_id),
        "roles": await _roles(tx, person_id),
        "tickets": await _tickets(tx, person_id),
        "meetings": await _meetings(tx, person_id),
        "deliberation": await _deliberation(tx, person_id),
        "ballots": await _ballots(tx, person_id),
        "broadcasts": await _broadcasts(tx, person_id),
        "appraisal_reports": _dicts(await tx.fetchall(
            "SELECT a.year, o.name AS org, t.report_kind, t.report_text, t.report_at FROM appraisal_targets t"
            " JOIN appraisals a ON a.id = t.appraisal_id JOIN orgs o ON o.id = t.org_id"
            " WHERE t.secretary_id = ? ORDER BY t.id", (person_id,))),
        "pledges": _dicts(await tx.fetchall(
            "SELECT o.name AS org, p.text, p.created_at, p.ended_at FROM pledges p JOIN orgs o ON o.id = p.org_id"
            " WHERE p.person_id = ? ORDER BY p.id", (person_id,))),
        "pledge_reports": _dicts(await tx.fetchall(
            "SELECT r.text, r.created_at, r.status, r.decided_at FROM pledge_reports r WHERE r.person_id = ?"
            " ORDER BY r.id", (person_id,))),
        # Who adjusted is another person: left out, like every other person in the export.
        "point_adjustments": _dicts(await tx.fetchall(
            "SELECT o.name AS org, a.delta, a.reason, a.at FROM point_adjustments a JOIN orgs o ON o.id = a.org_id"
            " WHERE a.person_id = ? ORDER BY a.id", (person_id,))),
        "opinion_map_statements": _dicts(await tx.fetchall(
            "SELECT r.title AS round, s.text, s.created_at, s.hidden_at FROM om_statements s"
            " JOIN delib_rounds r ON r.id = s.round_id WHERE s.author_id = ? ORDER BY s.id", (person_id,))),
        # Their own votes on statements (an opinion map's votes are not secret ballots).
        "opinion_map_votes": _dicts(await tx.fetchall(
            "SELECT s.text AS statement, v.vote FROM om_votes v JOIN om_statements s ON s.id = v.statement_id"
            " WHERE v.person_id = ? ORDER BY s.id", (person_id,))),
        "in_progress": await _state(tx, person_id),
    }


async def _profile(tx: Tx, person_id: int) -> dict[str, Any]:
    row = await tx.fetchone("SELECT telegram_id, name, username, language, tg_language_code, blocked_bot,"
                            " created_at, updated_at FROM people WHERE telegram_id = ?", (person_id,))
    profile: dict[str, Any] = dict(row) if row else {"telegram_id": person_id}
    digest = await tx.fetchval("SELECT digest FROM notice_settings WHERE person_id = ?", (person_id,))
    profile["settings"] = {"language": profile.pop("language", None), "daily_digest": bool(digest)}
    return profile


async def _roles(tx: Tx, person_id: int) -> dict[str, Any]:
    return {
        "current": _dicts(await tx.fetchall(
            "SELECT o.code AS org_code, o.name AS org, r.role, r.granted_at FROM roles r JOIN orgs o ON o.id = r.org_id"
            " WHERE r.person_id = ? ORDER BY o.id, r.role", (person_id,))),
        # Who granted or revoked is another person: only what changed, when, and how.
        "history": _dicts(await tx.fetchall(
            "SELECT a.at, a.action, a.role, o.name AS org, a.source FROM role_audit a JOIN orgs o ON o.id = a.org_id"
            " WHERE a.person_id = ? ORDER BY a.id", (person_id,))),
        "join_requests": _dicts(await tx.fetchall(
            "SELECT o.name AS org, j.role, j.status, j.created_at, j.decided_at FROM join_requests j"
            " JOIN orgs o ON o.id = j.org_id WHERE j.person_id = ? ORDER BY j.id", (person_id,))),
        "committee": _dicts(await tx.fetchall(
            "SELECT o.name AS org, c.title, c.added_at FROM meeting_committee c JOIN orgs o ON o.id = c.org_id"
            " WHERE c.person_id = ?", (person_id,))),
        "categories_answered": _dicts(await tx.fetchall(
            "SELECT o.name AS org, a.category FROM category_assignees a JOIN orgs o ON o.id = a.org_id"
            " WHERE a.person_id = ?", (person_id,))),
    }


async def _tickets(tx: Tx, person_id: int) -> dict[str, Any]:
    """The problems they submitted, anonymous ones included (they are the author), with everything
    said on them; a handler's words are theirs to read, the handler's name is not in it."""
    tickets = _dicts(await tx.fetchall(
        "SELECT t.id, o.name AS org, t.category, t.public_ok, t.anonymous, t.status, t.summary, t.answer_text,"
        " t.rating, t.rating_reason, t.created_at, t.accepted_at, t.answered_at, t.closed_at"
        " FROM tickets t JOIN orgs o ON o.id = t.org_id WHERE t.resident_id = ? ORDER BY t.id", (person_id,)))
    for ticket in tickets:
        ticket["items"] = _dicts(await tx.fetchall(
            "SELECT side, kind, text, created_at FROM ticket_items WHERE ticket_id = ? ORDER BY id", (ticket["id"],)))
    blocks = _dicts(await tx.fetchall(
        "SELECT o.name AS org, b.blocked_at, b.lifted_at FROM submit_blocks b JOIN orgs o ON o.id = b.org_id"
        " WHERE b.person_id = ? ORDER BY b.id", (person_id,)))
    return {"submitted": tickets, "blocks": blocks}


async def _meetings(tx: Tx, person_id: int) -> list[dict[str, Any]]:
    return _dicts(await tx.fetchall(
        "SELECT m.id, o.name AS org, m.kind, m.topic, m.place, m.starts_at, m.status, a.answer, a.leave_reason,"
        " a.answered_at, a.checked_in_at, a.presence FROM meeting_attendees a JOIN meetings m ON m.id = a.meeting_id"
        " JOIN orgs o ON o.id = m.org_id WHERE a.person_id = ? ORDER BY m.starts_at", (person_id,)))


async def _deliberation(tx: Tx, person_id: int) -> dict[str, Any]:
    return {
        "opinions": _dicts(await tx.fetchall(
            "SELECT r.title AS round, p.kind, p.text, p.anonymous, p.created_at, p.hidden_at IS NOT NULL AS hidden"
            " FROM delib_opinions p JOIN delib_rounds r ON r.id = p.round_id WHERE p.author_id = ? ORDER BY p.id",
            (person_id,))),
        "supported": _dicts(await tx.fetchall(
            "SELECT r.title AS round, p.text AS opinion FROM delib_supports s"
            " JOIN delib_opinions p ON p.id = s.opinion_id JOIN delib_rounds r ON r.id = p.round_id"
            " WHERE s.person_id = ? ORDER BY p.id", (person_id,))),
    }


async def _ballots(tx: Tx, person_id: int) -> list[dict[str, Any]]:
    """Each box they voted in. A secret box: voted, nothing more (there is nothing more to find:
    its tallies are counts per choice). An open box: their choices, which its readers see anyway."""
    found = []
    for row in await tx.fetchall("SELECT box, proxy_by IS NOT NULL AS by_proxy FROM ballot_voters WHERE person_id = ?"
                                 " ORDER BY box", (person_id,)):
        entry: dict[str, Any] = {"vote": await _box_title(tx, row["box"]), "voted": True,
                                 "cast_by_secretary": bool(row["by_proxy"])}
        choices = await tx.fetchval("SELECT choices FROM ballots_open WHERE box = ? AND person_id = ?",
                                    (row["box"], person_id))
        if choices is not None:
            entry["choices"] = await _labels(tx, row["box"], json.loads(choices))
        found.append(entry)
    return found


async def _box_title(tx: Tx, box: str) -> str:
    feature, _, number = box.partition(":")
    if feature == "delib" and number.isdigit():
        title = await tx.fetchval("SELECT title FROM delib_rounds WHERE id = ?", (int(number),))
        return f"deliberation: {title}"
    if feature == "appraisal" and number.isdigit():
        row = await tx.fetchone(
            "SELECT a.year, o.name FROM appraisal_targets t JOIN appraisals a ON a.id = t.appraisal_id"
            " JOIN orgs o ON o.id = t.org_id WHERE t.id = ?", (int(number),))
        return f"appraisal {row[0]}: {row[1]}" if row else "appraisal"
    return feature


async def _labels(tx: Tx, box: str, positions: list[int]) -> list[str]:
    feature, _, number = box.partition(":")
    if feature != "delib" or not number.isdigit():
        return [str(p) for p in positions]
    labels = {r[0]: r[1] for r in await tx.fetchall(
        "SELECT position, label FROM delib_options WHERE round_id = ?", (int(number),))}
    return [labels.get(p, str(p)) for p in positions]


async def _broadcasts(tx: Tx, person_id: int) -> dict[str, Any]:
    return {
        "sent": _dicts(await tx.fetchall(
            "SELECT b.id, o.name AS org, b.kind, b.body, b.status, b.created_at, b.total FROM broadcasts b"
            " JOIN orgs o ON o.id = b.org_id WHERE b.sender_id = ? ORDER BY b.id", (person_id,))),
        "received": _dicts(await tx.fetchall(
            "SELECT b.body, b.confirmed_at AS sent_at, r.acked_at FROM broadcast_recipients r"
            " JOIN broadcasts b ON b.id = r.broadcast_id WHERE r.person_id = ? ORDER BY b.id", (person_id,))),
    }


async def _state(tx: Tx, person_id: int) -> dict[str, Any]:
    """What the bot holds while the person is in the middle of something."""
    flow = await tx.fetchone("SELECT flow, step, updated_at FROM flows WHERE person_id = ?", (person_id,))
    return {
        "flow": dict(flow) if flow else None,
        "open_questions": _dicts(await tx.fetchall(
            "SELECT kind, asked_at, closed_at FROM open_questions WHERE person_id = ? ORDER BY id", (person_id,))),
        "kept_messages": _dicts(await tx.fetchall(
            "SELECT kept_at, message FROM kept_messages WHERE person_id = ? ORDER BY kept_at", (person_id,))),
        "messages_queued": await tx.fetchval(
            "SELECT COUNT(*) FROM outbox WHERE recipient = ? AND status = 'pending'", (person_id,)),
    }
