//! `vault forget`

use std::collections::{BTreeMap, BTreeSet};

use vault_core::forget::{GroupBy, GroupPlan};
use vault_core::retention::{KeepDuration, RetentionPolicy};
use vault_core::{SnapshotFilter, SnapshotId};

use crate::cli::{ForgetArgs, PolicyArgs};
use crate::context::Context;
use crate::{CliError, Outcome};

fn duration(s: &Option<String>) -> Result<Option<KeepDuration>, CliError> {
    s.as_deref()
        .map(KeepDuration::parse)
        .transpose()
        .map_err(CliError::from)
}

fn policy(p: &PolicyArgs) -> Result<RetentionPolicy, CliError> {
    Ok(RetentionPolicy {
        keep_last: p.keep_last.unwrap_or(0),
        keep_hourly: p.keep_hourly.unwrap_or(0),
        keep_daily: p.keep_daily.unwrap_or(0),
        keep_weekly: p.keep_weekly.unwrap_or(0),
        keep_monthly: p.keep_monthly.unwrap_or(0),
        keep_yearly: p.keep_yearly.unwrap_or(0),
        keep_within: duration(&p.keep_within)?,
        keep_within_hourly: duration(&p.keep_within_hourly)?,
        keep_within_daily: duration(&p.keep_within_daily)?,
        keep_within_weekly: duration(&p.keep_within_weekly)?,
        keep_within_monthly: duration(&p.keep_within_monthly)?,
        keep_within_yearly: duration(&p.keep_within_yearly)?,
        keep_tags: p.keep_tags.clone(),
    })
}

/// One retention rule: a profile's (or the command line's) policy over the
/// snapshots it selects, in its repository.
struct Rule {
    name: String,
    policy: RetentionPolicy,
    selection: SnapshotFilter,
    /// The profile's own repository (else --repo).
    repository: Option<String>,
    /// Metrics labels: the profile's host (or this one) and tags.
    host: String,
    tags: Vec<String>,
}

/// The rules of the command line and the config file; `default_repo` is
/// `--repo`'s, so a profile naming that same repository joins its pass (a
/// snapshot any rule keeps is kept).
fn rules(
    args: &ForgetArgs,
    filter: &SnapshotFilter,
    default_repo: Option<&str>,
) -> Result<Vec<Rule>, CliError> {
    let mut rules = Vec::new();
    match (&args.config, &args.profile) {
        (None, Some(_)) => {
            return Err(CliError::usage(
                "--profile needs --config FILE (or VAULT_CONFIG); nothing was removed",
            ))
        }
        (None, None) => {}
        // Ids name exactly what to remove: the profiles of a configuration
        // in the environment (VAULT_CONFIG) are not applied unless asked for.
        (Some(_), None) if !args.snapshots.is_empty() => {}
        (Some(path), only) => {
            let cfg = crate::config::load(path)?;
            for (name, p) in &cfg.profiles {
                if only.as_ref().is_some_and(|o| o != name) {
                    continue;
                }
                let Some(r) = &p.retention else { continue };
                let mut f = p.filter();
                if f.tags.is_empty()
                    && f.hosts.is_empty()
                    && f.paths.is_empty()
                    && p.repository.is_none()
                {
                    return Err(CliError::usage(format!(
                        "profile `{name}` in {} selects its snapshots by no tag, host or path and has no repository of its own: \
                         its retention would apply to every snapshot; give it tags; nothing was removed",
                        path.display()
                    )));
                }
                f.tags.extend(filter.tags.iter().cloned());
                f.hosts.extend(filter.hosts.iter().cloned());
                f.paths.extend(filter.paths.iter().cloned());
                rules.push(Rule {
                    name: name.clone(),
                    policy: r.clone(),
                    selection: f,
                    repository: p
                        .repository
                        .clone()
                        .filter(|r| Some(r.as_str()) != default_repo),
                    host: p.host.clone().unwrap_or_else(crate::context::hostname),
                    tags: p.tags.clone(),
                });
            }
            if let Some(only) = only {
                if rules.is_empty() {
                    return Err(CliError::usage(format!(
                        "no profile `{only}` with a retention policy in {}",
                        path.display()
                    )));
                }
            }
        }
    }
    let cli_policy = policy(&args.policy)?;
    if !cli_policy.is_empty() {
        rules.push(Rule {
            name: "command line".into(),
            policy: cli_policy,
            selection: filter.clone(),
            repository: None,
            host: filter
                .hosts
                .first()
                .cloned()
                .unwrap_or_else(crate::context::hostname),
            tags: filter.tags.clone(),
        });
    }
    Ok(rules)
}

