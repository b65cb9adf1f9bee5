//! The `vault` command line: a thin layer over `vault-core` that parses
//! arguments, finds the password, renders results and maps errors to
//! documented exit codes.

pub mod cli;
mod commands;
pub mod config;
mod context;
pub mod metrics;
mod output;
mod progress;

use std::process::ExitCode;

use clap::Parser;

/// Exit status of a command that completed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Everything worked.
    Success,
    /// A snapshot was created but some source entries were left out.
    PartialSnapshot,
}

/// An error rendered by `main`, with its exit code.
#[derive(Debug)]
pub struct CliError {
    /// Exit code.
    pub code: u8,
    /// One line for the user.
    pub message: String,
}

impl CliError {
    /// Exit code 1.
    pub fn fatal(message: impl Into<String>) -> Self {
        CliError {
            code: 1,
            message: message.into(),
        }
    }

    /// Exit code 2: the command line is incomplete.
    pub fn usage(message: impl Into<String>) -> Self {
        CliError {
            code: 2,
            message: message.into(),
        }
    }
}

impl From<vault_core::Error> for CliError {
    fn from(e: vault_core::Error) -> Self {
        use vault_core::Error as E;
        let code = match &e {
            E::RepositoryNotFound { .. } => 10,
            E::WrongPassword { .. } => 12,
            E::Locked { .. } => 11,
            _ => 1,
        };
        CliError {
            code,
            message: e.to_string(),
        }
    }
}

impl From<vault_store::StoreError> for CliError {
    fn from(e: vault_store::StoreError) -> Self {
        vault_core::Error::from(e).into()
    }
}

/// Entry point of the `vault` binary.
pub fn main() -> ExitCode {
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        // --help and --version print and succeed; usage errors exit 2, as one
        // JSON object on stderr when --json was asked for.
        Err(e) if e.use_stderr() && std::env::args_os().any(|a| a == "--json") => {
            let message = e.kind().to_string();
            let detail = e.to_string();
            let first = detail
                .lines()
                .find(|l| !l.trim().is_empty())
                .unwrap_or(&message)
                .trim_start_matches("error: ");
            let obj = serde_json::json!({"message_type": "error", "code": 2, "message": first});
            eprintln!("{obj}");
            return ExitCode::from(2);
        }
        Err(e) => e.exit(),
    };
    let json = cli.global.json;
    if let Some(n) = cli.global.threads.filter(|n| *n > 0) {
        // Only fails if a pool exists already, which cannot happen this early.
        let _ = rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build_global();
    }
    match commands::run(&cli) {
        Ok(Outcome::Success) => ExitCode::SUCCESS,
        Ok(Outcome::PartialSnapshot) => ExitCode::from(3),
        Err(e) => {
            if json {
                let obj = serde_json::json!({"message_type": "error", "code": e.code, "message": e.message});
                eprintln!("{obj}");
            } else {
                eprintln!("vault: {}", e.message);
            }
            ExitCode::from(e.code)
        }
    }
}
