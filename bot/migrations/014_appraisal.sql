-- The secretary's annual report and appraisal (书记双述双评): an organiser opens an appraisal for
-- the secretaries of orgs below them; each secretary posts a report (述职); the members and
-- residents of that org rate it in a secret ballot (ballot box "appraisal:<target id>").

CREATE TABLE appraisals (
    id            INTEGER PRIMARY KEY,
    scope_org_id  INTEGER NOT NULL REFERENCES orgs(id), -- the opener's organiser org (rights to lead it)
    year          INTEGER NOT NULL,                    -- 2026 for 2026年度
    opened_by     INTEGER NOT NULL,
    opened_at     TEXT NOT NULL,
    closes_at     TEXT NOT NULL,
    status        TEXT NOT NULL DEFAULT 'open',        -- open | closed
    closed_at     TEXT,
    published_at  TEXT,
    published_by  INTEGER
);
CREATE INDEX appraisals_open ON appraisals(status, closes_at);

-- One secretary appraised in one appraisal, with their report and, from the close, the result.
CREATE TABLE appraisal_targets (
    id                 INTEGER PRIMARY KEY,
    appraisal_id       INTEGER NOT NULL REFERENCES appraisals(id),
    org_id             INTEGER NOT NULL REFERENCES orgs(id),
    secretary_id       INTEGER NOT NULL,
    report_kind        TEXT,                 -- text | voice | document; NULL: not posted yet
    report_text        TEXT NOT NULL DEFAULT '',
    report_chat_id     INTEGER,              -- a voice note or document, copied to readers
    report_message_id  INTEGER,
    report_at          TEXT,
    result             TEXT,                 -- JSON, written once at the close
    UNIQUE (appraisal_id, org_id, secretary_id)
);
CREATE INDEX appraisal_targets_secretary ON appraisal_targets(secretary_id, appraisal_id);

-- The raters' comments: no person, no time, and no rowid. The key is a random number drawn when
-- the comment is stored, so neither the table's order nor any id follows the order people rated.
CREATE TABLE appraisal_comments (
    target_id  INTEGER NOT NULL REFERENCES appraisal_targets(id),
    sort_key   INTEGER NOT NULL,
    text       TEXT NOT NULL,               -- masked (mask_public) before it is stored
    PRIMARY KEY (target_id, sort_key)
) WITHOUT ROWID;
