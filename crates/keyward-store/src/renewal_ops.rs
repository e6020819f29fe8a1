//! Partners and renewals, for both backends.
//!
//! Like `ops.rs`, this file is compiled once per backend. Every change is audited in the
//! same transaction. A renewal is written whole (its row and the steps that changed)
//! under optimistic concurrency: the write names the revision it read, and a renewal that
//! moved meanwhile is a [`StoreError::Conflict`], so two callers can never both finish the
//! same step. At most one renewal per alias is running (a unique index).

use keyward_domain::partner::{format_capabilities, parse_capabilities};
use keyward_domain::{Actor, Alias, Partner, Renewal, RenewalStep, Timestamp, VersionId};

use super::ops::append_event;
use super::{Conn, Handle};
use crate::error::{StoreError, conflict_on_unique};
use crate::model::AuditEvent;
use crate::rows::parse_name;

#[derive(Debug, sqlx::FromRow)]
struct PartnerRow {
    name: String,
    url: Option<String>,
    capabilities: String,
    description: Option<String>,
}

#[derive(Debug, sqlx::FromRow)]
struct RenewalRow {
    id: i64,
    alias: String,
    procedure: String,
    variant: String,
    state: String,
    flows: String,
    partners: String,
    old_version: Option<i64>,
    new_version: Option<i64>,
    second_alias: Option<String>,
    window_from: Option<i64>,
    window_to: Option<i64>,
    revision: i64,
    created_at: i64,
    created_by: String,
    updated_at: i64,
}

#[derive(Debug, sqlx::FromRow)]
struct StepRow {
    renewal_id: i64,
    position: i64,
    key: String,
    partner: Option<String>,
    state: String,
    done_by: Option<String>,
    at: Option<i64>,
    note: Option<String>,
    due: Option<i64>,
}

macro_rules! select_renewals {
    ($rest:literal) => {
        concat!(
            "SELECT id, alias, procedure, variant, state, flows, partners, old_version, new_version, ",
            "second_alias, window_from, window_to, revision, created_at, created_by, updated_at FROM renewals",
            $rest
        )
    };
}

fn lines(list: &[String]) -> String {
    list.join("\n")
}

fn unlines(text: &str) -> Vec<String> {
    text.lines().filter(|l| !l.is_empty()).map(str::to_owned).collect()
}

fn version(column: &str, value: Option<i64>) -> Result<Option<VersionId>, StoreError> {
    value
        .map(|v| u32::try_from(v).map(VersionId).map_err(|_| StoreError::corrupt(format!("{column} {v}"))))
        .transpose()
}

fn alias(column: &str, value: &str) -> Result<Alias, StoreError> {
    Alias::parse(value).map_err(|e| StoreError::corrupt(format!("{column}: {e}")))
}

impl PartnerRow {
    fn into_partner(self) -> Result<Partner, StoreError> {
        let capabilities = parse_capabilities(&self.capabilities)
            .map_err(|e| StoreError::corrupt(format!("partners.capabilities: {e}")))?;
        Ok(Partner { name: self.name, url: self.url, capabilities, description: self.description })
    }
}

impl StepRow {
    fn into_step(self) -> Result<RenewalStep, StoreError> {
        Ok(RenewalStep {
            position: u32::try_from(self.position)
                .map_err(|_| StoreError::corrupt(format!("renewal_steps.position {}", self.position)))?,
            key: self.key,
            partner: self.partner,
            state: parse_name("renewal_steps.state", &self.state)?,
            by: self.done_by,
            at: self.at.map(Timestamp::from_millis),
            note: self.note,
            due: self.due.map(Timestamp::from_millis),
        })
    }
}

