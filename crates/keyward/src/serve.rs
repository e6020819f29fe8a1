//! `keyward serve`: the server's start-up.
//!
//! On first start in a data directory keyward creates the master key (`master.key`, mode
//! 0600) that seals every private key at rest, the SQLite database (unless a PostgreSQL URL
//! is given) and the first admin token (`admin.token`, mode 0600). Later starts reuse them.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};
use keyward_crypto::MasterKey;
use keyward_keystore::{Keystore, SystemClock};
use keyward_store::Store;

use crate::cli::ServeArgs;

/// Environment variable that can carry the master key (base64) instead of the file.
pub const MASTER_KEY_ENV: &str = "KEYWARD_MASTER_KEY";

pub async fn run(args: ServeArgs) -> anyhow::Result<()> {
    init_logging();
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
    let master_key = load_or_create_master_key(&args.data_dir, &store).await?;
    let keystore = Keystore::new(store.clone(), master_key, Arc::new(SystemClock));
    if let Some(token) = keystore.bootstrap_admin_token().await? {
        let path = args.data_dir.join("admin.token");
        write_private_file(&path, format!("{token}\n").as_bytes())?;
        println!("created the first admin token in {}", path.display());
        println!("  export KEYWARD_TOKEN=$(cat {})", path.display());
    }
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let address = listener.local_addr()?;
    println!("keyward {} listening on http://{address} ({} storage)", env!("CARGO_PKG_VERSION"), store.backend());
    tracing::info!(%address, backend = store.backend(), "keyward started");
    keyward_http::server::serve(listener, keystore, shutdown_signal()).await?;
    tracing::info!("keyward stopped");
    Ok(())
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

fn create_private_dir(dir: &Path) -> anyhow::Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("cannot create the data directory {}", dir.display()))
}

/// Writes a new file readable by its owner only; refuses to overwrite.
fn write_private_file(path: &Path, contents: &[u8]) -> anyhow::Result<()> {
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    file.write_all(contents)?;
    file.sync_all()?;
    Ok(())
}

async fn load_or_create_master_key(data_dir: &Path, store: &Store) -> anyhow::Result<MasterKey> {
    if let Ok(value) = std::env::var(MASTER_KEY_ENV) {
        return MasterKey::from_base64(value.trim())
            .with_context(|| format!("{MASTER_KEY_ENV} must hold 32 bytes in base64"));
    }
    let path: PathBuf = data_dir.join("master.key");
    match fs::read_to_string(&path) {
        Ok(text) => {
            MasterKey::from_base64(text.trim()).with_context(|| format!("{} is not a valid master key", path.display()))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if store.token_count().await? > 0 {
                bail!(
                    "{} is missing but the database already holds a keystore; its private keys can only be \
                     opened with the original master key: restore the file or set {MASTER_KEY_ENV}",
                    path.display()
                );
            }
            let key = MasterKey::generate()?;
            write_private_file(&path, format!("{}\n", key.to_base64()).as_bytes())?;
            println!("created the master key {} (keep a backup: without it the private keys cannot be opened)", path.display());
            Ok(key)
        }
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}
