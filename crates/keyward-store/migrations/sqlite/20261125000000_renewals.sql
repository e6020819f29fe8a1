-- Partners and renewals. A renewal is an instance of a procedure for one alias; its steps
-- are stored one row each, in order. Timestamps are milliseconds since the epoch; lists of
-- names are stored one per line.

CREATE TABLE partners (
    name         TEXT   NOT NULL PRIMARY KEY,
    url          TEXT,
    capabilities TEXT   NOT NULL,
    description  TEXT,
    created_at   BIGINT NOT NULL,
    created_by   TEXT   NOT NULL,
    updated_at   BIGINT NOT NULL,
    updated_by   TEXT   NOT NULL
);

CREATE TABLE renewals (
    id           INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    alias        TEXT   NOT NULL,
    procedure    TEXT   NOT NULL,
    variant      TEXT   NOT NULL,
    state        TEXT   NOT NULL CHECK (state IN ('running', 'completed', 'aborted')),
    flows        TEXT   NOT NULL,
    partners     TEXT   NOT NULL,
    old_version  BIGINT,
    new_version  BIGINT,
    second_alias TEXT,
    window_from  BIGINT,
    window_to    BIGINT,
    -- moves on every change; writers compare it to refuse lost updates
    revision     BIGINT NOT NULL,
    created_at   BIGINT NOT NULL,
    created_by   TEXT   NOT NULL,
    updated_at   BIGINT NOT NULL
);

-- At most one running renewal per alias.
CREATE UNIQUE INDEX renewals_running_alias ON renewals (alias) WHERE state = 'running';

CREATE TABLE renewal_steps (
    renewal_id BIGINT NOT NULL REFERENCES renewals (id),
    position   BIGINT NOT NULL,
    key        TEXT   NOT NULL,
    partner    TEXT,
    state      TEXT   NOT NULL,
    done_by    TEXT,
    at         BIGINT,
    note       TEXT,
    due        BIGINT,
    PRIMARY KEY (renewal_id, position)
);

-- The definitions of flows a renewal undeployed, to deploy them again.
CREATE TABLE renewal_flows (
    renewal_id BIGINT NOT NULL REFERENCES renewals (id),
    flow       TEXT   NOT NULL,
    source     TEXT   NOT NULL,
    PRIMARY KEY (renewal_id, flow)
);
