//! Retention: which snapshots a calendar policy keeps, and why.
//!
//! Pure logic, following restic's documented semantics so that users who
//! migrate keep the same snapshots with the same flags:
//!
//! - Snapshots are considered newest first.
//! - Each `keep-*` bucket (last, hourly, daily, weekly, monthly, yearly) keeps
//!   the newest snapshot of each period until its count is spent; a count of
//!   -1 is unlimited. Periods use the snapshot's own recorded time and offset;
//!   weeks are ISO weeks.
//! - The oldest snapshot is kept by a bucket that still has count left, even
//!   when its period already has a kept snapshot (this keeps the history as
//!   long as the counts allow).
//! - `keep-within D` keeps every snapshot newer than (newest − D), and
//!   `keep-within-daily D` (hourly, weekly, monthly, yearly) keeps one per
//!   period within that span; durations are calendar units (`1y6m2d3h`)
//!   subtracted like Go's `AddDate` (month overflow rolls into the next month).
//! - `keep-tag T` keeps every snapshot carrying tag T; it counts against no bucket.
//!
//! `now` is not an input: `keep-within` is relative to the newest snapshot of
//! the group, so the same repository always gives the same answer.

use std::fmt;

use jiff::civil::Date;
use jiff::tz::{Offset, TimeZone};
use jiff::{Timestamp, ToSpan};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::snapshot::parse_time;

/// A calendar duration such as `1y6m2d3h`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeepDuration {
    /// Years.
    pub years: i32,
    /// Months.
    pub months: i32,
    /// Days.
    pub days: i32,
    /// Hours.
    pub hours: i32,
}

impl KeepDuration {
    /// Parses `1y6m2d3h` (any subset, in any order; each number followed by y, m, d or h).
    pub fn parse(s: &str) -> Result<KeepDuration> {
        let bad = || {
            Error::Invalid(format!(
                "invalid duration `{s}`: use numbers with y, m, d or h, such as 1y6m2d3h or 36h"
            ))
        };
        let mut d = KeepDuration::default();
        let mut num = String::new();
        for c in s.trim().chars() {
            if c.is_ascii_digit() {
                num.push(c);
                continue;
            }
            let n: i32 = num.parse().map_err(|_| bad())?;
            num.clear();
            match c {
                'y' => d.years += n,
                'm' => d.months += n,
                'd' => d.days += n,
                'h' => d.hours += n,
                _ => return Err(bad()),
            }
        }
        if !num.is_empty() || d.is_zero() && !s.trim().chars().any(|c| c.is_ascii_digit()) {
            return Err(bad());
        }
        Ok(d)
    }

    /// True when every part is zero.
    pub fn is_zero(&self) -> bool {
        *self == KeepDuration::default()
    }

    /// `t` minus this duration, computed in `t`'s offset like Go's
    /// `t.AddDate(-y, -m, -d).Add(-h hours)`.
    fn before(&self, t: Timestamp, offset: Offset) -> Timestamp {
        let local = t.to_zoned(TimeZone::fixed(offset)).datetime();
        let months = i64::from(local.year()) * 12 + i64::from(local.month())
            - 1
            - i64::from(self.years) * 12
            - i64::from(self.months);
        let (y, m) = (months.div_euclid(12), months.rem_euclid(12) + 1);
        // Day overflow rolls forward (Go's normalisation): start from the 1st.
        let first = Date::new(y as i16, m as i8, 1).unwrap_or(Date::MIN);
        let day_offset = i64::from(local.day()) - 1 - i64::from(self.days);
        let date = first.checked_add(day_offset.days()).unwrap_or(first);
        let shifted = date.to_datetime(local.time());
        let ts = TimeZone::fixed(offset).to_timestamp(shifted).unwrap_or(t);
        ts.checked_sub(i64::from(self.hours).hours()).unwrap_or(ts)
    }
}

