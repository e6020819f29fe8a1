//! Rows as read from the database, and their conversion into domain values.
//!
//! Row types hold exactly what the columns hold (`i64` milliseconds, names as text); the
//! conversions parse names back with `FromStr` and report anything unreadable as
//! [`StoreError::Corrupt`]. Lists are sorted here rather than in SQL, so that both
//! backends order names the same way (byte order) whatever the database's collation. The
//! `FromRow` derives are generic over the row type, so both backends share these
//! definitions.

use std::collections::BTreeMap;
use std::str::FromStr;

use keyward_domain::{Alias, Entry, Revision, Timestamp, Version, VersionId};

use crate::error::StoreError;
use crate::model::{AuditRecord, FlowRecord, NodeRecord, TokenRecord, UsageRecord};

/// A row of `entries`.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct EntryRow {
    pub(crate) alias: String,
    pub(crate) kind: String,
    pub(crate) owner: String,
    pub(crate) revision: i64,
    pub(crate) created_at: i64,
    pub(crate) created_by: String,
    pub(crate) modified_at: i64,
    pub(crate) modified_by: String,
}

/// A row of `versions`, without the sealed key.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct VersionRow {
    pub(crate) alias: String,
    pub(crate) version: i64,
    pub(crate) state: String,
    pub(crate) created_at: i64,
    pub(crate) created_by: String,
    pub(crate) activated_at: Option<i64>,
    pub(crate) active_until: Option<i64>,
    pub(crate) not_after: i64,
}

/// A row of `tokens`, without the hash.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct TokenRow {
    pub(crate) name: String,
    pub(crate) role: String,
    pub(crate) created_at: i64,
}

/// A row of `audit_log`, exactly as stored (verification hashes these raw values).
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct AuditRow {
    pub(crate) seq: i64,
    pub(crate) at: i64,
    pub(crate) actor: String,
    pub(crate) role: String,
    pub(crate) action: String,
    pub(crate) alias: Option<String>,
    pub(crate) version: Option<i64>,
    pub(crate) detail: String,
    pub(crate) prev_hash: Vec<u8>,
    pub(crate) hash: Vec<u8>,
}

/// A row of `flows`.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct FlowRow {
    pub(crate) name: String,
    pub(crate) source: String,
    pub(crate) state: String,
    pub(crate) generation: i64,
    pub(crate) deployed_at: i64,
    pub(crate) deployed_by: String,
    pub(crate) updated_at: i64,
    pub(crate) updated_by: String,
}

/// A row of `flow_nodes`.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct FlowNodeRow {
    pub(crate) flow: String,
    pub(crate) node: String,
    pub(crate) state: String,
    pub(crate) restarts: i64,
}

/// A row of `nodes`.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct NodeRow {
    pub(crate) id: String,
    pub(crate) address: String,
    pub(crate) started_at: i64,
    pub(crate) heartbeat_at: i64,
    pub(crate) applied_marker: i64,
    pub(crate) flows: String,
}

/// A row of `flow_usage`.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct UsageRow {
    pub(crate) flow: String,
    pub(crate) alias: String,
    pub(crate) version: i64,
    pub(crate) partner: String,
    pub(crate) count: i64,
    pub(crate) last_used: i64,
}

/// The single row of `audit_head`.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct AuditHead {
    pub(crate) last_seq: i64,
    pub(crate) last_hash: Vec<u8>,
}

/// Parses a stored name with its `FromStr`.
pub(crate) fn parse_name<T: FromStr<Err = String>>(column: &str, value: &str) -> Result<T, StoreError> {
    value.parse().map_err(|e: String| StoreError::corrupt(format!("column {column}: {e}")))
}

/// Converts a stored version number.
pub(crate) fn version_id(value: i64) -> Result<VersionId, StoreError> {
    u32::try_from(value)
        .map(VersionId)
        .map_err(|_| StoreError::corrupt(format!("version number {value} is out of range")))
}

fn alias(value: &str) -> Result<Alias, StoreError> {
    Alias::parse(value).map_err(|e| StoreError::corrupt(format!("stored alias: {e}")))
}

impl VersionRow {
    fn into_version(self) -> Result<Version, StoreError> {
        Ok(Version {
            id: version_id(self.version)?,
            state: parse_name("versions.state", &self.state)?,
            created_at: Timestamp::from_millis(self.created_at),
            created_by: self.created_by,
            activated_at: self.activated_at.map(Timestamp::from_millis),
            active_until: self.active_until.map(Timestamp::from_millis),
            not_after: Timestamp::from_millis(self.not_after),
        })
    }
}

