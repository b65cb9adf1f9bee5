//! Table-driven policy tests; every expected keep set was worked out by hand
//! (the comment on each case says how).

use proptest::prelude::*;

use super::*;

fn p() -> RetentionPolicy {
    RetentionPolicy::default()
}

fn d(s: &str) -> Option<KeepDuration> {
    Some(KeepDuration::parse(s).unwrap())
}

/// Applies `policy` to `times` (newest first, optional `#tag` suffix) and
/// returns which were kept, in the same order.
fn keeps(policy: &RetentionPolicy, times: &[&str]) -> Vec<bool> {
    let items: Vec<(usize, String, Vec<String>)> = times
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let mut parts = t.split('#');
            let time = parts.next().unwrap().to_owned();
            (i, time, parts.map(str::to_owned).collect())
        })
        .collect();
    let decisions = policy.apply(&items).unwrap();
    let mut out = vec![false; times.len()];
    for dd in decisions {
        out[dd.key] = dd.keep;
    }
    out
}

fn reasons(policy: &RetentionPolicy, times: &[&str]) -> Vec<Vec<String>> {
    let items: Vec<(usize, String, Vec<String>)> = times
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let mut parts = t.split('#');
            (
                i,
                parts.next().unwrap().to_owned(),
                parts.map(str::to_owned).collect(),
            )
        })
        .collect();
    let mut out = vec![Vec::new(); times.len()];
    for dd in policy.apply(&items).unwrap() {
        out[dd.key] = dd.reasons;
    }
    out
}

const T: bool = true;
const F: bool = false;

/// Two snapshots a day, 2026-01-01..04, newest first.
const TWICE_DAILY: [&str; 8] = [
    "2026-01-04T18:00:00Z",
    "2026-01-04T09:00:00Z",
    "2026-01-03T18:00:00Z",
    "2026-01-03T09:00:00Z",
    "2026-01-02T18:00:00Z",
    "2026-01-02T09:00:00Z",
    "2026-01-01T18:00:00Z",
    "2026-01-01T09:00:00Z",
];

