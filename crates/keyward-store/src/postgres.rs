//! The PostgreSQL backend, for several keyward processes sharing one database.
//!
//! Write transactions run at READ COMMITTED. Two changes planned from the same entry
//! revision both try to update that entry's row; the second waits for the first, then
//! finds the revision changed and is refused. Audit appenders lock the single `audit_head`
//! row (`SELECT ... FOR UPDATE`), so records get consecutive numbers across processes.
//! Reads that span several statements run in a REPEATABLE READ, READ ONLY transaction so
//! they see one snapshot. Migrations take PostgreSQL's advisory lock, so processes
//! starting together migrate once.
//!
//! Every audit append also runs `pg_notify('keyward_changes', seq)` in its transaction, so
//! the notification is delivered when, and only if, the change commits. (PostgreSQL
//! serialises committing notifiers; audit appenders are serialised by the audit head
//! already.) Notification channels are per database, not per schema: stores in other
//! schemas of the same database wake a [`Feed`] too, which then finds its own marker
//! unchanged and keeps waiting. A [`Feed`] listens on a connection of its own, so it
//! neither takes one of the pool's connections nor holds up [`Handle::close`]; that
//! connection's `application_name` is `keyward-feed:SCHEMA` (unless the URL sets one).

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgListener, PgPool, PgPoolOptions};
use sqlx::{AssertSqlSafe, Connection};
use tokio::time::Instant;

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
pub(crate) type Conn = sqlx::PgConnection;

static MIGRATOR: Migrator = sqlx::migrate!("migrations/postgres");

/// Connections per process.
const MAX_CONNECTIONS: u32 = 10;

/// Longest schema name PostgreSQL keeps without truncating.
const MAX_SCHEMA_LEN: usize = 63;

/// The notification channel of audit appends; the payload is the new record's `seq`.
pub(crate) const CHANGES_CHANNEL: &str = "keyward_changes";

/// How often a feed whose listening connection failed reads the change marker instead.
const FALLBACK_POLL: Duration = Duration::from_millis(100);

/// How long after a failed attempt to listen (or a listening connection that failed soon
/// after it was set up) a feed tries again.
const RELISTEN_AFTER: Duration = Duration::from_secs(1);

/// The `application_name` of change feeds' connections (followed by `:SCHEMA` for a store
/// in its own schema), so that they can be told apart in `pg_stat_activity`.
pub(crate) const FEED_APPLICATION_NAME: &str = "keyward-feed";

/// How long a feed waits for its listening connection.
const LISTEN_TIMEOUT: Duration = Duration::from_secs(10);

