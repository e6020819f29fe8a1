//! Starting the real `keyward` binary as a server for end-to-end tests.

#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

#![allow(dead_code)] // each test binary uses a different part

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

/// A `keyward serve` process.
pub struct Server {
    pub child: Child,
    pub base: String,
}

impl Server {
    /// Starts `keyward serve` on 127.0.0.1:0 in `data_dir` and waits until it listens.
    pub fn start(data_dir: &Path) -> Self {
        Self::start_with_env(data_dir, &[])
    }

    /// The same, with extra environment variables.
    pub fn start_with_env(data_dir: &Path, env: &[(&str, &str)]) -> Self {
        let mut command = serve_command(data_dir);
        command.envs(env.iter().copied());
        Self::spawn(command)
    }

    /// Starts `keyward node` on 127.0.0.1:0 with `data_dir` (and the environment given,
    /// e.g. the database URL) and waits until it serves.
    pub fn start_node(data_dir: &Path, id: &str, env: &[(&str, &str)]) -> Self {
        let mut command = Command::new(env!("CARGO_BIN_EXE_keyward"));
        command
            .args(["node", "--listen", "127.0.0.1:0", "--id", id, "--data-dir"])
            .arg(data_dir)
            .env_remove("KEYWARD_DATABASE_URL")
            .env_remove("KEYWARD_MASTER_KEY")
            .env("KEYWARD_LOG", "warn")
            .envs(env.iter().copied());
        Self::spawn(command)
    }

    /// Spawns `command` and waits for the line that says where it listens.
    fn spawn(mut command: Command) -> Self {
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start keyward serve");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut lines = BufReader::new(stdout).lines();
        let base = loop {
            let line = lines.next().expect("keyward serve exited before listening").expect("read stdout");
            if let Some(rest) = line.split("listening on ").nth(1).or_else(|| line.split("serving flows on ").nth(1)) {
                break rest.split_whitespace().next().expect("address").to_owned();
            }
        };
        // Keep draining stdout so the server never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Self { child, base }
    }

    /// Kills the server with SIGKILL: no graceful shutdown, no flushing.
    pub fn kill(mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("reap");
    }

    /// Stops the server with SIGTERM and waits for it.
    pub fn stop(mut self) {
        let _ = Command::new("kill").arg("-TERM").arg(self.child.id().to_string()).status();
        self.child.wait().expect("reap");
    }
}

impl Drop for Server {
    /// A server a test did not stop is killed, so no process outlives its test.
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// `keyward serve` on 127.0.0.1:0 in `data_dir`, with no configuration from the environment.
pub fn serve_command(data_dir: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_keyward"));
    command
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data_dir)
        .env_remove("KEYWARD_DATABASE_URL")
        .env_remove("KEYWARD_MASTER_KEY")
        .env("KEYWARD_LOG", "warn");
    command
}

/// The admin token `keyward serve` wrote on first start.
pub fn admin_token(data_dir: &Path) -> String {
    std::fs::read_to_string(data_dir.join("admin.token")).expect("admin.token").trim().to_owned()
}

/// Runs the `keyward` command line against `server` with `token`, in `dir`.
pub fn keyward(server: &Server, token: &str, dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_keyward"))
        .args(args)
        .current_dir(dir)
        .env("KEYWARD_SERVER", &server.base)
        .env("KEYWARD_TOKEN", token)
        .output()
        .unwrap()
}

/// Standard output and standard error of a command, together.
pub fn text(output: &std::process::Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr))
}

/// Writes a key (`STEM.key`) and its chain (`STEM.pem`) that `ca` issues to `cn`.
pub fn issue_files(dir: &Path, ca: &keyward_runtime::testing::Ca, cn: &str, stem: &str) {
    let (key, chain) = ca.issue(cn, None);
    std::fs::write(dir.join(format!("{stem}.key")), keyward_runtime::testing::pem_block("PRIVATE KEY", &key)).unwrap();
    std::fs::write(dir.join(format!("{stem}.pem")), chain.iter().map(|c| c.to_pem()).collect::<String>()).unwrap();
}
