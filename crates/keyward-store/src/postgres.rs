//! The PostgreSQL backend, for several keyward processes sharing one database.
//!
//! Write transactions run at READ COMMITTED. Two changes planned from the same entry
//! revision both try to update that entry's row; the second waits for the first, then
//! finds the revision changed and is refused. Audit appenders lock the single `audit_head`
//! row (`SELECT ... FOR UPDATE`), so records get consecutive numbers across processes.
//! Reads that span several statements run in a REPEATABLE READ, READ ONLY transaction so
//! they see one snapshot. Migrations take PostgreSQL's advisory lock, so processes
//! starting together migrate once.

use std::str::FromStr;

use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{AssertSqlSafe, Connection};

use crate::error::StoreError;
use crate::rows::AuditHead;

// The shared statements, compiled once per backend against this module's `Conn`.
#[allow(clippy::duplicate_mod)]
#[path = "ops.rs"]
mod ops;
#[allow(clippy::duplicate_mod)]
#[path = "runtime_ops.rs"]
mod runtime_ops;

/// The connection type the shared statements run on.
pub(crate) type Conn = sqlx::PgConnection;

static MIGRATOR: Migrator = sqlx::migrate!("migrations/postgres");

/// Connections per process.
const MAX_CONNECTIONS: u32 = 10;

/// Longest schema name PostgreSQL keeps without truncating.
const MAX_SCHEMA_LEN: usize = 63;

/// A pool of connections to one PostgreSQL database (and schema).
#[derive(Clone)]
pub(crate) struct Handle {
    pool: PgPool,
}

/// A write transaction.
pub(crate) struct WriteTx {
    pub(crate) tx: sqlx::Transaction<'static, sqlx::Postgres>,
}

impl WriteTx {
    pub(crate) async fn commit(self) -> Result<(), StoreError> {
        Ok(self.tx.commit().await?)
    }
}

/// Parses a `postgres://` URL.
pub(crate) fn options(url: &str) -> Result<PgConnectOptions, StoreError> {
    PgConnectOptions::from_str(url)
        .map_err(|e| StoreError::Config(format!("invalid PostgreSQL URL: {e}")))
}

/// Checks that `schema` is a plain identifier (letters, digits, `_`; not starting with a
/// digit), so it can be quoted into SQL safely.
fn check_schema_name(schema: &str) -> Result<(), StoreError> {
    let valid = !schema.is_empty()
        && schema.len() <= MAX_SCHEMA_LEN
        && schema.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        && !schema.as_bytes()[0].is_ascii_digit();
    if valid {
        Ok(())
    } else {
        Err(StoreError::Config(format!(
            "invalid schema name {schema:?}: use 1 to {MAX_SCHEMA_LEN} letters, digits and '_', not starting with a digit"
        )))
    }
}

impl Handle {
    /// Connects, optionally to `schema` (created if missing, and made the search path),
    /// and migrates.
    pub(crate) async fn connect(options: PgConnectOptions, schema: Option<&str>) -> Result<Self, StoreError> {
        let options = match schema {
            None => options,
            Some(schema) => {
                check_schema_name(schema)?;
                let mut conn = sqlx::PgConnection::connect_with(&options).await?;
                // The name was checked to be a plain identifier above.
                let create = format!("CREATE SCHEMA IF NOT EXISTS \"{schema}\"");
                sqlx::query(AssertSqlSafe(create)).execute(&mut conn).await?;
                conn.close().await?;
                options.options([("search_path", schema)])
            }
        };
        let pool = PgPoolOptions::new().max_connections(MAX_CONNECTIONS).connect_with(options).await?;
        MIGRATOR.run(&pool).await?;
        Ok(Self { pool })
    }

    async fn begin_write(&self) -> Result<WriteTx, StoreError> {
        Ok(WriteTx { tx: self.pool.begin().await? })
    }

    async fn begin_read(&self) -> Result<sqlx::Transaction<'static, sqlx::Postgres>, StoreError> {
        Ok(self.pool.begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY").await?)
    }

    pub(crate) async fn close(&self) {
        self.pool.close().await;
    }
}

/// Locks the audit head row until the transaction ends, serialising appenders across
/// connections and processes.
async fn lock_audit_head(conn: &mut Conn) -> Result<AuditHead, StoreError> {
    sqlx::query_as("SELECT last_seq, last_hash FROM audit_head WHERE id = 1 FOR UPDATE")
        .fetch_optional(&mut *conn)
        .await?
        .ok_or_else(|| StoreError::corrupt("the audit head row is missing"))
}

/// The channel on which every committed change is announced (its audit seq as payload).
pub(crate) const CHANGES_CHANNEL: &str = "keyward_changes";

/// Announces the change `seq` on [`CHANGES_CHANNEL`]; PostgreSQL delivers it when the
/// transaction commits, and not at all when it rolls back.
async fn notify_change(conn: &mut Conn, seq: i64) -> Result<(), StoreError> {
    sqlx::query("SELECT pg_notify($1, $2)").bind(CHANGES_CHANNEL).bind(seq.to_string()).execute(&mut *conn).await?;
    Ok(())
}

impl Handle {
    /// A listener for [`CHANGES_CHANNEL`].
    pub(crate) async fn change_listener(&self) -> Result<sqlx::postgres::PgListener, StoreError> {
        let mut listener = sqlx::postgres::PgListener::connect_with(&self.pool).await?;
        listener.listen(CHANGES_CHANNEL).await?;
        Ok(listener)
    }
}
