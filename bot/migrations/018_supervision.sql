-- Supervision bulletins (督查通报): each automatic monthly bulletin is recorded once per org and
-- month, in the same transaction as its outbox rows, so a restart never sends it twice.
CREATE TABLE supervision_runs (
    org_id   INTEGER NOT NULL REFERENCES orgs(id),
    period   TEXT NOT NULL,            -- YYYY-MM, the month the bulletin covers
    sent_to  INTEGER NOT NULL,         -- how many organisers it was queued for
    done_at  TEXT NOT NULL,
    PRIMARY KEY (org_id, period)
);
-- The bulletin counts a period's tickets per org that answers for them, and its held meetings by
-- start: ranges on the time, grouped by org, without reading the whole table (the tickets' index
-- holds every column the count reads: a month of a county is read from the index alone).
CREATE INDEX tickets_created ON tickets(created_at, handler_org_id, status, accepted_at, accept_due, answered_at,
                                        answer_due, rating);
CREATE INDEX people_blocked ON people(telegram_id) WHERE blocked_bot = 1;
-- Was a problem ever escalated (one probe per problem of the period), and which are open now.
CREATE INDEX ticket_events_escalated ON ticket_events(ticket_id) WHERE action = 'escalated';
CREATE INDEX tickets_open ON tickets(handler_org_id, status, accept_due, answer_due)
    WHERE status IN ('new', 'accepted', 'need_info', 'reopened');
CREATE INDEX meetings_status_start ON meetings(status, starts_at);
CREATE INDEX outbox_failed ON outbox(created_at) WHERE status = 'failed';
