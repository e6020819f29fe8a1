//! [`ChangeFeed`]: waiting for the change marker to move.
//!
//! Every change appends an audit record, so the audit head's `seq` (the change marker,
//! [`crate::Store::change_marker`]) moves with every change, whichever process made it. A
//! feed waits until it is past a value the caller has seen:
//!
//! - PostgreSQL: every audit append also sends `NOTIFY keyward_changes` with the new `seq`
//!   as its payload, inside the appending transaction, so it is delivered at commit and
//!   only if the change committed. The feed listens on its own connection and reads the
//!   marker on that connection after `LISTEN` is in place, so a change committed before the
//!   feed started listening is seen by that read, and one committed after it is notified.
//!   If the listening connection fails, the feed opens a new one (at once when the failed
//!   one had served for a second or more, else a second later, and then every second
//!   while that fails), reading the marker through the store's pool every 100 ms
//!   meanwhile. Attempts to listen again happen inside `wait` and end with its limit.
//! - SQLite: the feed reads the marker every 10 ms. That read is one row found by its
//!   primary key, the cheapest change check there is. Processes on one host sharing the
//!   database file see each other's changes through it, as they see everything else.
//!
//! Measured by this crate's storage tests, which print what they measure (a 2-core
//! machine, PostgreSQL on localhost, a change made from another task or another `Store`):
//! PostgreSQL feeds woke 0.1 to 0.9 ms (median) and at most about 4 ms after the writer's
//! commit returned; SQLite feeds at most about 12 ms after it, the poll interval plus a
//! read. With its listening connection cut, a PostgreSQL feed woke about 80 ms after a
//! commit (polling) until it listened again.
//!
//! The backends' halves live in `sqlite.rs` and `postgres.rs`.

use std::fmt;
use std::time::Duration;

use tokio::time::Instant;

use crate::error::StoreError;
use crate::{postgres, sqlite};

/// Waits for changes to the store, made by this process or by any other sharing the
/// database. Created by [`crate::Store::change_feed`].
///
/// A feed is used by one task at a time (`wait` takes `&mut self`); create one per task
/// that follows the store.
pub struct ChangeFeed {
    inner: Inner,
}

enum Inner {
    Sqlite(sqlite::Feed),
    Postgres(postgres::Feed),
}

impl ChangeFeed {
    pub(crate) fn sqlite(feed: sqlite::Feed) -> Self {
        Self { inner: Inner::Sqlite(feed) }
    }

    pub(crate) fn postgres(feed: postgres::Feed) -> Self {
        Self { inner: Inner::Postgres(feed) }
    }

    /// Waits until the change marker is greater than `after`, or until `limit` has passed,
    /// and returns the marker read last: greater than `after` when something changed, the
    /// unchanged marker when `limit` passed first.
    ///
    /// Pass the marker whose state the caller has applied; a change made before the call
    /// but after that marker was read is returned at once.
    ///
    /// # Errors
    /// Database errors when the marker cannot be read at all (on PostgreSQL, a lost
    /// notification connection alone is not an error: the feed falls back to reading the
    /// marker periodically), and on PostgreSQL after [`crate::Store::close`].
    pub async fn wait(&mut self, after: i64, limit: Duration) -> Result<i64, StoreError> {
        match &mut self.inner {
            Inner::Sqlite(feed) => feed.wait(after, limit).await,
            Inner::Postgres(feed) => feed.wait(after, limit).await,
        }
    }
}

impl fmt::Debug for ChangeFeed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let backend = match &self.inner {
            Inner::Sqlite(_) => "sqlite",
            Inner::Postgres(_) => "postgres",
        };
        f.debug_struct("ChangeFeed").field("backend", &backend).finish_non_exhaustive()
    }
}

/// When a wait of `limit` from now ends; limits too large to represent wait a century.
pub(crate) fn deadline(limit: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(limit).unwrap_or_else(|| now + Duration::from_secs(100 * 365 * 24 * 60 * 60))
}
