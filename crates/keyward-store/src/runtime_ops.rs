//! The runtime's statements both backends share: deployed flows, node heartbeats and
//! observed usage.
//!
//! Like `ops.rs`, this file is compiled once per backend (`sqlite::runtime_ops`,
//! `postgres::runtime_ops`) against that backend's `Conn` and `Handle`. Flow changes are
//! audited in the same transaction, so they move the change marker nodes follow;
//! heartbeats and usage are not (they would wake every node every second). Lists are
//! sorted in `rows`, in byte order, so both backends return the same order.

use keyward_domain::{Actor, Timestamp};

use super::ops::append_event;
use super::{Conn, Handle};
use crate::error::StoreError;
use crate::model::{AuditEvent, FlowChange, FlowOnNode, FlowRecord, FlowState, NodeRecord, UsageRecord};
use crate::rows::{self, FlowNodeRow, FlowRow, NodeRow, UsageRow, parse_name};

impl Handle {
    pub(crate) async fn deploy_flow(
        &self,
        name: &str,
        source: &str,
        actor: &Actor,
        at: Timestamp,
    ) -> Result<FlowRecord, StoreError> {
        let mut write = self.begin_write().await?;
        let conn: &mut Conn = &mut write.tx;
        let row: FlowRow = sqlx::query_as(
            "INSERT INTO flows (name, source, state, generation, deployed_at, deployed_by, updated_at, updated_by) \
             VALUES ($1, $2, $3, 1, $4, $5, $4, $5) \
             ON CONFLICT (name) DO UPDATE SET source = excluded.source, state = excluded.state, \
             generation = flows.generation + 1, deployed_at = excluded.deployed_at, \
             deployed_by = excluded.deployed_by, updated_at = excluded.updated_at, updated_by = excluded.updated_by \
             RETURNING name, source, state, generation, deployed_at, deployed_by, updated_at, updated_by",
        )
        .bind(name)
        .bind(source)
        .bind(FlowState::Started.as_str())
        .bind(at.millis())
        .bind(actor.name.as_str())
        .fetch_one(&mut *conn)
        .await?;
        clear_nodes(conn, name).await?;
        let detail = format!("deployed flow {name} (generation {})", row.generation);
        let event = AuditEvent { actor, at, action: "flows.deploy", alias: None, version: None, detail: &detail };
        let seq = append_event(conn, &event).await?;
        write.commit().await?;
        tracing::debug!(flow = name, generation = row.generation, audit_seq = seq, "flow deployed");
        row.into_record()
    }

    pub(crate) async fn set_flow_state(
        &self,
        name: &str,
        change: FlowChange,
        actor: &Actor,
        at: Timestamp,
    ) -> Result<FlowRecord, StoreError> {
        let mut write = self.begin_write().await?;
        let conn: &mut Conn = &mut write.tx;
        let bump: i64 = if change == FlowChange::Restart { 1 } else { 0 };
        let row: Option<FlowRow> = sqlx::query_as(
            "UPDATE flows SET state = $1, generation = generation + $2, updated_at = $3, updated_by = $4 \
             WHERE name = $5 \
             RETURNING name, source, state, generation, deployed_at, deployed_by, updated_at, updated_by",
        )
        .bind(change.state().as_str())
        .bind(bump)
        .bind(at.millis())
        .bind(actor.name.as_str())
        .bind(name)
        .fetch_optional(&mut *conn)
        .await?;
        let Some(row) = row else {
            return Err(StoreError::NotFound(format!("no flow named {name}")));
        };
        clear_nodes(conn, name).await?;
        let detail = format!("{} flow {name} (generation {}) on every node", past_tense(change), row.generation);
        let action = change.audit_action();
        let event = AuditEvent { actor, at, action, alias: None, version: None, detail: &detail };
        let seq = append_event(conn, &event).await?;
        write.commit().await?;
        tracing::debug!(flow = name, action, generation = row.generation, audit_seq = seq, "flow changed");
        row.into_record()
    }