impl RenewalRow {
    fn into_renewal(self, steps: Vec<StepRow>) -> Result<Renewal, StoreError> {
        let mut steps = steps.into_iter().map(StepRow::into_step).collect::<Result<Vec<_>, _>>()?;
        steps.sort_by_key(|s| s.position);
        Ok(Renewal {
            id: self.id,
            alias: alias("renewals.alias", &self.alias)?,
            procedure: parse_name("renewals.procedure", &self.procedure)?,
            variant: self.variant,
            state: parse_name("renewals.state", &self.state)?,
            flows: unlines(&self.flows),
            partners: unlines(&self.partners),
            old_version: version("renewals.old_version", self.old_version)?,
            new_version: version("renewals.new_version", self.new_version)?,
            second_alias: self.second_alias.as_deref().map(|a| alias("renewals.second_alias", a)).transpose()?,
            window: match (self.window_from, self.window_to) {
                (Some(from), Some(to)) => Some((Timestamp::from_millis(from), Timestamp::from_millis(to))),
                _ => None,
            },
            created_by: self.created_by,
            created_at: Timestamp::from_millis(self.created_at),
            updated_at: Timestamp::from_millis(self.updated_at),
            revision: self.revision,
            steps,
        })
    }
}

async fn write_step(conn: &mut Conn, id: i64, step: &RenewalStep, insert: bool) -> Result<(), StoreError> {
    let sql = if insert {
        "INSERT INTO renewal_steps (renewal_id, position, key, partner, state, done_by, at, note, due) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
    } else {
        "UPDATE renewal_steps SET key = $3, partner = $4, state = $5, done_by = $6, at = $7, note = $8, due = $9 \
         WHERE renewal_id = $1 AND position = $2"
    };
    sqlx::query(sql)
        .bind(id)
        .bind(i64::from(step.position))
        .bind(step.key.as_str())
        .bind(step.partner.as_deref())
        .bind(step.state.as_str())
        .bind(step.by.as_deref())
        .bind(step.at.map(Timestamp::millis))
        .bind(step.note.as_deref())
        .bind(step.due.map(Timestamp::millis))
        .execute(&mut *conn)
        .await?;
    Ok(())
}

impl Handle {
    pub(crate) async fn put_partner(
        &self,
        partner: &Partner,
        create: bool,
        actor: &Actor,
        at: Timestamp,
    ) -> Result<(), StoreError> {
        let mut write = self.begin_write().await?;
        let conn: &mut Conn = &mut write.tx;
        let capabilities = format_capabilities(&partner.capabilities);
        let changed = if create {
            sqlx::query(
                "INSERT INTO partners (name, url, capabilities, description, created_at, created_by, updated_at, updated_by) \
                 VALUES ($1, $2, $3, $4, $5, $6, $5, $6)",
            )
            .bind(partner.name.as_str())
            .bind(partner.url.as_deref())
            .bind(capabilities.as_str())
            .bind(partner.description.as_deref())
            .bind(at.millis())
            .bind(actor.name.as_str())
            .execute(&mut *conn)
            .await
            .map_err(|e| conflict_on_unique(e, || format!("a partner named {} already exists", partner.name)))?
            .rows_affected()
        } else {
            sqlx::query(
                "UPDATE partners SET url = $2, capabilities = $3, description = $4, updated_at = $5, updated_by = $6 \
                 WHERE name = $1",
            )
            .bind(partner.name.as_str())
            .bind(partner.url.as_deref())
            .bind(capabilities.as_str())
            .bind(partner.description.as_deref())
            .bind(at.millis())
            .bind(actor.name.as_str())
            .execute(&mut *conn)
            .await?
            .rows_affected()
        };
        if changed == 0 {
            return Err(StoreError::NotFound(format!("no partner named {}", partner.name)));
        }
        let detail = format!(
            "{} partner {} (url {}, capabilities {capabilities})",
            if create { "added" } else { "updated" },
            partner.name,
            partner.url.as_deref().unwrap_or("-")
        );
        let action = if create { "partners.add" } else { "partners.update" };
        let event = AuditEvent { actor, at, action, alias: None, version: None, detail: &detail };
        append_event(conn, &event).await?;
        write.commit().await
    }

