-- A province's data (bench scale): the audience of a /broadcast to a city counts the distinct
-- people of each role in its hundreds of orgs. With the person in the index the count is read from
-- the index alone, not from a row per person. It covers every query the old (org_id, role) index did.
CREATE INDEX roles_org_person ON roles(org_id, role, person_id);
DROP INDEX roles_org;

-- /inbox of an organiser (a county's 2,500 open problems, a province's 250,000): the counts and
-- the choice of the first lines are read from this index alone; only the lines shown read rows.
CREATE INDEX tickets_inbox ON tickets(handler_org_id, status, escalation, assignee_id, accept_due, answer_due)
    WHERE status IN ('new', 'accepted', 'need_info', 'reopened');
