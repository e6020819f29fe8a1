//! One storage suite, run against both backends.
//!
//! Every case is an async function taking a [`Harness`]; the `suite!` macro turns each into
//! `sqlite::<case>` (a fresh temporary file) and `postgres::<case>` (a fresh schema in the
//! database named by `KEYWARD_TEST_POSTGRES_URL`; skipped when it is not set).

#![allow(clippy::unwrap_used, missing_docs)]

use std::path::PathBuf;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use keyward_domain::{
    Actor, Alias, Entry, EntryKind, Owner, Partner, Revision, Role, Timestamp, Transition, VersionId,
    VersionState,
};
use keyward_store::{
    ChangeFeed, EntryChange, EntryOp, FlowChange, FlowRecord, FlowState, NewToken, NewVersion, NodeRecord, Store,
    StoreError, UsageRecord,
};
use sqlx::Connection;

const POSTGRES_ENV: &str = "KEYWARD_TEST_POSTGRES_URL";
const T0: Timestamp = Timestamp::from_seconds(1_800_000_000);

/// A store plus a way to reach its database behind keyward's back.
struct Harness {
    store: Store,
    raw: Raw,
    _dir: Option<tempfile::TempDir>,
}

enum Raw {
    Sqlite(PathBuf),
    Postgres { url: String, schema: String },
}

impl Harness {
    async fn sqlite() -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keyward.db");
        let store = Store::open_sqlite(&path).await.unwrap();
        assert_eq!(store.backend(), "sqlite");
        Harness { store, raw: Raw::Sqlite(path), _dir: Some(dir) }
    }

    async fn postgres(case: &str) -> Option<Harness> {
        let Ok(url) = std::env::var(POSTGRES_ENV) else {
            println!("skipped: {POSTGRES_ENV} is not set");
            return None;
        };
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().subsec_nanos();
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let mut schema = format!("kwtest_{}_{nanos}_{n}_{case}", std::process::id());
        schema.truncate(63);
        let store = Store::connect_postgres_schema(&url, &schema).await.unwrap();
        assert_eq!(store.backend(), "postgres");
        Some(Harness { store, raw: Raw::Postgres { url, schema }, _dir: None })
    }

    /// Runs `sql` on a separate connection, as someone tampering with the database would.
    async fn raw_execute(&self, sql: &'static str) -> u64 {
        match &self.raw {
            Raw::Sqlite(path) => {
                let options = sqlx::sqlite::SqliteConnectOptions::new().filename(path).busy_timeout(std::time::Duration::from_secs(5));
                let mut conn = sqlx::SqliteConnection::connect_with(&options).await.unwrap();
                let done = sqlx::query(sql).execute(&mut conn).await.unwrap();
                conn.close().await.unwrap();
                done.rows_affected()
            }
            Raw::Postgres { url, schema } => {
                let options = sqlx::postgres::PgConnectOptions::from_str(url)
                    .unwrap()
                    .options([("search_path", schema.as_str())]);
                let mut conn = sqlx::PgConnection::connect_with(&options).await.unwrap();
                let done = sqlx::query(sql).execute(&mut conn).await.unwrap();
                conn.close().await.unwrap();
                done.rows_affected()
            }
        }
    }

    /// Runs `sql`, which returns one `BIGINT`, on a separate connection to the PostgreSQL
    /// database.
    async fn raw_pg_i64(&self, sql: &str) -> i64 {
        let Raw::Postgres { url, .. } = &self.raw else { panic!("not a PostgreSQL harness") };
        let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
        let value: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned())).fetch_one(&mut conn).await.unwrap();
        conn.close().await.unwrap();
        value
    }

    /// A second, independent store on the same database, as another process would open.
    async fn reopen(&self) -> Store {
        match &self.raw {
            Raw::Sqlite(path) => Store::open_sqlite(path).await.unwrap(),
            Raw::Postgres { url, schema } => Store::connect_postgres_schema(url, schema).await.unwrap(),
        }
    }

    async fn finish(self) {
        self.store.close().await;
        if let Raw::Postgres { url, schema } = &self.raw {
            let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
            let drop = format!("DROP SCHEMA \"{schema}\" CASCADE");
            sqlx::query(sqlx::AssertSqlSafe(drop)).execute(&mut conn).await.unwrap();
            conn.close().await.unwrap();
        }
    }
}

macro_rules! suite {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let harness = super::Harness::sqlite().await;
                    super::$case(&harness).await;
                    harness.finish().await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let Some(harness) = super::Harness::postgres(stringify!($case)).await else {
                        return;
                    };
                    super::$case(&harness).await;
                    harness.finish().await;
                }
            )*
        }
    };
}

suite!(
    create_and_read_back,
    creating_an_existing_alias_conflicts,
    versions_and_transitions_keep_one_active,
    stale_revision_conflicts_and_changes_nothing,
    concurrent_activations_have_one_winner,
    concurrent_changes_on_different_aliases_all_succeed,
    two_stores_share_one_database,
    delete_removes_material,
    changes_to_unknown_entries_are_not_found,
    tokens_create_lookup_and_duplicates,
    audit_verifies_after_many_changes,
    audit_detects_an_edited_record,
    audit_detects_a_missing_record,
    audit_detects_removed_newest_records,
    restore_keeps_active_until,
    transition_from_a_changed_state_conflicts,
    unreadable_values_are_corrupt,
    flows_deploy_and_redeploy,
    flow_state_changes,
    unknown_flows_are_not_found,
    undeploy_removes_a_flow,
    flow_changes_move_the_marker_and_are_audited,
    concurrent_deploys_each_move_the_generation,
    heartbeats_upsert_nodes,
    heartbeats_and_usage_do_not_move_the_change_marker,
    usage_accumulates_and_filters_by_alias,
    change_feed_wakes_promptly_and_times_out,
    the_change_feed_wakes_on_changes_from_another_store,
    the_change_feed_recovers_from_a_lost_connection,
    closing_a_store_ends_its_feeds,
    partners_add_update_and_conflict,
    renewals_round_trip_and_refuse_lost_updates,
);

// ---------------------------------------------------------------------------------------
// Helpers

fn alias(name: &str) -> Alias {
    Alias::parse(name).unwrap()
}

fn admin() -> Actor {
    Actor::new("alice", Role::Admin)
}

fn at(seconds: i64) -> Timestamp {
    Timestamp::from_millis(T0.millis() + seconds * 1000)
}

fn new_version(id: u32, state: VersionState) -> NewVersion {
    NewVersion {
        id: VersionId(id),
        state,
        not_after: T0.plus_days(365 + i64::from(id)),
        chain_der: vec![format!("leaf-{id}").into_bytes(), b"intermediate".to_vec()],
        sealed_private_key: Some(format!("sealed-{id}").into_bytes()),
    }
}

fn change(name: &str, expected: Option<Revision>, when: Timestamp, op: EntryOp, action: &str) -> EntryChange {
    EntryChange {
        alias: alias(name),
        expected_revision: expected,
        actor: admin(),
        at: when,
        op,
        audit_action: action.to_owned(),
        audit_detail: format!("{action} on {name}"),
    }
}

async fn create(store: &Store, name: &str, first: NewVersion) -> Revision {
    let op = EntryOp::Create { kind: EntryKind::KeyPair, owner: Owner::Tenant, first };
    store.apply(change(name, None, T0, op, "keys.create")).await.unwrap()
}

async fn add(store: &Store, name: &str, version: NewVersion, when: Timestamp) -> Result<Revision, StoreError> {
    let entry = store.entry(&alias(name)).await.unwrap().unwrap();
    let transitions = if version.state == VersionState::Active {
        entry
            .active()
            .map(|v| Transition { version: v.id, from: VersionState::Active, to: VersionState::Retired, at: when })
            .into_iter()
            .collect()
    } else {
        Vec::new()
    };
    let op = EntryOp::AddVersion { version, transitions };
    store.apply(change(name, Some(entry.revision), when, op, "keys.add")).await
}

