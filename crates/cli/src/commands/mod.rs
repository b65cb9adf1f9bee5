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
    dispatch(&ctx, cli)
}

/// Reports the failure of one part of a run that goes on (a profile, a
/// repository): `vault: KEY NAME: message`, or a JSON error object with `KEY`.
pub(crate) fn report_part_failure(json: bool, key: &str, name: &str, e: &CliError) {
    if json {
        let mut obj =
            serde_json::json!({"message_type": "error", "code": e.code, "message": e.message});
        obj[key] = serde_json::Value::from(name);
        eprintln!("{obj}");
    } else {
        eprintln!("vault: {key} {name}: {}", e.message);
    }
}

/// The outcome of a run of several parts: the worst error (highest exit
/// code) if any failed, else a partial snapshot if any was, else success.
pub(crate) fn worst(
    a: Result<Outcome, CliError>,
    b: Result<Outcome, CliError>,
) -> Result<Outcome, CliError> {
    match (a, b) {
        (Err(a), Err(b)) => Err(if b.code > a.code { b } else { a }),
        (Err(a), _) | (_, Err(a)) => Err(a),
        (Ok(Outcome::PartialSnapshot), _) | (_, Ok(Outcome::PartialSnapshot)) => {
            Ok(Outcome::PartialSnapshot)
        }
        _ => Ok(Outcome::Success),
    }
}

/// Records a repository-wide run of `operation` (prune, check) in
/// `--metrics-file`, labelled with this host and no tags. Snapshot, forget
/// and drill record their own per-group series.
pub(crate) fn record_run(
    ctx: &Context<'_>,
    operation: &str,
    started: std::time::Instant,
    ok: bool,
    values: &[(&str, f64)],
    always: &[(&str, f64)],
) {
    if let Some(path) = &ctx.global.metrics_file {
        let repository = ctx.global.repo.as_deref().unwrap_or_default();
        let labels =
            crate::metrics::labels(operation, repository, &crate::context::hostname(), &[]);
        let seconds = started.elapsed().as_secs_f64();
        if let Err(e) = crate::metrics::record_run(path, &labels, seconds, ok, values, always) {
            crate::output::notice(ctx.global.json, "warning", &e.message);
        }
    }
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
