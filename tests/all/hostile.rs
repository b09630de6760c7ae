//! Hostile guests: a connector that spins, exhausts memory or panics is stopped with a clear
//! error, and the host stays healthy: the next sync in the same process succeeds.

use std::path::Path;
use std::time::Duration;

use serde_json::json;
use sluice_host::sync;
use sluice_host::{Connector, Runtime, sandbox};
use sluice_tests::connection::Connection;
use sluice_tests::mock::MockApi;
use sluice_tests::{
    HOSTILE_ILOOP_COMPONENT, HOSTILE_ILOOP_SPEC_COMPONENT, HOSTILE_OOM_COMPONENT,
    HOSTILE_PANIC_COMPONENT,
};

// Every guest in `tests/guests` has a test of the same name (wasmtime's `assert_test_exists`).
#[allow(unused_imports, reason = "only checks that the test exists")]
use crate::egress::hostile_disallowed_host;
#[allow(unused_imports, reason = "only checks that the test exists")]
use crate::sandbox::hostile_abuse;
macro_rules! assert_test_exists {
    ($name:ident) => {
        const _: fn() = $name;
    };
}
// Its test lives with the other credential tests.
use crate::auth::hostile_secret_probe;

sluice_tests::foreach_hostile!(assert_test_exists);

use crate::{Workspace, assert_healthy_sync, sync_in_process};

/// The CPU deadline of one guest call in these tests.
const DEADLINE_MS: u64 = 300;
/// Small enough that the memory bomb hits it quickly, large enough for real connectors.
const MAX_MEMORY_BYTES: u64 = 32 << 20;

fn iloop_connection(mock: &MockApi, loop_in: &str, deadline_ms: u64) -> Connection {
    Connection::new(json!({ "loop_in": loop_in, "url": mock.url("/none/items") }))
        .allow_private_networks()
        .guest_call_timeout_ms(deadline_ms)
}

