//! Human-readable formatting helpers.

/// `1.5 GiB`, `320 KiB`, `12 B`.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// Megabytes (10^6) per second.
pub fn rate(bytes: u64, seconds: f64) -> String {
    if seconds <= 0.0 {
        return "-".into();
    }
    format!("{:.1} MB/s", bytes as f64 / 1e6 / seconds)
}

/// A message on stderr beside a command's output: `vault: TEXT` (a
/// `warning` says so), or with `--json` one object
/// `{"message_type": KIND, "message": TEXT}`, so that every line a command
/// writes parses.
pub fn notice(json: bool, kind: &str, text: &str) {
    if json {
        eprintln!(
            "{}",
            serde_json::json!({"message_type": kind, "message": text})
        );
    } else if kind == "warning" {
        eprintln!("vault: warning: {text}");
    } else {
        eprintln!("vault: {text}");
    }
}

/// Tells the user about stale leases and locks a command removed on its
/// way (on stderr: one JSON object each with `--json`).
pub fn report_stale(json: bool, removed: &[String]) {
    for stale in removed {
        if json {
            eprintln!(
                "{}",
                serde_json::json!({"message_type": "stale_lock_removed", "lock": stale})
            );
        } else {
            eprintln!("vault: removed a stale {stale}");
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn formats() {
        assert_eq!(super::bytes(12), "12 B");
        assert_eq!(super::bytes(1536), "1.5 KiB");
        assert_eq!(super::bytes(3 << 30), "3.0 GiB");
        assert_eq!(super::rate(10_000_000, 2.0), "5.0 MB/s");
    }
}
