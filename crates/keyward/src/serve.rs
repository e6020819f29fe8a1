//! The server side: `keyward serve` and `keyward token issue`.
//!
//! On first start in a data directory keyward creates the master key (`master.key`, mode
//! 0600) that seals every private key at rest, the SQLite database (unless a PostgreSQL URL
//! is given), a check value in the database that ties the two together, and the first admin
//! token (`admin.token`, mode 0600). Later starts reuse them and refuse a master key that
//! does not match the database.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, bail};
use keyward_crypto::MasterKey;
use keyward_domain::Role;
use keyward_runtime::node::Node;
use keyward_runtime::expiry::{ExpirySettings, Monitor};
use keyward_keystore::tokens::generate_token;
use keyward_keystore::{Keystore, SystemClock};
use keyward_store::Store;

use crate::cli::{NodeArgs, KeystoreArgs, ServeArgs};

/// Environment variable that can carry the master key (base64) instead of the file.
pub const MASTER_KEY_ENV: &str = "KEYWARD_MASTER_KEY";

/// How often the server advances running renewals.
const RENEWAL_TICK: std::time::Duration = std::time::Duration::from_secs(1);

pub async fn run(args: ServeArgs) -> anyhow::Result<()> {
    init_logging();
    let (keystore, store) = open_keystore(&args.keystore, true).await?;
    if keystore.has_no_tokens().await? {
        // The file is written before the token is stored: a crash in between leaves a file
        // with an unknown token, replaced at the next start, never a stored token nobody has.
        let token = generate_token()?;
        let path = args.keystore.data_dir.join("admin.token");
        write_secret_file(&path, &token)?;
        keystore.issue_token_as_operator("admin", Role::Admin, &token).await?;
        println!("created the first admin token in {}", path.display());
        println!("  export KEYWARD_TOKEN=$(cat {})", path.display());
    }
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let address = listener.local_addr()?;
    let node_id = args.node_id.clone().unwrap_or_else(|| format!("serve-{}", address.port()));
    let node = Node::start(keystore.clone(), node_id.clone(), format!("http://{address}")).await?;
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let follower = node.spawn(stopped.clone());
    // The renewal engine: steps whose window opened, steps a restart interrupted.
    let engine = {
        let renewals = keyward_runtime::renewal::Renewals::new(keystore.clone());
        let mut stopped = stopped;
        tokio::spawn(renewals.run(RENEWAL_TICK, async move {
            let _ = stopped.wait_for(|s| *s).await;
        }))
    };
    let expiry = ExpirySettings {
        critical_days: args.critical_days,
        alert_days: args.alert_days.clone(),
        auto_activate_days: (args.auto_activate_days > 0).then_some(args.auto_activate_days),
    };
    let (alerts, webhook) = match args.alert_webhook.clone() {
        Some(url) => {
            let (sender, receiver) = tokio::sync::mpsc::channel(256);
            (Some(sender), Some(tokio::spawn(keyward_http::alerts::deliver(receiver, url))))
        }
        None => (None, None),
    };
    let monitor = {
        let monitor = Monitor::new(keystore.clone(), expiry.clone(), alerts);
        let mut stopped = stop.subscribe();
        let period = std::time::Duration::from_secs(args.expiry_check_seconds.max(1));
        tokio::spawn(monitor.run(period, async move {
            let _ = stopped.wait_for(|s| *s).await;
        }))
    };
    println!("keyward {} listening on http://{address} ({} storage, node {node_id})", env!("CARGO_PKG_VERSION"), store.backend());
    tracing::info!(%address, backend = store.backend(), node = %node_id, "keyward started");
    let router = keyward_http::server::router_with(keystore, Some(node), expiry);
    keyward_http::server::serve_router(listener, router, shutdown_signal()).await?;
    let _ = stop.send(true);
    let _ = follower.await;
    let _ = engine.await;
    // The monitor owned the alert channel's sender: once it ends, delivery drains and ends.
    let _ = monitor.await;
    if let Some(webhook) = webhook {
        let _ = tokio::time::timeout(std::time::Duration::from_secs(5), webhook).await;
    }
    let _ = store.remove_node(&node_id).await;
    tracing::info!("keyward stopped");
    Ok(())
}

