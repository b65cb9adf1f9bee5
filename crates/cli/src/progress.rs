//! Progress of long operations, fed by the core's [`Progress`] trait.
//!
//! On a terminal (stderr) an indicatif bar: bytes processed, new and stored
//! bytes, files, MB/s, and the ETA when the total is known. With `--json`,
//! a `status` object on stdout at most once a second instead (JSON lines; the
//! command's final object comes last). Nothing otherwise, and nothing with
//! `--quiet`.

use std::io::IsTerminal;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use vault_core::Progress;

enum Mode {
    Off,
    Bar(ProgressBar),
    Json,
}

/// Progress of one operation (see the module docs).
pub struct TermProgress {
    label: &'static str,
    mode: Mode,
    bytes: AtomicU64,
    total: AtomicU64,
    files: AtomicU64,
    added: AtomicU64,
    stored: AtomicU64,
    started: Instant,
    last_status: Mutex<Instant>,
}

impl TermProgress {
    /// Progress for `label`; `quiet` silences it, `json` turns it into status lines.
    pub fn new(label: &'static str, quiet: bool, json: bool) -> TermProgress {
        let mode = if quiet {
            Mode::Off
        } else if json {
            Mode::Json
        } else if std::io::stderr().is_terminal() {
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr_with_hz(4));
            bar.set_style(Self::style(false));
            bar.set_prefix(label);
            Mode::Bar(bar)
        } else {
            Mode::Off
        };
        TermProgress {
            label,
            mode,
            bytes: AtomicU64::new(0),
            total: AtomicU64::new(0),
            files: AtomicU64::new(0),
            added: AtomicU64::new(0),
            stored: AtomicU64::new(0),
            started: Instant::now(),
            last_status: Mutex::new(Instant::now()),
        }
    }

    fn style(with_total: bool) -> ProgressStyle {
        let t = if with_total {
            "{prefix}: {bytes}/{total_bytes} ({binary_bytes_per_sec}, ETA {eta}) {wide_bar} {msg}"
        } else {
            "{prefix}: {bytes} ({binary_bytes_per_sec}) {msg}"
        };
        ProgressStyle::with_template(t).unwrap_or_else(|_| ProgressStyle::default_bar())
    }

    fn update(&self) {
        match &self.mode {
            Mode::Off => {}
            Mode::Bar(bar) => {
                let (added, files) = (
                    self.added.load(Ordering::Relaxed),
                    self.files.load(Ordering::Relaxed),
                );
                if added > 0 || files > 1 {
                    bar.set_message(format!(
                        "{files} files, new {}, stored {}",
                        indicatif::HumanBytes(added),
                        indicatif::HumanBytes(self.stored.load(Ordering::Relaxed))
                    ));
                }
            }
            Mode::Json => {
                let mut last = self.last_status.lock().unwrap_or_else(|p| p.into_inner());
                if last.elapsed().as_millis() < 1000 {
                    return;
                }
                *last = Instant::now();
                drop(last);
                println!("{}", self.status());
            }
        }
    }

    fn status(&self) -> serde_json::Value {
        let done = self.bytes.load(Ordering::Relaxed);
        let total = self.total.load(Ordering::Relaxed);
        let secs = self.started.elapsed().as_secs_f64();
        serde_json::json!({
            "message_type": "status",
            "operation": self.label,
            "seconds_elapsed": secs,
            "bytes_done": done,
            "total_bytes": (total > 0).then_some(total),
            "percent_done": (total > 0).then(|| done as f64 * 100.0 / total as f64),
            "files_done": self.files.load(Ordering::Relaxed),
            "bytes_added": self.added.load(Ordering::Relaxed),
            "bytes_stored": self.stored.load(Ordering::Relaxed),
            "mb_per_second": done as f64 / 1e6 / secs.max(1e-3),
        })
    }

    /// Draws the final state of the bar and ends its line.
    pub fn finish(&self) {
        if let Mode::Bar(bar) = &self.mode {
            bar.finish();
            // The bar stays as the operation's last state; what the command
            // prints next starts on a line of its own.
            if !bar.is_hidden() {
                eprintln!();
            }
        }
    }
}

impl Progress for TermProgress {
    fn total(&self, bytes: u64) {
        self.total.store(bytes, Ordering::Relaxed);
        if let Mode::Bar(bar) = &self.mode {
            bar.set_length(bytes);
            bar.set_style(Self::style(true));
        }
    }

    fn file(&self, _path: &Path) {
        self.files.fetch_add(1, Ordering::Relaxed);
    }

    fn bytes(&self, n: u64) {
        self.bytes.fetch_add(n, Ordering::Relaxed);
        if let Mode::Bar(bar) = &self.mode {
            bar.inc(n);
        }
        self.update();
    }

    fn added(&self, plain: u64, stored: u64) {
        self.added.fetch_add(plain, Ordering::Relaxed);
        self.stored.fetch_add(stored, Ordering::Relaxed);
        self.update();
    }
}
