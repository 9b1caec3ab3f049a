-- Fewer pages written per create: a service is found by its full name through the id the name
-- ends with (`region.name.id`; the id is the table's unique key) and then matched whole, so the
-- index on full_name goes. In a profile of creates (bench/wal-pages.py, 32 clients) it took 2.2
-- of the 44 pages each commit wrote. Both dialects drop it.
DROP INDEX endpoint_services_full_name_idx;