async fn activate(store: &Store, name: &str, version: u32, when: Timestamp) -> Result<Revision, StoreError> {
    let entry = store.entry(&alias(name)).await.unwrap().unwrap();
    let transitions = entry.plan_activate(&admin(), Some(VersionId(version)), when).unwrap();
    store.apply(change(name, Some(entry.revision), when, EntryOp::Transition { transitions }, "keys.activate")).await
}

async fn get(store: &Store, name: &str) -> Entry {
    store.entry(&alias(name)).await.unwrap().unwrap()
}

fn states(entry: &Entry) -> Vec<VersionState> {
    entry.versions.iter().map(|v| v.state).collect()
}

async fn audit_count(store: &Store) -> u64 {
    let verification = store.audit_verify().await.unwrap();
    assert!(verification.is_ok(), "{:?}", verification.problem);
    verification.records
}

// ---------------------------------------------------------------------------------------
// Cases

async fn create_and_read_back(h: &Harness) {
    let store = &h.store;
    assert!(store.list_entries().await.unwrap().is_empty());
    assert_eq!(create(store, "Partner-B", new_version(1, VersionState::Active)).await, Revision(1));
    create(store, "partner-a", new_version(1, VersionState::Staged)).await;

    let entry = get(store, "partner-b").await;
    assert_eq!(entry.alias.as_str(), "partner-b");
    assert_eq!((entry.kind, entry.owner, entry.revision), (EntryKind::KeyPair, Owner::Tenant, Revision(1)));
    assert_eq!((entry.created_at, entry.created_by.as_str()), (T0, "alice"));
    assert_eq!((entry.modified_at, entry.modified_by.as_str()), (T0, "alice"));
    assert_eq!(entry.versions.len(), 1);
    let v = &entry.versions[0];
    assert_eq!((v.id, v.state, v.created_at), (VersionId(1), VersionState::Active, T0));
    assert_eq!((v.activated_at, v.active_until), (Some(T0), None));
    assert_eq!(v.not_after, T0.plus_days(366));
    assert_eq!(get(store, "partner-a").await.versions[0].activated_at, None);

    let material = store.material(&alias("partner-b"), VersionId(1)).await.unwrap().unwrap();
    assert_eq!(material.chain_der, vec![b"leaf-1".to_vec(), b"intermediate".to_vec()]);
    assert_eq!(material.sealed_private_key.as_deref(), Some(b"sealed-1".as_slice()));
    assert!(store.material(&alias("partner-b"), VersionId(2)).await.unwrap().is_none());
    assert!(store.material(&alias("nobody"), VersionId(1)).await.unwrap().is_none());
    assert!(store.entry(&alias("nobody")).await.unwrap().is_none());

    // A certificate entry without a private key.
    let cert = NewVersion { sealed_private_key: None, chain_der: vec![b"ca".to_vec()], ..new_version(1, VersionState::Active) };
    let op = EntryOp::Create { kind: EntryKind::Certificate, owner: Owner::Platform, first: cert };
    store.apply(change("a-ca", None, T0, op, "certificates.import")).await.unwrap();
    let material = store.material(&alias("a-ca"), VersionId(1)).await.unwrap().unwrap();
    assert_eq!((material.chain_der.len(), material.sealed_private_key), (1, None));

    let list = store.list_entries().await.unwrap();
    let aliases: Vec<&str> = list.iter().map(|e| e.alias.as_str()).collect();
    assert_eq!(aliases, ["a-ca", "partner-a", "partner-b"]);
    assert_eq!(list[0].kind, EntryKind::Certificate);
    assert_eq!(list[0].owner, Owner::Platform);

    let records = store.audit_list(10, None).await.unwrap();
    assert_eq!(records.len(), 3);
    assert_eq!(records[0].action, "certificates.import");
    assert_eq!(records[2].alias.as_deref(), Some("partner-b"));
    assert_eq!(records[2].version, Some(1));
    assert_eq!((records[2].actor.as_str(), records[2].role), ("alice", Role::Admin));
    assert_eq!(records[2].at, T0);
    assert_eq!(records[2].hash.len(), 64);
}

async fn creating_an_existing_alias_conflicts(h: &Harness) {
    let store = &h.store;
    create(store, "partner-a", new_version(1, VersionState::Active)).await;
    let op = EntryOp::Create { kind: EntryKind::KeyPair, owner: Owner::Tenant, first: new_version(1, VersionState::Active) };
    let err = store.apply(change("partner-a", None, at(5), op, "keys.create")).await.unwrap_err();
    assert!(err.is_conflict(), "{err}");
    assert_eq!(err.to_string(), "an entry with alias partner-a already exists");
    assert_eq!(get(store, "partner-a").await.revision, Revision(1));
    assert_eq!(audit_count(store).await, 1);
}

async fn versions_and_transitions_keep_one_active(h: &Harness) {
    use VersionState::*;
    let store = &h.store;
    create(store, "k", new_version(1, Active)).await;
    assert_eq!(add(store, "k", new_version(2, Staged), at(10)).await.unwrap(), Revision(2));
    assert_eq!(states(&get(store, "k").await), [Active, Staged]);
    assert_eq!(add(store, "k", new_version(3, Active), at(20)).await.unwrap(), Revision(3));
    let entry = get(store, "k").await;
    assert_eq!(states(&entry), [Retired, Staged, Active]);
    assert_eq!(entry.versions[0].active_until, Some(at(20)));
    assert_eq!(entry.versions[2].activated_at, Some(at(20)));
    assert_eq!((entry.modified_at, entry.revision), (at(20), Revision(3)));

    assert_eq!(activate(store, "k", 2, at(30)).await.unwrap(), Revision(4));
    let entry = get(store, "k").await;
    assert_eq!(states(&entry), [Retired, Active, Retired]);
    assert_eq!(entry.versions[1].activated_at, Some(at(30)));
    assert_eq!(entry.versions[2].active_until, Some(at(30)));
    let records = store.audit_list(1, None).await.unwrap();
    assert_eq!((records[0].action.as_str(), records[0].version), ("keys.activate", Some(2)));

    // An active version added without retiring the current one: refused by the index.
    let op = EntryOp::AddVersion { version: new_version(4, Active), transitions: Vec::new() };
    let err = store.apply(change("k", Some(Revision(4)), at(40), op, "keys.add")).await.unwrap_err();
    assert!(err.is_conflict(), "{err}");
    // Two activations in one change: refused as well.
    let transitions = vec![
        Transition { version: VersionId(1), from: Retired, to: Active, at: at(40) },
        Transition { version: VersionId(3), from: Retired, to: Active, at: at(40) },
    ];
    let err = store
        .apply(change("k", Some(Revision(4)), at(40), EntryOp::Transition { transitions }, "keys.activate"))
        .await
        .unwrap_err();
    assert!(err.is_conflict(), "{err}");
    let entry = get(store, "k").await;
    assert_eq!(states(&entry), [Retired, Active, Retired]);
    assert_eq!(entry.revision, Revision(4));
    assert!(store.material(&alias("k"), VersionId(4)).await.unwrap().is_none());
    assert_eq!(audit_count(store).await, 4);
}

