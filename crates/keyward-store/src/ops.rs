//! The statements both backends share.
//!
//! This file is compiled twice, as `sqlite::ops` and as `postgres::ops`. Its parent module
//! provides the connection type (`Conn`), the `Handle` with its pool, and the few
//! things that differ between the databases: how a write transaction starts
//! (`Handle::begin_write`), how a consistent read starts (`Handle::begin_read`), how the
//! audit head is locked (`lock_audit_head`) and how other processes learn of an appended
//! audit record (`notify_change`). Placeholders are written `$1`, `$2`, ...,
//! which SQLite and PostgreSQL both accept.

use keyward_domain::{Alias, Entry, Revision, Timestamp, Transition, VersionId, VersionState};

use super::{Conn, Handle, lock_audit_head, notify_change};
use crate::audit::{self, AuditFields, Verifier};
use crate::error::{StoreError, conflict_on_unique};
use crate::model::{
    AuditEvent, AuditRecord, AuditVerification, EntryChange, EntryOp, NewToken, NewVersion, StoredMaterial,
    TokenRecord,
};
use crate::rows::{self, AuditHead, AuditRow, EntryRow, TokenRow, VersionRow};
use keyward_domain::Actor;

/// Records read per statement while verifying the audit log.
const VERIFY_PAGE: i64 = 1000;

impl Handle {
    pub(crate) async fn list_entries(&self) -> Result<Vec<Entry>, StoreError> {
        let mut tx = self.begin_read().await?;
        let entries: Vec<EntryRow> = sqlx::query_as(
            "SELECT alias, kind, owner, revision, created_at, created_by, modified_at, modified_by \
             FROM entries",
        )
        .fetch_all(&mut *tx)
        .await?;
        let versions: Vec<VersionRow> = sqlx::query_as(
            "SELECT alias, version, state, created_at, created_by, activated_at, active_until, not_after \
             FROM versions",
        )
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        rows::assemble(entries, versions)
    }

    pub(crate) async fn entry(&self, alias: &Alias) -> Result<Option<Entry>, StoreError> {
        let mut tx = self.begin_read().await?;
        let entry: Option<EntryRow> = sqlx::query_as(
            "SELECT alias, kind, owner, revision, created_at, created_by, modified_at, modified_by \
             FROM entries WHERE alias = $1",
        )
        .bind(alias.as_str())
        .fetch_optional(&mut *tx)
        .await?;
        let Some(entry) = entry else {
            tx.commit().await?;
            return Ok(None);
        };
        let versions: Vec<VersionRow> = sqlx::query_as(
            "SELECT alias, version, state, created_at, created_by, activated_at, active_until, not_after \
             FROM versions WHERE alias = $1",
        )
        .bind(alias.as_str())
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(rows::assemble(vec![entry], versions)?.pop())
    }

