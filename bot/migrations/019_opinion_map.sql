-- The opinion map of a deliberation round (issue 13): short statements, one vote per person and
-- statement (agree / disagree / pass), and the last analysis (groups, bridging, representative and
-- divisive statements, the chart), kept so that a restart loses neither the votes nor the map.

CREATE TABLE om_maps (
    round_id       INTEGER PRIMARY KEY REFERENCES delib_rounds(id),
    status         TEXT NOT NULL DEFAULT 'draft',  -- draft (the opener seeds) | open | final
    enabled_at     TEXT NOT NULL,
    opened_at      TEXT,
    votes_seen     INTEGER NOT NULL DEFAULT 0,     -- bumped by every vote and statement
    computed_votes INTEGER NOT NULL DEFAULT -1,    -- votes_seen when the last analysis was made
    computed_at    TEXT,
    snapshot       TEXT,                           -- JSON: the last analysis (no person's id in it)
    chart          BLOB,                           -- PNG: the last map
    final_at       TEXT                            -- the result was fixed and published
);

CREATE TABLE om_statements (
    id             INTEGER PRIMARY KEY,
    round_id       INTEGER NOT NULL REFERENCES delib_rounds(id),
    author_id      INTEGER NOT NULL,               -- never shown; for "took part" and the per-person limit
    seed           INTEGER NOT NULL DEFAULT 0,     -- written by the opener before the map opened
    text           TEXT NOT NULL,
    created_at     TEXT NOT NULL,
    votes          INTEGER NOT NULL DEFAULT 0,     -- how many have voted on it (for choosing the next one)
    priority       REAL NOT NULL DEFAULT 0,        -- from the last analysis: how well it separates or bridges
    hidden_at      TEXT,
    hidden_by      INTEGER,
    hidden_reason  TEXT
);
CREATE INDEX om_statements_round ON om_statements(round_id, hidden_at, votes);
CREATE INDEX om_statements_author ON om_statements(author_id, round_id);

CREATE TABLE om_votes (
    statement_id   INTEGER NOT NULL REFERENCES om_statements(id),
    person_id      INTEGER NOT NULL,
    round_id       INTEGER NOT NULL,
    vote           INTEGER NOT NULL,               -- 1 agree, -1 disagree, 0 pass
    PRIMARY KEY (person_id, statement_id)
) WITHOUT ROWID;
CREATE INDEX om_votes_round ON om_votes(round_id, person_id);
