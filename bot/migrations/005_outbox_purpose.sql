-- Outbox rows say whom and what they are for, so that nobody parses dedup keys to find out:
-- recipient (a person's id; NULL for a group or channel), purpose (e.g. 'meeting.notice'),
-- subject_id (the ticket, meeting, ... it is about).
ALTER TABLE outbox ADD COLUMN recipient INTEGER;
ALTER TABLE outbox ADD COLUMN purpose TEXT;
ALTER TABLE outbox ADD COLUMN subject_id INTEGER;
CREATE INDEX outbox_purpose ON outbox(purpose, subject_id);
