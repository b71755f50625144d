-- Several bots in one deployment (BOT_TOKENS; one bot per county, say). Empty with a single bot.
-- The bots, in the settings' order (the first takes what no other bot serves), and their usernames
-- for join links.
CREATE TABLE bots (
    bot_id      INTEGER PRIMARY KEY,
    position    INTEGER NOT NULL,
    username    TEXT
);
-- Every org under a top org that a bot serves, rewritten at each start from the settings.
CREATE TABLE org_bots (
    org_id      INTEGER PRIMARY KEY REFERENCES orgs(id),
    bot_id      INTEGER NOT NULL
);
-- The bot that received a chat's last update: the only bot that may write to that chat.
CREATE TABLE chat_bots (
    chat_id     INTEGER PRIMARY KEY,
    bot_id      INTEGER NOT NULL,
    updated_at  TEXT NOT NULL
);
