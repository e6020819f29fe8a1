//! The SQLite backend, keyward's embedded default.
//!
//! Connections use WAL (readers never block the writer), `synchronous=FULL` (a committed
//! change survives a power cut), foreign keys and a 5 s busy timeout. Every write
//! transaction starts with `BEGIN IMMEDIATE`, which takes the database's write lock at
//! once: concurrent writers, in this process or in others sharing the file, wait for it
//! instead of failing later when upgrading a read snapshot. Within one process writers
//! also queue on a mutex, so they are served in order rather than by the busy handler's
//! polling.
//!
//! A [`Feed`] (the SQLite half of [`crate::ChangeFeed`]) reads the change marker every
//! [`FEED_POLL`]; nothing is sent when a change commits.

use std::sync::Arc;
use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use tokio::sync::{Mutex, OwnedMutexGuard};

use crate::error::StoreError;
use crate::rows::AuditHead;

// The shared statements, compiled once per backend against this module's `Conn`.
#[allow(clippy::duplicate_mod)]
#[path = "ops.rs"]
mod ops;
#[allow(clippy::duplicate_mod)]
#[path = "runtime_ops.rs"]
mod runtime_ops;
#[allow(clippy::duplicate_mod)]
#[path = "renewal_ops.rs"]
mod renewal_ops;

/// The connection type the shared statements run on.
pub(crate) type Conn = sqlx::SqliteConnection;

static MIGRATOR: Migrator = sqlx::migrate!("migrations/sqlite");

/// How long a writer waits for another process's write lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Connections per file-backed database: readers run in parallel, writers one at a time.
const MAX_CONNECTIONS: u32 = 8;

/// How often a change feed reads the change marker: one row read by its primary key.
pub(crate) const FEED_POLL: Duration = Duration::from_millis(10);

/// How often migrations are attempted when another process migrates the same file at the
/// same moment.
const MIGRATION_ATTEMPTS: u32 = 3;

/// A pool of connections to one SQLite database.
#[derive(Clone)]
pub(crate) struct Handle {
    pool: SqlitePool,
    writers: Arc<Mutex<()>>,
}

/// A write transaction holding both the database's write lock and this process's writer
/// slot.
pub(crate) struct WriteTx {
    pub(crate) tx: sqlx::Transaction<'static, sqlx::Sqlite>,
    _writer: OwnedMutexGuard<()>,
}

impl WriteTx {
    pub(crate) async fn commit(self) -> Result<(), StoreError> {
        Ok(self.tx.commit().await?)
    }
}

impl Handle {
    /// Opens (creating if missing) the database described by `options` and migrates it.
    ///
    /// `in_memory` databases live as long as the pool's single connection.
    pub(crate) async fn connect(options: SqliteConnectOptions, in_memory: bool) -> Result<Self, StoreError> {
        let options = options
            .create_if_missing(true)
            .journal_mode(if in_memory { SqliteJournalMode::Memory } else { SqliteJournalMode::Wal })
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT);
        let pool_options = if in_memory {
            // One connection that is never closed: the database disappears with it.
            SqlitePoolOptions::new().max_connections(1).min_connections(1).idle_timeout(None).max_lifetime(None)
        } else {
            SqlitePoolOptions::new().max_connections(MAX_CONNECTIONS)
        };
        let pool = pool_options.connect_with(options).await?;
        let mut attempt = 1;
        loop {
            match MIGRATOR.run(&pool).await {
                Ok(()) => break,
                // Another process may have applied the same migration first; the failed
                // attempt was rolled back, and the next one sees it applied.
                Err(err) if attempt < MIGRATION_ATTEMPTS => {
                    tracing::warn!(attempt, error = %err, "migrating the SQLite database failed; retrying");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    attempt += 1;
                }
                Err(err) => return Err(err.into()),
            }
        }
        Ok(Self { pool, writers: Arc::new(Mutex::new(())) })
    }

    async fn begin_write(&self) -> Result<WriteTx, StoreError> {
        let writer = Arc::clone(&self.writers).lock_owned().await;
        let tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        Ok(WriteTx { tx, _writer: writer })
    }

    /// A read transaction: in WAL mode all its statements see one snapshot.
    async fn begin_read(&self) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>, StoreError> {
        Ok(self.pool.begin().await?)
    }

    pub(crate) async fn close(&self) {
        self.pool.close().await;
    }
}

/// Reads the audit head inside a write transaction; `BEGIN IMMEDIATE` already holds the
/// database's write lock, which serialises appenders.
async fn lock_audit_head(conn: &mut Conn) -> Result<AuditHead, StoreError> {
    sqlx::query_as("SELECT last_seq, last_hash FROM audit_head WHERE id = 1")
        .fetch_optional(&mut *conn)
        .await?
        .ok_or_else(|| StoreError::corrupt("the audit head row is missing"))
}

/// Appending an audit record needs no announcement on SQLite: change feeds read the marker.
async fn notify_change(_conn: &mut Conn, _seq: i64) -> Result<(), StoreError> {
    Ok(())
}

/// The SQLite half of [`crate::ChangeFeed`]: reads the change marker every [`FEED_POLL`].
pub(crate) struct Feed {
    handle: Handle,
}

impl Handle {
    /// A change feed over this pool.
    pub(crate) fn change_feed(&self) -> Feed {
        Feed { handle: self.clone() }
    }
}

impl Feed {
    /// See [`crate::ChangeFeed::wait`].
    pub(crate) async fn wait(&mut self, after: i64, limit: Duration) -> Result<i64, StoreError> {
        let deadline = crate::feed::deadline(limit);
        loop {
            let marker = self.handle.change_marker().await?;
            let now = tokio::time::Instant::now();
            if marker > after || now >= deadline {
                return Ok(marker);
            }
            tokio::time::sleep_until(deadline.min(now + FEED_POLL)).await;
        }
    }
}