#[test]
fn policy_cases() {
    #[rustfmt::skip]
    let cases: Vec<(&str, RetentionPolicy, Vec<&str>, Vec<bool>)> = vec![
        // 1. The three newest.
        ("last 3", RetentionPolicy { keep_last: 3, ..p() }, TWICE_DAILY.to_vec(), vec![T, T, T, F, F, F, F, F]),
        // 2. More count than snapshots: all.
        ("last 20", RetentionPolicy { keep_last: 20, ..p() }, TWICE_DAILY.to_vec(), vec![T; 8]),
        // 3. Unlimited last: all.
        ("last -1", RetentionPolicy { keep_last: -1, ..p() }, TWICE_DAILY.to_vec(), vec![T; 8]),
        // 4. Newest of each of the 3 newest days; count spent before the oldest.
        ("daily 3", RetentionPolicy { keep_daily: 3, ..p() }, TWICE_DAILY.to_vec(), vec![T, F, T, F, T, F, F, F]),
        // 5. Count left at the oldest: newest per day (4) and the oldest itself.
        ("daily 10 keeps oldest", RetentionPolicy { keep_daily: 10, ..p() }, TWICE_DAILY.to_vec(), vec![T, F, T, F, T, F, T, T]),
        // 6. Exactly 4 days with count 4: the 4th day's newest spends the count; oldest not kept.
        ("daily 4", RetentionPolicy { keep_daily: 4, ..p() }, TWICE_DAILY.to_vec(), vec![T, F, T, F, T, F, T, F]),
        // 7. Unlimited daily: newest per day plus the oldest.
        ("daily -1", RetentionPolicy { keep_daily: -1, ..p() }, TWICE_DAILY.to_vec(), vec![T, F, T, F, T, F, T, T]),
        // 8. Empty periods do not consume counts: gaps between days are skipped.
        ("daily 3 with gaps", RetentionPolicy { keep_daily: 3, ..p() },
            vec!["2026-01-10T00:00:00Z", "2026-01-05T00:00:00Z", "2026-01-01T00:00:00Z"], vec![T, T, T]),
        // 9. Hourly: 10:50 (hour 10), 10:10 same hour, 09:30, count spent.
        ("hourly 2", RetentionPolicy { keep_hourly: 2, ..p() },
            vec!["2026-01-01T10:50:00Z", "2026-01-01T10:10:00Z", "2026-01-01T09:30:00Z", "2026-01-01T08:00:00Z"], vec![T, F, T, F]),
        // 10. Hourly across midnight: 00:10 and 23:50 are different hours (and days).
        ("hourly across midnight", RetentionPolicy { keep_hourly: 2, ..p() },
            vec!["2026-01-02T00:10:00Z", "2026-01-01T23:50:00Z", "2026-01-01T23:10:00Z"], vec![T, T, F]),
        // 11. ISO weeks: W02 = Jan 5..11 2026, W01 = Dec 29 2025..Jan 4 2026.
        ("weekly 2 ISO", RetentionPolicy { keep_weekly: 2, ..p() },
            vec!["2026-01-11T12:00:00Z", "2026-01-05T12:00:00Z", "2026-01-04T12:00:00Z", "2025-12-29T12:00:00Z"], vec![T, F, T, F]),
        // 12. Sunday and the following Monday are in different ISO weeks.
        ("weekly Monday starts a week", RetentionPolicy { keep_weekly: 2, ..p() },
            vec!["2026-01-12T01:00:00Z", "2026-01-11T23:00:00Z", "2026-01-10T23:00:00Z"], vec![T, T, F]),
        // 13. ISO week 53 of 2020 (Dec 28 2020..Jan 3 2021): Jan 3 2021 and Dec 28 2020 share it.
        ("weekly week 53", RetentionPolicy { keep_weekly: 3, ..p() },
            vec!["2021-01-04T12:00:00Z", "2021-01-03T12:00:00Z", "2020-12-28T12:00:00Z", "2020-12-27T12:00:00Z"], vec![T, T, F, T]),
        // 14. Monthly, several per month.
        ("monthly 2", RetentionPolicy { keep_monthly: 2, ..p() },
            vec!["2026-03-20T00:00:00Z", "2026-03-01T00:00:00Z", "2026-02-27T00:00:00Z", "2026-02-01T00:00:00Z", "2026-01-31T00:00:00Z"], vec![T, F, T, F, F]),
        // 15. Monthly across a year boundary.
        ("monthly across years", RetentionPolicy { keep_monthly: 2, ..p() },
            vec!["2026-01-15T00:00:00Z", "2025-12-20T00:00:00Z", "2025-12-01T00:00:00Z"], vec![T, T, F]),
        // 16. Yearly across a year boundary one hour apart.
        ("yearly boundary", RetentionPolicy { keep_yearly: 1, ..p() },
            vec!["2026-01-01T00:30:00Z", "2025-12-31T23:30:00Z"], vec![T, F]),
        // 17. Yearly unlimited: newest per year plus the oldest.
        ("yearly -1", RetentionPolicy { keep_yearly: -1, ..p() },
            vec!["2026-05-01T00:00:00Z", "2026-01-01T00:00:00Z", "2025-07-01T00:00:00Z", "2024-03-01T00:00:00Z", "2024-01-01T00:00:00Z"], vec![T, F, T, T, T]),
        // 18. The snapshot's own offset decides the year: 2025-12-31T23:30-02:00 is in 2025 locally
        //     (2026 in UTC), so yearly 2 keeps it and the count is spent before June 2025.
        ("yearly uses recorded offset", RetentionPolicy { keep_yearly: 2, ..p() },
            vec!["2026-01-01T10:00:00Z", "2025-12-31T23:30:00-02:00", "2025-06-01T00:00:00Z"], vec![T, T, F]),
        // 19. DST: 00:30+01:00 and 23:30+02:00 are the same local day (Mar 29 2026, CET->CEST),
        //     though different UTC days; daily 2 keeps the newest of Mar 29 and Mar 28.
        ("daily across DST change", RetentionPolicy { keep_daily: 2, ..p() },
            vec!["2026-03-29T23:30:00+02:00", "2026-03-29T00:30:00+01:00", "2026-03-28T12:00:00+01:00"], vec![T, F, T]),
        // 20. Hourly across the DST jump: 03:10+02:00 and 01:50+01:00 are different local hours.
        ("hourly across DST", RetentionPolicy { keep_hourly: 3, ..p() },
            vec!["2026-03-29T03:10:00+02:00", "2026-03-29T01:50:00+01:00", "2026-03-29T01:10:00+01:00"], vec![T, T, T]),
        // 21. within 2d of the newest (Jan 10 12:00): after Jan 8 12:00, strictly.
        ("within 2d edge", RetentionPolicy { keep_within: d("2d"), ..p() },
            vec!["2026-01-10T12:00:00Z", "2026-01-09T00:00:00Z", "2026-01-08T12:00:01Z", "2026-01-08T12:00:00Z", "2026-01-08T11:59:00Z"], vec![T, T, T, F, F]),
        // 22. within 3h.
        ("within 3h", RetentionPolicy { keep_within: d("3h"), ..p() },
            vec!["2026-01-10T12:00:00Z", "2026-01-10T09:30:00Z", "2026-01-10T09:00:00Z"], vec![T, T, F]),
        // 23. within 1m from Mar 31: Feb 31 rolls over to Mar 3 (Go AddDate), so Mar 3 00:00 is the edge.
        ("within 1m month overflow", RetentionPolicy { keep_within: d("1m"), ..p() },
            vec!["2026-03-31T00:00:00Z", "2026-03-03T00:00:01Z", "2026-03-03T00:00:00Z", "2026-02-28T00:00:00Z"], vec![T, T, F, F]),
        // 24. within 1y from Feb 29 2024: Feb 29 2023 rolls over to Mar 1 2023.
        ("within 1y leap day", RetentionPolicy { keep_within: d("1y"), ..p() },
            vec!["2024-02-29T00:00:00Z", "2023-03-01T06:00:00Z", "2023-03-01T00:00:00Z", "2023-02-28T12:00:00Z"], vec![T, T, F, F]),
        // 25. within 1y6m2d3h combined: newest 2026-09-10T12:00 -> 2025-03-08T09:00.
        ("within combined", RetentionPolicy { keep_within: d("1y6m2d3h"), ..p() },
            vec!["2026-09-10T12:00:00Z", "2025-03-08T09:00:01Z", "2025-03-08T09:00:00Z"], vec![T, T, F]),
        // 26. within is relative to the newest snapshot, not to now: a very old group keeps its newest span.
        ("within relative to newest", RetentionPolicy { keep_within: d("1d"), ..p() },
            vec!["2001-01-02T00:00:00Z", "2001-01-01T12:00:00Z", "2000-12-31T00:00:00Z"], vec![T, T, F]),
        // 27. within-daily 3d: span after Jan 7 12:00; newest per day inside it; Jan 6 outside.
        ("within-daily 3d", RetentionPolicy { keep_within_daily: d("3d"), ..p() },
            vec!["2026-01-10T12:00:00Z", "2026-01-10T06:00:00Z", "2026-01-09T20:00:00Z", "2026-01-09T08:00:00Z",
                 "2026-01-08T00:00:00Z", "2026-01-07T13:00:00Z", "2026-01-07T10:00:00Z", "2026-01-06T00:00:00Z"],
            vec![T, F, T, F, T, T, F, F]),
        // 28. within-hourly 2h.
        ("within-hourly 2h", RetentionPolicy { keep_within_hourly: d("2h"), ..p() },
            vec!["2026-01-10T12:30:00Z", "2026-01-10T12:10:00Z", "2026-01-10T11:40:00Z", "2026-01-10T10:40:00Z", "2026-01-10T10:20:00Z"],
            vec![T, F, T, T, F]),
        // 29. within-weekly 14d: newest Jan 21 (W04); span after Jan 7: W04, W03 (Jan 12-18), W02 (Jan 8-11 part).
        ("within-weekly 14d", RetentionPolicy { keep_within_weekly: d("14d"), ..p() },
            vec!["2026-01-21T00:00:00Z", "2026-01-19T00:00:00Z", "2026-01-15T00:00:00Z", "2026-01-09T00:00:00Z", "2026-01-06T00:00:00Z"],
            vec![T, F, T, T, F]),
        // 30. within-monthly 2m from Mar 15: after Jan 15; one per month.
        ("within-monthly 2m", RetentionPolicy { keep_within_monthly: d("2m"), ..p() },
            vec!["2026-03-15T00:00:00Z", "2026-03-01T00:00:00Z", "2026-02-20T00:00:00Z", "2026-01-20T00:00:00Z", "2026-01-10T00:00:00Z"],
            vec![T, F, T, T, F]),
        // 31. within-yearly 2y: after 2024-06-01; newest per year.
        ("within-yearly 2y", RetentionPolicy { keep_within_yearly: d("2y"), ..p() },
            vec!["2026-06-01T00:00:00Z", "2026-01-01T00:00:00Z", "2025-05-01T00:00:00Z", "2024-07-01T00:00:00Z", "2024-05-01T00:00:00Z"],
            vec![T, F, T, T, F]),
        // 32. Tags keep regardless of buckets and do not consume them.
        ("tag only", RetentionPolicy { keep_tags: vec!["release".into()], ..p() },
            vec!["2026-01-04T00:00:00Z", "2026-01-03T00:00:00Z#release", "2026-01-02T00:00:00Z#other", "2026-01-01T00:00:00Z#release#x"],
            vec![F, T, F, T]),
        // 33. Tag plus last 1: the tagged one does not use last's count.
        ("tag and last", RetentionPolicy { keep_last: 1, keep_tags: vec!["release".into()], ..p() },
            vec!["2026-01-04T00:00:00Z", "2026-01-03T00:00:00Z#release", "2026-01-02T00:00:00Z"], vec![T, T, F]),
        // 34. Daily 2 + weekly 2 over Jan 5..14 2026: daily keeps Jan 14, 13; weekly keeps Jan 14 (W03) and Jan 11 (W02).
        ("daily and weekly", RetentionPolicy { keep_daily: 2, keep_weekly: 2, ..p() },
            vec!["2026-01-14T00:00:00Z", "2026-01-13T00:00:00Z", "2026-01-12T00:00:00Z", "2026-01-11T00:00:00Z", "2026-01-06T00:00:00Z"],
            vec![T, T, F, T, F]),
        // 35. The classic database schedule on 14 months of month-end snapshots: 7 daily, 4 weekly,
        //     12 monthly, 5 yearly. Monthly keeps 12 newest months; yearly keeps 2026's newest (also month 1)
        //     and 2025's newest; the oldest (2025-01) is kept by yearly's remaining count.
        ("7d 4w 12m 5y monthly series", RetentionPolicy { keep_daily: 7, keep_weekly: 4, keep_monthly: 12, keep_yearly: 5, ..p() },
            vec!["2026-02-28T00:00:00Z", "2026-01-31T00:00:00Z", "2025-12-31T00:00:00Z", "2025-11-30T00:00:00Z",
                 "2025-10-31T00:00:00Z", "2025-09-30T00:00:00Z", "2025-08-31T00:00:00Z", "2025-07-31T00:00:00Z",
                 "2025-06-30T00:00:00Z", "2025-05-31T00:00:00Z", "2025-04-30T00:00:00Z", "2025-03-31T00:00:00Z",
                 "2025-02-28T00:00:00Z", "2025-01-31T00:00:00Z"],
            vec![T, T, T, T, T, T, T, T, T, T, T, T, F, T]),
        // 36. Hourly 24 on snapshots every 30 min over 3 hours: one per hour plus the oldest.
        ("hourly 24 half-hourly", RetentionPolicy { keep_hourly: 24, ..p() },
            vec!["2026-01-01T02:30:00Z", "2026-01-01T02:00:00Z", "2026-01-01T01:30:00Z", "2026-01-01T01:00:00Z", "2026-01-01T00:30:00Z", "2026-01-01T00:00:00Z"],
            vec![T, F, T, F, T, T]),
        // 37. A single snapshot is kept by any non-empty bucket.
        ("single", RetentionPolicy { keep_daily: 1, ..p() }, vec!["2026-01-01T00:00:00Z"], vec![T]),
        // 38. A tag that no snapshot has keeps nothing; with no other rule, everything goes.
        ("absent tag", RetentionPolicy { keep_tags: vec!["nope".into()], ..p() },
            vec!["2026-01-02T00:00:00Z", "2026-01-01T00:00:00Z"], vec![F, F]),
        // 39. Input order does not matter: newest-first sorting happens inside.
        ("unsorted input", RetentionPolicy { keep_last: 1, ..p() },
            vec!["2026-01-01T00:00:00Z", "2026-01-03T00:00:00Z", "2026-01-02T00:00:00Z"], vec![F, T, F]),
        // 40. Equal times: the first given wins keep-last 1 (stable order).
        ("equal times", RetentionPolicy { keep_last: 1, ..p() },
            vec!["2026-01-01T00:00:00Z", "2026-01-01T00:00:00Z"], vec![T, F]),
        // 41. Weekly with year-crossing ISO week: Dec 31 2024 is in 2025-W01 with Jan 1 2025.
        ("weekly ISO year", RetentionPolicy { keep_weekly: 1, ..p() },
            vec!["2025-01-01T00:00:00Z", "2024-12-31T00:00:00Z"], vec![T, F]),
        // 42. within plus daily: within keeps the last day entirely, daily one per older day.
        ("within and daily", RetentionPolicy { keep_within: d("1d"), keep_daily: 3, ..p() },
            vec!["2026-01-05T12:00:00Z", "2026-01-05T06:00:00Z", "2026-01-04T18:00:00Z", "2026-01-04T06:00:00Z", "2026-01-03T06:00:00Z", "2026-01-02T06:00:00Z"],
            vec![T, T, T, F, T, F]),
    ];
    assert!(cases.len() >= 40);
    for (name, policy, times, want) in cases {
        assert_eq!(keeps(&policy, &times), want, "case `{name}`");
    }
}

