-- Facts about the keystore as a whole, written once: e.g. the check value that proves the
-- master key in use is the one the private keys were sealed with.
CREATE TABLE settings (
    name  TEXT PRIMARY KEY,
    value BYTEA NOT NULL
);
