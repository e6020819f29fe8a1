//! The `keyward` binary: `keyward serve` runs the server; every other command is a client of
//! a server's HTTP API (like the `vault` command line).
//!
//! # Layout
//! - [`cli`]: the command-line definition.
//! - [`serve`]: the server's start-up: data directory, master key, first admin token.
//! - [`commands`]: the client commands.
//! - [`output`]: tables and JSON for the client commands' results.

mod cli;
mod commands;
mod output;
mod serve;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: cli::Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        cli::Command::Serve(args) => serve::run(args).await.map(|()| ExitCode::SUCCESS),
        cli::Command::Node(args) => serve::run_node(args).await.map(|()| ExitCode::SUCCESS),
        cli::Command::Token(cli::TokenCommand::Issue { keystore, role, name, out }) => {
            serve::issue_token(&keystore, &role, &name, out.as_deref()).await.map(|()| ExitCode::SUCCESS)
        }
        command => commands::run(&cli.global, command).await,
    }
}
