//! `vault prune`

use vault_core::prune::PruneOptions;

use crate::cli::PruneOpts;
use crate::context::Context;
use crate::output::bytes;
use crate::{CliError, Outcome};

fn fraction(s: &str) -> Result<f64, CliError> {
    if s == "unlimited" {
        return Ok(f64::INFINITY);
    }
    let v: f64 = s
        .trim_end_matches('%')
        .parse()
        .map_err(|_| CliError::usage(format!("--max-unused `{s}`: use a percentage such as 5%")))?;
    if !(0.0..=100.0).contains(&v) {
        return Err(CliError::usage(format!(
            "--max-unused `{s}` must be between 0% and 100%"
        )));
    }
    Ok(v / 100.0)
}

pub fn run(ctx: &Context<'_>, opts: &PruneOpts, dry_run: bool) -> Result<Outcome, CliError> {
    let started = std::time::Instant::now();
    let mut freed = 0;
    let result = prune(ctx, opts, dry_run, &mut freed);
    if !dry_run {
        super::record_run(
            ctx,
            "prune",
            started,
            result.is_ok(),
            &[("vault_bytes_freed", freed as f64)],
            &[],
        );
    }
    result
}

fn prune(
    ctx: &Context<'_>,
    opts: &PruneOpts,
    dry_run: bool,
    freed: &mut u64,
) -> Result<Outcome, CliError> {
    let repo = ctx.open()?;
    let options = PruneOptions {
        max_unused: fraction(&opts.max_unused)?,
        max_repack_bytes: opts.max_repack_size,
        dry_run,
    };
    let progress = crate::progress::TermProgress::new("prune", ctx.global.quiet, ctx.global.json);
    let r = repo.prune(&options, &progress);
    progress.finish();
    let r = r?;
    *freed = r.bytes_freed;
    crate::output::report_stale(ctx.global.json, &r.stale_removed);
    if ctx.global.json {
        println!(
            "{}",
            serde_json::json!({"message_type": "prune", "report": r})
        );
        return Ok(Outcome::Success);
    }
    if !ctx.global.quiet {
        println!(
            "{} packs, {} of blobs, {} used",
            r.packs,
            bytes(r.bytes_total),
            bytes(r.bytes_used)
        );
        let verb = if dry_run { "would" } else { "will" };
        println!(
            "{verb} delete {} unused packs, repack {} packs, remove {} unreferenced packs, rescue {} blobs: {} freed",
            r.delete.len(),
            r.repack.len(),
            r.unreferenced.len(),
            r.rescued,
            bytes(r.bytes_freed)
        );
        if !dry_run {
            println!("deleted {} packs now", r.deleted_now + r.deleted_pending);
            if r.deferred > 0 {
                println!(
                    "{} packs wait for running backups to finish; the next prune deletes them",
                    r.deferred
                );
            }
        }
    }
    Ok(Outcome::Success)
}
