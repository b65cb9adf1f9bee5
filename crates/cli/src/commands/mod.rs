//! One module per subcommand: parse → call the core → render.

mod copy;
mod dump;
mod init;
mod ls;
mod restore;
mod snapshot;
mod snapshots;

use crate::cli::{Cli, Command};
use crate::context::Context;
use crate::{CliError, Outcome};

/// Runs the parsed command line.
pub fn run(cli: &Cli) -> Result<Outcome, CliError> {
    let ctx = Context {
        global: &cli.global,
    };
    match &cli.command {
        Command::Init(a) => init::run(&ctx, a),
        Command::Snapshot(a) => snapshot::run(&ctx, a),
        Command::Snapshots(a) => snapshots::run(&ctx, a),
        Command::Ls(a) => ls::run(&ctx, a),
        Command::Restore(a) => restore::run(&ctx, a),
        Command::Dump(a) => dump::run(&ctx, a),
        Command::Copy(a) => copy::run(&ctx, a),
    }
}
