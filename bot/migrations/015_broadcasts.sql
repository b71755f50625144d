-- Broadcasts (/broadcast): one row per broadcast, from the draft on, so that who sent what to whom,
-- when, and with what outcome is on record. The messages themselves are outbox rows
-- (purpose 'broadcast/message', subject_id = broadcasts.id, key bcast:<id>:<person>): progress and
-- final figures are counted from their states, never kept in memory.
CREATE TABLE broadcasts (
    id               INTEGER PRIMARY KEY,
    sender_id        INTEGER NOT NULL,
    org_id           INTEGER NOT NULL REFERENCES orgs(id),
    below            INTEGER NOT NULL DEFAULT 0,       -- the org and every org below it (organisers)
    roles            TEXT NOT NULL DEFAULT 'member',   -- comma-separated: member,secretary,resident,organizer
    kind             TEXT,                             -- text | photo | document | voice (NULL: no content yet)
    body             TEXT NOT NULL DEFAULT '',         -- the text, or the caption
    file_id          TEXT,
    ack              INTEGER NOT NULL DEFAULT 0,       -- recipients get a 收到 button
    urgent           INTEGER NOT NULL DEFAULT 0,       -- sent in quiet hours too
    send_at          TEXT,                             -- the time the sender chose (NULL: now)
    status           TEXT NOT NULL DEFAULT 'draft',    -- draft | queued | cancelled | done | dropped
    created_at       TEXT NOT NULL,
    confirmed_at     TEXT,
    starts_at        TEXT,                             -- when its rows fall due (after quiet hours)
    total            INTEGER NOT NULL DEFAULT 0,
    progress_message INTEGER,                          -- the sender's progress message, edited in place
    progress_at      TEXT,                             -- its last edit (at most one every 3 s)
    progress_edits   INTEGER NOT NULL DEFAULT 0,
    cancelled_at     TEXT,
    finished_at      TEXT,
    sent             INTEGER,                          -- final figures, from the outbox rows
    blocked          INTEGER,
    failed           INTEGER,
    withdrawn        INTEGER,
    reminded_at      TEXT                              -- the one reminder to those who did not tap 收到
);
CREATE INDEX broadcasts_sender ON broadcasts(sender_id, created_at);
CREATE INDEX broadcasts_open ON broadcasts(status, finished_at);

CREATE TABLE broadcast_recipients (
    broadcast_id  INTEGER NOT NULL REFERENCES broadcasts(id),
    person_id     INTEGER NOT NULL,
    acked_at      TEXT,
    PRIMARY KEY (broadcast_id, person_id)
);
