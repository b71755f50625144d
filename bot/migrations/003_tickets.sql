-- Problem wall (问题墙) and echo wall (回音壁).

CREATE TABLE ticket_settings (
    org_id       INTEGER PRIMARY KEY REFERENCES orgs(id),
    accept_days  INTEGER,               -- working days to accept; NULL: the default (1)
    answer_days  INTEGER,               -- working days to answer; NULL: the default (5)
    categories   TEXT                   -- JSON list of names; NULL: the default list
);

CREATE TABLE category_assignees (
    org_id     INTEGER NOT NULL REFERENCES orgs(id),
    category   TEXT NOT NULL,
    person_id  INTEGER NOT NULL REFERENCES people(telegram_id),
    PRIMARY KEY (org_id, category)
);

CREATE TABLE tickets (
    id                   INTEGER PRIMARY KEY,
    org_id               INTEGER NOT NULL REFERENCES orgs(id),   -- the resident's org
    handler_org_id       INTEGER NOT NULL REFERENCES orgs(id),   -- who answers for it now
    assignee_id          INTEGER,                                -- one person, when set
    resident_id          INTEGER NOT NULL REFERENCES people(telegram_id),
    category             TEXT NOT NULL,
    public_ok            INTEGER NOT NULL,
    anonymous            INTEGER NOT NULL,
    status               TEXT NOT NULL,
    summary              TEXT NOT NULL,     -- the text of the problem (all text items)
    content_key          TEXT NOT NULL,     -- normalised summary, to refuse the same text twice a day
    escalation           INTEGER NOT NULL DEFAULT 0,
    accept_due           TEXT NOT NULL,
    answer_due           TEXT NOT NULL,
    next_escalation_at   TEXT,
    answer_text          TEXT,
    rating               TEXT,
    rating_reason        TEXT,
    reopen_count         INTEGER NOT NULL DEFAULT 0,
    created_at           TEXT NOT NULL,
    accepted_at          TEXT,
    answered_at          TEXT,
    closed_at            TEXT,
    wall_posts           INTEGER NOT NULL DEFAULT 0   -- how many wall posts/edits were queued
);
CREATE INDEX tickets_resident ON tickets(resident_id, created_at);
CREATE INDEX tickets_handler ON tickets(handler_org_id, status);
CREATE INDEX tickets_assignee ON tickets(assignee_id, status);
CREATE INDEX tickets_escalation ON tickets(next_escalation_at) WHERE next_escalation_at IS NOT NULL;
CREATE INDEX tickets_wall ON tickets(org_id, answered_at) WHERE public_ok = 1 AND answer_text IS NOT NULL;
CREATE INDEX tickets_content ON tickets(resident_id, content_key);

-- What was said on a ticket, by either side: text, or a message to copy (photo, voice, ...).
CREATE TABLE ticket_items (
    id          INTEGER PRIMARY KEY,
    ticket_id   INTEGER NOT NULL REFERENCES tickets(id),
    side        TEXT NOT NULL,          -- resident | handler
    author_id   INTEGER NOT NULL,
    kind        TEXT NOT NULL,          -- text | photo | voice | video | audio | document | location
    text        TEXT,
    chat_id     INTEGER,                -- where the original message is, to copy it
    message_id  INTEGER,
    created_at  TEXT NOT NULL
);
CREATE INDEX ticket_items_ticket ON ticket_items(ticket_id, id);

-- The history: who did what, when.
CREATE TABLE ticket_events (
    id         INTEGER PRIMARY KEY,
    ticket_id  INTEGER NOT NULL REFERENCES tickets(id),
    at         TEXT NOT NULL,
    actor_id   INTEGER,                 -- NULL: the bot (deadlines)
    action     TEXT NOT NULL,
    note       TEXT
);
CREATE INDEX ticket_events_ticket ON ticket_events(ticket_id, id);

CREATE TABLE submit_blocks (
    id          INTEGER PRIMARY KEY,
    org_id      INTEGER NOT NULL REFERENCES orgs(id),
    person_id   INTEGER NOT NULL,
    blocked_by  INTEGER NOT NULL,
    blocked_at  TEXT NOT NULL,
    ticket_id   INTEGER,                -- the ticket it was done from (the person may be anonymous)
    lifted_by   INTEGER,
    lifted_at   TEXT
);
CREATE INDEX submit_blocks_person ON submit_blocks(person_id) WHERE lifted_at IS NULL;

CREATE TABLE wall_chats (
    org_id     INTEGER PRIMARY KEY REFERENCES orgs(id),
    chat_id    INTEGER NOT NULL,
    title      TEXT,
    bound_by   INTEGER NOT NULL,
    bound_at   TEXT NOT NULL
);
