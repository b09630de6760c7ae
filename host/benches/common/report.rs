//! A bench's output: each line printed as it comes and kept for its results file.

use std::fmt::Write as _;

/// Prints and keeps every line (trailing blanks trimmed).
#[derive(Default)]
pub struct Report(pub String);

impl Report {
    /// Prints `text` as one line and keeps it.
    pub fn line(&mut self, text: impl AsRef<str>) {
        let text = text.as_ref().trim_end();
        println!("{text}");
        let _ = writeln!(self.0, "{text}");
    }
}

/// `say!(report, "...", args)` adds one formatted line to `report`; `say!(report)` an empty one.
macro_rules! say {
    ($report:expr) => { $report.line("") };
    ($report:expr, $($arg:tt)*) => { $report.line(format!($($arg)*)) };
}

pub(crate) use say;