/// The written output of `stream` holds no records.
fn assert_no_records(ws: &Workspace, stream: &str) {
    let file = ws.output_file(stream);
    assert!(
        !file.exists() || std::fs::read(&file).expect("read output").is_empty(),
        "{} has records",
        file.display()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn hostile_iloop() {
    let runtime = Runtime::new().expect("runtime");
    let mock = MockApi::start(5);
    for loop_in in ["begin", "next_page", "discover"] {
        let ws = Workspace::new();
        let connection = iloop_connection(&mock, loop_in, DEADLINE_MS);
        let error = sync_in_process(&runtime, HOSTILE_ILOOP_COMPONENT, &connection, &ws)
            .await
            .expect_err("an endless loop cannot succeed");
        let message = error.to_string();
        assert!(
            message.contains("deadline"),
            "loop in {loop_in}: the error must say the deadline was hit: {message}"
        );
        assert!(
            matches!(
                error,
                sync::Error::StreamsFailed { .. }
                    | sync::Error::Sandbox(sandbox::Error::Timeout { .. })
            ),
            "loop in {loop_in}: {error:?}"
        );
        assert_no_records(&ws, "items");
        assert_healthy_sync(&runtime).await;
    }
    // Only the `next_page` case got as far as sending its one request.
    assert_eq!(mock.request_count(), 1);
}

/// A guest spinning until its deadline does not hold up another sync running meanwhile.
#[tokio::test(flavor = "multi_thread")]
async fn hostile_iloop_beside_a_healthy_sync() {
    let runtime = Runtime::new().expect("runtime");
    let mock = MockApi::start(5);
    let ws = Workspace::new();
    let connection = iloop_connection(&mock, "begin", 2_000);
    let (spinning, healthy) = tokio::join!(
        sync_in_process(&runtime, HOSTILE_ILOOP_COMPONENT, &connection, &ws),
        assert_healthy_sync(&runtime),
    );
    let message = spinning
        .expect_err("an endless loop cannot succeed")
        .to_string();
    assert!(message.contains("deadline"), "{message}");
    healthy
}

#[test]
fn hostile_iloop_cli() {
    let mock = MockApi::start(5);
    let ws = Workspace::new();
    ws.write(&iloop_connection(&mock, "begin", DEADLINE_MS));
    let output = crate::sluice()
        .cmd(ws.run_args(HOSTILE_ILOOP_COMPONENT))
        .timeout(Duration::from_secs(60))
        .output();
    let error = output.assert_error();
    assert!(error.contains("deadline"), "{output}");
    assert_eq!(mock.request_count(), 0);
}

/// A guest whose `spec` never returns: the host calls `spec` first and stops it at the deadline.
#[tokio::test(flavor = "multi_thread")]
async fn hostile_iloop_spec() {
    let runtime = Runtime::new().expect("runtime");
    let mock = MockApi::start(5);
    let ws = Workspace::new();
    let connection = Connection::new(json!({ "url": mock.url("/none/items") }))
        .allow_private_networks()
        .guest_call_timeout_ms(DEADLINE_MS);
    let error = sync_in_process(&runtime, HOSTILE_ILOOP_SPEC_COMPONENT, &connection, &ws)
        .await
        .expect_err("an endless `spec` cannot succeed");
    assert!(error.to_string().contains("deadline"), "{error}");
    assert_healthy_sync(&runtime).await;

    let output = crate::sluice()
        .cmd(ws.run_args(HOSTILE_ILOOP_SPEC_COMPONENT))
        .timeout(Duration::from_secs(60))
        .output();
    let error = output.assert_error();
    assert!(error.contains("deadline"), "{output}");
    assert_eq!(mock.request_count(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn hostile_oom() {
    let runtime = Runtime::new().expect("runtime");
    let ws = Workspace::new();
    let connection = Connection::new(json!({})).max_memory_bytes(MAX_MEMORY_BYTES);
    let error = sync_in_process(&runtime, HOSTILE_OOM_COMPONENT, &connection, &ws)
        .await
        .expect_err("a memory bomb cannot succeed");
    let message = error.to_string();
    assert!(
        message.contains("memory limit") && message.contains(&MAX_MEMORY_BYTES.to_string()),
        "the error must name the memory limit: {message}"
    );
    assert!(
        matches!(
            error,
            sync::Error::StreamsFailed { .. }
                | sync::Error::Sandbox(sandbox::Error::MemoryExceeded { .. })
        ),
        "{error:?}"
    );
    assert_no_records(&ws, "items");
    assert_healthy_sync(&runtime).await;

    // Same through the CLI.
    let ws = Workspace::new();
    ws.write(&connection);
    let output = crate::sluice()
        .cmd(ws.run_args(HOSTILE_OOM_COMPONENT))
        .output();
    let error = output.assert_error();
    assert!(error.contains("memory limit"), "{output}");
}

#[tokio::test(flavor = "multi_thread")]
async fn hostile_panic() {
    let runtime = Runtime::new().expect("runtime");
    let ws = Workspace::new();
    let connection = Connection::new(json!({}));
    let error = sync_in_process(&runtime, HOSTILE_PANIC_COMPONENT, &connection, &ws)
        .await
        .expect_err("a panicking guest cannot succeed");
    let message = error.to_string();
    let lower = message.to_lowercase();
    assert!(
        message.contains("begin")
            && ["crash", "trap", "panic"].iter().any(|w| lower.contains(w))
            && !lower.contains("deadline")
            && !lower.contains("memory"),
        "the error must say the guest crashed in `begin`: {message}"
    );
    assert!(
        matches!(
            error,
            sync::Error::StreamsFailed { .. }
                | sync::Error::Sandbox(sandbox::Error::Trapped { .. })
        ),
        "{error:?}"
    );
    assert_no_records(&ws, "items");
    assert_healthy_sync(&runtime).await;

    let ws = Workspace::new();
    ws.write(&connection);
    let output = crate::sluice()
        .cmd(ws.run_args(HOSTILE_PANIC_COMPONENT))
        .output();
    let error = output.assert_error();
    assert!(error.contains("begin"), "{output}");
    // The guest's panic message (from its stderr) is the error's detail, not a wasm backtrace.
    assert!(
        error.contains("hostile_panic: deliberate panic in begin") && error.contains("panic at"),
        "{output}"
    );
}

/// Loading every hostile component works (they are valid connectors); only running them fails.
#[tokio::test(flavor = "multi_thread")]
async fn hostile_components_load() {
    let runtime = Runtime::new().expect("runtime");
    for path in [
        HOSTILE_ILOOP_COMPONENT,
        HOSTILE_OOM_COMPONENT,
        HOSTILE_PANIC_COMPONENT,
    ] {
        assert!(Path::new(path).is_file(), "{path} was not built");
        Connector::load(&runtime, path).unwrap_or_else(|e| panic!("{path}: {e}"));
    }
}