async fn stale_revision_conflicts_and_changes_nothing(h: &Harness) {
    use VersionState::*;
    let store = &h.store;
    create(store, "k", new_version(1, Active)).await;
    add(store, "k", new_version(2, Staged), at(10)).await.unwrap();
    let before = get(store, "k").await;
    let records = audit_count(store).await;

    let transitions = before.plan_activate(&admin(), Some(VersionId(2)), at(20)).unwrap();
    let stale = change("k", Some(Revision(1)), at(20), EntryOp::Transition { transitions }, "keys.activate");
    let err = store.apply(stale).await.unwrap_err();
    assert!(err.is_conflict(), "{err}");
    assert_eq!(err.to_string(), "entry k was changed by someone else (revision now 2); reload and retry");

    let stale_add = EntryOp::AddVersion { version: new_version(3, Staged), transitions: Vec::new() };
    let err = store.apply(change("k", Some(Revision(1)), at(20), stale_add, "keys.add")).await.unwrap_err();
    assert!(err.is_conflict(), "{err}");
    let err = store.apply(change("k", Some(Revision(1)), at(20), EntryOp::Delete, "keys.delete")).await.unwrap_err();
    assert!(err.is_conflict(), "{err}");

    assert_eq!(get(store, "k").await, before);
    assert!(store.material(&alias("k"), VersionId(3)).await.unwrap().is_none());
    assert_eq!(audit_count(store).await, records);

    // A change without a revision is refused, too.
    let err = store
        .apply(change("k", None, at(20), EntryOp::Transition { transitions: Vec::new() }, "keys.activate"))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Invalid(_)), "{err}");
    assert_eq!(audit_count(store).await, records);
}

async fn concurrent_activations_have_one_winner(h: &Harness) {
    use VersionState::*;
    const CONTENDERS: u32 = 16;
    let store = &h.store;
    create(store, "k", new_version(1, Active)).await;
    for id in 2..=CONTENDERS + 1 {
        add(store, "k", new_version(id, Staged), at(i64::from(id))).await.unwrap();
    }
    let planned = get(store, "k").await;
    let records = audit_count(store).await;

    let mut tasks = Vec::new();
    for id in 2..=CONTENDERS + 1 {
        let store = store.clone();
        let when = at(100);
        let transitions = planned.plan_activate(&admin(), Some(VersionId(id)), when).unwrap();
        let change = change("k", Some(planned.revision), when, EntryOp::Transition { transitions }, "keys.activate");
        tasks.push(tokio::spawn(async move { store.apply(change).await }));
    }
    let mut wins = 0;
    let mut conflicts = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(revision) => {
                assert_eq!(revision, Revision(planned.revision.0 + 1));
                wins += 1;
            }
            Err(err) if err.is_conflict() => conflicts += 1,
            Err(err) => panic!("unexpected error: {err}"),
        }
    }
    assert_eq!((wins, conflicts), (1, CONTENDERS - 1));
    let entry = get(store, "k").await;
    assert_eq!(entry.versions.iter().filter(|v| v.state == Active).count(), 1);
    assert_eq!(entry.versions[0].state, Retired);
    assert_eq!(entry.revision, Revision(planned.revision.0 + 1));
    assert_eq!(audit_count(store).await, records + 1);
}

async fn concurrent_changes_on_different_aliases_all_succeed(h: &Harness) {
    const ALIASES: usize = 12;
    let store = &h.store;
    let mut tasks = Vec::new();
    for i in 0..ALIASES {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let name = format!("partner-{i}");
            let created = create(&store, &name, new_version(1, VersionState::Active)).await;
            add(&store, &name, new_version(2, VersionState::Active), at(10)).await.unwrap();
            add(&store, &name, new_version(3, VersionState::Staged), at(20)).await.unwrap();
            (name, created)
        }));
    }
    let mut created = std::collections::HashMap::new();
    for task in tasks {
        let (name, revision) = task.await.unwrap();
        created.insert(name, revision);
    }
    let entries = store.list_entries().await.unwrap();
    assert_eq!(entries.len(), ALIASES);
    for entry in &entries {
        assert_eq!(entry.revision, Revision(created[entry.alias.as_str()].0 + 2));
        assert_eq!(states(entry), [VersionState::Retired, VersionState::Active, VersionState::Staged]);
    }
    let verification = store.audit_verify().await.unwrap();
    assert_eq!(verification.problem, None);
    assert_eq!(verification.records, 3 * ALIASES as u64);
    let seqs: Vec<i64> = store.audit_list(100, None).await.unwrap().iter().map(|r| r.seq).collect();
    assert_eq!(seqs, (1..=3 * ALIASES as i64).rev().collect::<Vec<_>>());
}

async fn two_stores_share_one_database(h: &Harness) {
    use VersionState::*;
    const CONTENDERS: u32 = 10;
    let stores = [h.store.clone(), h.reopen().await];
    create(&stores[0], "k", new_version(1, Active)).await;
    for id in 2..=CONTENDERS + 1 {
        add(&stores[1], "k", new_version(id, Staged), at(i64::from(id))).await.unwrap();
    }
    let planned = get(&stores[0], "k").await;
    assert_eq!(planned, get(&stores[1], "k").await);

    // Activations of the same entry from both stores, plus new entries from both.
    let mut activations = Vec::new();
    let mut creations = Vec::new();
    for id in 2..=CONTENDERS + 1 {
        let store = stores[id as usize % 2].clone();
        let transitions = planned.plan_activate(&admin(), Some(VersionId(id)), at(100)).unwrap();
        let change = change("k", Some(planned.revision), at(100), EntryOp::Transition { transitions }, "keys.activate");
        activations.push(tokio::spawn(async move { store.apply(change).await }));
        let store = stores[(id as usize + 1) % 2].clone();
        creations.push(tokio::spawn(async move {
            create(&store, &format!("other-{id}"), new_version(1, Active)).await;
        }));
    }
    let mut wins = 0;
    for task in activations {
        match task.await.unwrap() {
            Ok(_) => wins += 1,
            Err(err) => assert!(err.is_conflict(), "{err}"),
        }
    }
    for task in creations {
        task.await.unwrap();
    }
    assert_eq!(wins, 1);
    let entry = get(&stores[1], "k").await;
    assert_eq!(entry.versions.iter().filter(|v| v.state == Active).count(), 1);
    let verification = stores[1].audit_verify().await.unwrap();
    assert_eq!(verification.problem, None);
    assert_eq!(verification.records, 1 + u64::from(CONTENDERS) + 1 + u64::from(CONTENDERS));
    stores[1].close().await;
}

async fn delete_removes_material(h: &Harness) {
    let store = &h.store;
    create(store, "gone", new_version(1, VersionState::Active)).await;
    add(store, "gone", new_version(2, VersionState::Active), at(10)).await.unwrap();
    create(store, "kept", new_version(1, VersionState::Active)).await;
    let revision = get(store, "gone").await.revision;

    let deleted = store.apply(change("gone", Some(revision), at(20), EntryOp::Delete, "keys.delete")).await.unwrap();
    assert_eq!(deleted, Revision(0));
    assert!(store.entry(&alias("gone")).await.unwrap().is_none());
    for id in [1, 2] {
        assert!(store.material(&alias("gone"), VersionId(id)).await.unwrap().is_none());
    }
    assert!(store.material(&alias("kept"), VersionId(1)).await.unwrap().is_some());
    assert_eq!(store.list_entries().await.unwrap().len(), 1);
    let record = &store.audit_list(1, None).await.unwrap()[0];
    assert_eq!((record.action.as_str(), record.alias.as_deref(), record.version), ("keys.delete", Some("gone"), None));

    // The alias can be used again, and starts afresh with a revision no change planned
    // against the deleted entry can name.
    let fresh = NewVersion { chain_der: vec![b"new-leaf".to_vec()], ..new_version(1, VersionState::Active) };
    let reborn = create(store, "gone", fresh).await;
    assert!(reborn > revision, "{reborn:?} must exceed the deleted entry's {revision:?}");
    for old in [Revision(1), revision] {
        let stale = EntryOp::AddVersion { version: new_version(2, VersionState::Staged), transitions: Vec::new() };
        let err = store.apply(change("gone", Some(old), at(30), stale, "keys.add")).await.unwrap_err();
        assert!(err.is_conflict(), "a plan for the deleted entry applied to its successor: {err}");
    }
    let material = store.material(&alias("gone"), VersionId(1)).await.unwrap().unwrap();
    assert_eq!(material.chain_der, vec![b"new-leaf".to_vec()]);
    assert!(store.material(&alias("gone"), VersionId(2)).await.unwrap().is_none());
    assert_eq!(audit_count(store).await, 5);
}

