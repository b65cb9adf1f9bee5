//! Prometheus text-format metrics for the node_exporter textfile collector.
//!
//! `--metrics-file PATH` merges this run's samples into PATH: series with
//! other labels (another operation, host or tag set) are kept, so one file can
//! serve every backup of a host; the file is replaced atomically (written to
//! a temporary file in the same directory, synced, then renamed), so the
//! collector never reads half a file; concurrent runs take turns (a lock
//! file `.NAME.lock` beside it) so none loses another's series. A failed run records its error and duration but
//! keeps the previous `vault_last_success_timestamp_seconds`, which is what an
//! alert on backup age needs.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use crate::CliError;

/// Labels of one series, sorted by name.
pub type Labels = BTreeMap<String, String>;

/// One sample: metric name, labels, value.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    /// Metric name (`vault_...`).
    pub name: String,
    /// Its labels.
    pub labels: Labels,
    /// Its value.
    pub value: f64,
}

/// Help text of the metrics vault writes (also their order in the file).
const HELP: &[(&str, &str)] = &[
    (
        "vault_last_success_timestamp_seconds",
        "Unix time the operation last succeeded.",
    ),
    (
        "vault_last_run_timestamp_seconds",
        "Unix time the operation last ran (success or not).",
    ),
    (
        "vault_last_duration_seconds",
        "Duration of the last run of the operation.",
    ),
    (
        "vault_errors",
        "Errors in the last run of the operation (0 = it succeeded).",
    ),
    (
        "vault_bytes_read",
        "Bytes read from the source (snapshot) or restored (drill) by the last run.",
    ),
    (
        "vault_bytes_added",
        "New plaintext bytes added to the repository by the last run.",
    ),
    (
        "vault_bytes_stored",
        "Bytes stored after compression and encryption by the last run.",
    ),
    ("vault_files", "Files in the snapshot of the last run."),
    (
        "vault_snapshots",
        "Snapshots in the repository (metrics) or removed by the last forget.",
    ),
    (
        "vault_last_snapshot_timestamp_seconds",
        "Unix time of the latest snapshot of the group.",
    ),
    (
        "vault_snapshot_age_seconds",
        "Age of the snapshot a drill restored (the RPO it proves).",
    ),
    (
        "vault_restore_seconds",
        "Time a drill took to restore and verify (the RTO it measured).",
    ),
    (
        "vault_latest_snapshot_bytes",
        "Logical size of the latest snapshot of the group.",
    ),
    ("vault_repository_packs", "Pack objects in the repository."),
    ("vault_repository_blobs", "Blobs in the repository index."),
    (
        "vault_repository_stored_bytes",
        "Bytes of pack objects in the repository.",
    ),
    (
        "vault_bytes_freed",
        "Bytes prune freed (or will free once running backups end).",
    ),
    (
        "vault_check_problems",
        "Problems found by the last check (0 = healthy).",
    ),
];

/// Labels for an operation on a group of snapshots. Every series vault
/// writes carries the same four (`operation`, `repository`, `host`, `tags`),
/// empty where they do not apply, as a metric family's series must.
pub fn labels(operation: &str, repository: &str, host: &str, tags: &[String]) -> Labels {
    let mut tags: Vec<&str> = tags.iter().map(String::as_str).collect();
    tags.sort_unstable();
    tags.dedup();
    let mut l = Labels::new();
    l.insert("operation".into(), operation.into());
    l.insert("repository".into(), repository.into());
    l.insert("host".into(), host.into());
    l.insert("tags".into(), tags.join(","));
    l
}

