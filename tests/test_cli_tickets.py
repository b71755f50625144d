"""The tickets command line acts as the system actor, and a category assignee must lead at or
above the org."""

from __future__ import annotations

from pathlib import Path

from orgtree import CHAT_TREE
from test_cli import run_cli


def test_a_category_assignee_set_from_the_command_line_must_lead_at_or_above_the_org(tmp_path: Path) -> None:
    (tmp_path / "orgs.yaml").write_text(CHAT_TREE, encoding="utf-8")
    assert run_cli(tmp_path, "orgs", "import", "orgs.yaml").returncode == 0
    for person in ("1003", "555"):  # erlang's secretary; someone the bot never saw
        refused = run_cli(tmp_path, "tickets", "assign", "sanyi", "welfare", person)
        assert refused.returncode == 1 and "not a secretary or organizer" in refused.stderr, refused.stderr
    for person in ("1001", "1002"):  # sanyi's secretary; the township's organizer above it
        ok = run_cli(tmp_path, "tickets", "assign", "sanyi", "welfare", person)
        assert ok.returncode == 0 and ok.stdout.strip() == "saved", ok.stderr
    assert run_cli(tmp_path, "tickets", "assign", "sanyi", "welfare", "none").returncode == 0
