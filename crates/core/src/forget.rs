//! Forget: apply a retention policy per group of snapshots, then remove the
//! snapshot objects it does not keep. Only snapshot objects are touched; the
//! data they alone referenced is given back by prune.

use serde::Serialize;
use vault_store::{FileType, Handle};

use crate::error::Result;
use crate::id::SnapshotId;
use crate::repository::Repository;
use crate::retention::RetentionPolicy;
use crate::snapshot::{Snapshot, SnapshotFilter};

/// What snapshots are grouped by before a policy applies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct GroupBy {
    /// By host name.
    pub host: bool,
    /// By the set of paths.
    pub paths: bool,
    /// By the set of tags.
    pub tags: bool,
}

impl Default for GroupBy {
    fn default() -> Self {
        GroupBy {
            host: true,
            paths: true,
            tags: false,
        }
    }
}

impl GroupBy {
    /// Parses `host,paths,tags` (any subset; empty means one group).
    pub fn parse(s: &str) -> Result<GroupBy> {
        let mut g = GroupBy {
            host: false,
            paths: false,
            tags: false,
        };
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            match part {
                "host" => g.host = true,
                "paths" | "path" => g.paths = true,
                "tags" | "tag" => g.tags = true,
                other => {
                    return Err(crate::Error::Invalid(format!(
                        "--group-by `{other}`: use any of host, paths, tags"
                    )))
                }
            }
        }
        Ok(g)
    }

    fn key(&self, s: &Snapshot) -> GroupKey {
        let mut paths = s.paths.clone();
        paths.sort();
        let mut tags = s.tags.clone();
        tags.sort();
        GroupKey {
            hostname: self.host.then(|| s.hostname.clone()),
            paths: self.paths.then_some(paths),
            tags: self.tags.then_some(tags),
        }
    }
}

/// The values a group shares.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct GroupKey {
    /// Host, when grouping by host.
    pub hostname: Option<String>,
    /// Paths, when grouping by paths.
    pub paths: Option<Vec<String>>,
    /// Tags, when grouping by tags.
    pub tags: Option<Vec<String>>,
}

/// One snapshot in a plan.
#[derive(Clone, Debug, Serialize)]
pub struct PlannedSnapshot {
    /// Its id.
    pub id: SnapshotId,
    /// Its time.
    pub time: String,
    /// Why it is kept (empty when removed).
    pub reasons: Vec<String>,
}

/// The decisions for one group.
#[derive(Clone, Debug, Serialize)]
pub struct GroupPlan {
    /// What the group shares.
    pub group: GroupKey,
    /// Kept, newest first.
    pub keep: Vec<PlannedSnapshot>,
    /// Removed, newest first.
    pub remove: Vec<PlannedSnapshot>,
}

impl Repository {
    /// Groups the snapshots passing `filter` and applies `policy` to each group.
    pub fn forget_plan(
        &self,
        policy: &RetentionPolicy,
        group_by: GroupBy,
        filter: &SnapshotFilter,
    ) -> Result<Vec<GroupPlan>> {
        let snaps: Vec<(SnapshotId, Snapshot)> = self
            .list_snapshots()?
            .into_iter()
            .filter(|(_, s)| filter.matches(s))
            .collect();
        plan(&snaps, policy, group_by)
    }

    /// Deletes snapshot objects. Data is left for prune.
    pub fn remove_snapshots(&self, ids: &[SnapshotId]) -> Result<()> {
        for id in ids {
            self.backend()
                .delete(&Handle::new(FileType::Snapshot, id.to_hex())?)?;
        }
        Ok(())
    }
}

/// Pure planning over already-loaded snapshots.
pub fn plan(
    snaps: &[(SnapshotId, Snapshot)],
    policy: &RetentionPolicy,
    group_by: GroupBy,
) -> Result<Vec<GroupPlan>> {
    let mut groups: std::collections::BTreeMap<GroupKey, Vec<&(SnapshotId, Snapshot)>> =
        Default::default();
    for s in snaps {
        groups.entry(group_by.key(&s.1)).or_default().push(s);
    }
    let mut out = Vec::new();
    for (group, members) in groups {
        let items: Vec<(SnapshotId, String, Vec<String>)> = members
            .iter()
            .map(|(id, s)| (*id, s.time.clone(), s.tags.clone()))
            .collect();
        let decisions = policy.apply(&items)?;
        let mut keep = Vec::new();
        let mut remove = Vec::new();
        for d in decisions {
            let time = members
                .iter()
                .find(|(id, _)| *id == d.key)
                .map(|(_, s)| s.time.clone())
                .unwrap_or_default();
            let p = PlannedSnapshot {
                id: d.key,
                time,
                reasons: d.reasons,
            };
            if d.keep {
                keep.push(p);
            } else {
                remove.push(p);
            }
        }
        out.push(GroupPlan {
            group,
            keep,
            remove,
        });
    }
    Ok(out)
}
