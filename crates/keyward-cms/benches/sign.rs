//! CMS signing throughput, compared in one run with the raw signature primitive and with
//! OpenSSL's CMS doing the same job in-process.
//!
//! For RSA-2048 and P-256, payloads of 1 KiB and 1 MiB, one and two signers, on one thread
//! and on every core, it measures:
//! - `raw`: `PrivateKey::sign_with` over the payload (aws-lc-rs: hash + sign);
//! - `floor`: one raw signature per signer, with each signer's key in turn: what a message
//!   with that many signatures cannot go below (the same as `raw` for one signer);
//! - `keyward`: `keyward_cms::sign` (hash, signed attributes, sign, DER), encapsulated;
//! - `openssl`: Python `cryptography`'s `PKCS7SignatureBuilder` (OpenSSL's CMS) on the same
//!   keys and payload, run by `benches/openssl_cms.py` in a virtual environment under
//!   `target/bench-venv` that this program creates with pip (skipped, with a note, when
//!   that fails).
//!
//! The four take turns in [`ROUNDS`] short slices; the table shows the median rates and, in
//! `kw/raw`, `kw/floor` and `kw/ossl`, ratios of the medians of the per-round ratios to raw.
//!
//! Run: `cargo bench -p keyward-cms --bench sign` (set `KEYWARD_BENCH_SECONDS` to change
//! the time per measurement, 1.0 by default, and `KEYWARD_BENCH_ONLY` to a row's start,
//! e.g. `p-256 1 KiB 2`, to run only the rows that start with it).

#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark stops loudly on failure

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use keyward_cms::{DigestAlgorithm, IncludeCertificates, Signer};
use keyward_crypto::{
    Certificate, Chain, HashAlgorithm, KeyAlgorithm, PrivateKey, SignatureScheme,
};
use keyward_domain::Timestamp;

struct Identity {
    key: PrivateKey,
    chain: Chain,
    certificate: Certificate,
}

fn identity(algorithm: KeyAlgorithm, name: &str) -> Identity {
    let since_epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    let now = Timestamp::from_millis(since_epoch.as_millis() as i64);
    let (key, certificate) =
        keyward_crypto::generate(algorithm, &format!("CN={name}"), 30, now).unwrap();
    Identity {
        key,
        chain: Chain::new(vec![certificate.clone()]).unwrap(),
        certificate,
    }
}

fn raw_scheme(algorithm: KeyAlgorithm) -> SignatureScheme {
    match algorithm {
        KeyAlgorithm::EcP256 => SignatureScheme::Ecdsa(HashAlgorithm::Sha256),
        _ => SignatureScheme::RsaPkcs1v15(HashAlgorithm::Sha256),
    }
}

/// Runs `operation` on `threads` threads for `seconds`; returns operations per second.
fn rate(threads: usize, seconds: f64, operation: &(dyn Fn() + Sync)) -> f64 {
    let duration = Duration::from_secs_f64(seconds);
    let start = Instant::now();
    let total: u64 = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let mut count = 0u64;
                    while start.elapsed() < duration {
                        operation();
                        count += 1;
                    }
                    count
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).sum()
    });
    total as f64 / start.elapsed().as_secs_f64()
}

/// Rounds per comparison: the measurements take turns in short slices, so that a change in
/// the machine's speed during the run (other tenants, frequency) affects them alike.
const ROUNDS: usize = 20;

/// A measurement: given a number of seconds, the rate it observed in that time, if any.
type Measure<'a> = &'a dyn Fn(f64) -> Option<f64>;

