-- The usage slots of PostgreSQL (see migrations/postgres/0011_usage_slots.sql), so that both
-- backends have the same table. SQLite has one writer: every count stays on slot 0, and its
-- quota is checked against that count.
ALTER TABLE project_usage RENAME TO usage_slots;
ALTER TABLE usage_slots ADD COLUMN slot BIGINT NOT NULL DEFAULT 0;
ALTER TABLE usage_slots ADD COLUMN cap BIGINT NOT NULL DEFAULT 0;
ALTER TABLE usage_slots ADD COLUMN quota BIGINT NOT NULL DEFAULT -1;
