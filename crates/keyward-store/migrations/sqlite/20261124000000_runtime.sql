-- The runtime: deployed flows (the state every node converges to), the nodes' heartbeats,
-- and the uses of aliases the nodes observed. Timestamps are milliseconds since the epoch.

CREATE TABLE flows (
    name        TEXT   NOT NULL PRIMARY KEY,
    source      TEXT   NOT NULL,
    state       TEXT   NOT NULL CHECK (state IN ('started', 'stopped')),
    -- moves on every deploy and restart; nodes rebuild a flow when it does
    generation  BIGINT NOT NULL,
    deployed_at BIGINT NOT NULL,
    deployed_by TEXT   NOT NULL,
    updated_at  BIGINT NOT NULL,
    updated_by  TEXT   NOT NULL
);

CREATE TABLE nodes (
    id             TEXT   NOT NULL PRIMARY KEY,
    address        TEXT   NOT NULL,
    started_at     BIGINT NOT NULL,
    heartbeat_at   BIGINT NOT NULL,
    applied_marker BIGINT NOT NULL,
    flows          TEXT   NOT NULL
);

CREATE TABLE flow_usage (
    flow      TEXT   NOT NULL,
    alias     TEXT   NOT NULL,
    version   BIGINT NOT NULL,
    partner   TEXT   NOT NULL,
    count     BIGINT NOT NULL,
    last_used BIGINT NOT NULL,
    PRIMARY KEY (flow, alias, version, partner)
);

CREATE INDEX flow_usage_by_alias ON flow_usage (alias);
