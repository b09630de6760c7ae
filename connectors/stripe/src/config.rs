//! The `stripe` connector's config and the checks serde cannot express.

use sluice_sdk::prelude::*;
use sluice_sdk::url;

/// The Stripe API.
pub const DEFAULT_BASE_URL: &str = "https://api.stripe.com";

/// The most objects Stripe returns per list request (and its usual choice here).
pub const MAX_PAGE_SIZE: u32 = 100;

/// Which Stripe account to read, from which API.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// API root, `https://api.stripe.com` unless a test points it elsewhere.
    #[serde(default = "default_base_url")]
    pub base_url: String,
    /// Objects per request, 1 to 100.
    #[serde(default = "default_page_size")]
    pub page_size: u32,
    /// Read only objects created at or after this UTC date (`2024-01-31`) or time
    /// (`2024-01-31T12:00:00Z`) on the first run.
    #[serde(default)]
    pub start_date: Option<String>,
    /// Pin the API version (`Stripe-Version` header, e.g. `2024-06-20`); the account's default
    /// version otherwise.
    #[serde(default)]
    pub api_version: Option<String>,
    /// Read a connected account (`Stripe-Account` header, `acct_...`) instead of the key's own.
    #[serde(default)]
    pub account: Option<String>,
}

fn default_base_url() -> String {
    DEFAULT_BASE_URL.to_owned()
}

const fn default_page_size() -> u32 {
    MAX_PAGE_SIZE
}

impl Config {
    /// Check everything serde does not.
    pub fn validate(&self) -> Result<()> {
        url::allowed_host(&self.base_url)?;
        if !(1..=MAX_PAGE_SIZE).contains(&self.page_size) {
            return Err(Error::invalid_config(format!(
                "`page_size` is {}; Stripe returns 1 to {MAX_PAGE_SIZE} objects per request",
                self.page_size
            )));
        }
        self.start_epoch_secs()?;
        if let Some(account) = &self.account
            && !account.starts_with("acct_")
        {
            return Err(Error::invalid_config(format!(
                "`account` is `{account}`; a Stripe account id looks like `acct_1032D82eZvKYlo2C`"
            )));
        }
        Ok(())
    }

    /// `start_date` in seconds since the Unix epoch (Stripe's `created`), if set.
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
        assert_eq!(epoch_secs("2024-01-31"), Some(1_706_659_200));
        assert_eq!(epoch_secs("2024-02-29T12:30:15Z"), Some(1_709_209_815));
        assert_eq!(epoch_secs("2000-03-01"), Some(951_868_800));
        for bad in [
            "2023-02-29",
            "2024-13-01",
            "2024-04-31",
            "2024-01-31T24:00:00Z",
            "2024-01-31T12:00:00+01:00",
            "1706659200",
            "",
        ] {
            assert_eq!(epoch_secs(bad), None, "{bad}");
        }
    }
}