    pub(crate) async fn partners(&self) -> Result<Vec<Partner>, StoreError> {
        let rows: Vec<PartnerRow> = sqlx::query_as("SELECT name, url, capabilities, description FROM partners")
            .fetch_all(&self.pool)
            .await?;
        let mut partners = rows.into_iter().map(PartnerRow::into_partner).collect::<Result<Vec<_>, _>>()?;
        partners.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(partners)
    }

    pub(crate) async fn create_renewal(
        &self,
        renewal: &Renewal,
        kept_flows: &[(String, String)],
        actor: &Actor,
    ) -> Result<i64, StoreError> {
        let mut write = self.begin_write().await?;
        let conn: &mut Conn = &mut write.tx;
        let (from, to) = renewal.window.map_or((None, None), |(f, t)| (Some(f.millis()), Some(t.millis())));
        let (id,): (i64,) = sqlx::query_as(
            "INSERT INTO renewals (alias, procedure, variant, state, flows, partners, old_version, new_version, \
             second_alias, window_from, window_to, revision, created_at, created_by, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 1, $12, $13, $12) RETURNING id",
        )
        .bind(renewal.alias.as_str())
        .bind(renewal.procedure.as_str())
        .bind(renewal.variant.as_str())
        .bind(renewal.state.as_str())
        .bind(lines(&renewal.flows))
        .bind(lines(&renewal.partners))
        .bind(renewal.old_version.map(|v| i64::from(v.0)))
        .bind(renewal.new_version.map(|v| i64::from(v.0)))
        .bind(renewal.second_alias.as_ref().map(Alias::as_str))
        .bind(from)
        .bind(to)
        .bind(renewal.created_at.millis())
        .bind(renewal.created_by.as_str())
        .fetch_one(&mut *conn)
        .await
        .map_err(|e| conflict_on_unique(e, || format!("a renewal of {} is already running", renewal.alias)))?;
        for step in &renewal.steps {
            write_step(conn, id, step, true).await?;
        }
        for (flow, source) in kept_flows {
            sqlx::query("INSERT INTO renewal_flows (renewal_id, flow, source) VALUES ($1, $2, $3)")
                .bind(id)
                .bind(flow.as_str())
                .bind(source.as_str())
                .execute(&mut *conn)
                .await?;
        }
        let detail = format!(
            "started renewal {id}: {} / {}, flows [{}], partners [{}]",
            renewal.procedure,
            renewal.variant,
            renewal.flows.join(", "),
            renewal.partners.join(", ")
        );
        let event = AuditEvent {
            actor,
            at: renewal.created_at,
            action: "renewals.start",
            alias: Some(&renewal.alias),
            version: renewal.old_version,
            detail: &detail,
        };
        append_event(conn, &event).await?;
        write.commit().await?;
        Ok(id)
    }

