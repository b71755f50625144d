-- Pledges and points (设岗承诺 · 积分 · 评星定级). Points are computed from the records (meetings
-- attended, deliberations taken part in, pledges confirmed, problems answered): only what is not
-- a record elsewhere is stored here: posts, pledges and their progress reports, a secretary's
-- manual adjustments, the rules per org, which monthly statements went out, and star ratings.

-- The branch's list of posts (设岗), kept by its secretary.
CREATE TABLE pledge_posts (
    id          INTEGER PRIMARY KEY,
    org_id      INTEGER NOT NULL REFERENCES orgs(id),
    title       TEXT NOT NULL,
    created_by  INTEGER NOT NULL,
    created_at  TEXT NOT NULL,
    removed_at  TEXT
);
CREATE INDEX pledge_posts_org ON pledge_posts(org_id);

-- A member's post taken (post_id set) or pledge written (承诺, text).
CREATE TABLE pledges (
    id          INTEGER PRIMARY KEY,
    org_id      INTEGER NOT NULL REFERENCES orgs(id),
    person_id   INTEGER NOT NULL,
    post_id     INTEGER REFERENCES pledge_posts(id),
    text        TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    ended_at    TEXT
);
CREATE INDEX pledges_org ON pledges(org_id, person_id);
CREATE UNIQUE INDEX pledges_one_post ON pledges(person_id, post_id) WHERE post_id IS NOT NULL AND ended_at IS NULL;

-- 践诺: a progress report (text and photos); 督诺: the secretary confirms it.
CREATE TABLE pledge_reports (
    id          INTEGER PRIMARY KEY,
    pledge_id   INTEGER NOT NULL REFERENCES pledges(id),
    person_id   INTEGER NOT NULL,
    text        TEXT NOT NULL DEFAULT '',
    media       TEXT NOT NULL DEFAULT '[]',   -- [{kind, file_id, chat_id, message_id}]
    created_at  TEXT NOT NULL,
    status      TEXT NOT NULL DEFAULT 'pending',  -- pending | confirmed
    decided_by  INTEGER,
    decided_at  TEXT
);
CREATE INDEX pledge_reports_pledge ON pledge_reports(pledge_id, id);
CREATE INDEX pledge_reports_decided ON pledge_reports(status, decided_at);

-- A secretary's addition or deduction, with its reason.
CREATE TABLE point_adjustments (
    id          INTEGER PRIMARY KEY,
    org_id      INTEGER NOT NULL REFERENCES orgs(id),
    person_id   INTEGER NOT NULL,
    delta       INTEGER NOT NULL,
    reason      TEXT NOT NULL,
    by_id       INTEGER NOT NULL,
    at          TEXT NOT NULL
);
CREATE INDEX point_adjustments_person ON point_adjustments(person_id, at);

-- Points per event and star thresholds; an org without a row inherits its nearest ancestor's,
-- else the defaults (bot/services/points.py DEFAULT_RULES).
CREATE TABLE point_rules (
    org_id      INTEGER PRIMARY KEY REFERENCES orgs(id),
    rules       TEXT NOT NULL,                -- JSON {key: points}, stars: [t2, t3, t4, t5]
    updated_by  INTEGER NOT NULL,
    updated_at  TEXT NOT NULL
);

-- The monthly statements: a month is marked once every member's statement is queued (each
-- statement is also an outbox row with a dedup key per person and month).
CREATE TABLE point_statement_runs (
    month    TEXT PRIMARY KEY,              -- YYYY-MM, the month the statement is about
    done_at  TEXT NOT NULL
);

-- 评星定级: a proposal per org and year, confirmed by a deliberation round's vote.
CREATE TABLE star_proposals (
    id           INTEGER PRIMARY KEY,
    org_id       INTEGER NOT NULL REFERENCES orgs(id),
    year         INTEGER NOT NULL,
    round_id     INTEGER REFERENCES delib_rounds(id),
    status       TEXT NOT NULL DEFAULT 'voting',   -- voting | confirmed | rejected | cancelled
    proposed_by  INTEGER NOT NULL,
    proposed_at  TEXT NOT NULL,
    decided_at   TEXT,
    yes          INTEGER,
    no           INTEGER
);
CREATE INDEX star_proposals_org ON star_proposals(org_id, year, status);
-- One proposal under vote or confirmed per org and year, even when two are proposed at once.
CREATE UNIQUE INDEX star_proposals_one ON star_proposals(org_id, year) WHERE status IN ('voting', 'confirmed');

CREATE TABLE star_ratings (
    proposal_id  INTEGER NOT NULL REFERENCES star_proposals(id),
    person_id    INTEGER NOT NULL,
    points       INTEGER NOT NULL,
    stars        INTEGER NOT NULL,
    PRIMARY KEY (proposal_id, person_id)
);
