//! The runtime's statements both backends share: deployed flows, node heartbeats and
//! observed usage.
//!
//! Like `ops.rs`, this file is compiled once per backend (`sqlite::runtime_ops`,
//! `postgres::runtime_ops`) against that backend's `Conn` and `Handle`. Flow changes are
//! audited in the same transaction, so they move the change marker nodes follow;
//! heartbeats and usage are not (they would wake every node every second).

use keyward_domain::{Actor, Timestamp};

use super::Handle;
use super::ops::append_event;
use crate::error::StoreError;
use crate::model::{AuditEvent, FlowChange, FlowRecord, FlowState, NodeRecord, UsageRecord};
use crate::rows::{FlowRow, NodeRow, UsageRow};

const FLOW_COLUMNS: &str = "name, source, state, generation, deployed_at, deployed_by, updated_at, updated_by";

impl Handle {
    pub(crate) async fn deploy_flow(&self, name: &str, source: &str, actor: &Actor, at: Timestamp) -> Result<FlowRecord, StoreError> {
        let mut write = self.begin_write().await?;
        let generation: Option<i64> = sqlx::query_scalar("SELECT generation FROM flows WHERE name = $1")
            .bind(name)
            .fetch_optional(&mut *write.tx)
            .await?;
        let generation = generation.unwrap_or(0) + 1;
        sqlx::query(
            "INSERT INTO flows (name, source, state, generation, deployed_at, deployed_by, updated_at, updated_by) \
             VALUES ($1, $2, 'started', $3, $4, $5, $4, $5) \
             ON CONFLICT (name) DO UPDATE SET source = excluded.source, state = 'started', generation = excluded.generation, \
             deployed_at = excluded.deployed_at, deployed_by = excluded.deployed_by, \
             updated_at = excluded.updated_at, updated_by = excluded.updated_by",
        )
        .bind(name)
        .bind(source)
        .bind(generation)
        .bind(at.millis())
        .bind(actor.name.as_str())
        .execute(&mut *write.tx)
        .await?;
        let detail = format!("deployed flow {name}, generation {generation}");
        append_event(&mut write.tx, &AuditEvent { actor, at, action: "flows.deploy", alias: None, version: None, detail: &detail }).await?;
        let record = flow_in(&mut write.tx, name).await?;
        write.commit().await?;
        record.ok_or_else(|| StoreError::corrupt("a flow just deployed is missing"))
    }

    pub(crate) async fn set_flow_state(&self, name: &str, change: FlowChange, actor: &Actor, at: Timestamp) -> Result<FlowRecord, StoreError> {
        let (state, bump, action) = match change {
            FlowChange::Stop => (FlowState::Stopped, 0, "flows.stop"),
            FlowChange::Start => (FlowState::Started, 0, "flows.start"),
            FlowChange::Restart => (FlowState::Started, 1, "flows.restart"),
        };
        let mut write = self.begin_write().await?;
        let updated = sqlx::query(
            "UPDATE flows SET state = $1, generation = generation + $2, updated_at = $3, updated_by = $4 WHERE name = $5",
        )
        .bind(state.as_str())
        .bind(bump)
        .bind(at.millis())
        .bind(actor.name.as_str())
        .bind(name)
        .execute(&mut *write.tx)
        .await?;
        if updated.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("no flow named {name:?} is deployed")));
        }
        let detail = format!("{} flow {name}", action.trim_start_matches("flows."));
        append_event(&mut write.tx, &AuditEvent { actor, at, action, alias: None, version: None, detail: &detail }).await?;
        let record = flow_in(&mut write.tx, name).await?;
        write.commit().await?;
        record.ok_or_else(|| StoreError::corrupt("a flow just changed is missing"))
    }

    pub(crate) async fn undeploy_flow(&self, name: &str, actor: &Actor, at: Timestamp) -> Result<(), StoreError> {
        let mut write = self.begin_write().await?;
        let deleted = sqlx::query("DELETE FROM flows WHERE name = $1").bind(name).execute(&mut *write.tx).await?;
        if deleted.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("no flow named {name:?} is deployed")));
        }
        let detail = format!("undeployed flow {name}");
        append_event(&mut write.tx, &AuditEvent { actor, at, action: "flows.undeploy", alias: None, version: None, detail: &detail }).await?;
        write.commit().await?;
        Ok(())
    }

    pub(crate) async fn flows(&self) -> Result<Vec<FlowRecord>, StoreError> {
        let sql = format!("SELECT {FLOW_COLUMNS} FROM flows ORDER BY name");
        let rows: Vec<FlowRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql)).fetch_all(&self.pool).await?;
        rows.into_iter().map(FlowRow::into_record).collect()
    }

    pub(crate) async fn flow(&self, name: &str) -> Result<Option<FlowRecord>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        flow_in(&mut conn, name).await
    }

    pub(crate) async fn heartbeat(&self, node: &NodeRecord) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO nodes (id, address, started_at, heartbeat_at, applied_marker, flows) VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (id) DO UPDATE SET address = excluded.address, started_at = excluded.started_at, \
             heartbeat_at = excluded.heartbeat_at, applied_marker = excluded.applied_marker, flows = excluded.flows",
        )
        .bind(node.id.as_str())
        .bind(node.address.as_str())
        .bind(node.started_at.millis())
        .bind(node.heartbeat_at.millis())
        .bind(node.applied_marker)
        .bind(node.flows.as_str())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub(crate) async fn nodes(&self) -> Result<Vec<NodeRecord>, StoreError> {
        let rows: Vec<NodeRow> =
            sqlx::query_as("SELECT id, address, started_at, heartbeat_at, applied_marker, flows FROM nodes ORDER BY id")
                .fetch_all(&self.pool)
                .await?;
        Ok(rows.into_iter().map(NodeRow::into_record).collect())
    }

    pub(crate) async fn remove_node(&self, id: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM nodes WHERE id = $1").bind(id).execute(&self.pool).await?;
        Ok(())
    }

    pub(crate) async fn record_usage(&self, records: &[UsageRecord]) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        for record in records {
            sqlx::query(
                "INSERT INTO flow_usage (flow, alias, version, partner, count, last_used) VALUES ($1, $2, $3, $4, $5, $6) \
                 ON CONFLICT (flow, alias, version, partner) DO UPDATE SET count = flow_usage.count + excluded.count, \
                 last_used = CASE WHEN excluded.last_used > flow_usage.last_used THEN excluded.last_used ELSE flow_usage.last_used END",
            )
            .bind(record.flow.as_str())
            .bind(record.alias.as_str())
            .bind(i64::from(record.version))
            .bind(record.partner.as_str())
            .bind(record.count)
            .bind(record.last_used.millis())
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    pub(crate) async fn usage(&self, alias: Option<&str>) -> Result<Vec<UsageRecord>, StoreError> {
        let rows: Vec<UsageRow> = sqlx::query_as(
            "SELECT flow, alias, version, partner, count, last_used FROM flow_usage \
             WHERE $1 IS NULL OR alias = $1 ORDER BY flow, alias, version, partner",
        )
        .bind(alias)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(UsageRow::into_record).collect()
    }
}

async fn flow_in(conn: &mut super::Conn, name: &str) -> Result<Option<FlowRecord>, StoreError> {
    let sql = format!("SELECT {FLOW_COLUMNS} FROM flows WHERE name = $1");
    let row: Option<FlowRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(name).fetch_optional(&mut *conn).await?;
    row.map(FlowRow::into_record).transpose()
}