    pub(crate) async fn save_renewal(
        &self,
        renewal: &Renewal,
        changed_steps: &[u32],
        kept_flows: &[(String, String)],
        event: &AuditEvent<'_>,
    ) -> Result<i64, StoreError> {
        let mut write = self.begin_write().await?;
        let conn: &mut Conn = &mut write.tx;
        let (from, to) = renewal.window.map_or((None, None), |(f, t)| (Some(f.millis()), Some(t.millis())));
        let updated: Option<(i64,)> = sqlx::query_as(
            "UPDATE renewals SET state = $2, new_version = $3, second_alias = $4, window_from = $5, window_to = $6, \
             revision = revision + 1, updated_at = $7 WHERE id = $1 AND revision = $8 RETURNING revision",
        )
        .bind(renewal.id)
        .bind(renewal.state.as_str())
        .bind(renewal.new_version.map(|v| i64::from(v.0)))
        .bind(renewal.second_alias.as_ref().map(Alias::as_str))
        .bind(from)
        .bind(to)
        .bind(event.at.millis())
        .bind(renewal.revision)
        .fetch_optional(&mut *conn)
        .await?;
        let Some((revision,)) = updated else {
            return Err(StoreError::Conflict(format!(
                "renewal {} changed meanwhile; show it again and retry",
                renewal.id
            )));
        };
        for position in changed_steps {
            if let Some(step) = renewal.steps.iter().find(|s| s.position == *position) {
                write_step(conn, renewal.id, step, false).await?;
            }
        }
        for (flow, source) in kept_flows {
            sqlx::query(
                "INSERT INTO renewal_flows (renewal_id, flow, source) VALUES ($1, $2, $3) \
                 ON CONFLICT (renewal_id, flow) DO UPDATE SET source = excluded.source",
            )
            .bind(renewal.id)
            .bind(flow.as_str())
            .bind(source.as_str())
            .execute(&mut *conn)
            .await?;
        }
        append_event(conn, event).await?;
        write.commit().await?;
        Ok(revision)
    }

    pub(crate) async fn renewals(&self) -> Result<Vec<Renewal>, StoreError> {
        let rows: Vec<RenewalRow> =
            sqlx::query_as(select_renewals!("")).fetch_all(&self.pool).await?;
        let steps: Vec<StepRow> = sqlx::query_as(
            "SELECT renewal_id, position, key, partner, state, done_by, at, note, due FROM renewal_steps",
        )
        .fetch_all(&self.pool)
        .await?;
        let mut by_renewal: std::collections::BTreeMap<i64, Vec<StepRow>> = Default::default();
        for step in steps {
            by_renewal.entry(step.renewal_id).or_default().push(step);
        }
        let mut renewals = rows
            .into_iter()
            .map(|r| {
                let steps = by_renewal.remove(&r.id).unwrap_or_default();
                r.into_renewal(steps)
            })
            .collect::<Result<Vec<_>, _>>()?;
        renewals.sort_by_key(|r| r.id);
        Ok(renewals)
    }

    pub(crate) async fn renewal(&self, id: i64) -> Result<Option<Renewal>, StoreError> {
        let row: Option<RenewalRow> = sqlx::query_as(select_renewals!(" WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        let Some(row) = row else { return Ok(None) };
        let steps: Vec<StepRow> = sqlx::query_as(
            "SELECT renewal_id, position, key, partner, state, done_by, at, note, due FROM renewal_steps \
             WHERE renewal_id = $1",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?;
        row.into_renewal(steps).map(Some)
    }

    pub(crate) async fn running_renewals(&self) -> Result<Vec<Renewal>, StoreError> {
        let ids: Vec<(i64,)> = sqlx::query_as("SELECT id FROM renewals WHERE state = 'running'").fetch_all(&self.pool).await?;
        let mut renewals = Vec::with_capacity(ids.len());
        for (id,) in ids {
            // A renewal that finished between the two reads is simply not running any more.
            if let Some(renewal) = self.renewal(id).await? {
                renewals.push(renewal);
            }
        }
        renewals.sort_by_key(|r| r.id);
        Ok(renewals)
    }

    pub(crate) async fn running_renewal(&self, alias: &Alias) -> Result<Option<i64>, StoreError> {
        let row: Option<(i64,)> = sqlx::query_as("SELECT id FROM renewals WHERE alias = $1 AND state = 'running'")
            .bind(alias.as_str())
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|(id,)| id))
    }

    pub(crate) async fn kept_flows(&self, id: i64) -> Result<Vec<(String, String)>, StoreError> {
        let mut rows: Vec<(String, String)> =
            sqlx::query_as("SELECT flow, source FROM renewal_flows WHERE renewal_id = $1")
                .bind(id)
                .fetch_all(&self.pool)
                .await?;
        rows.sort();
        Ok(rows)
    }
}
