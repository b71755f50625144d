-- A province's data (bench scale), on both backends.

-- /wall page 50 of a branch: the old index held neither the status nor the id, so the 245 posts
-- before the page each read their row to check the status (50 ms on a province's file). With the
-- wall's whole condition in the index (the queries write the same literal statuses: bot/services/
-- tickets.py wall, echo_wall.py, digests.py) and the id that breaks ties, a page is read in order
-- from the index and only its rows are read.
DROP INDEX tickets_wall;
CREATE INDEX tickets_wall ON tickets(org_id, answered_at, id)
    WHERE public_ok = 1 AND answer_text IS NOT NULL AND status IN ('answered', 'closed');

-- /inbox's first lines are chosen from this index alone (migration 022). SQLite keeps the row id in
-- every index entry, PostgreSQL does not: without the id there, it read every open problem of the
-- province (250,000 rows) instead of the branch's few, so the id is written out.
DROP INDEX tickets_inbox;
CREATE INDEX tickets_inbox ON tickets(handler_org_id, status, escalation, assignee_id, accept_due, answer_due, id)
    WHERE status IN ('new', 'accepted', 'need_info', 'reopened');

-- The bulletin of a county (/report) counts the period's problems of its orgs. Read by time first
-- (migration 018), a province's month is 450,000 problems for a county's 14,000 (2 s on
-- PostgreSQL, which also read every row: the id was not in the index); by org first, then time, it
-- reads only the county's, still from the index alone.
DROP INDEX tickets_created;
CREATE INDEX tickets_created ON tickets(handler_org_id, created_at, status, accepted_at, accept_due, answered_at,
                                        answer_due, rating, id);

-- /meetings of a secretary: the meetings of their orgs not yet over. PostgreSQL intersected the
-- org's meetings with every meeting to come in the province (46,000 at a province: 20 ms); by
-- org, status and end, only the org's are read, on both engines.
CREATE INDEX meetings_org_status_end ON meetings(org_id, status, ends_at);
