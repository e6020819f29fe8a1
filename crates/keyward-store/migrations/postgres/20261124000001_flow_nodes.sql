-- A flow's state on one node, where an operator stopped, started or restarted it there
-- alone; a flow without a row here runs on every node as `flows` says. A change for all
-- nodes (and a deploy) removes the flow's rows.
CREATE TABLE flow_nodes (
    flow       TEXT   NOT NULL REFERENCES flows (name) ON DELETE CASCADE,
    node       TEXT   NOT NULL,
    state      TEXT   NOT NULL CHECK (state IN ('started', 'stopped')),
    -- restarts on this node alone, added to the flow's generation there
    restarts   BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    updated_by TEXT   NOT NULL,
    PRIMARY KEY (flow, node)
);
