//! Reading what a sync wrote: JSONL output and every file under a directory.

use std::path::{Path, PathBuf};

use serde_json::Value;

/// Parses a JSONL file: one JSON object per non-empty line. Panics naming the file and line.
pub fn read_jsonl(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    parse_jsonl(&text, path)
}

/// Parses JSONL text (see [`read_jsonl`]); `origin` only names it in panics.
pub fn parse_jsonl(text: &str, origin: &Path) -> Vec<Value> {
    assert!(
        text.is_empty() || text.ends_with('\n'),
        "{}: last line is not terminated (a torn write?)",
        origin.display()
    );
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(i, line)| {
            let value: Value = serde_json::from_str(line).unwrap_or_else(|e| {
                panic!("{}:{}: not JSON ({e}): {line}", origin.display(), i + 1)
            });
            assert!(
                value.is_object(),
                "{}:{}: not a JSON object: {line}",
                origin.display(),
                i + 1
            );
            value
        })
        .collect()
}

/// Every regular file under `dir`, recursively, sorted.
pub fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    // Bounded: a test directory holds far fewer than this many entries.
    for _ in 0..100_000 {
        let Some(next) = pending.pop() else { break };
        let Ok(entries) = std::fs::read_dir(&next) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            match entry.file_type() {
                Ok(t) if t.is_dir() => pending.push(path),
                Ok(t) if t.is_file() => out.push(path),
                _ => {}
            }
        }
    }
    out.sort();
    out
}

/// Files under `dir` whose bytes contain `needle`.
pub fn files_containing(dir: &Path, needle: &[u8]) -> Vec<PathBuf> {
    assert!(!needle.is_empty(), "searching for an empty needle");
    walk(dir)
        .into_iter()
        .filter(|path| {
            std::fs::read(path)
                .map(|bytes| bytes.windows(needle.len()).any(|w| w == needle))
                .unwrap_or(false)
        })
        .collect()
}
