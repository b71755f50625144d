-- Deliberation rounds (民主议事周): a topic, an opinion phase, an optional vote phase, a result
-- fixed at the close. And the ballot box the rounds vote in, shaped so that the secretary's
-- appraisal (书记双述双评) can vote in it too (a box is named "<feature>:<id>").

CREATE TABLE delib_rounds (
    id               INTEGER PRIMARY KEY,
    org_id           INTEGER NOT NULL REFERENCES orgs(id),
    include_below    INTEGER NOT NULL DEFAULT 0,
    audience         TEXT NOT NULL,             -- members | residents | both
    title            TEXT NOT NULL,
    background       TEXT NOT NULL DEFAULT '',
    media            TEXT NOT NULL DEFAULT '[]', -- photos and documents: [{kind, chat_id, message_id}]
    opened_by        INTEGER NOT NULL,
    opened_at        TEXT NOT NULL,
    opinions_until   TEXT NOT NULL,
    votes_until      TEXT,                      -- NULL: no vote phase
    multiple         INTEGER NOT NULL DEFAULT 0,
    max_choices      INTEGER NOT NULL DEFAULT 1,
    secret           INTEGER NOT NULL DEFAULT 0,
    live_results     INTEGER NOT NULL DEFAULT 0,
    status           TEXT NOT NULL DEFAULT 'open', -- open | closed | cancelled
    vote_started_at  TEXT,                      -- the tick told the audience that voting began
    extended_at      TEXT,
    extend_reason    TEXT,
    ended_at         TEXT,                      -- closed or cancelled
    end_reason       TEXT,                      -- an early close's or a cancel's reason
    ended_early      INTEGER NOT NULL DEFAULT 0,
    result           TEXT                       -- JSON, written once at the close, never changed
);
CREATE INDEX delib_rounds_org ON delib_rounds(org_id, status);
CREATE INDEX delib_rounds_open ON delib_rounds(status, opinions_until);

CREATE TABLE delib_options (
    round_id    INTEGER NOT NULL REFERENCES delib_rounds(id),
    position    INTEGER NOT NULL,
    label       TEXT NOT NULL,
    opinion_id  INTEGER,                        -- added from this opinion
    PRIMARY KEY (round_id, position)
);

CREATE TABLE delib_opinions (
    id             INTEGER PRIMARY KEY,
    round_id       INTEGER NOT NULL REFERENCES delib_rounds(id),
    author_id      INTEGER NOT NULL,            -- kept for "took part"; never shown when anonymous
    anonymous      INTEGER NOT NULL,
    kind           TEXT NOT NULL,               -- text | voice
    text           TEXT NOT NULL DEFAULT '',
    chat_id        INTEGER,                     -- a voice note, copied to readers
    message_id     INTEGER,
    created_at     TEXT NOT NULL,
    hidden_at      TEXT,
    hidden_by      INTEGER,
    hidden_reason  TEXT
);
CREATE INDEX delib_opinions_round ON delib_opinions(round_id, id);
CREATE INDEX delib_opinions_author ON delib_opinions(author_id, round_id);

CREATE TABLE delib_supports (
    opinion_id  INTEGER NOT NULL REFERENCES delib_opinions(id),
    person_id   INTEGER NOT NULL,
    PRIMARY KEY (opinion_id, person_id)
) WITHOUT ROWID;
CREATE INDEX delib_supports_person ON delib_supports(person_id);

-- What the opener and secretaries did to a round: extend, close early, cancel, hide, add an
-- option, vote on someone's behalf (never with the choice of a secret ballot).
CREATE TABLE delib_events (
    id         INTEGER PRIMARY KEY,
    round_id   INTEGER NOT NULL REFERENCES delib_rounds(id),
    at         TEXT NOT NULL,
    actor_id   INTEGER NOT NULL,
    action     TEXT NOT NULL,
    person_id  INTEGER,                         -- whom a proxy ballot was for, whose opinion was hidden
    note       TEXT
);
CREATE INDEX delib_events_round ON delib_events(round_id, id);

-- The ballot box. "Has voted" (ballot_voters) is kept apart from the choices. An open box keeps
-- each person's choices (ballots_open: changeable until the close). A secret box keeps only the
-- counts per choice (ballot_tallies): no row per ballot, so no rowid, timestamp or insertion order
-- can join a voter to a choice. The tables are WITHOUT ROWID and hold no time, so even their
-- own order is by (box, person) and (box, choice).
CREATE TABLE ballot_voters (
    box        TEXT NOT NULL,
    person_id  INTEGER NOT NULL,
    proxy_by   INTEGER,                         -- the secretary who cast it on their behalf (代投)
    PRIMARY KEY (box, person_id)
) WITHOUT ROWID;

CREATE TABLE ballots_open (
    box        TEXT NOT NULL,
    person_id  INTEGER NOT NULL,
    choices    TEXT NOT NULL,                   -- JSON list of option positions
    PRIMARY KEY (box, person_id)
) WITHOUT ROWID;

CREATE TABLE ballot_tallies (
    box     TEXT NOT NULL,
    choice  INTEGER NOT NULL,
    n       INTEGER NOT NULL,
    PRIMARY KEY (box, choice)
) WITHOUT ROWID;