    pub(crate) async fn material(
        &self,
        alias: &Alias,
        version: VersionId,
    ) -> Result<Option<StoredMaterial>, StoreError> {
        let mut tx = self.begin_read().await?;
        let key: Option<(Option<Vec<u8>>,)> =
            sqlx::query_as("SELECT sealed_private_key FROM versions WHERE alias = $1 AND version = $2")
                .bind(alias.as_str())
                .bind(i64::from(version.0))
                .fetch_optional(&mut *tx)
                .await?;
        let Some((sealed_private_key,)) = key else {
            tx.commit().await?;
            return Ok(None);
        };
        let chain: Vec<(Vec<u8>,)> = sqlx::query_as(
            "SELECT der FROM certificates WHERE alias = $1 AND version = $2 ORDER BY position",
        )
        .bind(alias.as_str())
        .bind(i64::from(version.0))
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Some(StoredMaterial {
            chain_der: chain.into_iter().map(|(der,)| der).collect(),
            sealed_private_key,
        }))
    }

    pub(crate) async fn apply(&self, change: EntryChange) -> Result<Revision, StoreError> {
        let mut write = self.begin_write().await?;
        let conn: &mut Conn = &mut write.tx;
        let alias = change.alias.as_str();

        // (1) The entry row: created, or its revision checked and bumped. This row lock is
        // what refuses a second change planned from the same revision.
        let revision = match (&change.op, change.expected_revision) {
            (EntryOp::Create { kind, owner, .. }, _) => {
                let inserted = sqlx::query(
                    "INSERT INTO entries \
                     (alias, kind, owner, revision, created_at, created_by, modified_at, modified_by) \
                     VALUES ($1, $2, $3, 1, $4, $5, $4, $5) ON CONFLICT (alias) DO NOTHING",
                )
                .bind(alias)
                .bind(kind.as_str())
                .bind(owner.as_str())
                .bind(change.at.millis())
                .bind(change.actor.name.as_str())
                .execute(&mut *conn)
                .await?;
                if inserted.rows_affected() == 0 {
                    return Err(StoreError::Conflict(format!("an entry with alias {alias} already exists")));
                }
                Revision(1)
            }
            (_, Some(expected)) => bump_revision(conn, alias, expected, &change.actor, change.at).await?,
            (_, None) => {
                return Err(StoreError::Invalid(format!(
                    "a change to entry {alias} must name the revision it was planned from"
                )));
            }
        };

        // Appenders to the audit log queue here, after the entry check, so a refused change
        // never waits for the log.
        let head = lock_audit_head(conn).await?;

        // (2)/(3) Versions and their material.
        let (audit_version, revision) = match &change.op {
            EntryOp::Create { first, .. } => {
                insert_version(conn, alias, first, &change.actor, change.at).await?;
                (Some(first.id), revision)
            }
            EntryOp::AddVersion { version, transitions } => {
                apply_transitions(conn, alias, transitions).await?;
                insert_version(conn, alias, version, &change.actor, change.at).await?;
                (Some(version.id), revision)
            }
            EntryOp::Transition { transitions } => {
                apply_transitions(conn, alias, transitions).await?;
                (transition_audit_version(transitions), revision)
            }
            EntryOp::Delete => {
                for statement in [
                    "DELETE FROM certificates WHERE alias = $1",
                    "DELETE FROM versions WHERE alias = $1",
                    "DELETE FROM entries WHERE alias = $1",
                ] {
                    sqlx::query(statement).bind(alias).execute(&mut *conn).await?;
                }
                (None, Revision(0))
            }
        };

        // (4) The audit record.
        let seq = append_audit(
            conn,
            head,
            &AuditFields {
                at: change.at.millis(),
                actor: &change.actor.name,
                role: change.actor.role.as_str(),
                action: &change.audit_action,
                alias: Some(alias),
                version: audit_version.map(|v| i64::from(v.0)),
                detail: &change.audit_detail,
            },
        )
        .await?;
        // A new entry's first revision is its creation record's seq: larger than any revision
        // an earlier entry under the same alias ever had, so a change planned against a
        // deleted entry can never apply to its successor.
        let revision = if matches!(change.op, EntryOp::Create { .. }) {
            sqlx::query("UPDATE entries SET revision = $1 WHERE alias = $2")
                .bind(seq)
                .bind(alias)
                .execute(&mut *conn)
                .await?;
            Revision(seq)
        } else {
            revision
        };
        write.commit().await?;
        tracing::debug!(alias, action = %change.audit_action, revision = revision.0, audit_seq = seq, "entry changed");
        Ok(revision)
    }

    pub(crate) async fn record(&self, event: AuditEvent<'_>) -> Result<(), StoreError> {
        let mut write = self.begin_write().await?;
        let conn: &mut Conn = &mut write.tx;
        append_event(conn, &event).await?;
        write.commit().await?;
        Ok(())
    }

    pub(crate) async fn setting(&self, name: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let row: Option<(Vec<u8>,)> = sqlx::query_as("SELECT value FROM settings WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|(value,)| value))
    }

    pub(crate) async fn put_setting(&self, name: &str, value: &[u8], event: AuditEvent<'_>) -> Result<(), StoreError> {
        let mut write = self.begin_write().await?;
        sqlx::query("INSERT INTO settings (name, value) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET value = excluded.value")
            .bind(name)
            .bind(value)
            .execute(&mut *write.tx)
            .await?;
        append_event(&mut write.tx, &event).await?;
        write.commit().await?;
        Ok(())
    }

    pub(crate) async fn put_setting_if_absent(&self, name: &str, value: &[u8]) -> Result<bool, StoreError> {
        let mut write = self.begin_write().await?;
        let inserted = sqlx::query("INSERT INTO settings (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING")
            .bind(name)
            .bind(value)
            .execute(&mut *write.tx)
            .await?;
        write.commit().await?;
        Ok(inserted.rows_affected() == 1)
    }

    pub(crate) async fn create_token(&self, token: NewToken, actor: &Actor, at: Timestamp) -> Result<(), StoreError> {
        let mut write = self.begin_write().await?;
        let conn: &mut Conn = &mut write.tx;
        let inserted = sqlx::query(
            "INSERT INTO tokens (name, role, hash, created_at, created_by) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (name) DO NOTHING",
        )
        .bind(token.name.as_str())
        .bind(token.role.as_str())
        .bind(token.hash.as_slice())
        .bind(at.millis())
        .bind(actor.name.as_str())
        .execute(&mut *conn)
        .await
        .map_err(|e| conflict_on_unique(e, || "a token with the same secret already exists".to_owned()))?;
        if inserted.rows_affected() == 0 {
            return Err(StoreError::Conflict(format!("a token named {} already exists", token.name)));
        }
        let detail = format!("created token {} with role {}", token.name, token.role);
        let event = AuditEvent { actor, at, action: "tokens.create", alias: None, version: None, detail: &detail };
        let seq = append_event(conn, &event).await?;
        write.commit().await?;
        tracing::debug!(token = %token.name, role = %token.role, audit_seq = seq, "token created");
        Ok(())
    }

    pub(crate) async fn token_by_hash(&self, hash: &[u8; 32]) -> Result<Option<TokenRecord>, StoreError> {
        let row: Option<TokenRow> = sqlx::query_as("SELECT name, role, created_at FROM tokens WHERE hash = $1")
            .bind(hash.as_slice())
            .fetch_optional(&self.pool)
            .await?;
        row.map(TokenRow::into_record).transpose()
    }

    pub(crate) async fn token_by_name(&self, name: &str) -> Result<Option<TokenRecord>, StoreError> {
        let row: Option<TokenRow> = sqlx::query_as("SELECT name, role, created_at FROM tokens WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        row.map(TokenRow::into_record).transpose()
    }

    pub(crate) async fn list_tokens(&self) -> Result<Vec<TokenRecord>, StoreError> {
        let rows: Vec<TokenRow> = sqlx::query_as("SELECT name, role, created_at FROM tokens ORDER BY created_at, name")
            .fetch_all(&self.pool)
            .await?;
        rows.into_iter().map(TokenRow::into_record).collect()
    }

    pub(crate) async fn revoke_token(&self, name: &str, actor: &Actor, at: Timestamp) -> Result<(), StoreError> {
        let mut write = self.begin_write().await?;
        let conn: &mut Conn = &mut write.tx;
        let deleted = sqlx::query("DELETE FROM tokens WHERE name = $1").bind(name).execute(&mut *conn).await?;
        if deleted.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("no token named {name}")));
        }
        let detail = format!("revoked token {name}");
        let event = AuditEvent { actor, at, action: "tokens.revoke", alias: None, version: None, detail: &detail };
        append_event(conn, &event).await?;
        write.commit().await?;
        Ok(())
    }

    pub(crate) async fn token_count(&self) -> Result<i64, StoreError> {
        let (count,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM tokens").fetch_one(&self.pool).await?;
        Ok(count)
    }

    pub(crate) async fn change_marker(&self) -> Result<i64, StoreError> {
        let head: Option<AuditHead> = sqlx::query_as("SELECT last_seq, last_hash FROM audit_head WHERE id = 1")
            .fetch_optional(&self.pool)
            .await?;
        Ok(head.map_or(0, |head| head.last_seq))
    }

    pub(crate) async fn audit_list(&self, limit: i64, before_seq: Option<i64>) -> Result<Vec<AuditRecord>, StoreError> {
        let rows: Vec<AuditRow> = sqlx::query_as(
            "SELECT seq, at, actor, role, action, alias, version, detail, prev_hash, hash \
             FROM audit_log WHERE seq < $1 ORDER BY seq DESC LIMIT $2",
        )
        .bind(before_seq.unwrap_or(i64::MAX))
        .bind(limit.max(0))
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(AuditRow::into_record).collect()
    }

    pub(crate) async fn audit_verify(&self) -> Result<AuditVerification, StoreError> {
        let mut tx = self.begin_read().await?;
        let head: Option<AuditHead> = sqlx::query_as("SELECT last_seq, last_hash FROM audit_head WHERE id = 1")
            .fetch_optional(&mut *tx)
            .await?;
        let mut verifier = Verifier::new();
        loop {
            let page: Vec<AuditRow> = sqlx::query_as(
                "SELECT seq, at, actor, role, action, alias, version, detail, prev_hash, hash \
                 FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT $2",
            )
            .bind(verifier.last_seq())
            .bind(VERIFY_PAGE)
            .fetch_all(&mut *tx)
            .await?;
            page.iter().for_each(|row| verifier.check(row));
            if i64::try_from(page.len()).map_or(true, |n| n < VERIFY_PAGE) {
                break;
            }
        }
        tx.commit().await?;
        Ok(verifier.finish(head))
    }
}

