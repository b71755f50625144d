-- Several instances sharing one PostgreSQL database (issue 11; bot/updates.py, schedules/jobs.py).
-- On SQLite (one process) these tables stay empty.
--
-- Updates received by a webhook, stored before the 200 so that none is lost when an instance dies,
-- and claimed once by whichever instance's pump takes it. Update ids are per bot.
CREATE TABLE updates (
    bot_id      INTEGER NOT NULL,
    update_id   INTEGER NOT NULL,
    chat_id     INTEGER,             -- NULL: an update of no chat (ordered with nothing)
    payload     TEXT NOT NULL,       -- the update as Telegram posted it (JSON)
    received_at TEXT NOT NULL,
    claimed_by  TEXT,                -- the instance handling it (hostname:pid)
    lease_until TEXT,                -- past this, another instance may take it over
    attempts    INTEGER NOT NULL DEFAULT 0,
    done_at     TEXT,                -- handled; the row is kept a day for diagnosis
    PRIMARY KEY (bot_id, update_id)
);
CREATE INDEX updates_open ON updates(bot_id, update_id) WHERE done_at IS NULL;
CREATE INDEX updates_open_chat ON updates(bot_id, chat_id, update_id) WHERE done_at IS NULL;
CREATE INDEX updates_done ON updates(done_at) WHERE done_at IS NOT NULL;
-- Per bot, the smallest update id not known to have arrived: every smaller id has been stored
-- (or was given up on after the grace time). Only ids below it are handed out.
CREATE TABLE update_marks (
    bot_id      INTEGER NOT NULL PRIMARY KEY,
    next_id     INTEGER NOT NULL
);
-- Periodic jobs: one row per job, claimed for one due time at a time, so each due time runs once
-- across the instances and never two copies of one job at once.
CREATE TABLE job_claims (
    job         TEXT NOT NULL PRIMARY KEY,
    due_at      TEXT NOT NULL,       -- the due time last claimed (UTC, bot/clock.py to_db)
    claimed_by  TEXT,
    lease_until TEXT,
    done_at     TEXT                 -- NULL while the run for due_at is in progress
);
