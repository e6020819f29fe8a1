-- keyward's initial schema (SQLite).
--
-- Timestamps are milliseconds since the Unix epoch. Kinds, owners, states and roles are
-- stored as their names and parsed back by keyward.

CREATE TABLE entries (
    alias       TEXT    NOT NULL PRIMARY KEY,
    kind        TEXT    NOT NULL,
    owner       TEXT    NOT NULL,
    revision    BIGINT  NOT NULL,
    created_at  BIGINT  NOT NULL,
    created_by  TEXT    NOT NULL,
    modified_at BIGINT  NOT NULL,
    modified_by TEXT    NOT NULL
);

CREATE TABLE versions (
    alias              TEXT   NOT NULL REFERENCES entries (alias) ON DELETE CASCADE,
    version            BIGINT NOT NULL,
    state              TEXT   NOT NULL CHECK (state IN ('staged', 'active', 'retired')),
    created_at         BIGINT NOT NULL,
    created_by         TEXT   NOT NULL,
    activated_at       BIGINT,
    active_until       BIGINT,
    not_after          BIGINT NOT NULL,
    -- the private key as sealed by the crypto layer; never readable without its key
    sealed_private_key BLOB,
    PRIMARY KEY (alias, version)
);

-- At most one active version per entry, whatever the code above does.
CREATE UNIQUE INDEX versions_one_active ON versions (alias) WHERE state = 'active';

CREATE TABLE certificates (
    alias    TEXT   NOT NULL,
    version  BIGINT NOT NULL,
    -- 0 is the leaf; the chain is kept in the order it was given
    position BIGINT NOT NULL,
    der      BLOB   NOT NULL,
    PRIMARY KEY (alias, version, position),
    FOREIGN KEY (alias, version) REFERENCES versions (alias, version) ON DELETE CASCADE
);

CREATE TABLE tokens (
    name       TEXT   NOT NULL PRIMARY KEY,
    role       TEXT   NOT NULL,
    -- SHA-256 of the secret; the secret itself is never stored
    hash       BLOB   NOT NULL UNIQUE,
    created_at BIGINT NOT NULL,
    created_by TEXT   NOT NULL
);

-- The hash-chained audit log. `seq` is assigned from audit_head, not from a sequence, so
-- that numbers have no gaps and a missing record can be detected.
CREATE TABLE audit_log (
    seq       BIGINT NOT NULL PRIMARY KEY,
    at        BIGINT NOT NULL,
    actor     TEXT   NOT NULL,
    role      TEXT   NOT NULL,
    action    TEXT   NOT NULL,
    alias     TEXT,
    version   BIGINT,
    detail    TEXT   NOT NULL,
    prev_hash BLOB   NOT NULL,
    hash      BLOB   NOT NULL
);

-- The newest record's number and hash; one row. Appenders update it in the same
-- transaction as the record, which serialises them and lets verification notice removed
-- newest records.
CREATE TABLE audit_head (
    id        INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
    last_seq  BIGINT  NOT NULL,
    last_hash BLOB    NOT NULL
);

INSERT INTO audit_head (id, last_seq, last_hash) VALUES (1, 0, zeroblob(32));