impl fmt::Display for KeepDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut any = false;
        for (n, u) in [
            (self.years, 'y'),
            (self.months, 'm'),
            (self.days, 'd'),
            (self.hours, 'h'),
        ] {
            if n != 0 {
                write!(f, "{n}{u}")?;
                any = true;
            }
        }
        if !any {
            f.write_str("0h")?;
        }
        Ok(())
    }
}

/// What to keep. Counts of -1 mean "all", 0 means the bucket is off.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "kebab-case", deny_unknown_fields)]
pub struct RetentionPolicy {
    /// Keep the N newest snapshots.
    pub keep_last: i32,
    /// Keep the newest snapshot of each of the N newest hours.
    pub keep_hourly: i32,
    /// ... days.
    pub keep_daily: i32,
    /// ... ISO weeks.
    pub keep_weekly: i32,
    /// ... months.
    pub keep_monthly: i32,
    /// ... years.
    pub keep_yearly: i32,
    /// Keep everything newer than the newest snapshot minus this.
    #[serde(with = "opt_duration")]
    pub keep_within: Option<KeepDuration>,
    /// Keep one per hour within this span.
    #[serde(with = "opt_duration")]
    pub keep_within_hourly: Option<KeepDuration>,
    /// Keep one per day within this span.
    #[serde(with = "opt_duration")]
    pub keep_within_daily: Option<KeepDuration>,
    /// Keep one per week within this span.
    #[serde(with = "opt_duration")]
    pub keep_within_weekly: Option<KeepDuration>,
    /// Keep one per month within this span.
    #[serde(with = "opt_duration")]
    pub keep_within_monthly: Option<KeepDuration>,
    /// Keep one per year within this span.
    #[serde(with = "opt_duration")]
    pub keep_within_yearly: Option<KeepDuration>,
    /// Keep every snapshot with one of these tags.
    pub keep_tags: Vec<String>,
}

mod opt_duration {
    use super::KeepDuration;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Option<KeepDuration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_str(&d.to_string()),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<KeepDuration>, D::Error> {
        let s: Option<String> = Option::deserialize(d)?;
        s.map(|s| KeepDuration::parse(&s).map_err(serde::de::Error::custom))
            .transpose()
    }
}

impl RetentionPolicy {
    /// True when the policy keeps nothing by itself (forget must refuse it).
    pub fn is_empty(&self) -> bool {
        [
            self.keep_last,
            self.keep_hourly,
            self.keep_daily,
            self.keep_weekly,
            self.keep_monthly,
            self.keep_yearly,
        ]
        .iter()
        .all(|c| *c == 0)
            && self.within_all().iter().all(|(d, _, _)| d.is_none())
            && self.keep_tags.is_empty()
    }

