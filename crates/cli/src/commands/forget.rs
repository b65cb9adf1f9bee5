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

pub fn run(ctx: &Context<'_>, args: &ForgetArgs) -> Result<Outcome, CliError> {
    let cli_policy = policy(&args.policy)?;
    let group_by = GroupBy::parse(&args.group_by)?;
    let filter = SnapshotFilter::from(&args.filter);
    // (profile name, policy, selection)
    let mut rules: Vec<(String, RetentionPolicy, SnapshotFilter)> = Vec::new();
    if let Some(path) = &args.config {
        let cfg = crate::config::load(path)?;
        for (name, p) in &cfg.profiles {
            if args.profile.as_ref().is_some_and(|only| only != name) {
                continue;
            }
            if let Some(r) = &p.retention {
                let mut f = p.filter();
                f.tags.extend(filter.tags.iter().cloned());
                f.hosts.extend(filter.hosts.iter().cloned());
                f.paths.extend(filter.paths.iter().cloned());
                rules.push((name.clone(), r.clone(), f));
            }
        }
        if let Some(only) = &args.profile {
            if rules.is_empty() {
                return Err(CliError::usage(format!(
                    "no profile `{only}` with a retention policy in {}",
                    path.display()
                )));
            }
        }
    }
    if !cli_policy.is_empty() {
        rules.push(("command line".into(), cli_policy, filter.clone()));
    }
    if rules.is_empty() && args.snapshots.is_empty() {
        return Err(CliError::usage(
            "refusing to forget: no policy (--keep-*), no --config profile with a retention and no snapshot ids were given, \
             so nothing would be kept; nothing was removed",
        ));
    }
    let repo = ctx.open()?;

    let mut remove: BTreeSet<SnapshotId> = BTreeSet::new();
    let mut keep: BTreeSet<SnapshotId> = BTreeSet::new();
    let mut report: Vec<(String, GroupPlan)> = Vec::new();
    for spec in &args.snapshots {
        let (id, _) = repo.find_snapshot(spec, &filter)?;
        remove.insert(id);
    }
    for (name, pol, sel) in &rules {
        for g in repo.forget_plan(pol, group_by, sel)? {
            keep.extend(g.keep.iter().map(|s| s.id));
            remove.extend(g.remove.iter().map(|s| s.id));
            report.push((name.clone(), g));
        }
    }
    // A snapshot any rule keeps is kept (explicit ids are always removed).
    let explicit: BTreeSet<SnapshotId> = args
        .snapshots
        .iter()
        .filter_map(|s| repo.find_snapshot(s, &filter).ok().map(|(id, _)| id))
        .collect();
    let removed: Vec<SnapshotId> = remove
        .into_iter()
        .filter(|id| explicit.contains(id) || !keep.contains(id))
        .collect();

    if ctx.global.json {
        let groups: Vec<_> = report
            .iter()
            .map(|(name, g)| serde_json::json!({"profile": name, "group": g.group, "keep": g.keep, "remove": g.remove}))
            .collect();
        println!(
            "{}",
            serde_json::json!({"message_type": "forget", "dry_run": args.dry_run, "groups": groups,
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
        println!("{verb} {} snapshot(s){hint}", removed.len());
    }
    if args.prune {
        return super::prune_run(ctx, &args.prune_opts, args.dry_run);
    }
    Ok(Outcome::Success)
}
