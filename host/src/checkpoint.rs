//! Durable checkpoints in an embedded sled database: per connection and stream, the
//! connector's state, the request to send next, and the output position they correspond to.
//!
//! A checkpoint is only ever committed after the records it covers are flushed to the sink
//! (see [`crate::sync`]); this module makes the commit itself durable before returning.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::protocol::{Next, RunContext, SyncMode};

/// Name of the sled tree holding stream checkpoints.
const CHECKPOINT_TREE: &str = "checkpoints";

/// Name of the sled tree holding rotated OAuth2 refresh tokens, one per connection. It is the
/// only place a credential is ever persisted, in plain text: protect the state directory as
/// you protect the secret itself. Access tokens are never persisted.
const CREDENTIALS_TREE: &str = "credentials";

/// How long [`CheckpointStore::open`] waits for a locked state directory to be released.
pub const LOCK_GRACE: Duration = Duration::from_secs(2);

/// The pause between two attempts to open a locked state directory.
const LOCK_RETRY: Duration = Duration::from_millis(20);

/// Errors of the checkpoint store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Another process holds the state directory.
    #[error(
        "state directory `{}` is in use by another sluice process; wait for it to finish or pass a different `--state`",
        dir.display()
    )]
    Locked {
        /// The directory.
        dir: PathBuf,
    },
    /// The database could not be opened.
    #[error("cannot open the state directory `{}`: {detail}", dir.display())]
    Open {
        /// The directory.
        dir: PathBuf,
        /// What failed.
        detail: String,
    },
    /// Reading or writing the database failed.
    #[error("checkpoint store error for `{key}`: {detail}")]
    Storage {
        /// The checkpoint key.
        key: String,
        /// What failed.
        detail: String,
    },
    /// A stored checkpoint could not be decoded.
    #[error(
        "the checkpoint for `{key}` is unreadable ({detail}); it was written by an incompatible sluice or damaged — reset it with `sluice state reset`"
    )]
    Corrupt {
        /// The checkpoint key.
        key: String,
        /// The decoding error.
        detail: String,
    },
    /// A checkpoint given by an operator (`sluice state set`) was refused.
    #[error("refused the checkpoint for `{key}`: {detail}")]
    Invalid {
        /// The checkpoint key.
        key: String,
        /// What is wrong, naming the field and the fix.
        detail: String,
    },
}

/// What the seen index keeps of a written record: the first 16 bytes of its SHA-256.
pub type RecordDigest = [u8; 16];

/// Identifies one stream of one connection in the store.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct StreamKey {
    /// Connection name.
    pub connection: String,
    /// Stream name.
    pub stream: String,
}

impl StreamKey {
    /// A key for `stream` of `connection`.
    pub fn new(connection: &str, stream: &str) -> Self {
        Self {
            connection: connection.to_owned(),
            stream: stream.to_owned(),
        }
    }

    fn encode(&self) -> String {
        format!("{}/{}", self.connection, self.stream)
    }
}

impl std::fmt::Display for StreamKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.encode())
    }
}

/// Where the output of a stream stood when a checkpoint was committed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SinkPosition {
    /// Bytes of the output file that belong to committed pages.
    pub offset_bytes: u64,
    /// Records in those bytes.
    pub records: u64,
    /// Bytes of the dead-letter file (`<stream>.dead_letter.jsonl`) that belong to committed
    /// pages.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub dead_letter_bytes: u64,
}

fn is_zero(value: &u64) -> bool {
    *value == 0
}

/// One stream's committed progress.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// Mode of the sync that wrote it.
    pub mode: SyncMode,
    /// The connector's state (JSON text).
    pub state: Option<String>,
    /// The step to take next; `None` once the sync completed.
    pub pending: Option<Next>,
    /// The run this sync belongs to (kept when a crashed sync is resumed).
    pub context: RunContext,
    /// Output position covered by this checkpoint.
    pub output: SinkPosition,
    /// When it was committed, in milliseconds since the Unix epoch.
    pub committed_at_ms: u64,
}

/// The persisted form: versioned from day one so later formats can still read old state.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "version")]
enum Stored {
    #[serde(rename = "1")]
    V1(Checkpoint),
}

