//! `vault snapshot`

use vault_core::{BackupOptions, Source};

use crate::cli::SnapshotArgs;
use crate::context::{hostname, now_rfc3339, username, Context};
use crate::output::{bytes, rate};
use crate::{CliError, Outcome};

/// Set by SIGINT/SIGTERM: the backup stops at the next batch, commits
/// nothing and releases its lease. A second signal exits at once.
fn interrupt_flag() -> std::sync::Arc<std::sync::atomic::AtomicBool> {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let flag = Arc::new(AtomicBool::new(false));
    let f = flag.clone();
    let _ = ctrlc::set_handler(move || {
        if f.swap(true, Ordering::SeqCst) {
            std::process::exit(130);
        }
    });
    flag
}

pub fn run(ctx: &Context<'_>, args: &SnapshotArgs) -> Result<Outcome, CliError> {
    let source = if args.stdin {
        Source::Stream {
            name: args.stdin_name.clone(),
            reader: Box::new(std::io::stdin()),
        }
    } else if let Some(cmd) = &args.command {
        let argv = shell_words::split(cmd)
            .map_err(|e| CliError::usage(format!("cannot parse --command: {e}")))?;
        if argv.is_empty() {
            return Err(CliError::usage("--command is empty"));
        }
        Source::Command {
            name: args.stdin_name.clone(),
            argv,
        }
    } else if args.paths.is_empty() {
        return Err(CliError::usage(
            "nothing to back up: give paths, --stdin or --command",
        ));
    } else {
        Source::Paths(args.paths.clone())
    };
    let time = match &args.time {
        Some(t) => {
            vault_core::snapshot::parse_time(t)?;
            t.clone()
        }
        None => now_rfc3339(),
    };
    let repo = ctx.open()?;
    let opts = BackupOptions {
        hostname: args.host.clone().unwrap_or_else(hostname),
        username: username(),
        tags: args.tags.clone(),
        time,
        force: args.force,
        cancel: Some(interrupt_flag()),
        upload_threads: args.upload_threads.unwrap_or(
            if repo.backend().location().contains("://") {
                4
            } else {
                2
            },
        ),
    };
    let progress = crate::progress::TermProgress::new("read", ctx.global.quiet || ctx.global.json);
    let done = repo.snapshot(source, &opts, &progress);
    progress.finish();
    let done = done?;
    for stale in &done.stale_removed {
        if ctx.global.json {
            eprintln!(
                "{}",
                serde_json::json!({"message_type": "stale_lock_removed", "lock": stale})
            );
        } else {
            eprintln!("vault: removed a stale {stale}");
        }
    }
    for w in &done.warnings {
        if ctx.global.json {
            eprintln!(
                "{}",
                serde_json::json!({"message_type": "warning", "path": w.path, "message": w.message})
            );
        } else {
            eprintln!("warning: {}: {}", w.path.display(), w.message);
        }
    }
    let s = &done.snapshot.summary;
    if ctx.global.json {
        println!(
            "{}",
            serde_json::json!({
                "message_type": "summary",
                "snapshot_id": done.id.to_hex(),
                "short_id": done.id.to_string(),
                "files": s.files,
                "files_unchanged": s.files_unchanged,
                "dirs": s.dirs,
                "bytes_total": s.bytes_total,
                "bytes_read": s.bytes_read,
                "bytes_added": s.bytes_added,
                "bytes_stored": s.bytes_stored,
                "blobs_added": s.blobs_added,
                "blobs_delta": s.blobs_delta,
                "errors": s.errors,
                "duration_seconds": s.duration_seconds,
            })
        );
    } else if !ctx.global.quiet {
        println!("snapshot {} saved", done.id);
        println!(
            "files: {} ({} unchanged), read {}, new {}, stored {}, in {:.2} s ({})",
            s.files,
            s.files_unchanged,
            bytes(s.bytes_read),
            bytes(s.bytes_added),
            bytes(s.bytes_stored),
            s.duration_seconds,
            rate(s.bytes_read, s.duration_seconds)
        );
        if s.blobs_delta > 0 {
            println!(
                "{} of {} new chunks stored as deltas of similar chunks",
                s.blobs_delta, s.blobs_added
            );
        }
    }
    if done.warnings.is_empty() {
        Ok(Outcome::Success)
    } else {
        eprintln!(
            "vault: {} source entr{} could not be read; the snapshot holds everything else",
            done.warnings.len(),
            if done.warnings.len() == 1 { "y" } else { "ies" }
        );
        Ok(Outcome::PartialSnapshot)
    }
}