async fn changes_to_unknown_entries_are_not_found(h: &Harness) {
    let store = &h.store;
    let err = store.apply(change("nobody", Some(Revision(1)), T0, EntryOp::Delete, "keys.delete")).await.unwrap_err();
    assert!(err.is_not_found(), "{err}");
    assert_eq!(err.to_string(), "no entry with alias nobody");
    let op = EntryOp::AddVersion { version: new_version(1, VersionState::Staged), transitions: Vec::new() };
    let err = store.apply(change("nobody", Some(Revision(1)), T0, op, "keys.add")).await.unwrap_err();
    assert!(err.is_not_found(), "{err}");
    assert_eq!(audit_count(store).await, 0);
}

async fn tokens_create_lookup_and_duplicates(h: &Harness) {
    let store = &h.store;
    assert_eq!(store.token_count().await.unwrap(), 0);
    let bootstrap = Actor::new("bootstrap", Role::Admin);
    let hash = [7u8; 32];
    store.create_token(NewToken { name: "ci".into(), role: Role::Developer, hash }, &bootstrap, at(1)).await.unwrap();
    store
        .create_token(NewToken { name: "platform-ops".into(), role: Role::Platform, hash: [8; 32] }, &bootstrap, at(2))
        .await
        .unwrap();
    assert_eq!(store.token_count().await.unwrap(), 2);

    let found = store.token_by_hash(&hash).await.unwrap().unwrap();
    assert_eq!((found.name.as_str(), found.role, found.created_at), ("ci", Role::Developer, at(1)));
    assert!(store.token_by_hash(&[9; 32]).await.unwrap().is_none());

    let err = store
        .create_token(NewToken { name: "ci".into(), role: Role::Admin, hash: [10; 32] }, &bootstrap, at(3))
        .await
        .unwrap_err();
    assert!(err.is_conflict(), "{err}");
    assert_eq!(err.to_string(), "a token named ci already exists");
    let err = store
        .create_token(NewToken { name: "other".into(), role: Role::Admin, hash }, &bootstrap, at(3))
        .await
        .unwrap_err();
    assert!(err.is_conflict(), "{err}");
    assert_eq!(store.token_count().await.unwrap(), 2);
    assert_eq!(store.token_by_hash(&hash).await.unwrap().unwrap().role, Role::Developer);

    let records = store.audit_list(10, None).await.unwrap();
    assert_eq!(records.len(), 2);
    let record = &records[1];
    assert_eq!((record.action.as_str(), record.actor.as_str(), record.role), ("tokens.create", "bootstrap", Role::Admin));
    assert_eq!((record.alias.as_deref(), record.version), (None, None));
    assert!(record.detail.contains("ci") && record.detail.contains("developer"), "{}", record.detail);
    assert!(!record.detail.contains(&hex_of(&hash)), "{}", record.detail);
    assert_eq!(audit_count(store).await, 2);
}