/// `keyward node`: an extra runtime node against the same database as a server.
pub async fn run_node(args: NodeArgs) -> anyhow::Result<()> {
    init_logging();
    let (keystore, store) = open_keystore(&args.keystore, false).await?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let address = listener.local_addr()?;
    let node_id = args.id.clone().unwrap_or_else(|| format!("node-{}", address.port()));
    let node = Node::start(keystore.clone(), node_id.clone(), format!("http://{address}")).await?;
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let follower = node.spawn(stopped);
    println!("keyward node {node_id} serving flows on http://{address} ({} storage)", store.backend());
    tracing::info!(%address, node = %node_id, "node started");
    let router = keyward_http::server::node_router(keystore, node);
    keyward_http::server::serve_router(listener, router, shutdown_signal()).await?;
    let _ = stop.send(true);
    let _ = follower.await;
    let _ = store.remove_node(&node_id).await;
    tracing::info!(node = %node_id, "node stopped");
    Ok(())
}

/// `keyward token issue`: a token stored directly, on the authority of the server's operator.
pub async fn issue_token(args: &KeystoreArgs, role: &str, name: &str, out: Option<&Path>) -> anyhow::Result<()> {
    let role: Role = role.parse().map_err(anyhow::Error::msg)?;
    let (keystore, _) = open_keystore(args, false).await?;
    let token = generate_token()?;
    keystore.issue_token_as_operator(name, role, &token).await?;
    match out {
        Some(path) => {
            write_secret_file(path, &token)?;
            eprintln!("issued {role} token {name:?} into {}", path.display());
        }
        None => println!("{token}"),
    }
    Ok(())
}

/// Opens the database and the master key, checking that they belong together. Only
/// `keyward serve` (`first_start_allowed`) may initialise a new keystore.
async fn open_keystore(args: &KeystoreArgs, first_start_allowed: bool) -> anyhow::Result<(Keystore, Store)> {
    create_private_dir(&args.data_dir)?;
    let store = match &args.database_url {
        Some(url) => Store::connect(url).await.context("cannot open the PostgreSQL database")?,
        None => {
            let path = args.data_dir.join("keyward.db");
            Store::open_sqlite(&path)
                .await
                .with_context(|| format!("cannot open the SQLite database {}", path.display()))?
        }
    };
    let initialised = Keystore::is_initialised(&store).await?;
    if !initialised && !first_start_allowed {
        bail!("this keystore has not been initialised yet: start `keyward serve` with the same options once");
    }
    let master_key = load_or_create_master_key(&args.data_dir, initialised)?;
    let keystore = Keystore::new(store.clone(), master_key, Arc::new(SystemClock));
    keystore.check_master_key().await?;
    Ok((keystore, store))
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("KEYWARD_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn,tower_http=warn"));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).try_init();
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}

/// Creates the data directory (mode 0700), and warns when an existing one is open to others.
fn create_private_dir(dir: &Path) -> anyhow::Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("cannot create the data directory {}", dir.display()))?;
    let mode = fs::metadata(dir)?.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        tracing::warn!(
            dir = %dir.display(),
            mode = format!("{mode:o}"),
            "the data directory can be read by other users; the database holds sealed keys and the audit log (chmod 700)"
        );
    }
    Ok(())
}

/// Writes `secret` and a newline to `path` with mode 0600, replacing the file atomically.
fn write_secret_file(path: &Path, secret: &str) -> anyhow::Result<()> {
    let temporary = path.with_extension("tmp");
    let _ = fs::remove_file(&temporary);
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&temporary)
        .with_context(|| format!("cannot create {}", temporary.display()))?;
    file.write_all(format!("{secret}\n").as_bytes())?;
    file.sync_all()?;
    fs::rename(&temporary, path).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

fn load_or_create_master_key(data_dir: &Path, initialised: bool) -> anyhow::Result<MasterKey> {
    if let Ok(value) = std::env::var(MASTER_KEY_ENV) {
        return MasterKey::from_base64(value.trim())
            .with_context(|| format!("{MASTER_KEY_ENV} must hold 32 bytes in base64"));
    }
    let path = data_dir.join("master.key");
    match fs::read_to_string(&path) {
        Ok(text) => {
            MasterKey::from_base64(text.trim()).with_context(|| format!("{} is not a valid master key", path.display()))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if initialised {
                bail!(
                    "{} is missing but the database already holds a keystore; its private keys can only be \
                     opened with the original master key: restore the file or set {MASTER_KEY_ENV}",
                    path.display()
                );
            }
            let key = MasterKey::generate()?;
            write_secret_file(&path, &key.to_base64())?;
            println!("created the master key {} (keep a backup: without it the private keys cannot be opened)", path.display());
            Ok(key)
        }
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}