pub fn run(ctx: &Context<'_>, args: &ForgetArgs) -> Result<Outcome, CliError> {
    GroupBy::parse(&args.group_by)?;
    let filter = SnapshotFilter::from(&args.filter);
    let rules = rules(args, &filter, ctx.global.repo.as_deref())?;
    if rules.is_empty() && args.snapshots.is_empty() {
        return Err(CliError::usage(
            "refusing to forget: no policy (--keep-*), no --config profile with a retention and no snapshot ids were given, \
             so nothing would be kept; nothing was removed",
        ));
    }
    // Each repository on its own: --repo's (with the ids given), then every
    // one a profile names.
    let mut by_repo: BTreeMap<Option<String>, Vec<&Rule>> = BTreeMap::new();
    by_repo.entry(None).or_default();
    for r in &rules {
        by_repo.entry(r.repository.clone()).or_default().push(r);
    }
    let mut worst = Ok(Outcome::Success);
    for (repository, rules) in by_repo {
        if repository.is_none() && rules.is_empty() && args.snapshots.is_empty() {
            continue;
        }
        let global = crate::context::with_repository(ctx.global, repository.as_deref());
        let ctx = Context { global: &global };
        let started = std::time::Instant::now();
        let result = forget_in(&ctx, args, &filter, &rules, repository.is_none());
        if !args.dry_run {
            record(&ctx, &rules, started, &result);
        }
        let result = result.map(|_| Outcome::Success);
        let result = match result {
            Ok(_) if args.prune => super::prune_run(&ctx, &args.prune_opts, args.dry_run),
            other => other,
        };
        // The others go on; this one is reported now (the worst error is
        // the exit code).
        if let (Err(e), Some(r)) = (&result, &repository) {
            super::report_part_failure(ctx.global.json, "repository", r, e);
        }
        worst = super::worst(worst, result);
    }
    worst
}

/// Per rule, the snapshots it removed; for `--metrics-file`.
type Removed = Vec<(String, u64)>;

fn record(
    ctx: &Context<'_>,
    rules: &[&Rule],
    started: std::time::Instant,
    result: &Result<Removed, CliError>,
) {
    let Some(path) = &ctx.global.metrics_file else {
        return;
    };
    let seconds = started.elapsed().as_secs_f64();
    for rule in rules {
        let repository = ctx.global.repo.as_deref().unwrap_or_default();
        let labels = crate::metrics::labels("forget", repository, &rule.host, &rule.tags);
        let removed = match result {
            Ok(r) => r
                .iter()
                .find(|(n, _)| *n == rule.name)
                .map_or(0, |(_, c)| *c),
            Err(_) => 0,
        };
        let m = crate::metrics::record(
            path,
            &labels,
            seconds,
            result.is_ok(),
            &[("vault_snapshots", removed as f64)],
        );
        if let Err(e) = m {
            crate::output::notice(ctx.global.json, "warning", &e.message);
        }
    }
}