    pub(crate) async fn set_flow_state_on_node(
        &self,
        name: &str,
        node: &str,
        change: FlowChange,
        actor: &Actor,
        at: Timestamp,
    ) -> Result<FlowRecord, StoreError> {
        let mut write = self.begin_write().await?;
        let conn: &mut Conn = &mut write.tx;
        let exists: Option<(i64,)> = sqlx::query_as("SELECT generation FROM flows WHERE name = $1")
            .bind(name)
            .fetch_optional(&mut *conn)
            .await?;
        if exists.is_none() {
            return Err(StoreError::NotFound(format!("no flow named {name}")));
        }
        let bump: i64 = if change == FlowChange::Restart { 1 } else { 0 };
        sqlx::query(
            "INSERT INTO flow_nodes (flow, node, state, restarts, updated_at, updated_by) VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (flow, node) DO UPDATE SET state = excluded.state, restarts = flow_nodes.restarts + excluded.restarts, \
             updated_at = excluded.updated_at, updated_by = excluded.updated_by",
        )
        .bind(name)
        .bind(node)
        .bind(change.state().as_str())
        .bind(bump)
        .bind(at.millis())
        .bind(actor.name.as_str())
        .execute(&mut *conn)
        .await?;
        let detail = format!("{} flow {name} on node {node} only", past_tense(change));
        let event = AuditEvent { actor, at, action: change.audit_action(), alias: None, version: None, detail: &detail };
        append_event(conn, &event).await?;
        write.commit().await?;
        self.flow(name).await?.ok_or_else(|| StoreError::NotFound(format!("no flow named {name}")))
    }

    pub(crate) async fn undeploy_flow(&self, name: &str, actor: &Actor, at: Timestamp) -> Result<(), StoreError> {
        let mut write = self.begin_write().await?;
        let conn: &mut Conn = &mut write.tx;
        let deleted: Option<(i64,)> = sqlx::query_as("DELETE FROM flows WHERE name = $1 RETURNING generation")
            .bind(name)
            .fetch_optional(&mut *conn)
            .await?;
        let Some((generation,)) = deleted else {
            return Err(StoreError::NotFound(format!("no flow named {name}")));
        };
        let detail = format!("undeployed flow {name} (generation {generation})");
        let event = AuditEvent { actor, at, action: "flows.undeploy", alias: None, version: None, detail: &detail };
        let seq = append_event(conn, &event).await?;
        write.commit().await?;
        tracing::debug!(flow = name, audit_seq = seq, "flow undeployed");
        Ok(())
    }

    pub(crate) async fn flows(&self) -> Result<Vec<FlowRecord>, StoreError> {
        let rows: Vec<FlowRow> = sqlx::query_as(
            "SELECT name, source, state, generation, deployed_at, deployed_by, updated_at, updated_by FROM flows",
        )
        .fetch_all(&self.pool)
        .await?;
        let mut flows = rows::flows(rows)?;
        let on_nodes: Vec<FlowNodeRow> = sqlx::query_as("SELECT flow, node, state, restarts FROM flow_nodes")
            .fetch_all(&self.pool)
            .await?;
        for row in on_nodes {
            if let Some(flow) = flows.iter_mut().find(|f| f.name == row.flow) {
                flow.nodes.push(on_node(row)?);
            }
        }
        for flow in &mut flows {
            flow.nodes.sort_by(|a, b| a.node.cmp(&b.node));
        }
        Ok(flows)
    }

    pub(crate) async fn flow(&self, name: &str) -> Result<Option<FlowRecord>, StoreError> {
        let row: Option<FlowRow> = sqlx::query_as(
            "SELECT name, source, state, generation, deployed_at, deployed_by, updated_at, updated_by \
             FROM flows WHERE name = $1",
        )
        .bind(name)
        .fetch_optional(&self.pool)
        .await?;
        let Some(mut flow) = row.map(FlowRow::into_record).transpose()? else { return Ok(None) };
        let on_nodes: Vec<FlowNodeRow> = sqlx::query_as("SELECT flow, node, state, restarts FROM flow_nodes WHERE flow = $1")
            .bind(name)
            .fetch_all(&self.pool)
            .await?;
        flow.nodes = on_nodes.into_iter().map(on_node).collect::<Result<_, _>>()?;
        flow.nodes.sort_by(|a, b| a.node.cmp(&b.node));
        Ok(Some(flow))
    }

