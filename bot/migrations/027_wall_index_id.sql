-- The echo wall pages newest first by (answered_at, id). SQLite's indexes end with the rowid, so
-- (org_id, answered_at) already gives that order; PostgreSQL's do not, and sorted the org's whole
-- wall up to the cursor for every page. With id in the index both read a page in index order.
DROP INDEX tickets_wall;
CREATE INDEX tickets_wall ON tickets(org_id, answered_at, id) WHERE public_ok = 1 AND answer_text IS NOT NULL;
