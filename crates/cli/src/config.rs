//! The TOML configuration file: named profiles, each selecting a stream of
//! snapshots (by tags, host, paths) with its own retention policy.
//!
//! ```toml
//! [profiles.redis]
//! tags = ["redis"]
//! [profiles.redis.retention]
//! keep-within-hourly = "7d"
//! ```

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;
use vault_core::retention::RetentionPolicy;
use vault_core::SnapshotFilter;

use crate::CliError;

/// The whole file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    /// Profiles by name.
    #[serde(default)]
    pub profiles: BTreeMap<String, Profile>,
}

/// One stream of backups.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Profile {
    /// Repository for this profile (overrides --repo when set).
    pub repository: Option<String>,
    /// Tags the profile's snapshots carry (all of them).
    #[serde(default)]
    pub tags: Vec<String>,
    /// Host the snapshots come from.
    pub host: Option<String>,
    /// Paths the snapshots were taken of.
    #[serde(default)]
    pub paths: Vec<String>,
    /// Globs left out of `paths` when `vault snapshot --profile` backs them up.
    #[serde(default)]
    pub excludes: Vec<String>,
    /// A command whose standard output is the stream to back up.
    pub command: Option<String>,
    /// Name of the stream in the snapshot.
    pub stdin_name: Option<String>,
    /// A command run before the backup (e.g. one that asks Typesense for a
    /// snapshot directory); split like a shell would, run without a shell. If
    /// it fails, the profile fails and no snapshot is made.
    pub before: Option<String>,
    /// How long to keep the snapshots.
    pub retention: Option<RetentionPolicy>,
}

impl Profile {
    /// The snapshots this profile owns.
    pub fn filter(&self) -> SnapshotFilter {
        SnapshotFilter {
            hosts: self.host.iter().cloned().collect(),
            tags: self.tags.clone(),
            paths: self.paths.clone(),
        }
    }
}

/// Reads and validates a configuration file.
pub fn load(path: &Path) -> Result<ConfigFile, CliError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| CliError::fatal(format!("cannot read config file {}: {e}", path.display())))?;
    toml::from_str(&text)
        .map_err(|e| CliError::fatal(format!("config file {}: {e}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn example_config_parses_with_four_schedules() {
        let text = include_str!("../../../examples/vault.toml");
        let cfg: ConfigFile = toml::from_str(text).unwrap();
        for name in ["postgres", "redis", "typesense", "config"] {
            let p = &cfg.profiles[name];
            assert!(
                p.retention.as_ref().is_some_and(|r| !r.is_empty()),
                "{name} has a policy"
            );
        }
        let pg = cfg.profiles["postgres"].retention.clone().unwrap();
        assert_eq!(
            (
                pg.keep_daily,
                pg.keep_weekly,
                pg.keep_monthly,
                pg.keep_yearly
            ),
            (7, 4, 12, 5)
        );
    }

    #[test]
    fn typos_are_errors() {
        assert!(toml::from_str::<ConfigFile>("[profiles.x]\ntagz = [\"a\"]").is_err());
        assert!(toml::from_str::<ConfigFile>("[profiles.x.retention]\nkeep-dialy = 3").is_err());
    }
}
