//! Sluice host: runs untrusted API-ingestion connectors compiled to WebAssembly components.
//!
//! The host is the only trusted part of Sluice. A connector (a WASM component implementing
//! `wit/connector.wit`) decides which request comes next and turns responses into records and a
//! checkpoint; everything that touches the outside world lives here:
//!
//! - [`sandbox`] and [`host_impl`]: the wasmtime engine, per-call limits, and the adapter between
//!   guest data and host types. Nothing else imports wasmtime.
//! - [`http`], [`retry`], [`rate_limit`], [`secrets`]: the transport every guest request goes
//!   through (egress policy, rate limits, credentials, timeouts, size caps, retries).
//! - [`checkpoint`] and [`sink`]: durable state and output, committed in the order that makes
//!   resume exact.
//! - [`sync`]: the loop that ties one stream together; the only place that knows that order.
//! - [`config`], [`cli`], [`demo`], [`inspect`], [`progress`]: the operator's edge.

pub mod archive;
pub mod bundled;
pub mod checkpoint;
pub mod cli;
pub mod config;
pub mod connector;
pub mod dedup;
pub mod demo;
pub mod host_impl;
pub mod http;
pub mod inspect;
pub mod progress;
pub mod protocol;
pub mod rate_limit;
pub mod retry;
pub mod sandbox;
pub mod scaffold;
pub mod schema;
pub mod secrets;
pub mod serve;
pub mod sink;
pub mod sync;
pub mod telemetry;

#[allow(
    clippy::too_many_arguments,
    reason = "generated code mirrors the WIT exports' parameters"
)]
mod bindings;

pub use connector::Connector;
pub use sandbox::Runtime;