#[test]
fn reasons_name_bucket_and_rank() {
    let policy = RetentionPolicy {
        keep_daily: 2,
        keep_weekly: 1,
        keep_within: d("2d"),
        keep_within_daily: d("3d"),
        keep_tags: vec!["release".into()],
        ..p()
    };
    let r = reasons(
        &policy,
        &[
            "2026-01-14T00:00:00Z",
            "2026-01-13T00:00:00Z#release",
            "2026-01-01T00:00:00Z",
        ],
    );
    assert_eq!(
        r[0],
        ["daily #1", "weekly #1", "within 2d", "within-daily 3d #1"]
    );
    assert_eq!(
        r[1],
        ["tag release", "daily #2", "within 2d", "within-daily 3d #2"]
    );
    assert!(r[2].is_empty());
}

#[test]
fn empty_policy_is_detected() {
    assert!(p().is_empty());
    assert!(!RetentionPolicy {
        keep_last: 1,
        ..p()
    }
    .is_empty());
    assert!(!RetentionPolicy {
        keep_within: d("1d"),
        ..p()
    }
    .is_empty());
    assert!(!RetentionPolicy {
        keep_tags: vec!["x".into()],
        ..p()
    }
    .is_empty());
}

#[test]
fn durations_parse_and_print() {
    for (s, want) in [
        ("1y6m2d3h", (1, 6, 2, 3)),
        ("36h", (0, 0, 0, 36)),
        ("2d", (0, 0, 2, 0)),
        ("3m1y", (1, 3, 0, 0)),
        ("0d", (0, 0, 0, 0)),
    ] {
        let k = KeepDuration::parse(s).unwrap();
        assert_eq!((k.years, k.months, k.days, k.hours), want, "{s}");
    }
    for bad in ["", "5", "1w", "d", "1.5d", "-1d", "1y2"] {
        assert!(KeepDuration::parse(bad).is_err(), "{bad}");
    }
    assert_eq!(
        KeepDuration::parse("1y6m2d3h").unwrap().to_string(),
        "1y6m2d3h"
    );
}

