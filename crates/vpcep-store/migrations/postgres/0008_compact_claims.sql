-- The SQLite file of the same name stores service port claims WITHOUT ROWID (fewer pages
-- written per create). PostgreSQL keeps a heap and its key index for every table: nothing to do.
SELECT 1;
