//! Progress on a terminal: one line on stderr, redrawn at most twice a
//! second, only when stderr is a terminal and --quiet is not given.

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use vault_core::Progress;

/// Counts bytes and redraws `LABEL: N MiB (R MB/s)`.
pub struct TermProgress {
    label: &'static str,
    bytes: AtomicU64,
    total: AtomicU64,
    started: Instant,
    last: Mutex<Instant>,
    enabled: bool,
}

impl TermProgress {
    /// A progress line, shown only on a terminal and when not `quiet`.
    pub fn new(label: &'static str, quiet: bool) -> TermProgress {
        TermProgress {
            label,
            bytes: AtomicU64::new(0),
            total: AtomicU64::new(0),
            started: Instant::now(),
            last: Mutex::new(Instant::now()),
            enabled: !quiet && std::io::stderr().is_terminal(),
        }
    }

    fn draw(&self, force: bool) {
        if !self.enabled {
            return;
        }
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        if !force && last.elapsed().as_millis() < 500 {
            return;
        }
        *last = Instant::now();
        let b = self.bytes.load(Ordering::Relaxed);
        let secs = self.started.elapsed().as_secs_f64().max(1e-3);
        let total = self.total.load(Ordering::Relaxed);
        let of = if total > 0 {
            format!(" of {:.1} MiB", total as f64 / 1048576.0)
        } else {
            String::new()
        };
        let _ = write!(
            std::io::stderr(),
            "\r{}: {:.1} MiB{of} ({:.1} MB/s)   ",
            self.label,
            b as f64 / 1048576.0,
            b as f64 / 1e6 / secs
        );
    }

    /// Ends the line.
    pub fn finish(&self) {
        if self.enabled {
            self.draw(true);
            let _ = writeln!(std::io::stderr());
        }
    }
}

impl Progress for TermProgress {
    fn total(&self, bytes: u64) {
        self.total.store(bytes, Ordering::Relaxed);
    }

    fn bytes(&self, n: u64) {
        self.bytes.fetch_add(n, Ordering::Relaxed);
        self.draw(false);
    }
}