#[test]
fn policy_reads_from_toml_style_names() {
    let json = r#"{"keep-daily": 7, "keep-within": "2d", "keep-tags": ["release"]}"#;
    let policy: RetentionPolicy = serde_json::from_str(json).unwrap();
    assert_eq!(policy.keep_daily, 7);
    assert_eq!(policy.keep_within, d("2d"));
    assert!(
        serde_json::from_str::<RetentionPolicy>(r#"{"keep-dialy": 7}"#).is_err(),
        "typos are rejected"
    );
}

fn arb_times() -> impl Strategy<Value = Vec<String>> {
    proptest::collection::vec((0i64..3 * 365 * 24 * 60, -12i32..=14), 1..60).prop_map(|v| {
        v.into_iter()
            .map(|(min, off_h)| {
                let ts = Timestamp::from_second(1_700_000_000 + min * 60).unwrap();
                crate::snapshot::format_time(ts, Offset::from_hours(off_h as i8).unwrap())
            })
            .collect()
    })
}

fn arb_policy() -> impl Strategy<Value = RetentionPolicy> {
    (
        -1i32..5,
        -1i32..5,
        -1i32..5,
        -1i32..5,
        -1i32..5,
        -1i32..3,
        proptest::option::of(0i32..40),
    )
        .prop_map(
            |(last, hourly, daily, weekly, monthly, yearly, within_days)| RetentionPolicy {
                keep_last: last,
                keep_hourly: hourly,
                keep_daily: daily,
                keep_weekly: weekly,
                keep_monthly: monthly,
                keep_yearly: yearly,
                keep_within: within_days.map(|d| KeepDuration {
                    days: d,
                    ..Default::default()
                }),
                ..p()
            },
        )
}

fn items(times: &[String]) -> Vec<(usize, String, Vec<String>)> {
    times
        .iter()
        .enumerate()
        .map(|(i, t)| (i, t.clone(), Vec::new()))
        .collect()
}

proptest! {
    #[test]
    fn decisions_partition_the_input(times in arb_times(), policy in arb_policy()) {
        let out = policy.apply(&items(&times)).unwrap();
        let mut keys: Vec<usize> = out.iter().map(|d| d.key).collect();
        keys.sort();
        prop_assert_eq!(keys, (0..times.len()).collect::<Vec<_>>());
        for d in &out {
            prop_assert_eq!(d.keep, !d.reasons.is_empty());
        }
    }

    #[test]
    fn keep_last_n_keeps_exactly_the_n_newest(times in arb_times(), n in 1i32..10) {
        let policy = RetentionPolicy { keep_last: n, ..p() };
        let out = policy.apply(&items(&times)).unwrap();
        let kept: Vec<usize> = out.iter().filter(|d| d.keep).map(|d| d.key).collect();
        prop_assert_eq!(kept.len(), (n as usize).min(times.len()));
        // Every kept one is at least as new as every removed one.
        let ts = |k: usize| parse_time(&times[k]).unwrap().0;
        let oldest_kept = kept.iter().map(|k| ts(*k)).min().unwrap();
        for d in out.iter().filter(|d| !d.keep) {
            prop_assert!(ts(d.key) <= oldest_kept);
        }
    }

    #[test]
    fn adding_a_rule_never_removes_a_kept_snapshot(times in arb_times(), policy in arb_policy(), extra in 0usize..6, n in 1i32..4) {
        let before = policy.apply(&items(&times)).unwrap();
        let mut more = policy.clone();
        match extra {
            0 => more.keep_last = if more.keep_last == 0 { n } else { more.keep_last },
            1 => more.keep_daily = if more.keep_daily == 0 { n } else { more.keep_daily },
            2 => more.keep_weekly = if more.keep_weekly == 0 { n } else { more.keep_weekly },
            3 => more.keep_monthly = if more.keep_monthly == 0 { n } else { more.keep_monthly },
            4 => more.keep_within_daily = Some(KeepDuration { days: n, ..Default::default() }),
            _ => more.keep_tags.push("x".into()),
        }
        let after = more.apply(&items(&times)).unwrap();
        if !policy.is_empty() {
            for (b, a) in before.iter().zip(&after) {
                prop_assert_eq!(b.key, a.key);
                prop_assert!(!b.keep || a.keep, "adding a rule removed {}", times[b.key]);
            }
        }
    }
}
