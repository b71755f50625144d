-- Open questions (bot/services/prompts.py): what the bot has asked a person that a typed message
-- (or a photo, a voice note) answers, e.g. the information a secretary asked a resident for. Asked
-- in the same transaction as the message that asks; closed when answered, when its subject moves
-- on, or when a newer question of the same kind about the same subject supersedes it.
CREATE TABLE open_questions (
    id          INTEGER PRIMARY KEY,
    person_id   INTEGER NOT NULL,
    kind        TEXT NOT NULL,              -- 'ticket/info', 'meeting/leave', ...
    subject_id  INTEGER NOT NULL,           -- the ticket, meeting ... it is about
    data        TEXT NOT NULL DEFAULT '{}',
    asked_at    TEXT NOT NULL,
    expires_at  TEXT,                       -- NULL: open until closed
    closed_at   TEXT,
    closed_why  TEXT                        -- answered | moved_on | superseded
);
CREATE INDEX open_questions_person ON open_questions(person_id) WHERE closed_at IS NULL;
CREATE INDEX open_questions_subject ON open_questions(kind, subject_id) WHERE closed_at IS NULL;

-- A message sent while several questions were open, kept (as Telegram sent it) until the person
-- taps which question it answers; a restart in between loses nothing.
CREATE TABLE kept_messages (
    token       TEXT PRIMARY KEY,
    person_id   INTEGER NOT NULL,
    message     TEXT NOT NULL,
    kept_at     TEXT NOT NULL
);
CREATE INDEX kept_messages_person ON kept_messages(person_id);
