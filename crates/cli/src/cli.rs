//! Command-line definitions (clap derive).
// Doc comments here become `--help` text, so fields that need no help carry none.
#![allow(missing_docs)]

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

const EXIT_CODES: &str = "\
Exit codes:
  0   success
  1   fatal error (the message says what failed and what to do)
  2   invalid command line
  3   snapshot created, but some source files could not be read (listed on stderr)
  10  repository does not exist
  11  repository is locked
  12  wrong password";

/// vault: encrypted, deduplicated backups of files, directory trees and database dumps.
#[derive(Debug, Parser)]
#[command(name = "vault", version, after_help = EXIT_CODES, max_term_width = 100)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command accepts.
#[derive(Clone, Debug, Args)]
pub struct GlobalArgs {
    /// Repository: a directory path, file:///path, or s3://BUCKET/PREFIX (also gs://, az://).
    #[arg(short = 'r', long, env = "VAULT_REPOSITORY", global = true)]
    pub repo: Option<String>,
    /// Read the password from this file (first line).
    #[arg(long, env = "VAULT_PASSWORD_FILE", global = true)]
    pub password_file: Option<PathBuf>,
    /// Run this command (split like a shell would, without a shell) and use its output as the password.
    #[arg(long, env = "VAULT_PASSWORD_COMMAND", global = true)]
    pub password_command: Option<String>,
    /// Directory for the local index cache (default: the user's cache directory, e.g. ~/.cache/vault).
    #[arg(long, env = "VAULT_CACHE_DIR", global = true)]
    pub cache_dir: Option<PathBuf>,
    /// Print machine-readable JSON on stdout.
    #[arg(long, global = true)]
    pub json: bool,
    /// Print only errors and warnings.
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// Worker threads for hashing, compression and encryption (default: one per core).
    #[arg(long, env = "VAULT_THREADS", global = true)]
    pub threads: Option<usize>,
    /// Merge Prometheus metrics of this run (snapshot, forget, prune, check, drill, metrics) into
    /// this file for node_exporter's textfile collector; the file is replaced atomically and
    /// other groups' series are kept.
    #[arg(long, env = "VAULT_METRICS_FILE", global = true)]
    pub metrics_file: Option<PathBuf>,
}

/// Selects snapshots by host, tag and path.
#[derive(Debug, Args, Clone, Default)]
pub struct FilterArgs {
    /// Only snapshots with this tag (repeat to require several).
    #[arg(long = "tag")]
    pub tags: Vec<String>,
    /// Only snapshots of this host (repeatable).
    #[arg(long = "host")]
    pub hosts: Vec<String>,
    /// Only snapshots of this path (repeatable).
    #[arg(long = "path")]
    pub paths: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a new repository.
    Init(InitArgs),
    /// Back up files, directories, standard input or a command's output.
    Snapshot(SnapshotArgs),
    /// List snapshots.
    Snapshots(SnapshotsArgs),
    /// List the files of a snapshot.
    Ls(LsArgs),
    /// Restore a snapshot into a directory.
    Restore(RestoreArgs),
    /// Write one file or stream of a snapshot to standard output.
    Dump(DumpArgs),
    /// Copy snapshots from another repository into this one.
    Copy(CopyArgs),
    /// Remove snapshots by a retention policy (or by id); data is freed by prune.
    Forget(Box<ForgetArgs>),
    /// Verify the repository: structure always, data with --read-data.
    Check(CheckArgs),
    /// Delete data no snapshot uses (after forget).
    Prune(PruneArgs),
    /// Remove stale locks and leases (or all with --remove-all).
    Unlock(UnlockArgs),
    /// Rebuild the index from pack headers, or repair snapshots that lost data.
    #[command(subcommand)]
    Repair(RepairCommand),
    /// Sizes: logical, stored, dedup and compression ratios; for one snapshot, the data only it
    /// references (what forgetting it would free).
    Stats(StatsArgs),
    /// Paths added, removed and changed between two snapshots.
    Diff(DiffArgs),
    /// Print a repository object decoded, as JSON (for debugging).
    Cat(CatArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff), e.g. `vault man > /usr/local/share/man/man1/vault.1`.
    Man,
    /// Manage the passwords (key objects) that open the repository.
    #[command(subcommand)]
    Key(KeyCommand),
    /// Print the repository's state as Prometheus metrics: snapshots and the time of the latest
    /// one per group (host and tags), sizes.
    Metrics,
    /// Restore rehearsal: restore the latest snapshot of each selected group, verifying every
    /// chunk; optionally validate the result with a command; report the time it took (RTO) and
    /// the snapshot's age (RPO).
    Drill(DrillArgs),
}

