//! The `hackernews` connector's config and the checks serde cannot express.

use sluice_sdk::prelude::*;
use sluice_sdk::url;

/// The public Hacker News search API, by Algolia.
pub const DEFAULT_BASE_URL: &str = "https://hn.algolia.com";

/// Hits per request unless configured: Algolia's usual page, small enough for quick pages.
pub const DEFAULT_HITS_PER_PAGE: u32 = 100;

/// The most hits Algolia returns in one request.
pub const MAX_HITS_PER_PAGE: u32 = 1000;

/// What to read from Hacker News.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// API root, `https://hn.algolia.com` unless a test points it elsewhere.
    #[serde(default = "default_base_url")]
    pub base_url: String,
    /// Hits per request, 1 to 1000.
    #[serde(default = "default_hits_per_page")]
    pub hits_per_page: u32,
    /// Read only items created at or after this UTC date (`2024-01-31`) or time
    /// (`2024-01-31T12:00:00Z`) on the first run. Without it a first run reads the whole
    /// history of the stream (millions of items for `comments`).
    #[serde(default)]
    pub start_date: Option<String>,
    /// Only items matching this full-text query (Algolia's `query`), e.g. `rust`.
    #[serde(default)]
    pub query: Option<String>,
}

fn default_base_url() -> String {
    DEFAULT_BASE_URL.to_owned()
}

const fn default_hits_per_page() -> u32 {
    DEFAULT_HITS_PER_PAGE
}

impl Config {
    /// Check everything serde does not.
    pub fn validate(&self) -> Result<()> {
        url::allowed_host(&self.base_url)?;
        if !(1..=MAX_HITS_PER_PAGE).contains(&self.hits_per_page) {
            return Err(Error::invalid_config(format!(
                "`hits_per_page` is {}; Algolia returns 1 to {MAX_HITS_PER_PAGE} hits per request",
                self.hits_per_page
            )));
        }
        self.start_epoch_secs()?;
        Ok(())
    }

    /// `start_date` in seconds since the Unix epoch (Algolia's `created_at_i`), if set.
    pub fn start_epoch_secs(&self) -> Result<Option<i64>> {
        self.start_date
            .as_deref()
            .map(|start| {
                epoch_secs(start).ok_or_else(|| {
                    Error::invalid_config(format!(
                        "`start_date` is `{start}`; use a UTC date like `2024-01-31` or a time like `2024-01-31T12:00:00Z`"
                    ))
                })
            })
            .transpose()
    }
}

/// `YYYY-MM-DD` or `YYYY-MM-DDTHH:MM:SSZ` (UTC) in seconds since the Unix epoch.
pub fn epoch_secs(text: &str) -> Option<i64> {
    let (date, time) = match text.split_once('T') {
        Some((date, time)) => (date, Some(time.strip_suffix('Z')?)),
        None => (text, None),
    };
    let numbers = |part: &str, separator: char, widths: [usize; 3]| -> Option<[i64; 3]> {
        let mut fields = part.split(separator);
        let mut out = [0; 3];
        for (slot, width) in out.iter_mut().zip(widths) {
            let field = fields.next()?;
            if field.len() != width || !field.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            *slot = field.parse().ok()?;
        }
        fields.next().is_none().then_some(out)
    };
    let [year, month, day] = numbers(date, '-', [4, 2, 2])?;
    if !(1..=12).contains(&month) || !(1..=days_in_month(year, month)).contains(&day) {
        return None;
    }
    let [hour, minute, second] = match time {
        None => [0; 3],
        Some(time) => numbers(time, ':', [2, 2, 2])?,
    };
    if hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    Some(days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let day_of_year = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epoch_seconds() {
        assert_eq!(epoch_secs("1970-01-01"), Some(0));
        assert_eq!(epoch_secs("2024-03-09T10:00:00Z"), Some(1_709_978_400));
        for bad in ["2023-02-29", "2024-03-09T10:00Z", "1709978400", ""] {
            assert_eq!(epoch_secs(bad), None, "{bad}");
        }
    }
}