/// Bumps the entry's revision if it still is `expected`.
async fn bump_revision(
    conn: &mut Conn,
    alias: &str,
    expected: Revision,
    actor: &Actor,
    at: Timestamp,
) -> Result<Revision, StoreError> {
    let updated = sqlx::query(
        "UPDATE entries SET revision = revision + 1, modified_at = $1, modified_by = $2 \
         WHERE alias = $3 AND revision = $4",
    )
    .bind(at.millis())
    .bind(actor.name.as_str())
    .bind(alias)
    .bind(expected.0)
    .execute(&mut *conn)
    .await?;
    if updated.rows_affected() == 1 {
        return Ok(Revision(expected.0 + 1));
    }
    let current: Option<(i64,)> = sqlx::query_as("SELECT revision FROM entries WHERE alias = $1")
        .bind(alias)
        .fetch_optional(&mut *conn)
        .await?;
    Err(match current {
        None => StoreError::NotFound(format!("no entry with alias {alias}")),
        Some((now,)) => StoreError::Conflict(format!(
            "entry {alias} was changed by someone else (revision now {now}); reload and retry"
        )),
    })
}

/// Stores a new version with its certificates.
async fn insert_version(
    conn: &mut Conn,
    alias: &str,
    version: &NewVersion,
    actor: &Actor,
    at: Timestamp,
) -> Result<(), StoreError> {
    let activated_at = (version.state == VersionState::Active).then_some(at.millis());
    let active_until = (version.state == VersionState::Retired).then_some(at.millis());
    sqlx::query(
        "INSERT INTO versions (alias, version, state, created_at, created_by, activated_at, active_until, \
         not_after, sealed_private_key) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(alias)
    .bind(i64::from(version.id.0))
    .bind(version.state.as_str())
    .bind(at.millis())
    .bind(actor.name.as_str())
    .bind(activated_at)
    .bind(active_until)
    .bind(version.not_after.millis())
    .bind(version.sealed_private_key.as_deref())
    .execute(&mut *conn)
    .await
    .map_err(|e| {
        conflict_on_unique(e, || {
            if version.state == VersionState::Active {
                format!("entry {alias} already has version {} or an active version", version.id)
            } else {
                format!("entry {alias} already has version {}", version.id)
            }
        })
    })?;
    for (position, der) in version.chain_der.iter().enumerate() {
        sqlx::query("INSERT INTO certificates (alias, version, position, der) VALUES ($1, $2, $3, $4)")
            .bind(alias)
            .bind(i64::from(version.id.0))
            // A chain has far fewer than i64::MAX certificates.
            .bind(i64::try_from(position).unwrap_or(i64::MAX))
            .bind(der.as_slice())
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// Applies state changes, retirements first and activations last, each guarded by the
/// version's expected current state.
async fn apply_transitions(conn: &mut Conn, alias: &str, transitions: &[Transition]) -> Result<(), StoreError> {
    let mut ordered: Vec<&Transition> = transitions.iter().collect();
    ordered.sort_by_key(|t| match t.to {
        VersionState::Retired => 0,
        VersionState::Staged => 1,
        VersionState::Active => 2,
    });
    for t in ordered {
        let activated_at = (t.to == VersionState::Active).then_some(t.at.millis());
        let active_until = (t.to == VersionState::Retired).then_some(t.at.millis());
        let updated = sqlx::query(
            "UPDATE versions SET state = $1, activated_at = COALESCE($2, activated_at), \
             active_until = COALESCE($3, active_until) \
             WHERE alias = $4 AND version = $5 AND state = $6",
        )
        .bind(t.to.as_str())
        .bind(activated_at)
        .bind(active_until)
        .bind(alias)
        .bind(i64::from(t.version.0))
        .bind(t.from.as_str())
        .execute(&mut *conn)
        .await
        .map_err(|e| {
            conflict_on_unique(e, || {
                format!("version {} of {alias} cannot become active: another version is active", t.version)
            })
        })?;
        if updated.rows_affected() == 1 {
            continue;
        }
        let state: Option<(String,)> = sqlx::query_as("SELECT state FROM versions WHERE alias = $1 AND version = $2")
            .bind(alias)
            .bind(i64::from(t.version.0))
            .fetch_optional(&mut *conn)
            .await?;
        return Err(StoreError::Conflict(match state {
            Some((state,)) => format!(
                "version {} of {alias} is {state}, not {}; it was changed by someone else; reload and retry",
                t.version, t.from
            ),
            None => format!("entry {alias} has no version {}", t.version),
        }));
    }
    Ok(())
}

/// The version an audit record names for a transition: the one that becomes active, else
/// the one that becomes staged, else the first one changed.
fn transition_audit_version(transitions: &[Transition]) -> Option<VersionId> {
    let becomes = |state| transitions.iter().find(|t| t.to == state).map(|t| t.version);
    becomes(VersionState::Active)
        .or_else(|| becomes(VersionState::Staged))
        .or_else(|| transitions.first().map(|t| t.version))
}

/// Locks the audit head and appends a record for an event that changes no entry; returns
/// its `seq`.
pub(crate) async fn append_event(conn: &mut Conn, event: &AuditEvent<'_>) -> Result<i64, StoreError> {
    let head = lock_audit_head(conn).await?;
    let fields = AuditFields {
        at: event.at.millis(),
        actor: &event.actor.name,
        role: event.actor.role.as_str(),
        action: event.action,
        alias: event.alias.map(Alias::as_str),
        version: event.version.map(|v| i64::from(v.0)),
        detail: event.detail,
    };
    append_audit(conn, head, &fields).await
}

/// Appends one record after `head` and moves the head to it; returns its `seq`.
async fn append_audit(conn: &mut Conn, head: AuditHead, fields: &AuditFields<'_>) -> Result<i64, StoreError> {
    let seq = head.last_seq + 1;
    let hash = audit::record_hash(&head.last_hash, seq, fields);
    sqlx::query(
        "INSERT INTO audit_log (seq, at, actor, role, action, alias, version, detail, prev_hash, hash) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(seq)
    .bind(fields.at)
    .bind(fields.actor)
    .bind(fields.role)
    .bind(fields.action)
    .bind(fields.alias)
    .bind(fields.version)
    .bind(fields.detail)
    .bind(head.last_hash.as_slice())
    .bind(hash.as_slice())
    .execute(&mut *conn)
    .await?;
    sqlx::query("UPDATE audit_head SET last_seq = $1, last_hash = $2 WHERE id = 1")
        .bind(seq)
        .bind(hash.as_slice())
        .execute(&mut *conn)
        .await?;
    notify_change(conn, seq).await?;
    Ok(seq)
}