#[derive(Debug, Args)]
pub struct StatsArgs {
    /// A snapshot (`latest`, an id or a prefix); without it, the whole repository.
    pub snapshot: Option<String>,
    #[command(flatten)]
    pub filter: FilterArgs,
}

#[derive(Debug, Args)]
pub struct DiffArgs {
    /// The older snapshot.
    pub from: String,
    /// The newer snapshot.
    pub to: String,
}

#[derive(Debug, Args)]
pub struct CatArgs {
    /// What to print: config, snapshot, index, key or pack (its header).
    #[arg(value_parser = ["config", "snapshot", "index", "key", "pack"])]
    pub kind: String,
    /// The object's id (not for config); snapshots also take `latest` or a prefix.
    pub id: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// List the key objects (id, who added it, when; `*` marks the one in use).
    List,
    /// Add a key with a new password (from --new-password-file, VAULT_NEW_PASSWORD, or a prompt).
    Add(NewPasswordArgs),
    /// Remove a key (not the one in use, never the last one).
    Remove {
        /// Key id (a unique prefix of at least 4 hex digits is enough).
        id: String,
    },
    /// Change the password of the key in use (adds a key, then removes the old one).
    Passwd(NewPasswordArgs),
}

#[derive(Debug, Args)]
pub struct NewPasswordArgs {
    /// Read the new password from this file (first line).
    #[arg(long, env = "VAULT_NEW_PASSWORD_FILE")]
    pub new_password_file: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct DrillArgs {
    #[command(flatten)]
    pub filter: FilterArgs,
    /// Restore into this directory (default: a temporary directory, removed afterwards).
    #[arg(long)]
    pub target: Option<PathBuf>,
    /// Verify every chunk without writing the files anywhere.
    #[arg(long, conflicts_with = "validate")]
    pub verify_only: bool,
    /// Run this command on each restored snapshot (`{}` is replaced by the restored path of each
    /// file of the snapshot, or by the restore directory when the command has no `{}` per file:
    /// e.g. `pg_restore --list {}`, `redis-check-rdb {}`); a non-zero exit fails the drill.
    #[arg(long)]
    pub validate: Option<String>,
    /// Fail when the latest snapshot of a group is older than this (e.g. 26h, 8d).
    #[arg(long)]
    pub max_age: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum RepairCommand {
    /// Rebuild every index object from the pack headers (after index objects were lost or damaged).
    Index,
    /// Write repaired copies of snapshots that reference lost data, leaving the lost files out.
    Snapshots {
        /// Remove the damaged originals once their repaired copies are written.
        #[arg(long)]
        forget: bool,
        /// Only list what is lost.
        #[arg(short = 'n', long)]
        dry_run: bool,
    },
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// Average chunk size (power of two, 16K..4M; min is a quarter, max four times it).
    #[arg(long, default_value = "1M", value_parser = parse_size)]
    pub chunk_size: u64,
    /// Target pack size.
    #[arg(long, default_value = "16M", value_parser = parse_size)]
    pub pack_size: u64,
    /// Store every chunk whole: no delta compression of similar chunks
    /// (deltas shrink daily database dumps; they cost some backup speed).
    #[arg(long)]
    pub no_delta: bool,
    /// zstd level for new data (-7 to 22; negative levels are faster), or `off`.
    #[arg(long, default_value = "3", allow_hyphen_values = true)]
    pub compression: String,
}

#[derive(Debug, Args)]
pub struct SnapshotArgs {
    /// Files and directories to back up.
    pub paths: Vec<PathBuf>,
    /// Back up standard input as one file.
    #[arg(long, conflicts_with_all = ["paths", "command"])]
    pub stdin: bool,
    /// Run this command and back up its standard output; the snapshot is committed only if it
    /// exits 0. The line is split into words like a POSIX shell would (quotes, backslashes), but no
    /// shell runs: no pipes, redirections, globs or variables (use `sh -c '...'` for those).
    #[arg(long, conflicts_with = "paths")]
    pub command: Option<String>,
    /// Name of the file holding the stream in the snapshot (with --stdin or --command).
    #[arg(long, default_value = "stdin")]
    pub stdin_name: String,
    /// Tag the snapshot (repeatable).
    #[arg(long = "tag")]
    pub tags: Vec<String>,
    /// Host name to record (default: this machine's).
    #[arg(long)]
    pub host: Option<String>,
    /// Snapshot time, RFC 3339 (default: now).
    #[arg(long)]
    pub time: Option<String>,
    /// Re-read all files, even those unchanged since the previous snapshot.
    #[arg(long)]
    pub force: bool,
    /// Packs uploaded at the same time (default: 2 for a local repository, 4 for object stores).
    #[arg(long)]
    pub upload_threads: Option<usize>,
    /// Leave out paths matching this glob (repeatable); without a leading `/` it matches at any
    /// depth (`*.tmp`, `node_modules`).
    #[arg(long = "exclude")]
    pub excludes: Vec<String>,
    /// The TOML file of profiles (see examples/vault.toml).
    #[arg(long, env = "VAULT_CONFIG")]
    pub config: Option<PathBuf>,
    /// Back up what this profile of --config names: its repository, paths (with excludes) or
    /// command, tags and host (repeatable).
    #[arg(long = "profile", conflicts_with_all = ["paths", "stdin", "command"])]
    pub profiles: Vec<String>,
    /// Back up every profile of --config that names paths or a command, one after the other;
    /// a failing profile does not stop the others (the exit code is the worst one).
    #[arg(long, conflicts_with_all = ["paths", "stdin", "command", "profiles"])]
    pub all_profiles: bool,
}

#[derive(Debug, Args)]
pub struct SnapshotsArgs {
    #[command(flatten)]
    pub filter: FilterArgs,
}

#[derive(Debug, Args)]
pub struct LsArgs {
    /// Snapshot: `latest`, an id, or a unique prefix of at least 4 hex digits.
    pub snapshot: String,
    /// Only this path and what is under it.
    pub path: Option<String>,
    /// Show type, mode, size and time.
    #[arg(short, long)]
    pub long: bool,
    #[command(flatten)]
    pub filter: FilterArgs,
}

#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// Snapshot: `latest`, an id, or a unique prefix of at least 4 hex digits.
    pub snapshot: String,
    /// Directory to restore into (created if missing).
    #[arg(short, long)]
    pub target: PathBuf,
    /// Restore only paths matching this glob (repeatable); without a leading `/` it matches at any depth.
    #[arg(long)]
    pub include: Vec<String>,
    #[command(flatten)]
    pub filter: FilterArgs,
}

#[derive(Debug, Args)]
pub struct DumpArgs {
    /// Snapshot: `latest`, an id, or a unique prefix of at least 4 hex digits.
    pub snapshot: String,
    /// File in the snapshot (for a stdin or command snapshot: its --stdin-name).
    pub path: String,
    #[command(flatten)]
    pub filter: FilterArgs,
}

#[derive(Debug, Args)]
pub struct CopyArgs {
    /// The repository to copy from (path, file:// or s3:// URL).
    #[arg(long, env = "VAULT_FROM_REPOSITORY")]
    pub from_repo: String,
    /// Read the source repository's password from this file.
    #[arg(long, env = "VAULT_FROM_PASSWORD_FILE")]
    pub from_password_file: Option<PathBuf>,
    /// Run this command for the source repository's password.
    #[arg(long, env = "VAULT_FROM_PASSWORD_COMMAND")]
    pub from_password_command: Option<String>,
    /// Snapshots to copy (default: all that match the filters).
    pub snapshots: Vec<String>,
    #[command(flatten)]
    pub filter: FilterArgs,
}

/// Retention flags, restic-compatible. N = -1 means unlimited.
#[derive(Debug, Args, Clone, Default)]
pub struct PolicyArgs {
    /// Keep the N newest snapshots.
    #[arg(long, allow_hyphen_values = true, value_name = "N")]
    pub keep_last: Option<i32>,
    /// Keep the newest snapshot of each of the N newest hours.
    #[arg(long, allow_hyphen_values = true, value_name = "N")]
    pub keep_hourly: Option<i32>,
    /// ... of each of the N newest days.
    #[arg(long, allow_hyphen_values = true, value_name = "N")]
    pub keep_daily: Option<i32>,
    /// ... of each of the N newest ISO weeks.
    #[arg(long, allow_hyphen_values = true, value_name = "N")]
    pub keep_weekly: Option<i32>,
    /// ... of each of the N newest months.
    #[arg(long, allow_hyphen_values = true, value_name = "N")]
    pub keep_monthly: Option<i32>,
    /// ... of each of the N newest years.
    #[arg(long, allow_hyphen_values = true, value_name = "N")]
    pub keep_yearly: Option<i32>,
    /// Keep snapshots newer than the group's newest minus DURATION (e.g. 1y6m2d3h).
    #[arg(long, value_name = "DURATION")]
    pub keep_within: Option<String>,
    /// Keep one snapshot per hour within DURATION.
    #[arg(long, value_name = "DURATION")]
    pub keep_within_hourly: Option<String>,
    /// Keep one snapshot per day within DURATION.
    #[arg(long, value_name = "DURATION")]
    pub keep_within_daily: Option<String>,
    /// Keep one snapshot per week within DURATION.
    #[arg(long, value_name = "DURATION")]
    pub keep_within_weekly: Option<String>,
    /// Keep one snapshot per month within DURATION.
    #[arg(long, value_name = "DURATION")]
    pub keep_within_monthly: Option<String>,
    /// Keep one snapshot per year within DURATION.
    #[arg(long, value_name = "DURATION")]
    pub keep_within_yearly: Option<String>,
    /// Keep snapshots with this tag (repeatable).
    #[arg(long = "keep-tag", value_name = "TAG")]
    pub keep_tags: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ForgetArgs {
    /// Snapshots to forget explicitly (instead of a policy).
    pub snapshots: Vec<String>,
    #[command(flatten)]
    pub policy: PolicyArgs,
    /// Group snapshots by any of host, paths, tags before applying the policy.
    #[arg(long, default_value = "host,paths")]
    pub group_by: String,
    #[command(flatten)]
    pub filter: FilterArgs,
    /// Show what would be removed, remove nothing.
    #[arg(short = 'n', long)]
    pub dry_run: bool,
    /// Apply the retention of each profile in this TOML file (see examples/vault.toml), each in
    /// its profile's repository. With snapshot ids, only a --profile's retention applies.
    #[arg(long, env = "VAULT_CONFIG")]
    pub config: Option<PathBuf>,
    /// With --config: only this profile.
    #[arg(long)]
    pub profile: Option<String>,
    /// Prune afterwards.
    #[arg(long)]
    pub prune: bool,
    #[command(flatten)]
    pub prune_opts: PruneOpts,
}

/// How prune repacks.
#[derive(Debug, Args, Clone)]
pub struct PruneOpts {
    /// Repack packs whose unused share exceeds this (e.g. 5%, or `unlimited` to never repack).
    #[arg(long, default_value = "5%")]
    pub max_unused: String,
    /// Repack at most this much used data per run (e.g. 2G).
    #[arg(long, value_parser = parse_size)]
    pub max_repack_size: Option<u64>,
}

#[derive(Debug, Args)]
pub struct PruneArgs {
    #[command(flatten)]
    pub opts: PruneOpts,
    /// Print the plan, change nothing.
    #[arg(short = 'n', long)]
    pub dry_run: bool,
}

#[derive(Debug, Args)]
pub struct UnlockArgs {
    /// Remove every lock and lease, live or not (after making sure no vault process is running).
    #[arg(long)]
    pub remove_all: bool,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Download every pack and verify every blob.
    #[arg(long)]
    pub read_data: bool,
    /// Download and verify a subset: `n/m` (slice n of m, stable) or `P%`.
    #[arg(long, conflicts_with = "read_data")]
    pub read_data_subset: Option<String>,
}

/// Parses `1048576`, `512K`, `1M`, `1G` (binary units).
pub fn parse_size(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let (num, mult) = match s.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => {
            let m = match c.to_ascii_uppercase() {
                'K' => 1 << 10,
                'M' => 1 << 20,
                'G' => 1 << 30,
                _ => return Err(format!("unknown size unit in `{s}` (use K, M or G)")),
            };
            (&s[..i], m)
        }
        _ => (s, 1),
    };
    num.parse::<u64>()
        .map(|n| n * mult)
        .map_err(|_| format!("`{s}` is not a size such as 1M or 512K"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("1M"), Ok(1 << 20));
        assert_eq!(parse_size("512k"), Ok(512 << 10));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert!(parse_size("1X").is_err());
        assert!(parse_size("M").is_err());
    }

    #[test]
    fn definition_is_consistent() {
        Cli::command().debug_assert();
    }
}
