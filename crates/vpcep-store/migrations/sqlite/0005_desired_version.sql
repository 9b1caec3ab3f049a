-- The desired-state version an endpoint's last change was published in: an agent's report only
-- counts for the endpoint if it is for that version or a later one.
ALTER TABLE endpoints ADD COLUMN desired_version BIGINT NOT NULL DEFAULT 0;
