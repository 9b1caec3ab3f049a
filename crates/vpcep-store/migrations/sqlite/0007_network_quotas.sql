-- Usage counters of the network inventory's quotas (VPCs, subnets and ports per project),
-- counted from the rows stored before these quotas existed. From here on each create takes one
-- unit in its transaction and each delete gives it back, as for services and endpoints.
INSERT INTO project_usage (project_id, resource, used)
SELECT project_id, 'vpc', COUNT(*) FROM vpcs WHERE true GROUP BY project_id
ON CONFLICT (project_id, resource) DO UPDATE SET used = excluded.used;

INSERT INTO project_usage (project_id, resource, used)
SELECT project_id, 'subnet', COUNT(*) FROM subnets WHERE true GROUP BY project_id
ON CONFLICT (project_id, resource) DO UPDATE SET used = excluded.used;

INSERT INTO project_usage (project_id, resource, used)
SELECT project_id, 'port', COUNT(*) FROM ports WHERE true GROUP BY project_id
ON CONFLICT (project_id, resource) DO UPDATE SET used = excluded.used;
