-- An official holiday list loaded by an admin for a year the holidays package does not know yet.
CREATE TABLE calendar_days (
    day     TEXT PRIMARY KEY,   -- YYYY-MM-DD
    year    INTEGER NOT NULL,
    kind    TEXT NOT NULL       -- holiday | workday (a make-up working day, 调休)
);
CREATE INDEX calendar_days_year ON calendar_days(year);
