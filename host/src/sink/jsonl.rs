//! The JSON-lines file sink: `<output dir>/<stream>.jsonl`.

use std::fs::{File, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use super::Error;

/// An append-only JSON-lines file whose tail past the last checkpoint is discarded on open.
pub struct JsonlSink {
    path: PathBuf,
    file: File,
    offset_bytes: u64,
    /// Bytes were appended since the last [`JsonlSink::sync`].
    unsynced: bool,
}

impl JsonlSink {
    /// Opens `path` and cuts it back to `committed_bytes`, the position of the last committed
    /// checkpoint: whatever a crashed run wrote after it is fetched again.
    pub fn open(path: &Path, committed_bytes: u64) -> Result<Self, Error> {
        let io = |error| Error::Io {
            path: path.to_owned(),
            error,
        };
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(io)?;
        }
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(io)?;
        let actual_bytes = file.metadata().map_err(io)?.len();
        if actual_bytes < committed_bytes {
            return Err(Error::Shrunk {
                path: path.to_owned(),
                actual_bytes,
                committed_bytes,
            });
        }
        if actual_bytes > committed_bytes {
            tracing::info!(
                path = %path.display(),
                discarded_bytes = actual_bytes - committed_bytes,
                "Discarding output written after the last checkpoint."
            );
            file.set_len(committed_bytes).map_err(io)?;
            file.sync_data().map_err(io)?;
        }
        file.seek(SeekFrom::Start(committed_bytes)).map_err(io)?;
        Ok(Self {
            path: path.to_owned(),
            file,
            offset_bytes: committed_bytes,
            unsynced: false,
        })
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Bytes written so far (committed or not).
    pub fn offset_bytes(&self) -> u64 {
        self.offset_bytes
    }

    /// Discards everything and starts the file over (a full refresh). Call only after a
    /// checkpoint at offset 0 has been committed.
    pub fn reset(&mut self) -> Result<(), Error> {
        self.truncate_to(0)
    }

    fn truncate_to(&mut self, offset_bytes: u64) -> Result<(), Error> {
        let io = |error| Error::Io {
            path: self.path.clone(),
            error,
        };
        self.file.set_len(offset_bytes).map_err(io)?;
        self.file.seek(SeekFrom::Start(offset_bytes)).map_err(io)?;
        self.offset_bytes = offset_bytes;
        Ok(())
    }

    /// Appends already-validated JSON lines (each line one record) and makes them durable.
    /// Returns the new offset, to be recorded in the checkpoint.
    pub fn append_durably(&mut self, lines: &str) -> Result<u64, Error> {
        self.append(lines)?;
        self.sync()
    }

    /// Appends already-validated JSON lines without waiting for the disk; [`JsonlSink::sync`]
    /// makes them durable before a checkpoint may cover them.
    pub fn append(&mut self, lines: &str) -> Result<(), Error> {
        if lines.is_empty() {
            return Ok(());
        }
        let io = |error| Error::Io {
            path: self.path.clone(),
            error,
        };
        let mut written = lines.len() as u64;
        self.file.write_all(lines.as_bytes()).map_err(io)?;
        if !lines.ends_with('\n') {
            self.file.write_all(b"\n").map_err(io)?;
            written += 1;
        }
        self.offset_bytes += written;
        self.unsynced = true;
        Ok(())
    }

    /// Makes everything appended so far durable; returns the offset a checkpoint may record.
    pub fn sync(&mut self) -> Result<u64, Error> {
        if self.unsynced {
            self.file.sync_data().map_err(|error| Error::Io {
                path: self.path.clone(),
                error,
            })?;
            self.unsynced = false;
        }
        Ok(self.offset_bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reopening_cuts_back_to_the_committed_offset() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.jsonl");
        let mut sink = JsonlSink::open(&path, 0).unwrap();
        let committed = sink.append_durably("{\"id\":1}").unwrap();
        assert_eq!(committed, 9);
        sink.append_durably("{\"id\":2}\n").unwrap();
        drop(sink);
        let mut sink = JsonlSink::open(&path, committed).unwrap();
        sink.append_durably("{\"id\":3}\n").unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "{\"id\":1}\n{\"id\":3}\n"
        );
    }

    #[test]
    fn a_file_shorter_than_its_checkpoint_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.jsonl");
        std::fs::write(&path, "{}\n").unwrap();
        let error = JsonlSink::open(&path, 100).err().unwrap();
        assert!(
            matches!(
                error,
                Error::Shrunk {
                    actual_bytes: 3,
                    ..
                }
            ),
            "{error}"
        );
    }
}
