-- Rounds of change notices sent about a meeting (an edit that moved it or its place): at most
-- three a day per meeting, so one secretary cannot flood every member by editing again and again.
CREATE TABLE meeting_notice_rounds (
    meeting_id INTEGER NOT NULL REFERENCES meetings(id),
    day        TEXT NOT NULL,  -- the local date, YYYY-MM-DD
    at         TEXT NOT NULL
);
CREATE INDEX meeting_notice_rounds_day ON meeting_notice_rounds(meeting_id, day);