    pub(crate) async fn heartbeat(&self, node: &NodeRecord) -> Result<(), StoreError> {
        let mut write = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO nodes (id, address, started_at, heartbeat_at, applied_marker, flows) \
             VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (id) DO UPDATE SET address = excluded.address, started_at = excluded.started_at, \
             heartbeat_at = excluded.heartbeat_at, applied_marker = excluded.applied_marker, flows = excluded.flows",
        )
        .bind(node.id.as_str())
        .bind(node.address.as_str())
        .bind(node.started_at.millis())
        .bind(node.heartbeat_at.millis())
        .bind(node.applied_marker)
        .bind(node.flows.as_str())
        .execute(&mut *write.tx)
        .await?;
        write.commit().await?;
        Ok(())
    }

    pub(crate) async fn nodes(&self) -> Result<Vec<NodeRecord>, StoreError> {
        let rows: Vec<NodeRow> =
            sqlx::query_as("SELECT id, address, started_at, heartbeat_at, applied_marker, flows FROM nodes")
                .fetch_all(&self.pool)
                .await?;
        Ok(rows::nodes(rows))
    }

    pub(crate) async fn remove_node(&self, id: &str) -> Result<(), StoreError> {
        let mut write = self.begin_write().await?;
        sqlx::query("DELETE FROM nodes WHERE id = $1").bind(id).execute(&mut *write.tx).await?;
        write.commit().await?;
        Ok(())
    }

    pub(crate) async fn record_usage(&self, records: &[UsageRecord]) -> Result<(), StoreError> {
        if records.is_empty() {
            return Ok(());
        }
        let mut write = self.begin_write().await?;
        for record in records {
            sqlx::query(
                "INSERT INTO flow_usage (flow, alias, version, partner, count, last_used) \
                 VALUES ($1, $2, $3, $4, $5, $6) \
                 ON CONFLICT (flow, alias, version, partner) DO UPDATE SET \
                 count = flow_usage.count + excluded.count, \
                 last_used = CASE WHEN excluded.last_used > flow_usage.last_used \
                 THEN excluded.last_used ELSE flow_usage.last_used END",
            )
            .bind(record.flow.as_str())
            .bind(record.alias.as_str())
            .bind(i64::from(record.version))
            .bind(record.partner.as_str())
            .bind(record.count)
            .bind(record.last_used.millis())
            .execute(&mut *write.tx)
            .await?;
        }
        write.commit().await?;
        Ok(())
    }

    pub(crate) async fn usage(&self, alias: Option<&str>) -> Result<Vec<UsageRecord>, StoreError> {
        let rows: Vec<UsageRow> = match alias {
            Some(alias) => {
                sqlx::query_as(
                    "SELECT flow, alias, version, partner, count, last_used FROM flow_usage WHERE alias = $1",
                )
                .bind(alias)
                .fetch_all(&self.pool)
                .await?
            }
            None => {
                sqlx::query_as("SELECT flow, alias, version, partner, count, last_used FROM flow_usage")
                    .fetch_all(&self.pool)
                    .await?
            }
        };
        rows::usage(rows)
    }
}

/// How a flow change reads in an audit record's detail.
fn past_tense(change: FlowChange) -> &'static str {
    match change {
        FlowChange::Stop => "stopped",
        FlowChange::Start => "started",
        FlowChange::Restart => "restarted",
    }
}

/// Removes a flow's per-node states: a change for every node overrides them.
async fn clear_nodes(conn: &mut Conn, name: &str) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM flow_nodes WHERE flow = $1").bind(name).execute(&mut *conn).await?;
    Ok(())
}

fn on_node(row: FlowNodeRow) -> Result<FlowOnNode, StoreError> {
    Ok(FlowOnNode { state: parse_name("flow_nodes.state", &row.state)?, node: row.node, restarts: row.restarts })
}
