//! When a connection runs by itself: every fixed interval, or on a cron expression (UTC).

use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Deserialize;

/// Shortest interval accepted: more often than this is a mistake, not a schedule.
const MIN_INTERVAL: Duration = Duration::from_secs(1);

/// A connection's schedule, written `{ every = "15m" }` or `{ cron = "0 */6 * * *" }`.
#[derive(Debug, Clone)]
pub enum Schedule {
    /// Every interval, counted from the start of the previous run; the first run is at start-up.
    Every(Duration),
    /// At the times of a cron expression, in UTC (five fields, or six with seconds first).
    Cron(Box<cron::Schedule>),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSchedule {
    every: Option<String>,
    cron: Option<String>,
}

impl<'de> Deserialize<'de> for Schedule {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error as _;
        match RawSchedule::deserialize(deserializer)? {
            RawSchedule {
                every: Some(every),
                cron: None,
            } => Self::every(&every).map_err(D::Error::custom),
            RawSchedule {
                every: None,
                cron: Some(cron),
            } => Self::cron(&cron).map_err(D::Error::custom),
            _ => Err(D::Error::custom(
                "write either `{ every = \"15m\" }` or `{ cron = \"0 */6 * * *\" }`",
            )),
        }
    }
}

impl Schedule {
    /// An interval schedule from text such as `90s`, `15m` or `1h 30m`.
    pub fn every(text: &str) -> Result<Self, String> {
        let interval = humantime::parse_duration(text).map_err(|error| {
            format!("`every = \"{text}\"` is not a duration like `15m` ({error})")
        })?;
        if interval < MIN_INTERVAL {
            return Err(format!("`every = \"{text}\"` is below the minimum of 1s"));
        }
        Ok(Self::Every(interval))
    }

    /// A cron schedule; five fields (minute first) get a leading `0` seconds field.
    pub fn cron(text: &str) -> Result<Self, String> {
        let fields = text.split_whitespace().count();
        let expression = if fields == 5 {
            format!("0 {text}")
        } else {
            text.to_owned()
        };
        cron::Schedule::from_str(&expression)
            .map(|schedule| Self::Cron(Box::new(schedule)))
            .map_err(|error| format!("`cron = \"{text}\"` is not a cron expression ({error})"))
    }

    /// The first time at or after which the connection is due, given the start of its previous
    /// run (`None` if it never ran here).
    pub fn next_after(
        &self,
        previous_start: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> DateTime<Utc> {
        match self {
            Self::Every(interval) => match previous_start {
                None => now,
                Some(previous) => {
                    previous
                        + chrono::Duration::from_std(*interval).unwrap_or(chrono::Duration::MAX)
                }
            },
            Self::Cron(schedule) => schedule
                .after(&now)
                .next()
                .unwrap_or(DateTime::<Utc>::MAX_UTC),
        }
    }

    /// The schedule as written.
    pub fn describe(&self) -> String {
        match self {
            Self::Every(interval) => format!("every {}", humantime::format_duration(*interval)),
            Self::Cron(schedule) => format!("cron {schedule}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn intervals_count_from_the_previous_start() {
        let schedule = Schedule::every("15m").unwrap();
        let now = Utc.with_ymd_and_hms(2026, 1, 1, 12, 0, 0).unwrap();
        assert_eq!(schedule.next_after(None, now), now);
        let previous = Utc.with_ymd_and_hms(2026, 1, 1, 11, 50, 0).unwrap();
        assert_eq!(
            schedule.next_after(Some(previous), now),
            Utc.with_ymd_and_hms(2026, 1, 1, 12, 5, 0).unwrap()
        );
        assert!(Schedule::every("10ms").unwrap_err().contains("minimum"));
        assert!(
            Schedule::every("soon")
                .unwrap_err()
                .contains("not a duration")
        );
    }

    #[test]
    fn five_field_cron_runs_on_the_minute() {
        let schedule = Schedule::cron("*/30 * * * *").unwrap();
        let now = Utc.with_ymd_and_hms(2026, 1, 1, 12, 10, 5).unwrap();
        assert_eq!(
            schedule.next_after(None, now),
            Utc.with_ymd_and_hms(2026, 1, 1, 12, 30, 0).unwrap()
        );
        assert!(
            Schedule::cron("every day")
                .unwrap_err()
                .contains("not a cron")
        );
    }

    #[test]
    fn a_schedule_is_one_of_the_two() {
        let both: Result<Schedule, _> =
            toml::from_str::<toml::Value>("every = \"1m\"\ncron = \"* * * * *\"")
                .unwrap()
                .try_into();
        assert!(both.unwrap_err().to_string().contains("either"));
    }
}