/// For each measurement, the median of its rates over [`ROUNDS`] rounds in which each runs
/// for `seconds / ROUNDS`, and the median over the rounds of its rate divided by the first
/// measurement's rate in the same round (`None` when it observed nothing).
fn compare(seconds: f64, measures: &[Measure<'_>]) -> Vec<Option<(f64, f64)>> {
    let mut rates = vec![Vec::with_capacity(ROUNDS); measures.len()];
    for _ in 0..ROUNDS {
        for (index, measure) in measures.iter().enumerate() {
            if let Some(rate) = measure(seconds / ROUNDS as f64) {
                rates[index].push(rate);
            }
        }
    }
    rates
        .iter()
        .map(|own| {
            if own.len() != ROUNDS || rates[0].len() != ROUNDS {
                return None;
            }
            let ratios = own
                .iter()
                .zip(&rates[0])
                .map(|(own, first)| own / first)
                .collect();
            Some((median(own.clone()), median(ratios)))
        })
        .collect()
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    let middle = values.len() / 2;
    if values.len().is_multiple_of(2) {
        (values[middle - 1] + values[middle]) / 2.0
    } else {
        values[middle]
    }
}

fn pem_file(dir: &Path, name: &str, label: &str, der: &[u8]) -> PathBuf {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let body: Vec<&str> = b64
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    let path = dir.join(name);
    std::fs::write(
        &path,
        format!(
            "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
            body.join("\n")
        ),
    )
    .unwrap();
    path
}

/// A Python with `cryptography`, or the reason there is none.
fn python_with_cryptography() -> Result<PathBuf, String> {
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/bench-venv");
    let python = venv.join("bin/python");
    let has = |python: &Path| {
        Command::new(python)
            .args(["-c", "import cryptography"])
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if has(&python) {
        return Ok(python);
    }
    let created = Command::new("python3")
        .args(["-m", "venv"])
        .arg(&venv)
        .status()
        .map_err(|e| e.to_string())?;
    if !created.success() {
        return Err("python3 -m venv failed".into());
    }
    let installed = Command::new(&python)
        .args(["-m", "pip", "install", "--quiet", "cryptography"])
        .status()
        .map_err(|e| e.to_string())?;
    if installed.success() && has(&python) {
        Ok(python)
    } else {
        Err("pip install cryptography failed".into())
    }
}

fn main() {
    let seconds: f64 = std::env::var("KEYWARD_BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1.0);
    let only = std::env::var("KEYWARD_BENCH_ONLY").ok();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let dir = tempfile::tempdir().unwrap();
    let python = python_with_cryptography();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/openssl_cms.py");
    if let Err(reason) = &python {
        println!("note: OpenSSL CMS column skipped: {reason}");
    }
    println!(
        "{:<9} {:>7} {:>7} {:>7} {:>9} {:>9} {:>9} {:>9} {:>7} {:>8} {:>8}",
        "key",
        "payload",
        "signers",
        "threads",
        "raw/s",
        "floor/s",
        "keyward/s",
        "openssl/s",
        "kw/raw",
        "kw/floor",
        "kw/ossl"
    );
    for (algorithm, name) in [
        (KeyAlgorithm::Rsa2048, "rsa-2048"),
        (KeyAlgorithm::EcP256, "p-256"),
    ] {
        // Leaked so that signer lists borrowing them can be shared by the worker threads.
        let ids: &'static [Identity; 2] = Box::leak(Box::new([
            identity(algorithm, &format!("{name} one")),
            identity(algorithm, &format!("{name} two")),
        ]));
        let mut key_files = Vec::new();
        for (index, id) in ids.iter().enumerate() {
            key_files.push((
                pem_file(
                    dir.path(),
                    &format!("{name}-{index}.key"),
                    "PRIVATE KEY",
                    id.key.pkcs8_der(),
                ),
                pem_file(
                    dir.path(),
                    &format!("{name}-{index}.pem"),
                    "CERTIFICATE",
                    id.certificate.der(),
                ),
            ));
        }
        for (size, label) in [(1024usize, "1 KiB"), (1024 * 1024, "1 MiB")] {
            let payload = vec![0x5au8; size];
            let payload_file = dir.path().join(format!("payload-{size}"));
            std::fs::write(&payload_file, &payload).unwrap();
            for signer_count in [1usize, 2] {
                let signer = |id: &'static Identity| Signer {
                    key: &id.key,
                    chain: &id.chain,
                    digest: DigestAlgorithm::Sha256,
                    scheme: None,
                    include: IncludeCertificates::Signer,
                    signing_time: Some(Timestamp::from_seconds(1_795_428_000)),
                };
                let signers: Vec<Signer<'static>> =
                    ids[..signer_count].iter().map(signer).collect();
                for threads in [1, cores] {
                    let row = format!("{name} {label} {signer_count} {threads}");
                    if !only.as_deref().is_none_or(|only| row.starts_with(only)) {
                        continue;
                    }
                    let raw = |seconds| {
                        Some(rate(threads, seconds, &|| {
                            ids[0]
                                .key
                                .sign_with(raw_scheme(algorithm), &payload)
                                .unwrap();
                        }))
                    };
                    // One raw signature per signer, with the signers' keys: the floor for
                    // a message with that many signatures.
                    let floor = |seconds| {
                        Some(rate(threads, seconds, &|| {
                            for id in &ids[..signer_count] {
                                id.key.sign_with(raw_scheme(algorithm), &payload).unwrap();
                            }
                        }))
                    };
                    let keyward = |seconds| {
                        Some(rate(threads, seconds, &|| {
                            keyward_cms::sign(&payload, &signers, false).unwrap();
                        }))
                    };
                    let openssl = |seconds: f64| {
                        let python = python.as_ref().ok()?;
                        let mut command = Command::new(python);
                        command
                            .arg(&script)
                            .arg(&payload_file)
                            .arg(threads.to_string())
                            .arg(seconds.to_string());
                        for (key, cert) in &key_files[..signer_count] {
                            command.arg(key).arg(cert);
                        }
                        let output = command.output().ok()?;
                        String::from_utf8_lossy(&output.stdout)
                            .trim()
                            .parse::<f64>()
                            .ok()
                    };
                    let results = if signer_count == 1 {
                        let results = compare(seconds, &[&raw, &keyward, &openssl]);
                        vec![results[0], results[0], results[1], results[2]]
                    } else {
                        compare(seconds, &[&raw, &floor, &keyward, &openssl])
                    };
                    let [Some(raw), Some(floor), Some(keyward), openssl] = results[..] else {
                        panic!("a signing measurement observed nothing");
                    };
                    println!(
                        "{:<9} {:>7} {:>7} {:>7} {:>9.0} {:>9.0} {:>9.0} {:>9} {:>6.0}% {:>7.0}% {:>8}",
                        name,
                        label,
                        signer_count,
                        threads,
                        raw.0,
                        floor.0,
                        keyward.0,
                        openssl.map_or("-".into(), |o| format!("{:.0}", o.0)),
                        100.0 * keyward.1,
                        100.0 * keyward.1 / floor.1,
                        openssl.map_or("-".into(), |o| format!("{:.2}x", keyward.1 / o.1)),
                    );
                }
            }
        }
    }
}
