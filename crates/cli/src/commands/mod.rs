//! One module per subcommand: parse → call the core → render.

mod cat;
mod check;
mod copy;
mod drill;
mod dump;
mod forget;
mod init;
mod key;
mod ls;
mod metrics;
mod prune;
mod repair;
mod restore;
mod snapshot;
mod snapshots;
mod stats;
mod unlock;

use crate::cli::{Cli, Command};
use crate::context::Context;
use crate::{CliError, Outcome};

pub(crate) use prune::run as prune_run;

/// Runs the parsed command line.
pub fn run(cli: &Cli) -> Result<Outcome, CliError> {
    let ctx = Context {
        global: &cli.global,
    };
    // Snapshot, drill and metrics record their own (per group) series.
    let operation = match &cli.command {
        Command::Forget(_) => Some("forget"),
        Command::Prune(_) => Some("prune"),
        Command::Check(_) => Some("check"),
        _ => None,
    };
    let started = std::time::Instant::now();
    let result = dispatch(&ctx, cli);
    if let (Some(op), Some(path)) = (operation, &cli.global.metrics_file) {
        let labels = crate::metrics::labels(op, &crate::context::hostname(), &[]);
        let seconds = started.elapsed().as_secs_f64();
        if let Err(e) = crate::metrics::record(path, &labels, seconds, result.is_ok(), &[]) {
            eprintln!("vault: {}", e.message);
        }
    }
    result
}

fn dispatch(ctx: &Context<'_>, cli: &Cli) -> Result<Outcome, CliError> {
    let ctx = Context { global: ctx.global };
    match &cli.command {
        Command::Init(a) => init::run(&ctx, a),
        Command::Snapshot(a) => snapshot::run(&ctx, a),
        Command::Snapshots(a) => snapshots::run(&ctx, a),
        Command::Ls(a) => ls::run(&ctx, a),
        Command::Restore(a) => restore::run(&ctx, a),
        Command::Dump(a) => dump::run(&ctx, a),
        Command::Copy(a) => copy::run(&ctx, a),
        Command::Forget(a) => forget::run(&ctx, a),
        Command::Check(a) => check::run(&ctx, a),
        Command::Prune(a) => prune::run(&ctx, &a.opts, a.dry_run),
        Command::Unlock(a) => unlock::run(&ctx, a),
        Command::Repair(a) => repair::run(&ctx, a),
        Command::Metrics => metrics::run(&ctx),
        Command::Key(a) => key::run(&ctx, a),
        Command::Stats(a) => stats::run(&ctx, a),
        Command::Diff(a) => stats::diff(&ctx, a),
        Command::Cat(a) => cat::run(&ctx, a),
        Command::Completions { shell } => {
            use clap::CommandFactory;
            let mut cmd = Cli::command();
            clap_complete::generate(*shell, &mut cmd, "vault", &mut std::io::stdout());
            Ok(Outcome::Success)
        }
        Command::Man => {
            use clap::CommandFactory;
            clap_mangen::Man::new(Cli::command())
                .render(&mut std::io::stdout())
                .map_err(|e| CliError::fatal(format!("cannot write the manual page: {e}")))?;
            Ok(Outcome::Success)
        }
        Command::Drill(a) => drill::run(&ctx, a),
    }
}
