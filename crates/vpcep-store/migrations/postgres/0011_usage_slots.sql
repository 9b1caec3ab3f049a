-- Quotas without one lock per project. A project's usage of a kind is split over slots (see
-- usage.rs; SQLite, with one writer, keeps every count on slot 0): each slot has its own count
-- (`used`) and allowance (`cap`, set for quota `quota`); the allowances of a project's slots sum
-- to the quota, so counts taken within them stay within it, and creates of one project no
-- longer wait for each other's commit. The table is renamed so that a node of an earlier
-- version, which would add a unit to every slot, fails its creates instead of miscounting:
-- upgrade all nodes together.
ALTER TABLE project_usage RENAME TO usage_slots;
ALTER TABLE usage_slots
    ADD COLUMN slot BIGINT NOT NULL DEFAULT 0,
    ADD COLUMN cap BIGINT NOT NULL DEFAULT 0,
    ADD COLUMN quota BIGINT NOT NULL DEFAULT -1;
ALTER TABLE usage_slots DROP CONSTRAINT project_usage_pkey;
ALTER TABLE usage_slots ADD CONSTRAINT usage_slots_pkey PRIMARY KEY (project_id, resource, slot);
