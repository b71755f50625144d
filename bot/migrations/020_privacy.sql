-- Personal data (PIPL): retention of closed tickets and the rights of the person.
-- A ticket stripped by retention (or because its author asked to be forgotten): its resident link,
-- name and media are gone and its texts are masked; stripped_at says when, so the job never redoes it.
ALTER TABLE tickets ADD COLUMN stripped_at TEXT;
CREATE INDEX tickets_retention ON tickets(closed_at) WHERE stripped_at IS NULL AND closed_at IS NOT NULL;

-- One row per run of the retention job: what it removed, in counts only (no person, no ticket id).
CREATE TABLE retention_runs (
    id             INTEGER PRIMARY KEY,
    started_at     TEXT NOT NULL,
    cutoff         TEXT NOT NULL,              -- tickets closed before this were stripped
    tickets        INTEGER NOT NULL DEFAULT 0,
    texts_masked   INTEGER NOT NULL DEFAULT 0, -- ticket items and events whose text was masked
    media          INTEGER NOT NULL DEFAULT 0, -- links to photos, voice notes, files dropped
    questions      INTEGER NOT NULL DEFAULT 0, -- open questions about those tickets deleted
    screens        INTEGER NOT NULL DEFAULT 0,
    outbox         INTEGER NOT NULL DEFAULT 0, -- outbox rows about those tickets emptied
    kept_messages  INTEGER NOT NULL DEFAULT 0, -- kept messages older than the cutoff deleted
    finished_at    TEXT
);

-- Each export and forget of a person's data: when, which, by whom. The person is kept only as a keyed
-- hash (the key is this database's own, in meta 'privacy_key', drawn here), so that an operator can
-- check whether a given person was forgotten, and the log itself names nobody.
CREATE TABLE privacy_log (
    id          INTEGER PRIMARY KEY,
    at          TEXT NOT NULL,
    action      TEXT NOT NULL,                  -- export | forget
    subject     TEXT NOT NULL,                  -- HMAC-SHA256 of the Telegram id, hex
    by_kind     TEXT NOT NULL,                  -- self | admin | system (the command line)
    by_admin    INTEGER,                        -- the admin who did it (an official act), else NULL
    via         TEXT NOT NULL                   -- chat | cli
);
INSERT INTO meta (key, value) VALUES ('privacy_key', lower(hex(randomblob(32)))) ON CONFLICT(key) DO NOTHING;
