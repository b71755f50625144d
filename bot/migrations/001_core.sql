-- Foundation: org tree, people, roles (with their audit trail), invites, join requests,
-- the outbox, multi-step flow state and a small key/value store.

CREATE TABLE orgs (
    id          INTEGER PRIMARY KEY,
    code        TEXT NOT NULL UNIQUE,
    name        TEXT NOT NULL,
    kind        TEXT NOT NULL,
    parent_id   INTEGER REFERENCES orgs(id),
    position    INTEGER NOT NULL DEFAULT 0,
    created_at  TEXT NOT NULL
);
CREATE INDEX orgs_parent ON orgs(parent_id, position);

CREATE TABLE people (
    telegram_id       INTEGER PRIMARY KEY,
    name              TEXT NOT NULL DEFAULT '',
    username          TEXT,
    language          TEXT,
    tg_language_code  TEXT,
    blocked_bot       INTEGER NOT NULL DEFAULT 0,
    created_at        TEXT NOT NULL,
    updated_at        TEXT NOT NULL
);

CREATE TABLE roles (
    person_id   INTEGER NOT NULL REFERENCES people(telegram_id),
    org_id      INTEGER NOT NULL REFERENCES orgs(id),
    role        TEXT NOT NULL,
    granted_at  TEXT NOT NULL,
    PRIMARY KEY (person_id, org_id, role)
);
CREATE INDEX roles_org ON roles(org_id, role);

CREATE TABLE role_audit (
    id          INTEGER PRIMARY KEY,
    at          TEXT NOT NULL,
    actor_id    INTEGER,
    source      TEXT NOT NULL,
    action      TEXT NOT NULL,
    person_id   INTEGER NOT NULL,
    org_id      INTEGER NOT NULL,
    role        TEXT NOT NULL,
    note        TEXT
);
CREATE INDEX role_audit_person ON role_audit(person_id, at);
CREATE INDEX role_audit_org ON role_audit(org_id, at);

CREATE TABLE invites (
    id          INTEGER PRIMARY KEY,
    payload     TEXT NOT NULL UNIQUE,
    org_id      INTEGER NOT NULL REFERENCES orgs(id),
    role        TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    created_by  INTEGER,
    revoked_at  TEXT
);
CREATE INDEX invites_org ON invites(org_id, role);

CREATE TABLE join_requests (
    id          INTEGER PRIMARY KEY,
    invite_id   INTEGER NOT NULL REFERENCES invites(id),
    person_id   INTEGER NOT NULL REFERENCES people(telegram_id),
    org_id      INTEGER NOT NULL REFERENCES orgs(id),
    role        TEXT NOT NULL,
    status      TEXT NOT NULL DEFAULT 'pending',
    created_at  TEXT NOT NULL,
    decided_at  TEXT,
    decided_by  INTEGER
);
CREATE UNIQUE INDEX join_requests_one_pending ON join_requests(person_id, org_id, role) WHERE status = 'pending';

CREATE TABLE outbox (
    id          INTEGER PRIMARY KEY,
    dedup_key   TEXT NOT NULL UNIQUE,
    chat_id     INTEGER NOT NULL,
    method      TEXT NOT NULL,
    payload     TEXT NOT NULL,
    not_before  TEXT NOT NULL,
    status      TEXT NOT NULL DEFAULT 'pending',
    attempts    INTEGER NOT NULL DEFAULT 0,
    last_error  TEXT,
    created_at  TEXT NOT NULL,
    sent_at     TEXT,
    message_id  INTEGER
);
CREATE INDEX outbox_due ON outbox(status, not_before);
CREATE INDEX outbox_chat ON outbox(chat_id, status);

CREATE TABLE flows (
    person_id   INTEGER PRIMARY KEY,
    flow        TEXT NOT NULL,
    step        TEXT NOT NULL,
    data        TEXT NOT NULL DEFAULT '{}',
    updated_at  TEXT NOT NULL
);

CREATE TABLE meta (
    key    TEXT PRIMARY KEY,
    value  TEXT NOT NULL
);