fn hex_of(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Makes 1 + 3 × 8 + 2 = 27 audited changes.
async fn many_changes(store: &Store) {
    create(store, "k", new_version(1, VersionState::Active)).await;
    for round in 0..8u32 {
        let id = 2 + round;
        add(store, "k", new_version(id, VersionState::Staged), at(i64::from(id) * 10)).await.unwrap();
        activate(store, "k", id, at(i64::from(id) * 10 + 1)).await.unwrap();
        let actor = Actor::new("bootstrap", Role::Admin);
        let token = NewToken { name: format!("token-{round}"), role: Role::Viewer, hash: [round as u8; 32] };
        store.create_token(token, &actor, at(i64::from(id) * 10 + 2)).await.unwrap();
    }
    let entry = get(store, "k").await;
    let transitions = vec![entry.plan_restore(&admin(), VersionId(3), at(500)).unwrap()];
    store.apply(change("k", Some(entry.revision), at(500), EntryOp::Transition { transitions }, "keys.restore")).await.unwrap();
    let revision = get(store, "k").await.revision;
    store.apply(change("k", Some(revision), at(600), EntryOp::Delete, "keys.delete")).await.unwrap();
}

async fn audit_verifies_after_many_changes(h: &Harness) {
    let store = &h.store;
    let empty = store.audit_verify().await.unwrap();
    assert_eq!((empty.records, empty.problem), (0, None));
    many_changes(store).await;
    let verification = store.audit_verify().await.unwrap();
    assert_eq!(verification.problem, None);
    assert_eq!(verification.records, 27);

    // Paging newest first.
    let first = store.audit_list(10, None).await.unwrap();
    assert_eq!(first.iter().map(|r| r.seq).collect::<Vec<_>>(), (18..=27).rev().collect::<Vec<_>>());
    assert_eq!(first[0].action, "keys.delete");
    assert_eq!(first[1].action, "keys.restore");
    assert_eq!(first[1].version, Some(3));
    let next = store.audit_list(10, Some(first[9].seq)).await.unwrap();
    assert_eq!(next.first().map(|r| r.seq), Some(17));
    let last = store.audit_list(10, Some(8)).await.unwrap();
    assert_eq!(last.iter().map(|r| r.seq).collect::<Vec<_>>(), (1..=7).rev().collect::<Vec<_>>());
    assert!(store.audit_list(0, None).await.unwrap().is_empty());
    let hashes: std::collections::HashSet<String> =
        store.audit_list(100, None).await.unwrap().into_iter().map(|r| r.hash).collect();
    assert_eq!(hashes.len(), 27);
}

async fn audit_detects_an_edited_record(h: &Harness) {
    let store = &h.store;
    many_changes(store).await;
    assert_eq!(h.raw_execute("UPDATE audit_log SET detail = 'nothing happened' WHERE seq = 17").await, 1);
    let verification = store.audit_verify().await.unwrap();
    let problem = verification.problem.expect("the edit is detected");
    assert_eq!(problem.seq, 17);
    assert_eq!(problem.description, "record 17 was edited (hash mismatch)");
    assert_eq!(verification.records, 27);

    // Later records keep verifying against the stored chain; new changes still append.
    create(store, "after", new_version(1, VersionState::Active)).await;
    assert_eq!(store.audit_verify().await.unwrap().problem.unwrap().seq, 17);
}

async fn audit_detects_a_missing_record(h: &Harness) {
    let store = &h.store;
    many_changes(store).await;
    assert_eq!(h.raw_execute("DELETE FROM audit_log WHERE seq = 12").await, 1);
    let verification = store.audit_verify().await.unwrap();
    let problem = verification.problem.expect("the gap is detected");
    assert_eq!((problem.seq, problem.description.as_str()), (12, "record 12 is missing"));
    assert_eq!(verification.records, 26);
}

async fn audit_detects_removed_newest_records(h: &Harness) {
    let store = &h.store;
    many_changes(store).await;
    assert_eq!(h.raw_execute("DELETE FROM audit_log WHERE seq >= 26").await, 2);
    let verification = store.audit_verify().await.unwrap();
    let problem = verification.problem.expect("the truncation is detected");
    assert_eq!((problem.seq, problem.description.as_str()), (26, "the newest record(s) after 25 were removed"));
    assert_eq!(verification.records, 25);
}

async fn restore_keeps_active_until(h: &Harness) {
    use VersionState::*;
    let store = &h.store;
    create(store, "k", new_version(1, Active)).await;
    add(store, "k", new_version(2, Active), at(10)).await.unwrap();
    let entry = get(store, "k").await;
    assert_eq!(entry.versions[0].active_until, Some(at(10)));

    let transitions = vec![entry.plan_restore(&admin(), VersionId(1), at(20)).unwrap()];
    let revision = store
        .apply(change("k", Some(entry.revision), at(20), EntryOp::Transition { transitions }, "keys.restore"))
        .await
        .unwrap();
    assert_eq!(revision, Revision(3));
    let entry = get(store, "k").await;
    assert_eq!(states(&entry), [Staged, Active]);
    assert_eq!(entry.versions[0].active_until, Some(at(10)));
    assert_eq!(entry.versions[0].activated_at, Some(T0));
    assert_eq!(store.audit_list(1, None).await.unwrap()[0].version, Some(1));

    activate(store, "k", 1, at(30)).await.unwrap();
    let entry = get(store, "k").await;
    assert_eq!(states(&entry), [Active, Retired]);
    assert_eq!(entry.versions[0].activated_at, Some(at(30)));
    assert_eq!(entry.versions[1].active_until, Some(at(30)));
}

async fn transition_from_a_changed_state_conflicts(h: &Harness) {
    use VersionState::*;
    let store = &h.store;
    create(store, "k", new_version(1, Active)).await;
    add(store, "k", new_version(2, Staged), at(10)).await.unwrap();
    let before = get(store, "k").await;
    let records = audit_count(store).await;

    // Right revision, but version 1 is active, not staged.
    let transitions = vec![Transition { version: VersionId(1), from: Staged, to: Retired, at: at(20) }];
    let err = store
        .apply(change("k", Some(before.revision), at(20), EntryOp::Transition { transitions }, "keys.retire"))
        .await
        .unwrap_err();
    assert!(err.is_conflict(), "{err}");
    assert!(err.to_string().contains("version 1 of k is active, not staged"), "{err}");

    // The second transition fails after the first one succeeded: both are rolled back.
    let transitions = vec![
        Transition { version: VersionId(1), from: Active, to: Retired, at: at(20) },
        Transition { version: VersionId(2), from: Retired, to: Active, at: at(20) },
    ];
    let err = store
        .apply(change("k", Some(before.revision), at(20), EntryOp::Transition { transitions }, "keys.activate"))
        .await
        .unwrap_err();
    assert!(err.is_conflict(), "{err}");
    // An unknown version.
    let transitions = vec![Transition { version: VersionId(9), from: Staged, to: Active, at: at(20) }];
    let err = store
        .apply(change("k", Some(before.revision), at(20), EntryOp::Transition { transitions }, "keys.activate"))
        .await
        .unwrap_err();
    assert!(err.is_conflict(), "{err}");
    assert_eq!(get(store, "k").await, before);
    assert_eq!(audit_count(store).await, records);
}

async fn unreadable_values_are_corrupt(h: &Harness) {
    let store = &h.store;
    create(store, "k", new_version(1, VersionState::Active)).await;
    assert_eq!(h.raw_execute("UPDATE entries SET owner = 'someone' WHERE alias = 'k'").await, 1);
    let err = store.entry(&alias("k")).await.unwrap_err();
    assert!(matches!(err, StoreError::Corrupt(_)), "{err}");
    assert!(err.to_string().contains("someone"), "{err}");
    assert_eq!(err.class(), None);
    assert!(store.list_entries().await.is_err());
}

// ---------------------------------------------------------------------------------------
// Runtime: flows, nodes, usage and the change feed

fn flow_source(name: &str, revision: u32) -> String {
    format!("name = \"{name}\"\n# revision {revision}\n")
}

async fn deploy(store: &Store, name: &str, revision: u32, when: Timestamp) -> FlowRecord {
    store.deploy_flow(name, &flow_source(name, revision), &admin(), when).await.unwrap()
}

async fn marker(store: &Store) -> i64 {
    store.change_marker().await.unwrap()
}

async fn flows_deploy_and_redeploy(h: &Harness) {
    let store = &h.store;
    assert!(store.flows().await.unwrap().is_empty());
    assert_eq!(store.flow("orders").await.unwrap(), None);

    let flow = deploy(store, "orders", 1, at(1)).await;
    let expected = FlowRecord {
        name: "orders".into(),
        source: flow_source("orders", 1),
        state: FlowState::Started,
        generation: 1,
        deployed_at: at(1),
        deployed_by: "alice".into(),
        updated_at: at(1),
        updated_by: "alice".into(),
        nodes: Vec::new(),
    };
    assert_eq!(flow, expected);
    assert_eq!(store.flow("orders").await.unwrap(), Some(expected));

    // A redeploy by someone else replaces the source, restarts a stopped flow and moves
    // the generation.
    store.set_flow_state("orders", FlowChange::Stop, &admin(), at(2)).await.unwrap();
    let bob = Actor::new("bob", Role::Developer);
    let flow = store.deploy_flow("orders", &flow_source("orders", 2), &bob, at(3)).await.unwrap();
    assert_eq!((flow.generation, flow.state, flow.source.as_str()), (2, FlowState::Started, flow_source("orders", 2).as_str()));
    assert_eq!((flow.deployed_at, flow.deployed_by.as_str()), (at(3), "bob"));
    assert_eq!((flow.updated_at, flow.updated_by.as_str()), (at(3), "bob"));
    assert_eq!(store.flow("orders").await.unwrap(), Some(flow));

    // Listed by name in byte order on both backends.
    for name in ["billing", "Zeta", "alpha"] {
        deploy(store, name, 1, at(4)).await;
    }
    let names: Vec<String> = store.flows().await.unwrap().into_iter().map(|f| f.name).collect();
    assert_eq!(names, ["Zeta", "alpha", "billing", "orders"]);
}

async fn flow_state_changes(h: &Harness) {
    let store = &h.store;
    deploy(store, "orders", 1, at(1)).await;
    let alice = admin();
    let change = |change, seconds| store.set_flow_state("orders", change, &alice, at(seconds));

    let flow = change(FlowChange::Stop, 2).await.unwrap();
    assert_eq!((flow.state, flow.generation, flow.updated_at), (FlowState::Stopped, 1, at(2)));
    assert_eq!((flow.deployed_at, flow.source.as_str()), (at(1), flow_source("orders", 1).as_str()));
    // Stopping a stopped flow keeps it stopped.
    assert_eq!(change(FlowChange::Stop, 3).await.unwrap().state, FlowState::Stopped);
    let flow = change(FlowChange::Start, 4).await.unwrap();
    assert_eq!((flow.state, flow.generation), (FlowState::Started, 1));
    let flow = change(FlowChange::Restart, 5).await.unwrap();
    assert_eq!((flow.state, flow.generation, flow.updated_at), (FlowState::Started, 2, at(5)));
    // A restart starts a stopped flow.
    change(FlowChange::Stop, 6).await.unwrap();
    let flow = change(FlowChange::Restart, 7).await.unwrap();
    assert_eq!((flow.state, flow.generation), (FlowState::Started, 3));
    assert_eq!(store.flow("orders").await.unwrap(), Some(flow.clone()));
    // The next deploy continues from there.
    assert_eq!(deploy(store, "orders", 2, at(8)).await.generation, 4);

    // On one node alone: stop there, restart there; a change for every node, or a deploy,
    // ends it.
    let on = |change, node: &'static str, seconds| store.set_flow_state_on_node("orders", node, change, &alice, at(seconds));
    let flow = on(FlowChange::Stop, "node-2", 9).await.unwrap();
    assert_eq!((flow.state_on("node-2"), flow.state_on("node-1"), flow.generation_on("node-2")), (FlowState::Stopped, FlowState::Started, 4));
    let flow = on(FlowChange::Restart, "node-2", 10).await.unwrap();
    assert_eq!((flow.state_on("node-2"), flow.generation_on("node-2"), flow.generation_on("node-1")), (FlowState::Started, 5, 4));
    assert_eq!(store.flows().await.unwrap()[0].nodes.len(), 1);
    assert!(store.set_flow_state_on_node("nope", "node-2", FlowChange::Stop, &alice, at(11)).await.unwrap_err().is_not_found());
    let flow = change(FlowChange::Stop, 12).await.unwrap();
    assert!(flow.nodes.is_empty());
    assert_eq!(flow.state_on("node-2"), FlowState::Stopped);
    on(FlowChange::Start, "node-3", 13).await.unwrap();
    assert!(deploy(store, "orders", 3, at(14)).await.nodes.is_empty());
    store.undeploy_flow("orders", &alice, at(15)).await.unwrap();
    deploy(store, "orders", 1, at(16)).await;
    assert!(store.flow("orders").await.unwrap().unwrap().nodes.is_empty(), "per-node states go with the flow");

    assert_eq!(FlowState::Stopped.as_str(), "stopped");
    assert_eq!("started".parse::<FlowState>(), Ok(FlowState::Started));
    assert!("paused".parse::<FlowState>().is_err());
}

async fn unknown_flows_are_not_found(h: &Harness) {
    let store = &h.store;
    deploy(store, "orders", 1, at(1)).await;
    let before = marker(store).await;
    for change in [FlowChange::Stop, FlowChange::Start, FlowChange::Restart] {
        let err = store.set_flow_state("nope", change, &admin(), at(2)).await.unwrap_err();
        assert!(err.is_not_found(), "{err}");
        assert!(err.to_string().contains("nope"), "{err}");
    }
    let err = store.undeploy_flow("nope", &admin(), at(2)).await.unwrap_err();
    assert!(err.is_not_found(), "{err}");
    assert_eq!(marker(store).await, before);
    assert_eq!(audit_count(store).await, 1);
    assert_eq!(store.flows().await.unwrap().len(), 1);
}

async fn undeploy_removes_a_flow(h: &Harness) {
    let store = &h.store;
    deploy(store, "orders", 1, at(1)).await;
    deploy(store, "orders", 2, at(2)).await;
    deploy(store, "billing", 1, at(3)).await;
    store.undeploy_flow("orders", &admin(), at(4)).await.unwrap();
    assert_eq!(store.flow("orders").await.unwrap(), None);
    let names: Vec<String> = store.flows().await.unwrap().into_iter().map(|f| f.name).collect();
    assert_eq!(names, ["billing"]);
    let err = store.undeploy_flow("orders", &admin(), at(5)).await.unwrap_err();
    assert!(err.is_not_found(), "{err}");
    // Deployed again, it is a new flow.
    assert_eq!(deploy(store, "orders", 3, at(6)).await.generation, 1);
}

async fn flow_changes_move_the_marker_and_are_audited(h: &Harness) {
    let store = &h.store;
    create(store, "partner-a", new_version(1, VersionState::Active)).await;
    let start = marker(store).await;
    let mut expected = Vec::new();
    let mut check = |action: &'static str, marker: i64| {
        expected.push(action);
        assert_eq!(marker, start + expected.len() as i64, "{action} moves the change marker by one");
    };
    deploy(store, "orders", 1, at(1)).await;
    check("flows.deploy", marker(store).await);
    deploy(store, "orders", 2, at(2)).await;
    check("flows.deploy", marker(store).await);
    for (change, action) in
        [(FlowChange::Stop, "flows.stop"), (FlowChange::Start, "flows.start"), (FlowChange::Restart, "flows.restart")]
    {
        store.set_flow_state("orders", change, &admin(), at(3)).await.unwrap();
        check(action, marker(store).await);
    }
    store.undeploy_flow("orders", &admin(), at(4)).await.unwrap();
    check("flows.undeploy", marker(store).await);

    let records = store.audit_list(100, None).await.unwrap();
    let mut flow_records: Vec<_> = records.iter().filter(|r| r.seq > start).collect();
    flow_records.reverse();
    let actions: Vec<&str> = flow_records.iter().map(|r| r.action.as_str()).collect();
    assert_eq!(actions, expected);
    for record in &flow_records {
        assert_eq!((record.actor.as_str(), record.role), ("alice", Role::Admin));
        assert_eq!((record.alias.as_deref(), record.version), (None, None));
        assert!(record.detail.contains("orders"), "{}", record.detail);
    }
    assert!(flow_records[1].detail.contains("generation 2"), "{}", flow_records[1].detail);
    assert!(flow_records[4].detail.contains("generation 3"), "{}", flow_records[4].detail);
    assert_eq!(flow_records[0].at, at(1));
    let verification = store.audit_verify().await.unwrap();
    assert_eq!((verification.records, verification.problem), (7, None));
}

