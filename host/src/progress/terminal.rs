//! Progress as live bars on a terminal (stderr): one line per stream with its records, pages,
//! rate, retries and the current wait, counting down. Only the CLI uses this.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::{Event, ProgressSink, Tracker};

/// How often the bars are redrawn (the wait countdown moves even when nothing happens).
const TICK: Duration = Duration::from_millis(200);

/// Live bars on stderr.
#[derive(Debug)]
pub struct Bars {
    bars: MultiProgress,
    shared: Arc<Mutex<Tracker>>,
    /// Each stream's bar, by the tracker's index.
    lines: Mutex<Vec<ProgressBar>>,
}

impl Default for Bars {
    fn default() -> Self {
        Self::new()
    }
}

impl Bars {
    /// Bars drawn on stderr.
    pub fn new() -> Self {
        Self {
            bars: MultiProgress::with_draw_target(ProgressDrawTarget::stderr()),
            shared: Arc::new(Mutex::new(Tracker::default())),
            lines: Mutex::new(Vec::new()),
        }
    }

    fn bar(&self, index: usize, name: &str) -> ProgressBar {
        let shared = Arc::clone(&self.shared);
        let detail = move |_: &indicatif::ProgressState, out: &mut dyn std::fmt::Write| {
            let tracker = shared.lock().unwrap_or_else(|e| e.into_inner());
            if index < tracker.streams.len() {
                let _ = out.write_str(&tracker.describe(index, Instant::now()));
            }
        };
        let style = ProgressStyle::with_template("{spinner} {prefix:<16} {detail}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner())
            .with_key("detail", detail);
        let bar = self.bars.add(ProgressBar::new_spinner().with_style(style));
        bar.set_prefix(name.to_owned());
        bar.enable_steady_tick(TICK);
        bar
    }
}

impl ProgressSink for Bars {
    fn event(&self, event: &Event<'_>) {
        let index = {
            let mut tracker = self.shared.lock().unwrap_or_else(|e| e.into_inner());
            tracker.apply(event, Instant::now())
        };
        let Some(index) = index else { return };
        let mut lines = self.lines.lock().unwrap_or_else(|e| e.into_inner());
        match event {
            Event::StreamStarted { stream } => {
                let bar = self.bar(index, stream);
                lines.push(bar);
            }
            Event::StreamFinished { .. } => {
                if let Some(bar) = lines.get(index) {
                    bar.finish();
                }
            }
            _ => {
                if let Some(bar) = lines.get(index) {
                    bar.tick();
                }
            }
        }
    }
}
