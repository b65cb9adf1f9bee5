//! `vault check`

use vault_core::check::ReadData;

use crate::cli::CheckArgs;
use crate::context::Context;
use crate::output::bytes;
use crate::{CliError, Outcome};

pub fn run(ctx: &Context<'_>, args: &CheckArgs) -> Result<Outcome, CliError> {
    let started = std::time::Instant::now();
    let mut problems = None;
    let result = check(ctx, args, &mut problems);
    let always: Vec<(&str, f64)> = problems
        .map(|n| ("vault_check_problems", n as f64))
        .into_iter()
        .collect();
    super::record_run(ctx, "check", started, result.is_ok(), &[], &always);
    result
}

fn check(
    ctx: &Context<'_>,
    args: &CheckArgs,
    problems: &mut Option<usize>,
) -> Result<Outcome, CliError> {
    let read = match (&args.read_data_subset, args.read_data) {
        (Some(s), _) => ReadData::parse_subset(s)?,
        (None, true) => ReadData::All,
        (None, false) => ReadData::None,
    };
    let repo = ctx.open()?;
    let progress = crate::progress::TermProgress::new("check", ctx.global.quiet, ctx.global.json);
    let report = repo.check(read, &progress);
    progress.finish();
    let report = report?;
    *problems = Some(report.problems.len());
    if ctx.global.json {
        println!(
            "{}",
            serde_json::json!({"message_type": "check", "ok": report.is_ok(), "report": report})
        );
    } else {
        for p in &report.problems {
            eprintln!("damaged: {}: {}", p.object, p.message);
            for a in &p.affects {
                eprintln!("  affects {a}");
            }
        }
        if !ctx.global.quiet {
            for i in &report.info {
                println!("info: {i}");
            }
            println!(
                "checked {} snapshots and {} packs ({} read in full, {})",
                report.snapshots,
                report.packs,
                report.packs_read,
                bytes(report.bytes_read)
            );
        }
    }
    if report.is_ok() {
        if !ctx.global.json && !ctx.global.quiet {
            println!("no errors were found");
        }
        Ok(Outcome::Success)
    } else {
        Err(CliError::fatal(format!(
            "the repository is damaged: {} problem(s), listed above",
            report.problems.len()
        )))
    }
}