/// Applies `rules` (and, in --repo's repository, the ids given) in one repository.
fn forget_in(
    ctx: &Context<'_>,
    args: &ForgetArgs,
    filter: &SnapshotFilter,
    rules: &[&Rule],
    with_ids: bool,
) -> Result<Removed, CliError> {
    let group_by = GroupBy::parse(&args.group_by)?;
    let repo = ctx.open()?;
    let ids: &[String] = if with_ids { &args.snapshots } else { &[] };

    let mut remove: BTreeSet<SnapshotId> = BTreeSet::new();
    let mut keep: BTreeSet<SnapshotId> = BTreeSet::new();
    let mut report: Vec<(String, GroupPlan)> = Vec::new();
    for spec in ids {
        let (id, _) = repo.find_snapshot(spec, filter)?;
        remove.insert(id);
    }
    for rule in rules {
        for g in repo.forget_plan(&rule.policy, group_by, &rule.selection)? {
            keep.extend(g.keep.iter().map(|s| s.id));
            remove.extend(g.remove.iter().map(|s| s.id));
            report.push((rule.name.clone(), g));
        }
    }
    // A snapshot any rule keeps is kept (explicit ids are always removed).
    let explicit: BTreeSet<SnapshotId> = ids
        .iter()
        .filter_map(|s| repo.find_snapshot(s, filter).ok().map(|(id, _)| id))
        .collect();
    let removed: Vec<SnapshotId> = remove
        .into_iter()
        .filter(|id| explicit.contains(id) || !keep.contains(id))
        .collect();
    let per_rule: Removed = rules
        .iter()
        .map(|r| {
            let n = report
                .iter()
                .filter(|(name, _)| *name == r.name)
                .flat_map(|(_, g)| &g.remove)
                .filter(|s| removed.contains(&s.id))
                .count();
            (r.name.clone(), n as u64)
        })
        .collect();

    if ctx.global.json {
        let groups: Vec<_> = report
            .iter()
            .map(|(name, g)| serde_json::json!({"profile": name, "group": g.group, "keep": g.keep, "remove": g.remove}))
            .collect();
        println!(
            "{}",
            serde_json::json!({"message_type": "forget", "repository": ctx.global.repo, "dry_run": args.dry_run, "groups": groups,
                "removed": removed.iter().map(|i| i.to_hex()).collect::<Vec<_>>()})
        );
    } else if !ctx.global.quiet {
        let mut by_profile: BTreeMap<&str, Vec<&GroupPlan>> = BTreeMap::new();
        for (name, g) in &report {
            by_profile.entry(name).or_default().push(g);
        }
        for (name, groups) in by_profile {
            for g in groups {
                let mut label = vec![format!("policy: {name}")];
                if let Some(h) = &g.group.hostname {
                    label.push(format!("host {h}"));
                }
                if let Some(p) = &g.group.paths {
                    label.push(format!("paths {}", p.join(" ")));
                }
                if let Some(t) = &g.group.tags {
                    label.push(format!("tags {}", t.join(",")));
                }
                println!("{}", label.join(", "));
                for s in &g.keep {
                    println!("  keep    {}  {}  {}", s.id, s.time, s.reasons.join(", "));
                }
                for s in &g.remove {
                    let kept_elsewhere = keep.contains(&s.id) && !explicit.contains(&s.id);
                    let note = if kept_elsewhere {
                        "  (kept by another profile)"
                    } else {
                        ""
                    };
                    println!("  remove  {}  {}{note}", s.id, s.time);
                }
            }
        }
        for id in &explicit {
            println!("  remove  {id}  (given on the command line)");
        }
    }
    if !args.dry_run {
        repo.remove_snapshots(&removed)?;
    }
    if !ctx.global.json && !ctx.global.quiet {
        let verb = if args.dry_run {
            "would remove"
        } else {
            "removed"
        };
        let hint = if args.prune {
            ""
        } else {
            "; run `vault prune` to free the space they alone used"
        };
        let place = ctx
            .global
            .repo
            .as_deref()
            .map(|r| format!(" from {r}"))
            .unwrap_or_default();
        println!("{verb} {} snapshot(s){place}{hint}", removed.len());
    }
    Ok(per_rule)
}