impl EntryRow {
    fn into_entry(self, versions: Vec<Version>) -> Result<Entry, StoreError> {
        Ok(Entry {
            alias: alias(&self.alias)?,
            kind: parse_name("entries.kind", &self.kind)?,
            owner: parse_name("entries.owner", &self.owner)?,
            revision: Revision(self.revision),
            created_at: Timestamp::from_millis(self.created_at),
            created_by: self.created_by,
            modified_at: Timestamp::from_millis(self.modified_at),
            modified_by: self.modified_by,
            versions,
        })
    }
}

/// Builds entries from their rows and all their versions' rows: entries sorted by alias,
/// versions ascending. Sorting happens here rather than in SQL so that both backends order
/// aliases the same way (byte order), whatever the database's collation.
pub(crate) fn assemble(entries: Vec<EntryRow>, versions: Vec<VersionRow>) -> Result<Vec<Entry>, StoreError> {
    let mut by_alias: BTreeMap<String, Vec<Version>> = BTreeMap::new();
    for row in versions {
        let key = row.alias.clone();
        by_alias.entry(key).or_default().push(row.into_version()?);
    }
    let mut out = Vec::with_capacity(entries.len());
    for row in entries {
        let mut versions = by_alias.remove(&row.alias).unwrap_or_default();
        versions.sort_by_key(|v| v.id);
        out.push(row.into_entry(versions)?);
    }
    out.sort_by(|a, b| a.alias.cmp(&b.alias));
    Ok(out)
}

impl TokenRow {
    pub(crate) fn into_record(self) -> Result<TokenRecord, StoreError> {
        Ok(TokenRecord {
            role: parse_name("tokens.role", &self.role)?,
            name: self.name,
            created_at: Timestamp::from_millis(self.created_at),
        })
    }
}

impl AuditRow {
    pub(crate) fn into_record(self) -> Result<AuditRecord, StoreError> {
        Ok(AuditRecord {
            seq: self.seq,
            at: Timestamp::from_millis(self.at),
            role: parse_name("audit_log.role", &self.role)?,
            actor: self.actor,
            action: self.action,
            alias: self.alias,
            version: self.version.map(version_id).transpose()?.map(|v| v.0),
            detail: self.detail,
            hash: hex::encode(&self.hash),
        })
    }
}

impl FlowRow {
    pub(crate) fn into_record(self) -> Result<FlowRecord, StoreError> {
        Ok(FlowRecord {
            state: parse_name("flows.state", &self.state)?,
            name: self.name,
            source: self.source,
            generation: self.generation,
            deployed_at: Timestamp::from_millis(self.deployed_at),
            deployed_by: self.deployed_by,
            updated_at: Timestamp::from_millis(self.updated_at),
            updated_by: self.updated_by,
            nodes: Vec::new(),
        })
    }
}

impl NodeRow {
    pub(crate) fn into_record(self) -> NodeRecord {
        NodeRecord {
            id: self.id,
            address: self.address,
            started_at: Timestamp::from_millis(self.started_at),
            heartbeat_at: Timestamp::from_millis(self.heartbeat_at),
            applied_marker: self.applied_marker,
            flows: self.flows,
        }
    }
}

impl UsageRow {
    pub(crate) fn into_record(self) -> Result<UsageRecord, StoreError> {
        Ok(UsageRecord {
            version: version_id(self.version)?.0,
            flow: self.flow,
            alias: self.alias,
            partner: self.partner,
            count: self.count,
            last_used: Timestamp::from_millis(self.last_used),
        })
    }
}

/// Sorts flows by name, in byte order on both backends (see [`assemble`]).
pub(crate) fn flows(rows: Vec<FlowRow>) -> Result<Vec<FlowRecord>, StoreError> {
    let mut out = rows.into_iter().map(FlowRow::into_record).collect::<Result<Vec<_>, _>>()?;
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// Sorts nodes by id, in byte order on both backends.
pub(crate) fn nodes(rows: Vec<NodeRow>) -> Vec<NodeRecord> {
    let mut out: Vec<NodeRecord> = rows.into_iter().map(NodeRow::into_record).collect();
    out.sort_by(|a, b| a.id.cmp(&b.id));
    out
}

/// Sorts uses by flow, alias, version and partner, in byte order on both backends.
pub(crate) fn usage(rows: Vec<UsageRow>) -> Result<Vec<UsageRecord>, StoreError> {
    let mut out = rows.into_iter().map(UsageRow::into_record).collect::<Result<Vec<_>, _>>()?;
    out.sort_by(|a, b| {
        (a.flow.as_str(), a.alias.as_str(), a.version, a.partner.as_str())
            .cmp(&(b.flow.as_str(), b.alias.as_str(), b.version, b.partner.as_str()))
    });
    Ok(out)
}
