//! `vault copy`

use vault_core::{OpenOptions, Repository, SnapshotFilter};

use crate::cli::CopyArgs;
use crate::context::{read_password, Context};
use crate::output::bytes;
use crate::{CliError, Outcome};

pub fn run(ctx: &Context<'_>, args: &CopyArgs) -> Result<Outcome, CliError> {
    let target = ctx.open()?;
    let src_backend = vault_store::open_url(&args.from_repo)?;
    let password = read_password(
        args.from_password_file.as_deref(),
        args.from_password_command.as_deref(),
        "VAULT_FROM_PASSWORD",
        "source repository password",
        false,
    )?;
    let src = Repository::open(
        src_backend,
        &password,
        &OpenOptions {
            cache_dir: ctx.cache_dir(),
            lock_timing: crate::context::lock_timing(),
        },
    )?;
    let filter = SnapshotFilter::from(&args.filter);
    let chosen = if args.snapshots.is_empty() {
        src.list_snapshots()?
            .into_iter()
            .filter(|(_, s)| filter.matches(s))
            .collect()
    } else {
        args.snapshots
            .iter()
            .map(|spec| src.find_snapshot(spec, &filter))
            .collect::<Result<Vec<_>, _>>()?
    };
    let progress = crate::progress::TermProgress::new("copy", ctx.global.quiet, ctx.global.json);
    let sum = target.copy_from(&src, &chosen, &progress);
    progress.finish();
    let sum = sum?;
    crate::output::report_stale(ctx.global.json, &sum.stale_removed);
    if ctx.global.json {
        let copied: Vec<_> = sum
            .copied
            .iter()
            .map(|(from, to)| serde_json::json!({"from": from.to_hex(), "to": to.to_hex()}))
            .collect();
        println!(
            "{}",
            serde_json::json!({"message_type": "summary", "copied": copied, "skipped": sum.skipped.iter().map(|s| s.to_hex()).collect::<Vec<_>>(),
                "blobs_read": sum.blobs_read, "blobs_added": sum.blobs_added, "bytes_stored": sum.bytes_stored})
        );
    } else if !ctx.global.quiet {
        for (from, to) in &sum.copied {
            println!("copied snapshot {from} as {to}");
        }
        println!(
            "{} copied, {} already present; {} blobs read, {} new, {} stored",
            sum.copied.len(),
            sum.skipped.len(),
            sum.blobs_read,
            sum.blobs_added,
            bytes(sum.bytes_stored)
        );
    }
    Ok(Outcome::Success)
}
