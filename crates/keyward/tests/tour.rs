//! The README's five-minute tour, run as written against a fresh server.
//!
//! The shell block between `<!-- tour:start -->` and `<!-- tour:end -->` in README.md is
//! executed with `bash -euo pipefail`, so a tour step that stops working fails this test.

#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

mod support;

use std::path::Path;
use std::process::Command;

use support::Server;

fn tour_script() -> String {
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../README.md")).unwrap();
    let start = readme.find("<!-- tour:start -->").expect("tour start marker");
    let end = readme.find("<!-- tour:end -->").expect("tour end marker");
    readme[start..end]
        .lines()
        .skip(1)
        .filter(|line| !line.starts_with("```"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn readme_tour_works_as_written() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("keyward-data"));
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_keyward")).parent().unwrap().to_owned();
    let path = format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap_or_default());
    let output = Command::new("bash")
        .args(["-euo", "pipefail", "-c", &tour_script()])
        .current_dir(dir.path())
        .env("PATH", path)
        .env("KEYWARD_SERVER", &server.base)
        .env_remove("KEYWARD_TOKEN")
        .output()
        .unwrap();
    server.stop();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "the tour failed:\n--- stdout\n{stdout}\n--- stderr\n{stderr}");
    for expected in [
        "partner-a-client version 1 is active",
        "New keys waiting for activation: partner-a-client",
        "flow client",
        "partner-a-client version 1: active -> retired",
        "partner-a-client version 1: retired -> staged",
        "partner-a-client version 1: staged -> active",
        "verified (every signature valid)",
        "audit log intact",
    ] {
        assert!(stdout.contains(expected), "tour output lacks {expected:?}:\n{stdout}");
    }
}