async fn concurrent_deploys_each_move_the_generation(h: &Harness) {
    const DEPLOYS: u32 = 8;
    let stores = [h.store.clone(), h.reopen().await];
    let mut tasks = Vec::new();
    for i in 0..DEPLOYS {
        let store = stores[i as usize % 2].clone();
        tasks.push(tokio::spawn(async move { deploy(&store, "orders", i, at(i64::from(i))).await.generation }));
    }
    let mut generations = Vec::new();
    for task in tasks {
        generations.push(task.await.unwrap());
    }
    generations.sort_unstable();
    assert_eq!(generations, (1..=i64::from(DEPLOYS)).collect::<Vec<_>>());
    assert_eq!(h.store.flow("orders").await.unwrap().unwrap().generation, i64::from(DEPLOYS));
    assert_eq!(audit_count(&h.store).await, u64::from(DEPLOYS));
    stores[1].close().await;
}

fn node(id: &str, heartbeat: i64, applied_marker: i64) -> NodeRecord {
    NodeRecord {
        id: id.into(),
        address: format!("http://{id}.local:8443"),
        started_at: at(0),
        heartbeat_at: at(heartbeat),
        applied_marker,
        flows: "orders:started:g1".into(),
    }
}

async fn heartbeats_upsert_nodes(h: &Harness) {
    let store = &h.store;
    assert!(store.nodes().await.unwrap().is_empty());
    store.heartbeat(&node("node-b", 1, 0)).await.unwrap();
    store.heartbeat(&node("node-a", 1, 0)).await.unwrap();
    assert_eq!(store.nodes().await.unwrap(), [node("node-a", 1, 0), node("node-b", 1, 0)]);

    // The next heartbeat replaces every field of that node's report.
    let moved = NodeRecord {
        address: "http://10.0.0.7:8443".into(),
        started_at: at(5),
        flows: "orders:stopped:g2 billing:started:g1".into(),
        ..node("node-b", 6, 3)
    };
    store.heartbeat(&moved).await.unwrap();
    assert_eq!(store.nodes().await.unwrap(), [node("node-a", 1, 0), moved.clone()]);

    store.remove_node("node-a").await.unwrap();
    assert_eq!(store.nodes().await.unwrap(), [moved]);
    // Removing a node that is gone already is not an error (a node removes itself when it
    // stops, whatever happened before).
    store.remove_node("node-a").await.unwrap();
    assert_eq!(store.nodes().await.unwrap().len(), 1);
}

fn usage(flow: &str, alias: &str, version: u32, count: i64, last: i64) -> UsageRecord {
    UsageRecord {
        flow: flow.into(),
        alias: alias.into(),
        version,
        partner: "https://partner.example/as2".into(),
        count,
        last_used: at(last),
    }
}

