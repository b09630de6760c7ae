//! Shared harness for Sluice's integration tests (`tests/all`).
//!
//! It provides what every end-to-end test needs and nothing that knows the host's internals:
//! - [`mock::MockApi`]: an in-process HTTP API on `127.0.0.1:0` with one endpoint per pagination
//!   style, incremental filters, a GitHub-shaped issues endpoint, per-request delays and a request
//!   log to assert on. It stops when dropped.
//! - [`dataset`]: the deterministic records the mock serves, so tests know the exact expected output.
//! - [`connection`]: connection files (TOML) for the `rest` and other connectors.
//! - [`cli`]: running the real `sluice` binary with a bounded wait, and parsing its `--json` summary.
//! - [`files`]: reading JSONL output and searching written files.
//! - [`wait`]: bounded polling (every loop is bounded by count and time).
//! - [`rng`]: a tiny seeded generator, so "random" kill points are reproducible.
//!
//! The guest components built by `build.rs` are exposed as absolute paths
//! (`HOSTILE_*_COMPONENT`), together with `GUESTS_TARGET_DIR` and `SDK_DIR`.

pub mod cli;
pub mod connection;
pub mod dataset;
pub mod files;
pub mod mock;
pub mod rng;
pub mod scripted;
pub mod shapes;
pub mod wait;

include!(concat!(env!("OUT_DIR"), "/guests.rs"));
