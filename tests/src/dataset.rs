//! The deterministic data the mock API serves.
//!
//! Record `n` (ids start at 1) is a pure function of `n`, so a test can compute the exact output
//! a sync must produce. Its `updated_at` is `2026-01-01T00:00:00Z` plus `n` seconds, which keeps
//! `updated_at` strictly increasing with `id` and makes string comparison of timestamps valid.
//! Some records carry escapes and non-ASCII text, so byte-exact output comparisons cover them.

use serde_json::{Value, json};

/// Seconds since the Unix epoch of `2026-01-01T00:00:00Z`, the base of every timestamp here.
pub const BASE_EPOCH_SECS: i64 = days_from_civil(2026, 1, 1) * 86_400;

/// The record with id `id` of the generic dataset.
pub fn record(id: u64) -> Value {
    let note = match id % 7 {
        0 => "línea con \"comillas\"\ny salto ✓".to_owned(),
        3 => String::from("tab\there, backslash \\ and </script>"),
        _ => format!("plain note {id}"),
    };
    json!({
        "id": id,
        "updated_at": iso8601(BASE_EPOCH_SECS + i64::try_from(id).unwrap_or(i64::MAX)),
        "name": format!("record-{id:04}"),
        "payload": {
            "n": id,
            "even": id.is_multiple_of(2),
            "score": (id * 37 % 101) as f64 / 4.0,
            "tags": ["alpha", format!("t{}", id % 5)],
            "note": note,
        },
    })
}

/// Records `1..=count`.
pub fn records(count: u64) -> Vec<Value> {
    (1..=count).map(record).collect()
}

/// The `id` field of a record, panicking with the record if it is missing.
pub fn id_of(record: &Value) -> u64 {
    record
        .get("id")
        .and_then(Value::as_u64)
        .unwrap_or_else(|| panic!("record without a numeric `id`: {record}"))
}

/// Ids of a list of records, in order.
pub fn ids(records: &[Value]) -> Vec<u64> {
    records.iter().map(id_of).collect()
}

/// `YYYY-MM-DDTHH:MM:SSZ` for seconds since the Unix epoch (UTC).
pub fn iso8601(epoch_secs: i64) -> String {
    let days = epoch_secs.div_euclid(86_400);
    let secs = epoch_secs.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
pub const fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Inverse of [`days_from_civil`].
pub const fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + if month <= 2 { 1 } else { 0 };
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_start_at_2026_and_increase() {
        assert_eq!(iso8601(BASE_EPOCH_SECS), "2026-01-01T00:00:00Z");
        assert_eq!(record(1)["updated_at"], "2026-01-01T00:00:01Z");
        assert_eq!(record(3661)["updated_at"], "2026-01-01T01:01:01Z");
        assert_eq!(
            iso8601(BASE_EPOCH_SECS + 31 * 86_400),
            "2026-02-01T00:00:00Z"
        );
        assert_eq!(iso8601(0), "1970-01-01T00:00:00Z");
        assert_eq!(iso8601(951_782_400), "2000-02-29T00:00:00Z");
    }

    #[test]
    fn records_are_deterministic() {
        assert_eq!(record(14), record(14));
        assert_eq!(ids(&records(5)), vec![1, 2, 3, 4, 5]);
    }
}
