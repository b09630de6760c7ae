//! Every record once, in incremental streams with a primary key.
//!
//! - [`SeenFilter`] drops records already written unchanged. Incremental strategies re-read a
//!   lookback window (and APIs repeat records across pages when data changes under them), so
//!   the same version of a record can arrive more than once; the seen index (primary key →
//!   digest of the record last written, in the checkpoint store) lets exactly one copy of each
//!   version through. Its entries are committed in the same atomic batch as the checkpoint of
//!   the page that wrote them, so a crash can neither lose nor repeat a record.
//! - [`write_latest`] materialises `<stream>.latest.jsonl` for `incremental_dedup` streams: one
//!   line per primary key, its latest version, from the committed append log.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::checkpoint::{self, CheckpointStore, RecordDigest, StreamKey};

/// The seen-index filter of one stream's sync.
#[derive(Debug)]
pub struct SeenFilter {
    pointers: Vec<String>,
    /// Entries of the pages filtered since the last commit, committed with the next checkpoint.
    pending: Vec<(String, RecordDigest)>,
    /// The latest digest of each key in `pending`.
    uncommitted: HashMap<String, RecordDigest>,
    /// Records dropped as already written, in this sync.
    skipped: u64,
}

impl SeenFilter {
    /// A filter over the primary key `pointers`; `None` when the stream declares no key.
    pub fn new(pointers: &[String]) -> Option<Self> {
        (!pointers.is_empty()).then(|| Self {
            pointers: pointers.to_vec(),
            pending: Vec::new(),
            uncommitted: HashMap::new(),
            skipped: 0,
        })
    }

    /// The lines of `records` (JSON lines, already validated) not already written unchanged,
    /// and how many there are. A record missing a key field is always kept.
    pub fn filter(
        &mut self,
        store: &CheckpointStore,
        key: &StreamKey,
        records: &str,
    ) -> Result<(String, u64), checkpoint::Error> {
        let mut kept = String::with_capacity(records.len());
        let mut count = 0;
        for line in records.lines().filter(|line| !line.trim().is_empty()) {
            let primary_key = serde_json::from_str::<Value>(line)
                .ok()
                .and_then(|record| primary_key_of(&record, &self.pointers));
            if let Some(primary_key) = primary_key {
                let digest = digest(line);
                let last = match self.uncommitted.get(&primary_key).copied() {
                    Some(digest) => Some(digest),
                    None => store.seen(key, &primary_key)?,
                };
                if last == Some(digest) {
                    self.skipped += 1;
                    continue;
                }
                self.uncommitted.insert(primary_key.clone(), digest);
                self.pending.push((primary_key, digest));
            }
            kept.push_str(line);
            kept.push('\n');
            count += 1;
        }
        Ok((kept, count))
    }

    /// The entries to commit with the next checkpoint; they are then the store's.
    pub fn take_pending(&mut self) -> Vec<(String, RecordDigest)> {
        self.uncommitted.clear();
        std::mem::take(&mut self.pending)
    }

    /// Records dropped as already written, in this sync.
    pub fn skipped(&self) -> u64 {
        self.skipped
    }
}

/// The primary key of `record` as compact JSON (an array of the pointed-to values), or `None`
/// if a key field is missing or null.
pub fn primary_key_of(record: &Value, pointers: &[String]) -> Option<String> {
    let values: Option<Vec<&Value>> = pointers
        .iter()
        .map(|pointer| record.pointer(pointer).filter(|value| !value.is_null()))
        .collect();
    Some(Value::from(values?.into_iter().cloned().collect::<Vec<_>>()).to_string())
}

fn digest(line: &str) -> RecordDigest {
    let full = Sha256::digest(line.as_bytes());
    let mut digest = RecordDigest::default();
    let len = digest.len();
    digest.copy_from_slice(&full[..len]);
    digest
}

