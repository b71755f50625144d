-- The audience of a /broadcast to a city (bench scale): counting the distinct people of each role
-- in a city's 311 orgs read 66,000 index entries and sorted them for every screen (PostgreSQL: 50 ms
-- warm, 150 ms at p99). Most people hold exactly one role in one org, so they are counted by a
-- number kept per org and role; the roles of people who hold several (role_repeats, a copy of
-- their rows) are read one by one, each person counted once in place of their rows. Both are kept
-- by OrgsService.grant/revoke in the transaction of the change; OrgsService.recount_roles rebuilds
-- them after a bulk load. A table of their own, not a flag on roles: no planner can then read
-- a city's every role to find its few repeats.
CREATE TABLE role_counts (
    org_id  INTEGER NOT NULL REFERENCES orgs(id),
    role    TEXT NOT NULL,
    n       INTEGER NOT NULL,
    PRIMARY KEY (org_id, role)
);
INSERT INTO role_counts (org_id, role, n) SELECT org_id, role, COUNT(*) FROM roles GROUP BY org_id, role;
CREATE TABLE role_repeats (
    org_id     INTEGER NOT NULL REFERENCES orgs(id),
    role       TEXT NOT NULL,
    person_id  INTEGER NOT NULL REFERENCES people(telegram_id),
    PRIMARY KEY (org_id, role, person_id)
);
CREATE INDEX role_repeats_person ON role_repeats(person_id);
INSERT INTO role_repeats (org_id, role, person_id) SELECT org_id, role, person_id FROM roles
    WHERE person_id IN (SELECT person_id FROM roles GROUP BY person_id HAVING COUNT(*) > 1);