/// A sample.
pub fn sample(name: &str, labels: &Labels, value: f64) -> Sample {
    Sample {
        name: name.into(),
        labels: labels.clone(),
        value,
    }
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn unescape(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    let mut it = v.chars();
    while let Some(c) = it.next() {
        if c == '\\' {
            match it.next() {
                Some('n') => out.push('\n'),
                Some(o) => out.push(o),
                None => {}
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Renders samples in the text exposition format, grouped by metric with
/// `# HELP` and `# TYPE` lines.
pub fn render(samples: &[Sample]) -> String {
    let mut by_name: BTreeMap<&str, Vec<&Sample>> = BTreeMap::new();
    for s in samples {
        by_name.entry(&s.name).or_default().push(s);
    }
    let order = |n: &str| HELP.iter().position(|(h, _)| *h == n).unwrap_or(usize::MAX);
    let mut names: Vec<&str> = by_name.keys().copied().collect();
    names.sort_by_key(|n| (order(n), n.to_string()));
    let mut out = String::new();
    for name in names {
        let help = HELP
            .iter()
            .find(|(h, _)| *h == name)
            .map_or("vault metric.", |(_, t)| t);
        out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} gauge\n"));
        let mut series = by_name[name].clone();
        series.sort_by(|a, b| a.labels.cmp(&b.labels));
        for s in series {
            let labels: Vec<String> = s
                .labels
                .iter()
                .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
                .collect();
            out.push_str(&format!("{name}{{{}}} {}\n", labels.join(","), s.value));
        }
    }
    out
}

/// Parses what [`render`] writes (comments and unknown lines are skipped).
pub fn parse(text: &str) -> Vec<Sample> {
    text.lines().filter_map(parse_line).collect()
}

fn parse_line(line: &str) -> Option<Sample> {
    if line.starts_with('#') || line.trim().is_empty() {
        return None;
    }
    let (series, value) = line.rsplit_once(' ')?;
    let value: f64 = value.trim().parse().ok()?;
    let (name, rest) = match series.split_once('{') {
        Some((n, r)) => (n, r.strip_suffix('}')?),
        None => (series, ""),
    };
    let mut labels = Labels::new();
    let mut rest = rest;
    while !rest.is_empty() {
        let (k, after) = rest.split_once("=\"")?;
        // The value ends at the first quote not escaped by a backslash.
        let mut end = None;
        let mut escaped = false;
        for (i, c) in after.char_indices() {
            match c {
                '\\' if !escaped => escaped = true,
                '"' if !escaped => {
                    end = Some(i);
                    break;
                }
                _ => escaped = false,
            }
        }
        let end = end?;
        labels.insert(
            k.trim_start_matches(',').to_owned(),
            unescape(&after[..end]),
        );
        rest = after[end + 1..].trim_start_matches(',');
    }
    Some(Sample {
        name: name.to_owned(),
        labels,
        value,
    })
}

/// Merges `new` into the samples of `old`: a new sample replaces the old one
/// of the same name and labels; every other old sample stays unless `stale`
/// says it is this command's and must go (a failed run's byte counts, or a
/// group that no longer exists).
pub fn merge(old: Vec<Sample>, new: &[Sample], stale: impl Fn(&Sample) -> bool) -> Vec<Sample> {
    let mut out: Vec<Sample> = old
        .into_iter()
        .filter(|o| {
            let replaced = new.iter().any(|n| n.name == o.name && n.labels == o.labels);
            !replaced && !stale(o)
        })
        .collect();
    out.extend(new.iter().cloned());
    out
}

/// Merges `new` into the metrics file at `path` (see [`merge`]) and replaces
/// it atomically.
pub fn write_file(
    path: &Path,
    new: &[Sample],
    stale: impl Fn(&Sample) -> bool,
) -> Result<(), CliError> {
    let fail = |what: &str, e: std::io::Error| {
        CliError::fatal(format!(
            "cannot {what} the metrics file {}: {e}",
            path.display()
        ))
    };
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    // Runs of vault from several timers may finish at once: each holds this
    // lock from reading the file to replacing it, so none loses another's
    // series. (The collector reads only `*.prom` files.)
    let name = path
        .file_name()
        .map_or_else(|| "metrics".into(), |n| n.to_string_lossy().into_owned());
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join(format!(".{name}.lock")))
        .map_err(|e| fail("lock", e))?;
    lock.lock().map_err(|e| fail("lock", e))?;
    let old = match std::fs::read_to_string(path) {
        Ok(t) => parse(&t),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(fail("read", e)),
    };
    let text = render(&merge(old, new, stale));
    let mut tmp = tempfile::Builder::new()
        .prefix(".vault-metrics-")
        .tempfile_in(dir)
        .map_err(|e| fail("write", e))?;
    tmp.write_all(text.as_bytes())
        .map_err(|e| fail("write", e))?;
    // The collector runs as another user: the file must be world-readable.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        tmp.as_file()
            .set_permissions(std::fs::Permissions::from_mode(0o644))
            .map_err(|e| fail("write", e))?;
    }
    // Durable before it replaces the old file: after a crash the file is the
    // old or the new one, never empty.
    tmp.as_file().sync_all().map_err(|e| fail("write", e))?;
    tmp.persist(path).map_err(|e| fail("replace", e.error))?;
    drop(lock);
    Ok(())
}

/// Seconds since the Unix epoch, now.
pub fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// Records one run of `operation` for a group: its duration and outcome, and
/// `values` (name, value) when it succeeded. A failure keeps the previous
/// last-success time and drops the previous run's values.
pub fn record(
    path: &Path,
    labels: &Labels,
    seconds: f64,
    ok: bool,
    values: &[(&str, f64)],
) -> Result<(), CliError> {
    record_run(path, labels, seconds, ok, values, &[])
}

/// As [`record`], with `always`: values that describe a failed run as well
/// (the problems a failing check found).
pub fn record_run(
    path: &Path,
    labels: &Labels,
    seconds: f64,
    ok: bool,
    values: &[(&str, f64)],
    always: &[(&str, f64)],
) -> Result<(), CliError> {
    let now = now();
    let mut new = vec![
        sample("vault_last_run_timestamp_seconds", labels, now),
        sample("vault_last_duration_seconds", labels, seconds),
        sample("vault_errors", labels, if ok { 0.0 } else { 1.0 }),
    ];
    if ok {
        new.push(sample("vault_last_success_timestamp_seconds", labels, now));
        new.extend(values.iter().map(|(n, v)| sample(n, labels, *v)));
    }
    new.extend(always.iter().map(|(n, v)| sample(n, labels, *v)));
    let drop: Vec<&str> = values.iter().map(|(n, _)| *n).collect();
    write_file(path, &new, |o| {
        drop.contains(&o.name.as_str()) && o.labels == *labels
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_then_parse_round_trips() {
        let l = labels(
            "snapshot",
            "/srv/repo",
            "db1",
            &["redis".into(), "a\"b".into(), "redis".into()],
        );
        assert_eq!(l["tags"], "a\"b,redis");
        let samples = vec![
            sample("vault_bytes_read", &l, 12345.0),
            sample("vault_last_success_timestamp_seconds", &l, 1.795e9),
            sample("vault_errors", &labels("prune", "", "", &[]), 0.0),
        ];
        let text = render(&samples);
        assert!(text.contains("# TYPE vault_bytes_read gauge"), "{text}");
        assert!(
            text.contains(
                r#"vault_bytes_read{host="db1",operation="snapshot",repository="/srv/repo",tags="a\"b,redis"} 12345"#
            ),
            "{text}"
        );
        let mut back = parse(&text);
        back.sort_by(|a, b| a.name.cmp(&b.name));
        let mut want = samples.clone();
        want.sort_by(|a, b| a.name.cmp(&b.name));
        assert_eq!(back, want);
    }

    #[test]
    fn merge_keeps_other_groups_and_the_last_success_of_a_failure() {
        let redis = labels("snapshot", "/r", "h", &["redis".into()]);
        let pg = labels("snapshot", "/r", "h", &["postgres".into()]);
        let old = vec![
            sample("vault_last_success_timestamp_seconds", &redis, 100.0),
            sample("vault_bytes_read", &redis, 5.0),
            sample("vault_last_success_timestamp_seconds", &pg, 200.0),
        ];
        // A failed redis run: errors 1, success time kept, bytes dropped.
        let new = vec![sample("vault_errors", &redis, 1.0)];
        let merged = merge(old, &new, |o| {
            o.name == "vault_bytes_read" && o.labels == redis
        });
        let find = |n: &str, l: &Labels| {
            merged
                .iter()
                .find(|s| s.name == n && s.labels == *l)
                .map(|s| s.value)
        };
        assert_eq!(
            find("vault_last_success_timestamp_seconds", &redis),
            Some(100.0)
        );
        assert_eq!(
            find("vault_last_success_timestamp_seconds", &pg),
            Some(200.0)
        );
        assert_eq!(find("vault_errors", &redis), Some(1.0));
        assert_eq!(find("vault_bytes_read", &redis), None);
    }

    #[test]
    fn garbage_lines_are_skipped() {
        let s = parse("# comment\nnot a metric\nvault_x{a=\"1\"} nope\nvault_y 3\n");
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].name, "vault_y");
    }

    #[test]
    fn the_file_is_replaced_atomically_and_merged() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("vault.prom");
        let a = labels("snapshot", "/r", "h", &["a".into()]);
        let b = labels("snapshot", "/r", "h", &["b".into()]);
        record(&path, &a, 1.5, true, &[("vault_bytes_read", 10.0)]).unwrap();
        record(&path, &b, 2.5, false, &[("vault_bytes_read", 20.0)]).unwrap();
        let s = parse(&std::fs::read_to_string(&path).unwrap());
        let get = |n: &str, l: &Labels| {
            s.iter()
                .find(|x| x.name == n && x.labels == *l)
                .map(|x| x.value)
        };
        assert_eq!(get("vault_bytes_read", &a), Some(10.0));
        assert_eq!(get("vault_errors", &a), Some(0.0));
        assert_eq!(get("vault_errors", &b), Some(1.0));
        assert_eq!(get("vault_last_success_timestamp_seconds", &b), None);
        assert!(get("vault_last_success_timestamp_seconds", &a).unwrap() > 1.7e9);
        let names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(
            !names.iter().any(|n| n.starts_with(".vault-metrics-")),
            "no temporary file is left behind: {names:?}"
        );
        assert!(names.contains(&"vault.prom".to_owned()), "{names:?}");
    }

    #[test]
    fn concurrent_writers_lose_no_series() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("vault.prom");
        std::thread::scope(|s| {
            for t in 0..8 {
                let path = &path;
                s.spawn(move || {
                    for i in 0..10 {
                        let l = labels("snapshot", "/r", "h", &[format!("group{t}-{i}")]);
                        record(path, &l, 1.0, true, &[("vault_bytes_read", 1.0)]).unwrap();
                    }
                });
            }
        });
        let s = parse(&std::fs::read_to_string(&path).unwrap());
        let groups = s.iter().filter(|x| x.name == "vault_bytes_read").count();
        assert_eq!(groups, 80, "every run's series survived");
    }
}
