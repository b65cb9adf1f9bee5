//! `vault snapshot`

use vault_core::{BackupOptions, Source};

use crate::cli::SnapshotArgs;
use crate::context::{hostname, now_rfc3339, username, Context};
use crate::output::{bytes, rate};
use crate::{CliError, Outcome};

/// Set by SIGINT/SIGTERM: the backup stops at the next batch, commits
/// nothing and releases its lease. A second signal exits at once.
/// One flag per process: with `--all-profiles`, a signal also stops the
/// profiles not yet run.
fn interrupt_flag() -> std::sync::Arc<std::sync::atomic::AtomicBool> {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, OnceLock};
    static FLAG: OnceLock<Arc<AtomicBool>> = OnceLock::new();
    FLAG.get_or_init(|| {
        let flag = Arc::new(AtomicBool::new(false));
        let f = flag.clone();
        let _ = ctrlc::set_handler(move || {
            if f.swap(true, Ordering::SeqCst) {
                std::process::exit(130);
            }
        });
        flag
    })
    .clone()
}

/// What one backup takes: from the command line, or from a profile.
struct Job {
    /// Profile name, when from --config.
    profile: Option<String>,
    /// Repository override (a profile's `repository`).
    repository: Option<String>,
    source: SourceSpec,
    tags: Vec<String>,
    host: Option<String>,
    excludes: Vec<String>,
    /// A profile's `before` command.
    before: Option<String>,
}

enum SourceSpec {
    Stdin(String),
    Command(String, String),
    Paths(Vec<std::path::PathBuf>),
}

impl Job {
    fn from_args(args: &SnapshotArgs) -> Result<Job, CliError> {
        let source = if args.stdin {
            SourceSpec::Stdin(args.stdin_name.clone())
        } else if let Some(cmd) = &args.command {
            SourceSpec::Command(cmd.clone(), args.stdin_name.clone())
        } else if args.paths.is_empty() {
            return Err(CliError::usage(
                "nothing to back up: give paths, --stdin, --command, or --profile/--all-profiles with --config",
            ));
        } else {
            SourceSpec::Paths(args.paths.clone())
        };
        Ok(Job {
            profile: None,
            repository: None,
            source,
            tags: args.tags.clone(),
            host: args.host.clone(),
            excludes: args.excludes.clone(),
            before: None,
        })
    }

    fn from_profile(
        name: &str,
        p: &crate::config::Profile,
        args: &SnapshotArgs,
    ) -> Result<Job, CliError> {
        let stdin_name = p
            .stdin_name
            .clone()
            .unwrap_or_else(|| format!("{name}.stream"));
        let source = match (&p.command, p.paths.is_empty()) {
            (Some(cmd), true) => SourceSpec::Command(cmd.clone(), stdin_name),
            (None, false) => SourceSpec::Paths(p.paths.iter().map(Into::into).collect()),
            (Some(_), false) => {
                return Err(CliError::usage(format!(
                    "profile `{name}` names both a command and paths: give one"
                )))
            }
            (None, true) => {
                return Err(CliError::usage(format!(
                    "profile `{name}` names neither paths nor a command: nothing to back up"
                )))
            }
        };
        let mut tags = p.tags.clone();
        tags.extend(args.tags.iter().cloned());
        let mut excludes = p.excludes.clone();
        excludes.extend(args.excludes.iter().cloned());
        Ok(Job {
            profile: Some(name.to_owned()),
            repository: p.repository.clone(),
            source,
            tags,
            host: args.host.clone().or_else(|| p.host.clone()),
            excludes,
            before: p.before.clone(),
        })
    }
}

pub fn run(ctx: &Context<'_>, args: &SnapshotArgs) -> Result<Outcome, CliError> {
    if args.profiles.is_empty() && !args.all_profiles {
        return run_job(ctx, args, &Job::from_args(args)?);
    }
    let path = args.config.as_ref().ok_or_else(|| {
        CliError::usage("--profile and --all-profiles need --config FILE (or VAULT_CONFIG)")
    })?;
    let cfg = crate::config::load(path)?;
    let names: Vec<String> = if args.all_profiles {
        cfg.profiles
            .iter()
            .filter(|(_, p)| p.command.is_some() || !p.paths.is_empty())
            .map(|(n, _)| n.clone())
            .collect()
    } else {
        args.profiles.clone()
    };
    if names.is_empty() {
        return Err(CliError::usage(format!(
            "no profile in {} names paths or a command",
            path.display()
        )));
    }
    let mut jobs = Vec::new();
    for name in &names {
        let p = cfg
            .profiles
            .get(name)
            .ok_or_else(|| CliError::usage(format!("no profile `{name}` in {}", path.display())))?;
        jobs.push(Job::from_profile(name, p, args)?);
    }
    // Every profile runs; the worst outcome decides the exit code.
    let mut worst: Result<Outcome, CliError> = Ok(Outcome::Success);
    let mut failed = 0;
    for job in &jobs {
        let r = if interrupt_flag().load(std::sync::atomic::Ordering::SeqCst) {
            Err(CliError::fatal(
                "interrupted before it started; nothing was committed",
            ))
        } else {
            run_job(ctx, args, job)
        };
        if let Err(e) = &r {
            failed += 1;
            let name = job.profile.as_deref().unwrap_or("");
            super::report_part_failure(ctx.global.json, "profile", name, e);
        }
        worst = super::worst(worst, r);
    }
    worst.map_err(|e| CliError {
        code: e.code,
        message: format!(
            "{failed} of {} profiles failed (see above); the worst: {}",
            jobs.len(),
            e.message
        ),
    })
}