async fn heartbeats_and_usage_do_not_move_the_change_marker(h: &Harness) {
    let store = &h.store;
    deploy(store, "orders", 1, at(1)).await;
    let before = marker(store).await;
    store.heartbeat(&node("node-a", 2, before)).await.unwrap();
    store.heartbeat(&node("node-a", 3, before)).await.unwrap();
    store.record_usage(&[usage("orders", "tls", 1, 3, 2)]).await.unwrap();
    store.record_usage(&[usage("orders", "tls", 1, 1, 3)]).await.unwrap();
    store.record_usage(&[]).await.unwrap();
    store.remove_node("node-a").await.unwrap();
    assert_eq!(marker(store).await, before);
    assert_eq!(audit_count(store).await, 1);
}

async fn usage_accumulates_and_filters_by_alias(h: &Harness) {
    let store = &h.store;
    assert!(store.usage(None).await.unwrap().is_empty());
    store
        .record_usage(&[
            usage("orders", "tls", 2, 3, 10),
            usage("orders", "sign", 1, 1, 10),
            usage("billing", "tls", 2, 4, 12),
            // The same key twice in one batch adds up too.
            usage("orders", "sign", 1, 1, 11),
        ])
        .await
        .unwrap();
    // A second batch: counts add, the later last use wins whichever batch holds it.
    store
        .record_usage(&[
            usage("orders", "tls", 2, 2, 5),
            usage("orders", "sign", 1, 5, 20),
            usage("orders", "tls", 1, 1, 30),
        ])
        .await
        .unwrap();

    let all = store.usage(None).await.unwrap();
    assert_eq!(
        all,
        [
            usage("billing", "tls", 2, 4, 12),
            usage("orders", "sign", 1, 7, 20),
            usage("orders", "tls", 1, 1, 30),
            usage("orders", "tls", 2, 5, 10),
        ]
    );
    assert_eq!(
        store.usage(Some("tls")).await.unwrap(),
        [usage("billing", "tls", 2, 4, 12), usage("orders", "tls", 1, 1, 30), usage("orders", "tls", 2, 5, 10)]
    );
    assert_eq!(store.usage(Some("sign")).await.unwrap(), [usage("orders", "sign", 1, 7, 20)]);
    assert!(store.usage(Some("nobody")).await.unwrap().is_empty());
    // Different partners are counted apart.
    let other_partner = UsageRecord { partner: "https://other.example".into(), ..usage("orders", "sign", 1, 1, 40) };
    store.record_usage(std::slice::from_ref(&other_partner)).await.unwrap();
    assert_eq!(store.usage(Some("sign")).await.unwrap(), [other_partner, usage("orders", "sign", 1, 7, 20)]);
}

/// Makes `rounds` changes through `writer`, each after a short pause, while `feed` waits
/// for them; returns how long after each change's commit the feed woke (zero when it woke
/// before the writer saw its commit return).
async fn feed_latencies(feed: &mut ChangeFeed, watched: &Store, writer: &Store, rounds: u32) -> Vec<Duration> {
    let mut latencies = Vec::new();
    for round in 0..rounds {
        let before = marker(watched).await;
        let writer = writer.clone();
        let task = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            deploy(&writer, "orders", round, at(i64::from(round))).await;
            Instant::now()
        });
        let started = Instant::now();
        let moved = feed.wait(before, Duration::from_secs(5)).await.unwrap();
        let woke = Instant::now();
        let committed = task.await.unwrap();
        assert!(moved > before, "round {round}: the feed returned {moved} after {before}");
        assert!(woke - started < Duration::from_secs(1), "round {round}: woke after {:?}", woke - started);
        latencies.push(woke.saturating_duration_since(committed));
    }
    latencies
}

fn report_latencies(what: &str, backend: &str, mut latencies: Vec<Duration>) {
    latencies.sort_unstable();
    let median = latencies[latencies.len() / 2];
    let max = latencies[latencies.len() - 1];
    println!("{backend}: change feed woke {median:?} (median), {max:?} (max) after a commit {what}");
    assert!(max < Duration::from_secs(1), "{latencies:?}");
}

async fn change_feed_wakes_promptly_and_times_out(h: &Harness) {
    let store = &h.store;
    let mut feed = store.change_feed().await.unwrap();
    let current = marker(store).await;

    // Nothing changes: the unchanged marker, after the limit.
    let started = Instant::now();
    assert_eq!(feed.wait(current, Duration::from_millis(200)).await.unwrap(), current);
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(200) && waited < Duration::from_secs(1), "waited {waited:?}");

    // A change made before the wait is returned at once.
    create(store, "partner-a", new_version(1, VersionState::Active)).await;
    let started = Instant::now();
    assert_eq!(feed.wait(current, Duration::from_secs(5)).await.unwrap(), current + 1);
    assert!(started.elapsed() < Duration::from_millis(500), "{:?}", started.elapsed());
    // A zero limit reads the marker once.
    assert_eq!(feed.wait(current + 1, Duration::ZERO).await.unwrap(), current + 1);

    // Changes from another task of this process.
    let latencies = feed_latencies(&mut feed, store, store, 10).await;
    report_latencies("in another task", store.backend(), latencies);
    // Heartbeats and usage do not wake the feed.
    let current = marker(store).await;
    let writer = store.clone();
    let reports = tokio::spawn(async move {
        for i in 0..5 {
            writer.heartbeat(&node("node-a", i, current)).await.unwrap();
            writer.record_usage(&[usage("orders", "tls", 1, 1, i)]).await.unwrap();
        }
    });
    assert_eq!(feed.wait(current, Duration::from_millis(200)).await.unwrap(), current);
    reports.await.unwrap();
}

async fn the_change_feed_wakes_on_changes_from_another_store(h: &Harness) {
    // Another store on the same database (PostgreSQL: the same schema; SQLite: the same
    // file), as another node would open it.
    let other = h.reopen().await;
    let mut feed = h.store.change_feed().await.unwrap();
    let current = marker(&h.store).await;
    assert_eq!(feed.wait(current, Duration::from_millis(200)).await.unwrap(), current);
    let latencies = feed_latencies(&mut feed, &h.store, &other, 10).await;
    report_latencies("in another store", h.store.backend(), latencies);
    // And the other way round.
    let mut other_feed = other.change_feed().await.unwrap();
    let latencies = feed_latencies(&mut other_feed, &other, &h.store, 3).await;
    report_latencies("in the first store", h.store.backend(), latencies);
    drop(other_feed);
    other.close().await;
}

async fn the_change_feed_recovers_from_a_lost_connection(h: &Harness) {
    let Raw::Postgres { schema, .. } = &h.raw else {
        return; // SQLite feeds hold no connection of their own.
    };
    let mut name = format!("keyward-feed:{schema}");
    name.truncate(63);
    let count = format!("SELECT COUNT(*) FROM pg_stat_activity WHERE application_name = '{name}'");
    // Cuts the feed's connection, as a restarting database or a network failure would: the
    // pid first, then only that backend (a condition in the same WHERE as
    // pg_terminate_backend may be evaluated after it).
    let cut = || async {
        assert_eq!(h.raw_pg_i64(&count).await, 1, "one listening connection");
        let pid = h.raw_pg_i64(&format!("SELECT pid::BIGINT FROM pg_stat_activity WHERE application_name = '{name}'")).await;
        let terminated = format!("SELECT COUNT(*) FROM pg_terminate_backend({pid}::INT) AS t(done) WHERE done");
        assert_eq!(h.raw_pg_i64(&terminated).await, 1);
    };
    let mut feed = h.store.change_feed().await.unwrap();
    let other = h.reopen().await;
    let current = marker(&h.store).await;
    assert_eq!(feed.wait(current, Duration::from_millis(50)).await.unwrap(), current);

    // Cut soon after it was set up: the feed reads the marker every 100 ms, and listens
    // again a second later.
    cut().await;
    let latencies = feed_latencies(&mut feed, &h.store, &other, 3).await;
    report_latencies("after a new listening connection was cut", h.store.backend(), latencies);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let current = marker(&h.store).await;
        feed.wait(current, Duration::from_millis(100)).await.unwrap();
        if h.raw_pg_i64(&count).await == 1 {
            break;
        }
        assert!(Instant::now() < deadline, "the feed does not listen again");
    }
    let latencies = feed_latencies(&mut feed, &h.store, &other, 3).await;
    report_latencies("after the feed listened again", h.store.backend(), latencies);

    // Cut after it served for a while: replaced at once.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    cut().await;
    let latencies = feed_latencies(&mut feed, &h.store, &other, 3).await;
    assert_eq!(h.raw_pg_i64(&count).await, 1, "listening again at once");
    report_latencies("after an older listening connection was cut", h.store.backend(), latencies);

    // A dropped feed closes its connection.
    drop(feed);
    let deadline = Instant::now() + Duration::from_secs(5);
    while h.raw_pg_i64(&count).await != 0 {
        assert!(Instant::now() < deadline, "the dropped feed's connection stays open");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    other.close().await;
}

