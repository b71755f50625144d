-- A province's data (bench scale): the audience of a /broadcast to a city counts the distinct
-- people of each role in its hundreds of orgs. With the person in the index the count is read from
-- the index alone, not from a row per person. It covers every query the old (org_id, role) index did.
CREATE INDEX roles_org_person ON roles(org_id, role, person_id);
DROP INDEX roles_org;