/// Runs one backup and records its metrics (success or failure).
fn run_job(ctx: &Context<'_>, args: &SnapshotArgs, job: &Job) -> Result<Outcome, CliError> {
    let started = std::time::Instant::now();
    let host = job.host.clone().unwrap_or_else(hostname);
    let result = backup(ctx, args, job, &host);
    if let Some(path) = &ctx.global.metrics_file {
        let repository = job
            .repository
            .as_deref()
            .or(ctx.global.repo.as_deref())
            .unwrap_or_default();
        let labels = crate::metrics::labels("snapshot", repository, &host, &job.tags);
        let seconds = started.elapsed().as_secs_f64();
        let m = match &result {
            Ok((_, s)) => crate::metrics::record(
                path,
                &labels,
                seconds,
                true,
                &[
                    ("vault_bytes_read", s.bytes_read as f64),
                    ("vault_bytes_added", s.bytes_added as f64),
                    ("vault_bytes_stored", s.bytes_stored as f64),
                    ("vault_files", s.files as f64),
                ],
            ),
            Err(_) => crate::metrics::record(
                path,
                &labels,
                seconds,
                false,
                &[
                    ("vault_bytes_read", 0.0),
                    ("vault_bytes_added", 0.0),
                    ("vault_bytes_stored", 0.0),
                    ("vault_files", 0.0),
                ],
            ),
        };
        if let Err(e) = m {
            crate::output::notice(ctx.global.json, "warning", &e.message);
        }
    }
    result.map(|(o, _)| o)
}

/// Runs a profile's `before` command; its output goes to stderr (stdout is
/// vault's own, JSON with `--json`).
fn run_before(profile: &str, cmd: &str) -> Result<(), CliError> {
    let argv = shell_words::split(cmd)
        .map_err(|e| CliError::usage(format!("profile `{profile}`: cannot parse `before`: {e}")))?;
    let (prog, rest) = argv
        .split_first()
        .ok_or_else(|| CliError::usage(format!("profile `{profile}`: `before` is empty")))?;
    let status = std::process::Command::new(prog)
        .args(rest)
        .stdin(std::process::Stdio::null())
        .stdout(std::io::stderr())
        .status()
        .map_err(|e| {
            CliError::fatal(format!(
                "profile `{profile}`: the before command `{cmd}` could not be started: {e}; no snapshot was created"
            ))
        })?;
    if !status.success() {
        return Err(CliError::fatal(format!(
            "profile `{profile}`: the before command `{cmd}` failed ({status}); no snapshot was created"
        )));
    }
    Ok(())
}

fn backup(
    ctx: &Context<'_>,
    args: &SnapshotArgs,
    job: &Job,
    host: &str,
) -> Result<(Outcome, vault_core::Summary), CliError> {
    if let Some(cmd) = &job.before {
        run_before(job.profile.as_deref().unwrap_or(""), cmd)?;
    }
    let source = match &job.source {
        SourceSpec::Stdin(name) => Source::Stream {
            name: name.clone(),
            reader: Box::new(std::io::stdin()),
        },
        SourceSpec::Command(cmd, name) => {
            let argv = shell_words::split(cmd)
                .map_err(|e| CliError::usage(format!("cannot parse --command: {e}")))?;
            if argv.is_empty() {
                return Err(CliError::usage("--command is empty"));
            }
            Source::Command {
                name: name.clone(),
                argv,
            }
        }
        SourceSpec::Paths(p) => Source::Paths(p.clone()),
    };
    let time = match &args.time {
        Some(t) => {
            vault_core::snapshot::parse_time(t)?;
            t.clone()
        }
        None => now_rfc3339(),
    };
    let global = crate::context::with_repository(ctx.global, job.repository.as_deref());
    let ctx = Context { global: &global };
    let repo = ctx.open()?;
    let opts = BackupOptions {
        hostname: host.to_owned(),
        username: username(),
        tags: job.tags.clone(),
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
        excludes: job.excludes.clone(),
    };
    let progress =
        crate::progress::TermProgress::new("snapshot", ctx.global.quiet, ctx.global.json);
    let done = repo.snapshot(source, &opts, &progress);
    progress.finish();
    let done = done?;
    crate::output::report_stale(ctx.global.json, &done.stale_removed);
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
                "profile": job.profile,
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
                "packs_resumed": done.resumed_packs,
                "errors": s.errors,
                "duration_seconds": s.duration_seconds,
            })
        );
    } else if !ctx.global.quiet {
        match &job.profile {
            Some(p) => println!("snapshot {} of profile {p} saved", done.id),
            None => println!("snapshot {} saved", done.id),
        }
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
        if done.resumed_packs > 0 {
            println!(
                "reused {} pack(s) an interrupted backup had stored",
                done.resumed_packs
            );
        }
        if s.blobs_delta > 0 {
            println!(
                "{} of {} new chunks stored as deltas of similar chunks",
                s.blobs_delta, s.blobs_added
            );
        }
    }
    if done.warnings.is_empty() {
        Ok((Outcome::Success, s.clone()))
    } else {
        crate::output::notice(
            ctx.global.json,
            "warning",
            &format!(
                "{} source entr{} could not be read; the snapshot holds everything else",
                done.warnings.len(),
                if done.warnings.len() == 1 { "y" } else { "ies" }
            ),
        );
        Ok((Outcome::PartialSnapshot, s.clone()))
    }
}
