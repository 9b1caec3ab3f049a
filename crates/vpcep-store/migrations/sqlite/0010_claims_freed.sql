-- How many address claims have been freed (their last reference gone). A resource waiting for
-- an address another VPC holds can only get it once that claim is freed, so the reconciler
-- looks for waiting resources again only when this counter has moved.
INSERT INTO counters (name, value) VALUES ('claims_freed', 0);