async fn closing_a_store_ends_its_feeds(h: &Harness) {
    let other = h.reopen().await;
    let mut feed = other.change_feed().await.unwrap();
    let current = marker(&other).await;
    assert_eq!(feed.wait(current, Duration::from_millis(20)).await.unwrap(), current);
    // A live feed does not hold up closing.
    tokio::time::timeout(Duration::from_secs(5), other.close()).await.unwrap();
    let err = feed.wait(current, Duration::from_millis(100)).await.unwrap_err();
    assert!(matches!(err, StoreError::Database(_)), "{err}");
    assert!(format!("{feed:?}").contains(h.store.backend()));
}

// ---------------------------------------------------------------------------------------
// Connection URLs (SQLite only; PostgreSQL URLs are exercised by the suite above)

#[tokio::test]
async fn sqlite_urls_open_files_and_memory() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("by-url.db");
    let url = format!("sqlite://{}", path.display());
    assert!(url.starts_with("sqlite:///"), "{url}");
    let store = Store::connect(&url).await.unwrap();
    assert_eq!(store.backend(), "sqlite");
    create(&store, "k", new_version(1, VersionState::Active)).await;
    store.close().await;
    assert!(path.exists());
    let reopened = Store::connect(&url).await.unwrap();
    assert_eq!(get(&reopened, "k").await.revision, Revision(1));
    assert_eq!(audit_count(&reopened).await, 1);
    reopened.close().await;

    let memory = Store::connect("sqlite::memory:").await.unwrap();
    create(&memory, "k", new_version(1, VersionState::Active)).await;
    add(&memory, "k", new_version(2, VersionState::Active), at(1)).await.unwrap();
    assert_eq!(memory.list_entries().await.unwrap().len(), 1);
    assert_eq!(audit_count(&memory).await, 2);
}

#[tokio::test]
async fn unsupported_urls_are_refused_without_echoing_secrets() {
    let err = Store::connect("mysql://root:hunter2@db/keyward").await.unwrap_err();
    assert!(matches!(err, StoreError::Config(_)), "{err}");
    assert!(err.to_string().contains("\"mysql\""), "{err}");
    assert!(!err.to_string().contains("hunter2"), "{err}");
    let err = Store::connect_postgres_schema("postgres://localhost/db", "bad;schema").await.unwrap_err();
    assert!(matches!(err, StoreError::Config(_)), "{err}");
}

async fn partners_add_update_and_conflict(h: &Harness) {
    let store = &h.store;
    let admin = Actor::new("root", Role::Admin);
    let mut acme = Partner {
        name: "acme".into(),
        url: Some("https://127.0.0.1:9443/in".into()),
        capabilities: keyward_domain::partner::parse_capabilities("two-cas,two-client-certificates").unwrap(),
        description: None,
    };
    let before = audit_count(store).await;
    store.put_partner(&acme, true, &admin, T0).await.unwrap();
    let err = store.put_partner(&acme, true, &admin, T0).await.unwrap_err();
    assert!(err.is_conflict(), "{err}");
    acme.capabilities.clear();
    acme.description = Some("ERP, ops@acme.test".into());
    store.put_partner(&acme, false, &admin, T0).await.unwrap();
    let ghost = Partner { name: "ghost".into(), ..acme.clone() };
    assert!(store.put_partner(&ghost, false, &admin, T0).await.unwrap_err().is_not_found());
    assert_eq!(store.partners().await.unwrap(), vec![acme]);
    assert_eq!(audit_count(store).await, before + 2, "add and update are audited, refusals are not");
}

async fn renewals_round_trip_and_refuse_lost_updates(h: &Harness) {
    use keyward_domain::procedure::Procedure;
    use keyward_domain::renewal::{RenewalState, StepState, instantiate};
    let store = &h.store;
    let admin = Actor::new("root", Role::Admin);
    let alias = Alias::parse("tls-client").unwrap();
    let partners = vec!["acme".to_owned(), "globex".to_owned()];
    let def = Procedure::ClientCertificate.variant("accepts-both").unwrap();
    let mut renewal = keyward_domain::Renewal {
        id: 0,
        alias: alias.clone(),
        procedure: Procedure::ClientCertificate,
        variant: def.name.to_owned(),
        state: RenewalState::Running,
        flows: vec!["orders".into()],
        steps: instantiate(def, &partners),
        partners,
        old_version: Some(VersionId(1)),
        new_version: None,
        second_alias: None,
        window: None,
        created_by: "root".into(),
        created_at: T0,
        updated_at: T0,
        revision: 1,
    };
    let kept = vec![("orders".to_owned(), "name = \"orders\"".to_owned())];
    let id = store.create_renewal(&renewal, &kept, &admin).await.unwrap();
    let err = store.create_renewal(&renewal, &[], &admin).await.unwrap_err();
    assert!(err.is_conflict(), "one running renewal per alias: {err}");
    assert_eq!(store.running_renewal(&alias).await.unwrap(), Some(id));

    renewal.id = id;
    renewal.steps[0].state = StepState::Done;
    renewal.steps[0].by = Some("keyward".into());
    renewal.steps[0].at = Some(T0);
    renewal.steps[0].note = Some("version 2 staged".into());
    renewal.new_version = Some(VersionId(2));
    renewal.window = Some((T0, T0.plus_days(1)));
    let event = keyward_store::AuditEvent {
        actor: &admin,
        at: T0,
        action: "renewals.step",
        alias: Some(&alias),
        version: None,
        detail: "step 1 done",
    };
    let revision = store.save_renewal(&renewal, &[1], &[], &event).await.unwrap();
    assert_eq!(revision, 2);
    let err = store.save_renewal(&renewal, &[1], &[], &event).await.unwrap_err();
    assert!(err.is_conflict(), "a stale revision is a lost update: {err}");

    let back = store.renewal(id).await.unwrap().unwrap();
    renewal.revision = 2;
    assert_eq!(back, renewal);
    assert_eq!(store.renewals().await.unwrap(), vec![renewal.clone()]);
    assert_eq!(store.running_renewals().await.unwrap(), vec![renewal.clone()]);
    assert_eq!(store.kept_flows(id).await.unwrap(), kept);

    renewal.state = RenewalState::Completed;
    store.save_renewal(&renewal, &[], &[], &event).await.unwrap();
    assert_eq!(store.running_renewal(&alias).await.unwrap(), None);
    assert!(store.running_renewals().await.unwrap().is_empty());
    renewal.id = 0;
    store.create_renewal(&renewal, &[], &admin).await.unwrap();
}
