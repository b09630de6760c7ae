//! The `github` connector's config and the checks serde cannot express.

use sluice_sdk::prelude::*;
use sluice_sdk::url;

/// The public GitHub REST API.
pub const DEFAULT_BASE_URL: &str = "https://api.github.com";

/// Which repository to read, from which API.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `owner/name`, e.g. `rust-lang/rust`.
    pub repository: String,
    /// API root; GitHub Enterprise Server uses `https://HOST/api/v3`.
    #[serde(default = "default_base_url")]
    pub base_url: String,
    /// On the first run, read only issues and pull requests updated, and commits committed, at
    /// or after this UTC date (`2024-01-31`) or time (`2024-01-31T12:00:00Z`).
    #[serde(default)]
    pub start_date: Option<String>,
    /// The streams this connection offers (and so syncs, unless `--stream` picks some):
    /// any of `issues`, `pulls`, `commits`. Only `issues` by default, so connection files
    /// written before the other streams existed keep syncing exactly what they did.
    #[serde(default = "default_streams")]
    pub streams: Vec<String>,
}

/// Every stream of the connector, in catalog order.
pub const STREAMS: [&str; 3] = ["issues", "pulls", "commits"];

fn default_base_url() -> String {
    DEFAULT_BASE_URL.to_owned()
}

fn default_streams() -> Vec<String> {
    vec![STREAMS[0].to_owned()]
}

impl Config {
    /// Check everything serde does not.
    pub fn validate(&self) -> Result<()> {
        self.owner_and_name()?;
        url::allowed_host(&self.base_url)?;
        self.start_timestamp()?;
        if self.streams.is_empty() {
            return Err(Error::invalid_config(format!(
                "`streams` is empty; list at least one of: {}",
                STREAMS.join(", ")
            )));
        }
        for (index, stream) in self.streams.iter().enumerate() {
            if !STREAMS.contains(&stream.as_str()) {
                return Err(Error::invalid_config(format!(
                    "`streams` has `{stream}`; the github connector has: {}",
                    STREAMS.join(", ")
                )));
            }
            if self.streams[..index].contains(stream) {
                return Err(Error::invalid_config(format!(
                    "`streams` lists `{stream}` twice; list each stream once"
                )));
            }
        }
        Ok(())
    }

    /// Whether the connection offers `stream`.
    pub fn offers(&self, stream: &str) -> bool {
        self.streams.iter().any(|s| s == stream)
    }

    /// The repository's owner and name.
    pub fn owner_and_name(&self) -> Result<(&str, &str)> {
        let valid = |part: &str| {
            !part.is_empty()
                && part != "."
                && part != ".."
                && part
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        };
        match self.repository.split_once('/') {
            Some((owner, name)) if valid(owner) && valid(name) => Ok((owner, name)),
            _ => Err(Error::invalid_config(format!(
                "`repository` is `{}`; write it as `owner/name`, like `rust-lang/rust`",
                self.repository
            ))),
        }
    }

    /// `start_date` as a GitHub timestamp (`YYYY-MM-DDTHH:MM:SSZ`), if set.
    pub fn start_timestamp(&self) -> Result<Option<String>> {
        self.start_date
            .as_deref()
            .map(|start| {
                utc_timestamp(start).ok_or_else(|| {
                    Error::invalid_config(format!(
                        "`start_date` is `{start}`; use a UTC date like `2024-01-31` or a time like `2024-01-31T12:00:00Z`"
                    ))
                })
            })
            .transpose()
    }
}

/// `YYYY-MM-DD` or `YYYY-MM-DDTHH:MM:SSZ` as `YYYY-MM-DDTHH:MM:SSZ`: the one form GitHub
/// returns, so saved cursors and the start compare as strings.
fn utc_timestamp(text: &str) -> Option<String> {
    let (date, time) = match text.split_once('T') {
        Some((date, time)) => (date, Some(time.strip_suffix('Z')?)),
        None => (text, None),
    };
    let numbers = |part: &str, separator: char, widths: [usize; 3]| -> Option<[u32; 3]> {
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
    let [_, month, day] = numbers(date, '-', [4, 2, 2])?;
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    let time = match time {
        None => "00:00:00",
        Some(time) => {
            let [hour, minute, second] = numbers(time, ':', [2, 2, 2])?;
            if hour > 23 || minute > 59 || second > 60 {
                return None;
            }
            time
        }
    };
    Some(format!("{date}T{time}Z"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps() {
        assert_eq!(
            utc_timestamp("2024-01-31").as_deref(),
            Some("2024-01-31T00:00:00Z")
        );
        assert_eq!(
            utc_timestamp("2024-01-31T12:30:00Z").as_deref(),
            Some("2024-01-31T12:30:00Z")
        );
        for bad in [
            "2024-1-31",
            "2024-13-01",
            "2024-01-31T12:30:00+02:00",
            "2024-01-31T25:00:00Z",
            "yesterday",
            "2024-01-31T12:30Z",
            "",
        ] {
            assert_eq!(utc_timestamp(bad), None, "{bad}");
        }
    }
}