    fn within_all(&self) -> [(Option<KeepDuration>, Period, &'static str); 6] {
        [
            (self.keep_within, Period::Always, "within"),
            (self.keep_within_hourly, Period::Hour, "within-hourly"),
            (self.keep_within_daily, Period::Day, "within-daily"),
            (self.keep_within_weekly, Period::Week, "within-weekly"),
            (self.keep_within_monthly, Period::Month, "within-monthly"),
            (self.keep_within_yearly, Period::Year, "within-yearly"),
        ]
    }

    /// Applies the policy to one group of snapshots. `items` are (key, time
    /// RFC 3339, tags); the result lists every key once, newest first.
    pub fn apply<K: Clone>(&self, items: &[(K, String, Vec<String>)]) -> Result<Vec<Decision<K>>> {
        let mut list: Vec<(K, Timestamp, Offset, &[String])> = items
            .iter()
            .map(|(k, t, tags)| {
                parse_time(t).map(|(ts, off)| (k.clone(), ts, off, tags.as_slice()))
            })
            .collect::<Result<_>>()?;
        // Newest first; the sort is stable so equal times keep their input order.
        list.sort_by_key(|e| std::cmp::Reverse(e.1));
        if self.is_empty() {
            return Ok(list
                .into_iter()
                .map(|(key, ..)| Decision {
                    key,
                    keep: true,
                    reasons: vec!["no policy".into()],
                })
                .collect());
        }
        let mut buckets = [
            Bucket::new(self.keep_last, Period::Always, "last"),
            Bucket::new(self.keep_hourly, Period::Hour, "hourly"),
            Bucket::new(self.keep_daily, Period::Day, "daily"),
            Bucket::new(self.keep_weekly, Period::Week, "weekly"),
            Bucket::new(self.keep_monthly, Period::Month, "monthly"),
            Bucket::new(self.keep_yearly, Period::Year, "yearly"),
        ];
        let mut within: Vec<(KeepDuration, Bucket)> = self
            .within_all()
            .into_iter()
            .filter_map(|(d, p, name)| d.map(|d| (d, Bucket::new(-1, p, name))))
            .collect();
        let (latest, latest_off) = list
            .first()
            .map(|e| (e.1, e.2))
            .expect("non-empty by construction");
        let last = list.len().saturating_sub(1);
        let mut out = Vec::with_capacity(list.len());
        for (nr, (key, ts, off, tags)) in list.into_iter().enumerate() {
            let mut reasons = Vec::new();
            for t in &self.keep_tags {
                if tags.contains(t) {
                    reasons.push(format!("tag {t}"));
                }
            }
            for b in &mut buckets {
                if b.count != 0 {
                    let val = b.period.key(ts, off, nr);
                    if Some(val) != b.last || nr == last {
                        b.last = Some(val);
                        b.kept += 1;
                        if b.count > 0 {
                            b.count -= 1;
                        }
                        reasons.push(format!("{} #{}", b.name, b.kept));
                    }
                }
            }
            for (d, b) in &mut within {
                if ts > d.before(latest, latest_off) {
                    let val = b.period.key(ts, off, nr);
                    if b.period == Period::Always {
                        reasons.push(format!("within {d}"));
                    } else if Some(val) != b.last || nr == last {
                        b.last = Some(val);
                        b.kept += 1;
                        reasons.push(format!("{} {d} #{}", b.name, b.kept));
                    }
                }
            }
            out.push(Decision {
                key,
                keep: !reasons.is_empty(),
                reasons,
            });
        }
        Ok(out)
    }
}

/// The decision for one snapshot.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Decision<K> {
    /// The snapshot.
    pub key: K,
    /// Kept or removed.
    pub keep: bool,
    /// Why it is kept (`daily #3`, `tag release`, `within 2d`); empty when removed.
    pub reasons: Vec<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Period {
    Always,
    Hour,
    Day,
    Week,
    Month,
    Year,
}

impl Period {
    /// The period a snapshot falls in, in its own offset.
    fn key(self, ts: Timestamp, off: Offset, nr: usize) -> i64 {
        let dt = ts.to_zoned(TimeZone::fixed(off)).datetime();
        let (y, m, d, h) = (
            i64::from(dt.year()),
            i64::from(dt.month()),
            i64::from(dt.day()),
            i64::from(dt.hour()),
        );
        match self {
            Period::Always => nr as i64,
            Period::Hour => ((y * 100 + m) * 100 + d) * 100 + h,
            Period::Day => (y * 100 + m) * 100 + d,
            Period::Week => {
                let w = dt.date().iso_week_date();
                i64::from(w.year()) * 100 + i64::from(w.week())
            }
            Period::Month => y * 100 + m,
            Period::Year => y,
        }
    }
}

struct Bucket {
    count: i32,
    period: Period,
    name: &'static str,
    last: Option<i64>,
    kept: u32,
}

impl Bucket {
    fn new(count: i32, period: Period, name: &'static str) -> Bucket {
        Bucket {
            count,
            period,
            name,
            last: None,
            kept: 0,
        }
    }
}

#[cfg(test)]
mod tests;
