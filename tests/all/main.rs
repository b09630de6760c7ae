//! Sluice's end-to-end tests: the single integration test binary (it links once).
//!
//! Compiled as the `all` test of `sluice-host`, so it can start the real `sluice` binary
//! (`CARGO_BIN_EXE_sluice`) and also drive the library in-process. Every test runs against
//! the in-process mock API on 127.0.0.1 ([`sluice_tests::mock::MockApi`]), real components,
//! and a real sled store in a temporary directory. Nothing here touches the internet.
//!
//! Run with `cargo test -p sluice-host --test all`; `SLUICE_TEST_SEED=<n>` replays the seeded
//! crash tests with other kill points (the seed in use is printed on failure).

mod archive;
mod auth;
mod cli;
mod crash_oracle;
mod crash_resume;
mod egress;
mod exactly_once;
mod formats;
mod github;
mod hostile;
mod incremental;
mod keyset;
mod load_errors;
mod network;
mod real_connectors;
mod rest_pagination;
mod sandbox;
mod scaffold;
mod sdk_third_party;
mod serve;

use std::path::{Path, PathBuf};

use serde_json::Value;
use sluice_tests::cli::{CmdOutput, RunSummary, Sluice, run_args};
use sluice_tests::connection::Connection;
use tempfile::TempDir;

/// The `sluice` binary built for this test run.
pub fn sluice() -> Sluice {
    Sluice::new(env!("CARGO_BIN_EXE_sluice"))
}

/// A temporary directory laid out for one connection: its file, its state and its output.
pub struct Workspace {
    dir: TempDir,
}

impl Default for Workspace {
    fn default() -> Self {
        Self::new()
    }
}

impl Workspace {
    /// A fresh, empty workspace.
    pub fn new() -> Self {
        Self {
            dir: tempfile::Builder::new()
                .prefix("sluice-test-")
                .tempdir()
                .expect("create a temporary directory"),
        }
    }

    /// The workspace root.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The checkpoint directory (`<root>/state`).
    pub fn state(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    /// The output directory (`<root>/output`).
    pub fn output(&self) -> PathBuf {
        self.dir.path().join("output")
    }

    /// The output file of `stream`.
    pub fn output_file(&self, stream: &str) -> PathBuf {
        self.output().join(format!("{stream}.jsonl"))
    }

    /// Writes `connection` as `<root>/connection.toml`.
    pub fn write(&self, connection: &Connection) -> PathBuf {
        connection.write(self.dir.path())
    }

    /// `sluice run --json` of `connector` with this workspace's connection, state and output,
    /// expected to succeed.
    #[track_caller]
    pub fn run(&self, connector: &str) -> RunSummary {
        let output = self.run_output(connector);
        output.assert_success();
        output.json()
    }

    /// `sluice run --json` of `connector`, whatever its outcome.
    pub fn run_output(&self, connector: &str) -> CmdOutput {
        sluice().cmd(self.run_args(connector)).output()
    }

    /// The arguments of `sluice run` for this workspace.
    pub fn run_args(&self, connector: &str) -> Vec<String> {
        run_args(
            connector,
            &self.path().join("connection.toml"),
            &self.state(),
            &self.output(),
        )
    }

    /// The records written for `stream`.
    pub fn records(&self, stream: &str) -> Vec<Value> {
        sluice_tests::files::read_jsonl(&self.output_file(stream))
    }
}

/// Turns a hang into a failure; no test asserts on speed.
pub const HANG_GUARD: std::time::Duration = std::time::Duration::from_secs(120);

/// Runs a sync of `connector` (a bundled name or a `.wasm` path) with `connection` in `ws`, in
/// this process, bounded by [`HANG_GUARD`].
pub async fn sync_in_process(
    runtime: &sluice_host::Runtime,
    connector: &str,
    connection: &Connection,
    ws: &Workspace,
) -> Result<sluice_host::sync::RunSummary, sluice_host::sync::Error> {
    let connector = sluice_host::Connector::load(runtime, connector)
        .unwrap_or_else(|e| panic!("cannot load {connector}: {e}"));
    let path = ws.write(connection);
    let connection = sluice_host::config::Connection::parse(&connection.to_toml(), &path)
        .unwrap_or_else(|e| panic!("connection does not parse: {e}"));
    let options = sluice_host::sync::RunOptions {
        state_dir: ws.state(),
        output_dir: ws.output(),
        streams: vec![],
        full_refresh: false,
        ..Default::default()
    };
    tokio::time::timeout(
        HANG_GUARD,
        sluice_host::sync::run(runtime, &connector, &connection, &options),
    )
    .await
    .unwrap_or_else(|_| panic!("sync::run did not return within {HANG_GUARD:?}"))
}

/// A normal `rest` sync against its own mock, in this process on `runtime`, succeeds
/// completely: the host is healthy whatever a hostile guest did before or beside it.
pub async fn assert_healthy_sync(runtime: &sluice_host::Runtime) {
    use sluice_tests::connection::{Style, rest_connection, rest_stream};
    let mock = sluice_tests::mock::MockApi::start(45);
    let ws = Workspace::new();
    let connection = rest_connection(&mock, vec![rest_stream("items", Style::Offset, 10)]);
    let summary = sync_in_process(runtime, "rest", &connection, &ws)
        .await
        .unwrap_or_else(|e| panic!("a healthy sync beside or after a hostile guest failed: {e}"));
    assert_eq!(summary.streams.len(), 1);
    assert_eq!(summary.streams[0].records, 45);
    assert_eq!(
        sluice_tests::files::read_jsonl(&ws.output_file("items")),
        sluice_tests::dataset::records(45)
    );
}