/// The sled-backed checkpoint store of one state directory, or one tenant's namespace of it
/// (see [`CheckpointStore::namespace`]). Cloning is cheap and shares the open database.
#[derive(Clone)]
pub struct CheckpointStore {
    dir: PathBuf,
    tree: sled::Tree,
    flusher: Flusher,
    credentials_tree: String,
    db: sled::Db,
}

/// A rotated refresh token as saved, with the SHA-256 (hex) of the configured refresh token
/// it descends from.
pub struct StoredRefreshToken {
    /// The rotated refresh token.
    pub refresh_token: crate::secrets::Secret,
    /// SHA-256 of the refresh token configured when this one was obtained: once the operator
    /// configures another one, the saved token no longer applies.
    pub configured_sha256: String,
}

/// The persisted form of a [`StoredRefreshToken`].
#[derive(Serialize, Deserialize)]
#[serde(tag = "version")]
enum StoredCredential {
    #[serde(rename = "1")]
    V1 {
        refresh_token: String,
        configured_sha256: String,
    },
}

/// One connection's entry in the credentials tree (see [`CheckpointStore::credential_slot`]).
#[derive(Clone)]
pub struct CredentialSlot {
    tree: sled::Tree,
    flusher: Flusher,
    key: String,
}

impl std::fmt::Debug for CredentialSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CredentialSlot")
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

impl CredentialSlot {
    /// The saved refresh token, if any.
    pub fn load(&self) -> Result<Option<StoredRefreshToken>, Error> {
        let Some(bytes) = self.tree.get(&self.key).map_err(|error| Error::Storage {
            key: format!("credentials/{}", self.key),
            detail: error.to_string(),
        })?
        else {
            return Ok(None);
        };
        match serde_json::from_slice::<StoredCredential>(&bytes) {
            Ok(StoredCredential::V1 {
                refresh_token,
                configured_sha256,
            }) => Ok(Some(StoredRefreshToken {
                refresh_token: crate::secrets::Secret::new(refresh_token),
                configured_sha256,
            })),
            // The decoding error is not kept: it could quote the token.
            Err(_) => Err(Error::Corrupt {
                key: format!("credentials/{}", self.key),
                detail: "not a saved credential".to_owned(),
            }),
        }
    }

    /// Saves `token` and waits until it is on disk.
    pub async fn save(&self, token: &StoredRefreshToken) -> Result<(), Error> {
        let storage = |error: &dyn std::fmt::Display| Error::Storage {
            key: format!("credentials/{}", self.key),
            detail: error.to_string(),
        };
        let bytes = serde_json::to_vec(&StoredCredential::V1 {
            refresh_token: token.refresh_token.expose().to_owned(),
            configured_sha256: token.configured_sha256.clone(),
        })
        .map_err(|e| storage(&e))?;
        self.tree
            .insert(self.key.as_bytes(), bytes)
            .map_err(|e| storage(&e))?;
        self.flusher
            .flush(&self.tree)
            .await
            .map_err(|e| storage(&e))?;
        Ok(())
    }
}

/// Makes writes durable, one flush at a time per database, on tokio's blocking pool.
///
/// sled's own `flush_async` runs on sled's small I/O thread pool; hundreds of syncs flushing at
/// once (`sluice serve`) fill that pool with flushes that wait for buffer writes queued behind
/// them in the same pool, and the process deadlocks. A flush on a blocking thread leaves sled's
/// pool free for the writes, and the gate keeps concurrent flushes from piling up: the flush a
/// commit waits for also covers every write made before it started.
#[derive(Clone, Default)]
struct Flusher {
    gate: std::sync::Arc<tokio::sync::Mutex<()>>,
}

impl Flusher {
    async fn flush(&self, tree: &sled::Tree) -> Result<(), sled::Error> {
        let _turn = self.gate.lock().await;
        let tree = tree.clone();
        match tokio::task::spawn_blocking(move || tree.flush()).await {
            Ok(flushed) => flushed.map(|_| ()),
            Err(join) => Err(sled::Error::ReportableBug(format!(
                "the flush task failed: {join}"
            ))),
        }
    }
}

