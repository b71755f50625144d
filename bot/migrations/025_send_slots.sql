-- Several instances on one PostgreSQL database (issue 11); unused by a single SQLite process.
-- An outbox row being sent is claimed by one instance until `lease_until` (seconds since the epoch
-- on the database server's clock, which every instance shares): one that dies mid-send leaves its
-- rows to the others once the lease is over. A row waiting out a backoff has a lease and no owner.
ALTER TABLE outbox ADD COLUMN claimed_by TEXT;
ALTER TABLE outbox ADD COLUMN lease_until REAL;
CREATE INDEX outbox_claimed ON outbox(chat_id) WHERE claimed_by IS NOT NULL;
-- Telegram's limits for the deployment as a whole (bot/sendslots.py), per bot. A send takes one of
-- `per_second` places whose free_at has passed; its answer frees it a second later.
CREATE TABLE send_slots (
    bot_id   INTEGER NOT NULL,
    slot     INTEGER NOT NULL,
    free_at  REAL NOT NULL,
    PRIMARY KEY (bot_id, slot)
);
-- A bot-wide pause after a 429, and until when a direct reply waits for a place (the outbox holds).
CREATE TABLE send_bots (
    bot_id        INTEGER PRIMARY KEY,
    paused_until  REAL NOT NULL,
    direct_until  REAL NOT NULL
);
-- When each chat may have its next message (1 a second; longer after a 429).
CREATE TABLE send_chats (
    bot_id    INTEGER NOT NULL,
    chat_id   INTEGER NOT NULL,
    ready_at  REAL NOT NULL,
    PRIMARY KEY (bot_id, chat_id)
);
-- A group's sends in the last minute (20 a minute).
CREATE TABLE send_groups (
    bot_id   INTEGER NOT NULL,
    chat_id  INTEGER NOT NULL,
    sent_at  REAL NOT NULL
);
CREATE INDEX send_groups_chat ON send_groups(bot_id, chat_id, sent_at);
