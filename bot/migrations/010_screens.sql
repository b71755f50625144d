-- Screens: messages with buttons about a ticket or a meeting that are kept true when it changes
-- (bot/services/screens.py). An outbox message is found by its outbox row (source_key: its
-- message id is the outbox's once sent); a handler's direct reply by its chat and message id.
CREATE TABLE screens (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,  -- never reused: edit keys are scr:<id>:<n>
    chat_id       INTEGER NOT NULL,
    message_id    INTEGER,
    source_key    TEXT,
    subject_kind  TEXT NOT NULL,
    subject_id    INTEGER NOT NULL,
    view          TEXT NOT NULL,
    recipient     INTEGER NOT NULL,
    data          TEXT NOT NULL DEFAULT '{}',
    shown         TEXT NOT NULL,        -- digest of the text and buttons it shows (or an edit queued will)
    edits         INTEGER NOT NULL DEFAULT 0,
    last_key      TEXT,                 -- the latest edit queued (a failed one: the message is gone)
    next_edit_at  TEXT,                 -- throttled screens (the roster): no edit due before this
    created_at    TEXT NOT NULL
);
CREATE INDEX screens_subject ON screens(subject_kind, subject_id);
CREATE UNIQUE INDEX screens_source ON screens(source_key) WHERE source_key IS NOT NULL;
CREATE UNIQUE INDEX screens_message ON screens(chat_id, message_id) WHERE message_id IS NOT NULL;