impl CheckpointStore {
    /// Opens (creating if needed) the store in `dir`. Fails within [`LOCK_GRACE`] if another
    /// holder keeps it locked.
    ///
    /// The grace exists because sled's background threads release the directory lock a moment
    /// after the last handle of an earlier open in this process is dropped.
    pub fn open(dir: &Path) -> Result<Self, Error> {
        let deadline = Instant::now() + LOCK_GRACE;
        loop {
            match Self::try_open(dir) {
                Err(Error::Locked { .. }) if Instant::now() < deadline => {
                    #[expect(
                        clippy::disallowed_methods,
                        reason = "opening is blocking I/O anyway; this waits only while the lock is held"
                    )]
                    std::thread::sleep(LOCK_RETRY);
                }
                outcome => return outcome,
            }
        }
    }

    /// One attempt at [`CheckpointStore::open`].
    fn try_open(dir: &Path) -> Result<Self, Error> {
        let db = sled::Config::new().path(dir).open().map_err(|error| {
            let detail = error.to_string();
            if detail.contains("lock") || detail.contains("WouldBlock") {
                Error::Locked {
                    dir: dir.to_owned(),
                }
            } else {
                Error::Open {
                    dir: dir.to_owned(),
                    detail,
                }
            }
        })?;
        let tree = db.open_tree(CHECKPOINT_TREE).map_err(|error| Error::Open {
            dir: dir.to_owned(),
            detail: error.to_string(),
        })?;
        Ok(Self {
            dir: dir.to_owned(),
            tree,
            flusher: Flusher::default(),
            credentials_tree: CREDENTIALS_TREE.to_owned(),
            db,
        })
    }

    /// The namespace `name` (a tenant) of this store: its checkpoints and credentials live in
    /// trees of their own, so no key of one namespace can address another's.
    pub fn namespace(&self, name: &str) -> Result<Self, Error> {
        let tree = self
            .db
            .open_tree(format!("tenant/{name}/{CHECKPOINT_TREE}"))
            .map_err(|error| Error::Open {
                dir: self.dir.clone(),
                detail: error.to_string(),
            })?;
        Ok(Self {
            dir: self.dir.clone(),
            tree,
            flusher: self.flusher.clone(),
            credentials_tree: format!("tenant/{name}/{CREDENTIALS_TREE}"),
            db: self.db.clone(),
        })
    }

    /// Where `connection`'s rotated OAuth2 refresh token is kept (the `credentials` tree).
    pub fn credential_slot(&self, connection: &str) -> Result<CredentialSlot, Error> {
        let tree = self
            .db
            .open_tree(&self.credentials_tree)
            .map_err(|error| Error::Open {
                dir: self.dir.clone(),
                detail: error.to_string(),
            })?;
        Ok(CredentialSlot {
            flusher: self.flusher.clone(),
            tree,
            key: connection.to_owned(),
        })
    }

    /// The directory this store lives in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The last committed checkpoint of `key`, if any.
    pub fn load(&self, key: &StreamKey) -> Result<Option<Checkpoint>, Error> {
        let encoded = key.encode();
        let Some(bytes) = self.tree.get(&encoded).map_err(|error| Error::Storage {
            key: encoded.clone(),
            detail: error.to_string(),
        })?
        else {
            return Ok(None);
        };
        match serde_json::from_slice::<Stored>(&bytes) {
            Ok(Stored::V1(checkpoint)) => Ok(Some(checkpoint)),
            Err(error) => Err(Error::Corrupt {
                key: encoded,
                detail: error.to_string(),
            }),
        }
    }

    /// Commits `checkpoint` for `key` and waits until it is on disk.
    pub async fn commit(&self, key: &StreamKey, checkpoint: &Checkpoint) -> Result<(), Error> {
        self.commit_page(key, checkpoint, &[], false).await
    }

    /// Commits `checkpoint` for `key` together with the records the page wrote to the seen
    /// index (`(primary key, digest)`), in one atomic batch, and waits until it is on disk.
    /// With `forget_seen`, the stream's earlier seen entries are dropped in the same batch (a
    /// new full read starts).
    pub async fn commit_page(
        &self,
        key: &StreamKey,
        checkpoint: &Checkpoint,
        seen: &[(String, RecordDigest)],
        forget_seen: bool,
    ) -> Result<(), Error> {
        self.stage_page(key, checkpoint, seen, forget_seen)?;
        self.flush(key).await
    }

    /// The first half of [`CheckpointStore::commit_page`]: applies the batch, which reads of
    /// this store see at once, without waiting for the disk. Until a [`CheckpointStore::flush`]
    /// that starts after it returns, a crash may keep the commit before it instead (never a
    /// part of the batch).
    pub fn stage_page(
        &self,
        key: &StreamKey,
        checkpoint: &Checkpoint,
        seen: &[(String, RecordDigest)],
        forget_seen: bool,
    ) -> Result<(), Error> {
        let encoded = key.encode();
        let storage = |error: &dyn std::fmt::Display| Error::Storage {
            key: encoded.clone(),
            detail: error.to_string(),
        };
        let bytes = serde_json::to_vec(&Stored::V1(checkpoint.clone())).map_err(|e| storage(&e))?;
        let mut batch = sled::Batch::default();
        let prefix = seen_prefix(key);
        if forget_seen {
            for entry in self.tree.scan_prefix(prefix.as_bytes()).keys() {
                batch.remove(entry.map_err(|e| storage(&e))?);
            }
        }
        for (primary_key, digest) in seen {
            batch.insert(
                format!("{prefix}{primary_key}").as_bytes(),
                digest.as_slice(),
            );
        }
        batch.insert(encoded.as_bytes(), bytes);
        self.tree.apply_batch(batch).map_err(|e| storage(&e))
    }

    /// Waits until everything staged so far is on disk (`key` names the stream in an error).
    pub async fn flush(&self, key: &StreamKey) -> Result<(), Error> {
        self.flusher
            .flush(&self.tree)
            .await
            .map_err(|error| Error::Storage {
                key: key.encode(),
                detail: error.to_string(),
            })
    }

    /// The digest of the record last written for `primary_key` in `key`'s stream, if any.
    pub fn seen(&self, key: &StreamKey, primary_key: &str) -> Result<Option<RecordDigest>, Error> {
        let entry = format!("{}{primary_key}", seen_prefix(key));
        let value = self
            .tree
            .get(entry.as_bytes())
            .map_err(|error| Error::Storage {
                key: key.encode(),
                detail: error.to_string(),
            })?;
        Ok(value.and_then(|bytes| RecordDigest::try_from(bytes.as_ref()).ok()))
    }

    /// Every checkpoint in the store, by key.
    pub fn list(&self) -> Result<Vec<(String, Checkpoint)>, Error> {
        let mut all = Vec::new();
        for entry in &self.tree {
            let (key, bytes) = entry.map_err(|error| Error::Storage {
                key: "*".to_owned(),
                detail: error.to_string(),
            })?;
            if key.contains(&SEEN_SEPARATOR) {
                continue;
            }
            let key = String::from_utf8_lossy(&key).into_owned();
            match serde_json::from_slice::<Stored>(&bytes) {
                Ok(Stored::V1(checkpoint)) => all.push((key, checkpoint)),
                Err(error) => {
                    return Err(Error::Corrupt {
                        key,
                        detail: error.to_string(),
                    });
                }
            }
        }
        Ok(all)
    }

    /// `key`'s checkpoint in its stored, versioned form (`{"version": "1", "mode", ...}`), as
    /// `sluice state show` prints it and [`CheckpointStore::import`] takes it back.
    pub fn export(&self, key: &StreamKey) -> Result<Option<serde_json::Value>, Error> {
        let Some(checkpoint) = self.load(key)? else {
            return Ok(None);
        };
        serde_json::to_value(Stored::V1(checkpoint))
            .map(Some)
            .map_err(|error| Error::Storage {
                key: key.encode(),
                detail: error.to_string(),
            })
    }

    /// The streams of `connection` that have a checkpoint, in key order (seen-index entries
    /// are not streams).
    pub fn streams(&self, connection: &str) -> Result<Vec<String>, Error> {
        let prefix = format!("{connection}/");
        let mut streams = Vec::new();
        for entry in self.tree.scan_prefix(prefix.as_bytes()).keys() {
            let key = entry.map_err(|error| Error::Storage {
                key: format!("{prefix}*"),
                detail: error.to_string(),
            })?;
            if key.contains(&SEEN_SEPARATOR) {
                continue;
            }
            let key = String::from_utf8_lossy(&key);
            if let Some(stream) = key.strip_prefix(&prefix) {
                streams.push(stream.to_owned());
            }
        }
        Ok(streams)
    }

    /// Replaces `key`'s checkpoint with `value`, its stored form as [`CheckpointStore::export`]
    /// gives it, after checking it with [`decode_stored`]; the seen index is kept. Waits until
    /// the checkpoint is on disk and returns it.
    pub async fn import(
        &self,
        key: &StreamKey,
        value: serde_json::Value,
    ) -> Result<Checkpoint, Error> {
        let checkpoint = decode_stored(key, value)?;
        self.commit(key, &checkpoint).await?;
        Ok(checkpoint)
    }

    /// Forgets `key`'s checkpoint and seen index so its next sync starts from scratch.
    /// Returns whether there was a checkpoint.
    pub async fn reset(&self, key: &StreamKey) -> Result<bool, Error> {
        let encoded = key.encode();
        let storage = |error: sled::Error| Error::Storage {
            key: encoded.clone(),
            detail: error.to_string(),
        };
        let existed = self
            .tree
            .contains_key(encoded.as_bytes())
            .map_err(storage)?;
        let mut batch = sled::Batch::default();
        for entry in self.tree.scan_prefix(seen_prefix(key).as_bytes()).keys() {
            batch.remove(entry.map_err(storage)?);
        }
        batch.remove(encoded.as_bytes());
        self.tree.apply_batch(batch).map_err(storage)?;
        self.flusher.flush(&self.tree).await.map_err(storage)?;
        Ok(existed)
    }
}