/// A pool of connections to one PostgreSQL database (and schema).
#[derive(Clone)]
pub(crate) struct Handle {
    pool: PgPool,
    /// The `application_name` of change feeds' connections, unless the URL names one.
    feed_name: Arc<str>,
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
        let mut feed_name = match schema {
            Some(schema) => format!("{FEED_APPLICATION_NAME}:{schema}"),
            None => FEED_APPLICATION_NAME.to_owned(),
        };
        // PostgreSQL keeps 63 bytes; the name is ASCII (the schema name was checked).
        feed_name.truncate(MAX_SCHEMA_LEN);
        Ok(Self { pool, feed_name: feed_name.into() })
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

/// Announces audit record `seq` to change feeds. Sent inside the appending transaction,
/// the notification is delivered at commit, and dropped on rollback.
async fn notify_change(conn: &mut Conn, seq: i64) -> Result<(), StoreError> {
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(CHANGES_CHANNEL)
        .bind(seq.to_string())
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// The PostgreSQL half of [`crate::ChangeFeed`]: a `LISTEN` on [`CHANGES_CHANNEL`], with
/// periodic reads of the marker while the listening connection is down.
pub(crate) struct Feed {
    handle: Handle,
    listener: Option<PgListener>,
    /// When the current listening connection was set up.
    listening_since: Instant,
    /// When to try listening again after a failure.
    relisten_at: Instant,
}

impl Handle {
    /// A change feed, listening already.
    pub(crate) async fn change_feed(&self) -> Result<Feed, StoreError> {
        let listener = self.listen().await?;
        let now = Instant::now();
        Ok(Feed { handle: self.clone(), listener: Some(listener), listening_since: now, relisten_at: now })
    }

    /// Opens a connection of its own (same options, hence same schema) and listens on
    /// [`CHANGES_CHANNEL`].
    async fn listen(&self) -> Result<PgListener, sqlx::Error> {
        let mut options = PgConnectOptions::clone(&self.pool.connect_options());
        if options.get_application_name().is_none() {
            options = options.application_name(&self.feed_name);
        }
        let pool = PgPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(LISTEN_TIMEOUT)
            .max_lifetime(None)
            .idle_timeout(None)
            .connect_lazy_with(options);
        let mut listener = PgListener::connect_with(&pool).await?;
        listener.listen(CHANGES_CHANNEL).await?;
        Ok(listener)
    }
}

impl Feed {
    /// See [`crate::ChangeFeed::wait`].
    pub(crate) async fn wait(&mut self, after: i64, limit: Duration) -> Result<i64, StoreError> {
        if self.handle.pool.is_closed() {
            return Err(StoreError::Database(sqlx::Error::PoolClosed));
        }
        let deadline = crate::feed::deadline(limit);
        loop {
            let now = Instant::now();
            if self.listener.is_none() && now >= self.relisten_at && now < deadline {
                self.relisten(deadline).await;
            }
            let marker = self.marker().await?;
            let now = Instant::now();
            if marker > after || now >= deadline {
                return Ok(marker);
            }
            let Some(listener) = self.listener.as_mut() else {
                // Listen again right away when due, else read the marker again later.
                if now < self.relisten_at {
                    tokio::time::sleep_until(deadline.min(self.relisten_at).min(now + FALLBACK_POLL)).await;
                }
                continue;
            };
            // Wait for a notification that may concern a record after `after`; then (or at
            // the deadline, or after the connection was re-established) read the marker.
            let failure = loop {
                match tokio::time::timeout_at(deadline, listener.try_recv()).await {
                    // An older record of this schema, already covered by `after`.
                    Ok(Ok(Some(notice))) if notice.payload().parse::<i64>().is_ok_and(|seq| seq <= after) => {}
                    // A newer record (perhaps of another schema sharing the database).
                    Ok(Ok(Some(_))) => break None,
                    // The connection was lost and listens again: what was sent meanwhile is lost.
                    Ok(Ok(None)) => break None,
                    Ok(Err(error)) => break Some(error),
                    Err(_elapsed) => break None,
                }
            };
            if let Some(error) = failure {
                self.lost(&error);
            }
        }
    }

    /// The change marker, read on the listening connection when there is one: it listens
    /// again first if its connection was replaced, so no change after the value read can
    /// go unnotified.
    async fn marker(&mut self) -> Result<i64, StoreError> {
        if let Some(listener) = self.listener.as_mut() {
            let read: Result<Option<(i64,)>, sqlx::Error> =
                sqlx::query_as("SELECT last_seq FROM audit_head WHERE id = 1").fetch_optional(&mut *listener).await;
            match read {
                Ok(head) => return Ok(head.map_or(0, |(seq,)| seq)),
                Err(error) => self.lost(&error),
            }
        }
        self.handle.change_marker().await
    }

    /// Tries to listen again, giving up at `deadline`.
    async fn relisten(&mut self, deadline: Instant) {
        match tokio::time::timeout_at(deadline, self.handle.listen()).await {
            Ok(Ok(listener)) => {
                tracing::info!("listening for store changes again");
                self.listener = Some(listener);
                self.listening_since = Instant::now();
            }
            Ok(Err(error)) => {
                tracing::debug!(%error, "cannot listen for store changes yet");
                self.relisten_at = Instant::now() + RELISTEN_AFTER;
            }
            Err(_elapsed) => self.relisten_at = Instant::now() + RELISTEN_AFTER,
        }
    }

    /// Drops a failed listening connection; the feed polls until it listens again. A
    /// connection that served for a while is replaced at once (the next one will likely
    /// work); one that failed soon after it was set up, only after [`RELISTEN_AFTER`].
    fn lost(&mut self, error: &sqlx::Error) {
        tracing::warn!(%error, "lost the store change notifications; checking every {FALLBACK_POLL:?} until listening again");
        self.listener = None;
        let now = Instant::now();
        self.relisten_at = if now.duration_since(self.listening_since) >= RELISTEN_AFTER { now } else { now + RELISTEN_AFTER };
    }
}
