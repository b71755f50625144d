-- Outbox rows carry a priority (smaller goes first; bot.outbox.Priority): answers someone waits
-- for and reminders due now go before a bulk notice already queued, and an edit of an earlier
-- message after new messages. The delivery worker picks by (priority, not_before, id).
ALTER TABLE outbox ADD COLUMN priority INTEGER NOT NULL DEFAULT 50;
UPDATE outbox SET priority = 90 WHERE method LIKE 'edit%';
-- The pick's order without a sort of the whole backlog; outbox_due stays for MIN(not_before).
CREATE INDEX outbox_pick ON outbox(status, priority, not_before);

-- Groups and channels that removed the bot (a person's block is people.blocked_bot): kept current
-- by my_chat_member updates and 403 answers, so each notice to such a chat is stored 'blocked'
-- instead of earning one more 403.
CREATE TABLE blocked_chats (
    chat_id  INTEGER PRIMARY KEY,
    since    TEXT NOT NULL,
    reason   TEXT
);