/// The fields of the stored form, version 1, at the top level.
const STORED_FIELDS: &[&str] = &[
    "version",
    "mode",
    "state",
    "pending",
    "context",
    "output",
    "committed_at_ms",
];
/// Fields that must be present (the others may be `null` or absent).
const REQUIRED_FIELDS: &[&str] = &["version", "mode", "context", "output", "committed_at_ms"];
const CONTEXT_FIELDS: &[&str] = &["run_id", "started_at_ms"];
const OUTPUT_FIELDS: &[&str] = &["offset_bytes", "records", "dead_letter_bytes"];
const REQUEST_FIELDS: &[&str] = &[
    "method",
    "url",
    "query",
    "headers",
    "body",
    "authenticate",
    "idempotent",
];
const BACK_OFF_FIELDS: &[&str] = &["wait_ms", "request"];

/// Checks an operator-given checkpoint in its stored form (`{"version": "1", ...}`) and
/// decodes it with the same versioned decoding as loading: unknown versions, unknown or
/// missing fields, and a `state` that is not JSON text are refused with the field named.
pub fn decode_stored(key: &StreamKey, value: serde_json::Value) -> Result<Checkpoint, Error> {
    let invalid = |detail: String| Error::Invalid {
        key: key.encode(),
        detail,
    };
    let Some(object) = value.as_object() else {
        return Err(invalid(format!(
            "expected a JSON object like `sluice state show` prints for one stream, got {}",
            json_kind(&value)
        )));
    };
    match object.get("version") {
        None => {
            return Err(invalid(
                "missing field `version`; add `\"version\": \"1\"`".to_owned(),
            ));
        }
        Some(serde_json::Value::String(version)) if version == "1" => {}
        Some(other) => {
            return Err(invalid(format!(
                "unknown `version` {other}; this sluice reads version \"1\" (the form `sluice state show` prints)"
            )));
        }
    }
    unknown_fields(object, STORED_FIELDS, "").map_err(&invalid)?;
    if let Some(missing) = REQUIRED_FIELDS.iter().find(|f| !object.contains_key(**f)) {
        return Err(invalid(format!(
            "missing field `{missing}`; start from what `sluice state show` prints"
        )));
    }
    if let Some(serde_json::Value::Object(context)) = object.get("context") {
        unknown_fields(context, CONTEXT_FIELDS, "context.").map_err(&invalid)?;
    }
    if let Some(serde_json::Value::Object(output)) = object.get("output") {
        unknown_fields(output, OUTPUT_FIELDS, "output.").map_err(&invalid)?;
    }
    if let Some(serde_json::Value::Object(pending)) = object.get("pending") {
        if let Some(serde_json::Value::Object(request)) = pending.get("fetch") {
            unknown_fields(request, REQUEST_FIELDS, "pending.fetch.").map_err(&invalid)?;
        }
        if let Some(serde_json::Value::Object(back_off)) = pending.get("back_off") {
            unknown_fields(back_off, BACK_OFF_FIELDS, "pending.back_off.").map_err(&invalid)?;
            if let Some(serde_json::Value::Object(request)) = back_off.get("request") {
                unknown_fields(request, REQUEST_FIELDS, "pending.back_off.request.")
                    .map_err(&invalid)?;
            }
        }
    }
    let checkpoint = match serde_json::from_value::<Stored>(value) {
        Ok(Stored::V1(checkpoint)) => checkpoint,
        Err(error) => {
            return Err(invalid(format!(
                "{error}; start from what `sluice state show` prints"
            )));
        }
    };
    if let Some(state) = &checkpoint.state
        && let Err(error) = serde_json::from_str::<serde_json::Value>(state)
    {
        return Err(invalid(format!(
            "field `state` must be a JSON string holding JSON text (e.g. \"{{\\\"cursor\\\":5}}\"), but its text is not JSON: {error}"
        )));
    }
    Ok(checkpoint)
}

