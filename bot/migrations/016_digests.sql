-- Digests: a person may take the low-priority notices (echo-wall posts, minutes, broadcasts not
-- marked urgent, supervision summaries) as one message a day at 08:00 instead of at once.
-- Such a notice is still written to the outbox in the transaction that caused it, but with status
-- 'digest' (the delivery worker sends only 'pending'); the digest job collects a person's held
-- rows into one message, queued in the same transaction that marks them 'digested'.
CREATE TABLE notice_settings (
    person_id   INTEGER PRIMARY KEY,
    digest      INTEGER NOT NULL DEFAULT 0,   -- 1: the low-priority kinds go into the daily digest
    changed_at  TEXT NOT NULL
);

-- One row per digest built: who, for which 08:00, how many items and messages (key dg:<id>:<part>).
CREATE TABLE digests (
    id          INTEGER PRIMARY KEY,
    person_id   INTEGER NOT NULL,
    cutoff      TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    items       INTEGER NOT NULL,
    parts       INTEGER NOT NULL
);
CREATE INDEX digests_person ON digests(person_id, cutoff);

-- The held rows, by person, without scanning the outbox.
CREATE INDEX outbox_digest ON outbox(recipient, not_before) WHERE status = 'digest';
