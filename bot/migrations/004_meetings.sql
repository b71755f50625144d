-- 三会一课 and other meetings: recurring series, meetings, who is invited and what they answered,
-- minutes, per-org settings (reminder offsets, required frequencies), branch committees, and the
-- record of which quota checks have been made (so each reminder goes out once).

CREATE TABLE meeting_series (
    id            INTEGER PRIMARY KEY,
    org_id        INTEGER NOT NULL REFERENCES orgs(id),
    kind          TEXT NOT NULL,
    include_below INTEGER NOT NULL DEFAULT 0,   -- also every org below
    rule          TEXT NOT NULL,                -- monthday | weekday
    day           INTEGER,                      -- monthday: 1..31 (31 = the month's last day when shorter)
    nth           INTEGER,                      -- weekday: 1..4, or 5 = the last one of the month
    weekday       INTEGER,                      -- weekday: 0 = Monday .. 6 = Sunday
    local_time    TEXT NOT NULL,                -- HH:MM in the bot's time zone
    duration_min  INTEGER NOT NULL,
    place         TEXT NOT NULL,
    topic         TEXT NOT NULL,
    lecturer      TEXT,
    lecturer_id   INTEGER,
    extra_people  TEXT NOT NULL DEFAULT '[]',   -- JSON list of people added by hand
    holiday_shift INTEGER NOT NULL DEFAULT 1,   -- a non-working day moves to the next working day
    lead_days     INTEGER NOT NULL DEFAULT 7,   -- each meeting is created (and announced) this many days ahead
    first_date    TEXT NOT NULL,                -- YYYY-MM-DD: no occurrence before this
    active        INTEGER NOT NULL DEFAULT 1,
    created_by    INTEGER NOT NULL,
    created_at    TEXT NOT NULL,
    stopped_at    TEXT
);
CREATE INDEX meeting_series_active ON meeting_series(active);

CREATE TABLE meetings (
    id                  INTEGER PRIMARY KEY,
    org_id              INTEGER NOT NULL REFERENCES orgs(id),
    kind                TEXT NOT NULL,
    include_below       INTEGER NOT NULL DEFAULT 0,
    series_id           INTEGER REFERENCES meeting_series(id),
    occurrence          TEXT,                   -- the series' nominal date (before a holiday shift)
    starts_at           TEXT NOT NULL,
    ends_at             TEXT NOT NULL,
    place               TEXT NOT NULL,
    topic               TEXT NOT NULL,
    lecturer            TEXT,
    lecturer_id         INTEGER,
    status              TEXT NOT NULL DEFAULT 'scheduled',  -- scheduled | cancelled | held
    cancel_reason       TEXT,
    remind_gen          INTEGER NOT NULL DEFAULT 1,          -- bumped on every edit: reminder keys carry it
    edits               INTEGER NOT NULL DEFAULT 0,
    created_by          INTEGER NOT NULL,
    created_at          TEXT NOT NULL,
    updated_at          TEXT NOT NULL,
    held_at             TEXT,
    closed_by           INTEGER,
    minutes_reminded_at TEXT,
    reminders_closed    INTEGER NOT NULL DEFAULT 0  -- 1 once it started: no reminder may go out after
);
CREATE UNIQUE INDEX meetings_occurrence ON meetings(series_id, occurrence) WHERE series_id IS NOT NULL;
CREATE INDEX meetings_org_start ON meetings(org_id, starts_at);
CREATE INDEX meetings_status_end ON meetings(status, ends_at);
CREATE INDEX meetings_reminders_open ON meetings(reminders_closed, starts_at);

CREATE TABLE meeting_attendees (
    meeting_id    INTEGER NOT NULL REFERENCES meetings(id),
    person_id     INTEGER NOT NULL,
    source        TEXT NOT NULL DEFAULT 'kind',  -- kind (follows from the meeting's kind) | added
    answer        TEXT,                          -- NULL (no answer) | attend | leave
    leave_reason  TEXT,
    answered_at   TEXT,
    checked_in_at TEXT,
    presence      TEXT,                          -- the secretary's mark: NULL | present | absent
    marked_by     INTEGER,
    PRIMARY KEY (meeting_id, person_id)
);
CREATE INDEX meeting_attendees_person ON meeting_attendees(person_id, meeting_id);

CREATE TABLE meeting_minutes (
    id          INTEGER PRIMARY KEY,
    meeting_id  INTEGER NOT NULL REFERENCES meetings(id),
    kind        TEXT NOT NULL,   -- text | photo | document
    text        TEXT,
    file_id     TEXT,
    file_name   TEXT,
    added_by    INTEGER NOT NULL,
    added_at    TEXT NOT NULL
);
CREATE INDEX meeting_minutes_meeting ON meeting_minutes(meeting_id, id);

-- Per-org settings; an org without a value inherits its nearest ancestor's, else the defaults.
CREATE TABLE meeting_settings (
    org_id            INTEGER PRIMARY KEY REFERENCES orgs(id),
    reminder_offsets  TEXT,            -- JSON list of minutes before the start, e.g. [1440, 120]
    quotas            TEXT NOT NULL DEFAULT '{}',  -- JSON {kind: month | quarter | year | none}
    updated_by        INTEGER,
    updated_at        TEXT NOT NULL
);

-- A branch committee beyond its secretaries (who always belong to it), kept by the secretary.
CREATE TABLE meeting_committee (
    org_id     INTEGER NOT NULL REFERENCES orgs(id),
    person_id  INTEGER NOT NULL,
    title      TEXT NOT NULL,   -- deputy | member
    added_by   INTEGER,
    added_at   TEXT NOT NULL,
    PRIMARY KEY (org_id, person_id)
);

-- Each quota check (stage 'due': the secretary 7 days before a period ends; 'missed': the
-- organizers above at its end) is made once per org and period boundary.
CREATE TABLE meeting_quota_checks (
    org_id    INTEGER NOT NULL,
    boundary  TEXT NOT NULL,   -- YYYY-MM-DD, the local day the period(s) end before
    stage     TEXT NOT NULL,   -- due | missed
    missing   TEXT NOT NULL,   -- JSON: what was found missing (empty when all was held)
    done_at   TEXT NOT NULL,
    PRIMARY KEY (org_id, boundary, stage)
);