/// Writes `latest` (via a temporary file, fsynced, then renamed) with one line per primary key
/// of `log`'s first `committed_bytes`: the key's latest version, in the order keys were last
/// written. Lines without a key are kept as they are. Returns the number of lines written.
pub fn write_latest(
    log: &Path,
    committed_bytes: u64,
    latest: &Path,
    pointers: &[String],
) -> std::io::Result<u64> {
    let file = std::fs::File::open(log)?;
    let reader = BufReader::new(std::io::Read::take(file, committed_bytes));
    let mut lines: Vec<Option<String>> = Vec::new();
    let mut index_of: HashMap<String, usize> = HashMap::new();
    for line in reader.lines() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let primary_key = serde_json::from_str::<Value>(&line)
            .ok()
            .and_then(|record| primary_key_of(&record, pointers));
        if let Some(primary_key) = primary_key
            && let Some(previous) = index_of.insert(primary_key, lines.len())
        {
            lines[previous] = None;
        }
        lines.push(Some(line));
    }
    let temporary = latest.with_extension("jsonl.tmp");
    let mut out = std::io::BufWriter::new(std::fs::File::create(&temporary)?);
    let mut written = 0;
    for line in lines.into_iter().flatten() {
        out.write_all(line.as_bytes())?;
        out.write_all(b"\n")?;
        written += 1;
    }
    let file = out.into_inner().map_err(|error| error.into_error())?;
    file.sync_all()?;
    std::fs::rename(&temporary, latest)?;
    if let Some(dir) = latest.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::{Checkpoint, SinkPosition};
    use crate::protocol::{RunContext, SyncMode};

    fn checkpoint() -> Checkpoint {
        Checkpoint {
            mode: SyncMode::Incremental,
            state: None,
            pending: None,
            context: RunContext {
                run_id: "r".into(),
                started_at_ms: 0,
            },
            output: SinkPosition {
                offset_bytes: 0,
                records: 0,
                dead_letter_bytes: 0,
            },
            committed_at_ms: 0,
        }
    }

    #[tokio::test]
    async fn repeats_are_dropped_new_versions_kept_across_pages_and_commits() {
        let dir = tempfile::tempdir().unwrap();
        let store = CheckpointStore::open(dir.path()).unwrap();
        let key = StreamKey::new("c", "s");
        let mut filter = SeenFilter::new(&["/id".to_owned()]).unwrap();
        let page = "{\"id\":1,\"v\":1}\n{\"id\":2,\"v\":1}\n{\"id\":1,\"v\":1}\n{\"x\":0}\n";
        let (kept, count) = filter.filter(&store, &key, page).unwrap();
        assert_eq!(kept, "{\"id\":1,\"v\":1}\n{\"id\":2,\"v\":1}\n{\"x\":0}\n");
        assert_eq!(count, 3);
        let pending = filter.take_pending();
        store
            .commit_page(&key, &checkpoint(), &pending, false)
            .await
            .unwrap();
        // The next page (or a later sync) repeats id 2 unchanged and changes id 1.
        let (kept, count) = filter
            .filter(&store, &key, "{\"id\":2,\"v\":1}\n{\"id\":1,\"v\":2}\n")
            .unwrap();
        assert_eq!((kept.as_str(), count), ("{\"id\":1,\"v\":2}\n", 1));
        assert_eq!(filter.skipped(), 2);
        assert_eq!(
            store.list().unwrap().len(),
            1,
            "seen entries are not checkpoints"
        );
        // A reset forgets them.
        store.reset(&key).await.unwrap();
        assert_eq!(store.seen(&key, "[2]").unwrap(), None);
    }

    #[test]
    fn composite_and_missing_keys() {
        let record: Value = serde_json::json!({ "a": 1, "b": { "c": "x" }, "n": null });
        let pointers = ["/a".to_owned(), "/b/c".to_owned()];
        assert_eq!(
            primary_key_of(&record, &pointers).as_deref(),
            Some("[1,\"x\"]")
        );
        assert_eq!(primary_key_of(&record, &["/n".to_owned()]), None);
        assert_eq!(primary_key_of(&record, &["/zz".to_owned()]), None);
    }

    #[test]
    fn latest_keeps_the_last_version_of_each_key_in_committed_bytes_only() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("s.jsonl");
        let committed = "{\"id\":1,\"v\":1}\n{\"id\":2,\"v\":1}\n{\"id\":1,\"v\":2}\n{\"y\":1}\n";
        std::fs::write(&log, format!("{committed}{{\"id\":3,\"v\":9}}\n")).unwrap();
        let latest = dir.path().join("s.latest.jsonl");
        let written =
            write_latest(&log, committed.len() as u64, &latest, &["/id".to_owned()]).unwrap();
        assert_eq!(written, 3);
        assert_eq!(
            std::fs::read_to_string(&latest).unwrap(),
            "{\"id\":2,\"v\":1}\n{\"id\":1,\"v\":2}\n{\"y\":1}\n"
        );
    }
}