/// Refuses a field of `object` not in `known`, naming it as `{path}{field}`.
fn unknown_fields(
    object: &serde_json::Map<String, serde_json::Value>,
    known: &[&str],
    path: &str,
) -> Result<(), String> {
    match object.keys().find(|field| !known.contains(&field.as_str())) {
        Some(field) => Err(format!(
            "unknown field `{path}{field}`; remove it (known fields: {})",
            known.join(", ")
        )),
        None => Ok(()),
    }
}

/// The JSON type of `value`, for messages.
fn json_kind(value: &serde_json::Value) -> &'static str {
    match value {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

/// Separates a stream's key from its seen-index entries; never part of a name.
const SEEN_SEPARATOR: u8 = 0;

/// The key prefix of `key`'s seen-index entries.
fn seen_prefix(key: &StreamKey) -> String {
    format!("{}\u{0}seen\u{0}", key.encode())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn checkpoint(offset: u64) -> Checkpoint {
        Checkpoint {
            mode: SyncMode::Incremental,
            state: Some(r#"{"cursor":5}"#.to_owned()),
            pending: None,
            context: RunContext {
                run_id: "r".to_owned(),
                started_at_ms: 1,
            },
            output: SinkPosition {
                offset_bytes: offset,
                records: 2,
                dead_letter_bytes: 0,
            },
            committed_at_ms: 3,
        }
    }

    #[tokio::test]
    async fn commit_survives_reopen_and_is_versioned() {
        let dir = tempfile::tempdir().unwrap();
        let key = StreamKey::new("conn", "orders");
        {
            let store = CheckpointStore::open(dir.path()).unwrap();
            assert_eq!(store.load(&key).unwrap(), None);
            store.commit(&key, &checkpoint(10)).await.unwrap();
        }
        let store = CheckpointStore::open(dir.path()).unwrap();
        assert_eq!(store.load(&key).unwrap(), Some(checkpoint(10)));
        let raw = store.tree.get("conn/orders").unwrap().unwrap();
        assert!(raw.starts_with(br#"{"version":"1""#), "{raw:?}");
        assert!(store.reset(&key).await.unwrap());
        assert_eq!(store.load(&key).unwrap(), None);
    }

    #[tokio::test]
    async fn rotated_refresh_token_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = CheckpointStore::open(dir.path()).unwrap();
            let slot = store.credential_slot("conn").unwrap();
            assert!(slot.load().unwrap().is_none());
            slot.save(&StoredRefreshToken {
                refresh_token: crate::secrets::Secret::new("rt-2"),
                configured_sha256: "abc".to_owned(),
            })
            .await
            .unwrap();
        }
        let store = CheckpointStore::open(dir.path()).unwrap();
        let loaded = store
            .credential_slot("conn")
            .unwrap()
            .load()
            .unwrap()
            .unwrap();
        assert_eq!(loaded.refresh_token.expose(), "rt-2");
        assert_eq!(loaded.configured_sha256, "abc");
        assert!(
            store
                .credential_slot("other")
                .unwrap()
                .load()
                .unwrap()
                .is_none()
        );
        assert!(
            store.list().unwrap().is_empty(),
            "credentials are not checkpoints"
        );
    }

    #[tokio::test]
    async fn namespaces_do_not_see_each_other() {
        let dir = tempfile::tempdir().unwrap();
        let store = CheckpointStore::open(dir.path()).unwrap();
        let acme = store.namespace("acme").unwrap();
        let globex = store.namespace("globex").unwrap();
        let key = StreamKey::new("shop", "orders");
        let checkpoint = Checkpoint {
            mode: SyncMode::Incremental,
            state: Some("{}".to_owned()),
            pending: None,
            context: RunContext {
                run_id: "r".to_owned(),
                started_at_ms: 1,
            },
            output: SinkPosition {
                offset_bytes: 3,
                records: 1,
                dead_letter_bytes: 0,
            },
            committed_at_ms: 1,
        };
        acme.commit(&key, &checkpoint).await.unwrap();
        assert_eq!(acme.load(&key).unwrap(), Some(checkpoint));
        assert_eq!(globex.load(&key).unwrap(), None);
        assert!(globex.list().unwrap().is_empty());
        assert!(
            store.list().unwrap().is_empty(),
            "the root namespace is apart too"
        );
        assert!(!globex.reset(&key).await.unwrap());
        assert!(acme.load(&key).unwrap().is_some());
    }

    #[test]
    fn a_second_open_of_the_same_directory_fails_clearly() {
        let dir = tempfile::tempdir().unwrap();
        let _first = CheckpointStore::open(dir.path()).unwrap();
        let error = CheckpointStore::open(dir.path()).err().unwrap();
        assert!(matches!(error, Error::Locked { .. }), "{error}");
        assert!(
            error
                .to_string()
                .contains("in use by another sluice process")
        );
    }

    #[tokio::test]
    async fn export_import_round_trip_and_refusals() {
        let dir = tempfile::tempdir().unwrap();
        let store = CheckpointStore::open(dir.path()).unwrap();
        let key = StreamKey::new("conn", "orders");
        store.commit(&key, &checkpoint(10)).await.unwrap();
        store
            .commit_page(
                &StreamKey::new("conn", "users"),
                &checkpoint(1),
                &[("1".to_owned(), [0; 16])],
                false,
            )
            .await
            .unwrap();
        assert_eq!(store.streams("conn").unwrap(), ["orders", "users"]);
        let mut exported = store.export(&key).unwrap().unwrap();
        assert_eq!(exported["version"], "1");
        assert_eq!(exported["output"]["offset_bytes"], 10);
        exported["state"] = serde_json::json!(r#"{"cursor":1}"#);
        let imported = store.import(&key, exported.clone()).await.unwrap();
        assert_eq!(imported.state.as_deref(), Some(r#"{"cursor":1}"#));
        assert_eq!(store.load(&key).unwrap(), Some(imported));

        let refused = |edit: &dyn Fn(&mut serde_json::Value)| {
            let mut value = exported.clone();
            edit(&mut value);
            decode_stored(&key, value).unwrap_err().to_string()
        };
        let error = refused(&|v| v["version"] = serde_json::json!("9"));
        assert!(error.contains("unknown `version` \"9\""), "{error}");
        let error = refused(&|v| v["cursor"] = serde_json::json!(1));
        assert!(error.contains("unknown field `cursor`"), "{error}");
        let error = refused(&|v| v["output"]["bytes"] = serde_json::json!(1));
        assert!(error.contains("unknown field `output.bytes`"), "{error}");
        let error = refused(&|v| {
            v.as_object_mut().unwrap().remove("context");
        });
        assert!(error.contains("missing field `context`"), "{error}");
        let error = refused(&|v| v["state"] = serde_json::json!("{cursor: 1}"));
        assert!(error.contains("field `state`"), "{error}");
        let error = refused(&|v| v["mode"] = serde_json::json!("sometimes"));
        assert!(error.contains("sometimes"), "{error}");
        let error = refused(&|v| v["pending"] = serde_json::json!({"fetch": {"url": "x"}}));
        assert!(error.contains("method"), "{error}");
        assert_eq!(
            store.load(&key).unwrap().unwrap().state.as_deref(),
            Some(r#"{"cursor":1}"#)
        );
    }
}
