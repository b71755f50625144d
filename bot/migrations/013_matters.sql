-- 四议两公开: a village decision's path. A matter (修建村道, with an estimate) passes four stages in
-- order (党支部提议 → 村"两委"商议 → 党员大会审议 → 村民(代表)会议决议), each recorded once with its
-- date, meeting, outcome and vote; then the decision and the result of carrying it out are published.

CREATE TABLE matters (
    id                 INTEGER PRIMARY KEY,
    org_id             INTEGER NOT NULL REFERENCES orgs(id),
    title              TEXT NOT NULL,
    description        TEXT NOT NULL DEFAULT '',
    estimate           TEXT NOT NULL DEFAULT '',
    opened_by          INTEGER NOT NULL,
    opened_at          TEXT NOT NULL,
    stage              INTEGER NOT NULL DEFAULT 0,       -- stages passed so far: 0..4
    status             TEXT NOT NULL DEFAULT 'open',     -- open | rejected | decided | published | done
    waiting_since      TEXT NOT NULL,                    -- when the present wait (next stage or publication) began
    ended_at           TEXT,                             -- rejected
    end_reason         TEXT,
    decision_text      TEXT,
    decision_at        TEXT,
    decision_by        INTEGER,
    result_text        TEXT,
    result_media       TEXT NOT NULL DEFAULT '[]',       -- photos: [{chat_id, message_id}]
    result_at          TEXT,
    result_by          INTEGER
);
CREATE INDEX matters_org ON matters(org_id, status);
CREATE INDEX matters_waiting ON matters(status, waiting_since);

CREATE TABLE matter_stages (
    matter_id    INTEGER NOT NULL REFERENCES matters(id),
    stage        INTEGER NOT NULL,                       -- 1..4
    held_on      TEXT NOT NULL,                          -- YYYY-MM-DD, local
    meeting_id   INTEGER REFERENCES meetings(id),
    outcome      TEXT NOT NULL,                          -- passed | rejected
    note         TEXT NOT NULL DEFAULT '',
    vote         TEXT NOT NULL DEFAULT 'none',           -- none | round | paper
    round_id     INTEGER REFERENCES delib_rounds(id),
    yes          INTEGER,
    no           INTEGER,
    abstain      INTEGER,
    present      INTEGER,                                -- those present, when known (the meeting's marks)
    recorded_by  INTEGER NOT NULL,
    recorded_at  TEXT NOT NULL,
    PRIMARY KEY (matter_id, stage)
);

-- How many days a matter may wait on one step before the secretary is reminded (and, as long
-- again later, the organiser above); an org without a row uses the default (30).
CREATE TABLE matter_settings (
    org_id      INTEGER PRIMARY KEY REFERENCES orgs(id),
    stall_days  INTEGER NOT NULL,
    updated_by  INTEGER,
    updated_at  TEXT NOT NULL
);

-- Each stalled-step reminder is claimed here once (level: secretary | organizer), so a job run
-- twice, or after downtime, sends it exactly once.
CREATE TABLE matter_reminders (
    matter_id  INTEGER NOT NULL REFERENCES matters(id),
    step       INTEGER NOT NULL,                          -- the step waited on: 1..4 a stage, 5 the decision's publication
    level      TEXT NOT NULL,
    done_at    TEXT NOT NULL,
    PRIMARY KEY (matter_id, step, level)
);
