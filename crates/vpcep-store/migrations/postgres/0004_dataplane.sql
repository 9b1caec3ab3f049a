-- Data plane: what agents realized, and the version of the desired state they follow.

-- The owner accepted the connection; with a data plane it waits in `creating` until realized.
ALTER TABLE endpoints ADD COLUMN approved BIGINT NOT NULL DEFAULT 0;

INSERT INTO counters (name, value) VALUES ('dataplane_version', 1);

-- Agents and when they last reported.
CREATE TABLE agents (
    agent_id TEXT PRIMARY KEY,
    version BIGINT NOT NULL,
    reported_at BIGINT NOT NULL
);

-- Each agent's latest result per endpoint (replaced by every report of that agent).
CREATE TABLE endpoint_realizations (
    endpoint_id TEXT NOT NULL,
    agent_id TEXT NOT NULL,
    version BIGINT NOT NULL,
    ok BIGINT NOT NULL,
    error TEXT,
    reported_at BIGINT NOT NULL,
    PRIMARY KEY (endpoint_id, agent_id)
);
CREATE INDEX endpoint_realizations_agent_idx ON endpoint_realizations (agent_id);
