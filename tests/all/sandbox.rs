//! The hostile-guest suite (issue 5): one abuse per test. Each test asserts
//! - the error class (the stable `kind` of the failure, and a message naming the limit and its
//!   value),
//! - that the state and output committed by an earlier good sync of the same connection are
//!   unchanged (where there was one), and
//! - that another connection syncing at the same time in the same process, on the same
//!   [`Runtime`], completes normally.
//!
//! Most abuses come from `hostile_abuse`, a guest that behaves when its config says
//! `"abuse": "none"` and abuses the boundary in the named way otherwise; the endless loops,
//! memory bomb, panic and egress cases reuse the older guests.

use std::path::Path;

use serde_json::{Value, json};
use sluice_host::checkpoint::CheckpointStore;
use sluice_host::http::{AllowedHosts, EgressPolicy};
use sluice_host::sandbox::{self, Limits};
use sluice_host::sync::{self, RunSummary};
use sluice_host::{Connector, Runtime};
use sluice_tests::connection::{Connection, Style, rest_connection, rest_stream};
use sluice_tests::mock::MockApi;
use sluice_tests::{
    HOSTILE_ABUSE_COMPONENT, HOSTILE_DISALLOWED_HOST_COMPONENT, HOSTILE_ILOOP_COMPONENT,
    HOSTILE_ILOOP_SPEC_COMPONENT, HOSTILE_OOM_COMPONENT, HOSTILE_PANIC_COMPONENT,
};

use crate::{Workspace, assert_healthy_sync, sync_in_process};

/// Records the mock serves to the abusive guest's good sync.
const BASELINE_RECORDS: u64 = 7;

/// Runs `connector` with `connection` in `ws` while a healthy neighbour syncs in the same
/// process; returns the hostile run's outcome after checking the neighbour finished well.
async fn beside_neighbour(
    runtime: &Runtime,
    connector: &str,
    connection: &Connection,
    ws: &Workspace,
) -> Result<RunSummary, sync::Error> {
    let (outcome, ()) = tokio::join!(
        sync_in_process(runtime, connector, connection, ws),
        assert_healthy_sync(runtime),
    );
    outcome
}

/// The stable kind and message of a failed run: the stream's own error for a stream failure,
/// else the run's.
fn failure(outcome: Result<RunSummary, sync::Error>) -> (&'static str, String) {
    match outcome {
        Ok(summary) => panic!("the hostile sync succeeded: {summary:?}"),
        Err(sync::Error::StreamsFailed { summary, .. }) => {
            let stream = &summary.streams[0];
            (
                stream
                    .error_kind
                    .expect("a failed stream has an error kind"),
                stream.error.clone().expect("a failed stream has an error"),
            )
        }
        Err(error) => (error.kind(), error.to_string()),
    }
}

/// What a good sync committed: the checkpoint's state and output position, and the output.
#[derive(Debug, PartialEq)]
struct Committed {
    state: Option<String>,
    output: Value,
    bytes: Vec<u8>,
}

fn committed(ws: &Workspace) -> Committed {
    let store = CheckpointStore::open(&ws.state()).expect("open the checkpoint store");
    let checkpoints = store.list().expect("list checkpoints");
    let (_, checkpoint) = checkpoints
        .into_iter()
        .find(|(key, _)| key.ends_with("items"))
        .expect("a checkpoint for `items`");
    Committed {
        state: checkpoint.state,
        output: serde_json::to_value(&checkpoint.output).expect("position as JSON"),
        bytes: std::fs::read(ws.output_file("items")).expect("read the output"),
    }
}

/// A `hostile_abuse` connection doing `abuse` against `mock`.
fn abuse(mock: &MockApi, abuse: &str) -> Connection {
    Connection::new(json!({ "abuse": abuse, "url": mock.url("/none/items") }))
        .allow_private_networks()
}

/// A workspace where `hostile_abuse` synced well once, and what that sync committed.
async fn baseline(runtime: &Runtime, mock: &MockApi) -> (Workspace, Committed) {
    let ws = Workspace::new();
    let summary = sync_in_process(runtime, HOSTILE_ABUSE_COMPONENT, &abuse(mock, "none"), &ws)
        .await
        .unwrap_or_else(|e| panic!("the benign sync failed: {e}"));
    assert_eq!(summary.streams[0].records, BASELINE_RECORDS);
    let before = committed(&ws);
    assert_eq!(before.state.as_deref(), Some(r#"{"pages":1}"#));
    (ws, before)
}

/// Syncs `hostile_abuse` with `connection` over a good earlier sync, beside a healthy
/// neighbour; checks the committed state and output did not change and returns the failure.
async fn abuse_after_baseline(connection: Connection) -> (&'static str, String, MockApi) {
    let runtime = Runtime::new().expect("runtime");
    let mock = MockApi::start(BASELINE_RECORDS);
    let (ws, before) = baseline(&runtime, &mock).await;
    let mut connection = connection;
    connection
        .config_mut()
        .insert("url".to_owned(), json!(mock.url("/none/items")));
    let outcome = beside_neighbour(&runtime, HOSTILE_ABUSE_COMPONENT, &connection, &ws).await;
    let (kind, message) = failure(outcome);
    assert_eq!(
        committed(&ws),
        before,
        "{kind}: the committed state or output changed"
    );
    (kind, message, mock)
}

fn abuse_config(name: &str) -> Connection {
    Connection::new(json!({ "abuse": name })).allow_private_networks()
}

/// `hostile_abuse` itself: the benign mode works, and a connector looking around finds an
/// empty environment, no arguments, no files, and a wall clock frozen at the run's start.
#[tokio::test(flavor = "multi_thread")]
pub(crate) async fn hostile_abuse() {
    let runtime = Runtime::new().expect("runtime");
    let mock = MockApi::start(BASELINE_RECORDS);
    let (ws, _) = baseline(&runtime, &mock).await;
    let summary = beside_neighbour(
        &runtime,
        HOSTILE_ABUSE_COMPONENT,
        &abuse(&mock, "snoop"),
        &ws,
    )
    .await
    .unwrap_or_else(|e| panic!("snooping is allowed, it just finds nothing: {e}"));
    assert_eq!(summary.streams[0].records, 1);
    let records = ws.records("items");
    let found = records.last().expect("the snoop record");
    assert_eq!(found["env"], json!([]), "{found}");
    assert_eq!(found["args"], json!([]), "{found}");
    for file in found["files"].as_array().expect("files") {
        assert_eq!(file["read"], json!(false), "{found}");
        assert_eq!(file["listed"], json!(false), "{found}");
    }
    assert_eq!(
        found["now_ms"], found["started_at_ms"],
        "the wall clock is frozen at the run's start: {found}"
    );
    assert_eq!(
        found["monotonic_elapsed_ns"],
        json!(0),
        "the monotonic clock does not move: {found}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn hostile_abuse_stack_overflow() {
    let (kind, message, mock) = abuse_after_baseline(abuse_config("stack_overflow")).await;
    assert_eq!(kind, "stack_overflow", "{message}");
    assert!(
        message.contains(&format!("{}-byte stack", sandbox::MAX_WASM_STACK_BYTES))
            && message.contains("begin"),
        "{message}"
    );
    // Only the good sync reached the API.
    assert_eq!(mock.request_count(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn hostile_abuse_tiny_records() {
    let (kind, message, _) = abuse_after_baseline(abuse_config("tiny_records")).await;
    assert_eq!(kind, "guest_protocol_violation", "{message}");
    assert!(
        message.contains("max_records_per_page = 100000"),
        "{message}"
    );
}

/// A multi-GiB `records` string cannot even be built: the memory limit stops the guest.
#[tokio::test(flavor = "multi_thread")]
async fn hostile_abuse_huge_string() {
    let connection = abuse_config("huge_string").max_memory_bytes(64 << 20);
    let (kind, message, _) = abuse_after_baseline(connection).await;
    assert_eq!(kind, "memory_limit_exceeded", "{message}");
    assert!(message.contains(&(64_u64 << 20).to_string()), "{message}");
}

/// A page larger than the boundary allows is refused while wasmtime lifts it, before the host
/// holds a copy; one under the boundary but over `max_page_bytes` is refused by validation.
#[tokio::test(flavor = "multi_thread")]
async fn hostile_abuse_huge_page() {
    let page_limit: u64 = 1 << 20;
    let limits = Limits {
        max_page_bytes: page_limit,
        ..Limits::default()
    };
    let boundary = limits.max_boundary_bytes();
    let config = |bytes: u64| {
        let mut connection = abuse_config("huge_string").max_memory_bytes(256 << 20).set(
            "limits",
            "max_page_bytes",
            json!(page_limit),
        );
        connection
            .config_mut()
            .insert("bytes".to_owned(), json!(bytes));
        connection
    };
    let (kind, message, _) = abuse_after_baseline(config(boundary + (1 << 20))).await;
    assert_eq!(kind, "boundary_limit_exceeded", "{message}");
    assert!(message.contains(&boundary.to_string()), "{message}");

    let (kind, message, _) = abuse_after_baseline(config(boundary - (1 << 20))).await;
    assert_eq!(kind, "guest_protocol_violation", "{message}");
    assert!(
        message.contains(&format!("max_page_bytes = {page_limit}")),
        "{message}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn hostile_abuse_state_not_json() {
    let (kind, message, _) = abuse_after_baseline(abuse_config("state_not_json")).await;
    assert_eq!(kind, "guest_protocol_violation", "{message}");
    assert!(
        message.contains("checkpoint state is not valid JSON"),
        "{message}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn hostile_abuse_state_too_large() {
    let (kind, message, _) = abuse_after_baseline(abuse_config("state_too_large")).await;
    assert_eq!(kind, "guest_protocol_violation", "{message}");
    assert!(
        message.contains(&format!(
            "max_state_bytes = {}",
            sandbox::limits::DEFAULT_MAX_STATE_BYTES
        )),
        "{message}"
    );
}

/// A connector that never says "done" stops at `max_requests_per_sync`.
#[tokio::test(flavor = "multi_thread")]
async fn hostile_abuse_never_done() {
    let connection = abuse_config("never_done").set("limits", "max_requests_per_sync", json!(5));
    let (kind, message, mock) = abuse_after_baseline(connection).await;
    assert_eq!(kind, "max_requests_per_sync", "{message}");
    assert!(message.contains("max_requests_per_sync = 5"), "{message}");
    // One request of the good sync, five of the endless one.
    assert_eq!(mock.request_count(), 6);
}

/// A connector that never says "done" also stops at the sync's wall-time limit.
#[tokio::test(flavor = "multi_thread")]
async fn hostile_abuse_never_done_wall_time() {
    let connection = abuse_config("never_done")
        .set("limits", "max_sync_duration_secs", json!(1))
        .set("limits", "max_empty_pages", json!(1_000_000_000));
    let (kind, message, mock) = abuse_after_baseline(connection).await;
    assert_eq!(kind, "max_sync_duration_secs", "{message}");
    assert!(message.contains("max_sync_duration_secs = 1"), "{message}");
    assert!(mock.request_count() > 1);
}

/// Endless empty pages that still ask for more stop at `max_empty_pages`.
#[tokio::test(flavor = "multi_thread")]
async fn hostile_abuse_endless_empty_pages() {
    let connection = abuse_config("never_done").set("limits", "max_empty_pages", json!(3));
    let (kind, message, mock) = abuse_after_baseline(connection).await;
    assert_eq!(kind, "max_empty_pages", "{message}");
    assert!(message.contains("max_empty_pages = 3"), "{message}");
    // One request of the good sync, four empty pages of the endless one.
    assert_eq!(mock.request_count(), 5);
}

/// A connector asking again for a request it already fetched (a cursor that repeats) is
/// stopped at once, before the repeat is sent, and the error says so.
#[tokio::test(flavor = "multi_thread")]
async fn hostile_abuse_repeating_cursor() {
    let (kind, message, mock) = abuse_after_baseline(abuse_config("repeat_request")).await;
    assert_eq!(kind, "cursor_cycle", "{message}");
    assert!(message.contains("repeats or cycles"), "{message}");
    // One request of the good sync, one of the repeating one: the repeat is never sent.
    assert_eq!(mock.request_count(), 2);
}

/// A log flood is capped at `max_log_lines_per_sync`; the rest is dropped and counted.
#[tokio::test(flavor = "multi_thread")]
async fn hostile_abuse_log_flood() {
    let runtime = Runtime::new().expect("runtime");
    let mock = MockApi::start(BASELINE_RECORDS);
    let ws = Workspace::new();
    let connection = abuse(&mock, "log_flood").set("limits", "max_log_lines_per_sync", json!(100));
    let summary = beside_neighbour(&runtime, HOSTILE_ABUSE_COMPONENT, &connection, &ws)
        .await
        .unwrap_or_else(|e| panic!("a log flood is capped, not fatal: {e}"));
    assert_eq!(summary.streams[0].records, BASELINE_RECORDS);
    assert_eq!(summary.streams[0].guest_log_lines_dropped, 20_000 - 100);
}

/// A header value with CR/LF is refused before anything is sent.
#[tokio::test(flavor = "multi_thread")]
async fn hostile_abuse_crlf_header() {
    let (kind, message, mock) = abuse_after_baseline(abuse_config("crlf_header")).await;
    assert_eq!(kind, "invalid_request", "{message}");
    assert_eq!(
        mock.request_count(),
        1,
        "only the good sync reached the API"
    );
}

/// Endless loops in `begin`, `next-page`, `discover` (`hostile_iloop`) and `spec`
/// (`hostile_iloop_spec`) all end at the CPU deadline. A Rust `cdylib` has no component start
/// function, so "at instantiation" is covered by `spec`, the first call on a fresh instance.
#[tokio::test(flavor = "multi_thread")]
async fn hostile_iloop_each_export() {
    let runtime = Runtime::new().expect("runtime");
    let mock = MockApi::start(5);
    let cases = [
        (HOSTILE_ILOOP_COMPONENT, "begin"),
        (HOSTILE_ILOOP_COMPONENT, "next_page"),
        (HOSTILE_ILOOP_COMPONENT, "discover"),
        (HOSTILE_ILOOP_SPEC_COMPONENT, "spec"),
    ];
    for (component, loop_in) in cases {
        let ws = Workspace::new();
        let connection =
            Connection::new(json!({ "loop_in": loop_in, "url": mock.url("/none/items") }))
                .allow_private_networks()
                .guest_call_timeout_ms(300);
        let connection = if component == HOSTILE_ILOOP_SPEC_COMPONENT {
            Connection::new(json!({ "url": mock.url("/none/items") }))
                .allow_private_networks()
                .guest_call_timeout_ms(300)
        } else {
            connection
        };
        let (kind, message) =
            failure(beside_neighbour(&runtime, component, &connection, &ws).await);
        assert_eq!(kind, "cpu_deadline_exceeded", "{loop_in}: {message}");
        assert!(
            message.contains("300 ms") && message.contains("guest_call_timeout_ms"),
            "{loop_in}: {message}"
        );
    }
}

/// A loop shorter than the per-call deadline but longer than the session's CPU budget is
/// stopped by the budget, and the error names it.
#[tokio::test(flavor = "multi_thread")]
async fn hostile_iloop_cpu_budget() {
    let runtime = Runtime::new().expect("runtime");
    let mock = MockApi::start(5);
    let ws = Workspace::new();
    let connection = Connection::new(json!({ "loop_in": "begin", "url": mock.url("/none/items") }))
        .allow_private_networks()
        .guest_call_timeout_ms(60_000)
        .set("limits", "guest_cpu_budget_ms", json!(300));
    let (kind, message) =
        failure(beside_neighbour(&runtime, HOSTILE_ILOOP_COMPONENT, &connection, &ws).await);
    assert_eq!(kind, "cpu_budget_exceeded", "{message}");
    assert!(
        message.contains("300 ms") && message.contains("guest_cpu_budget_ms"),
        "{message}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn hostile_oom_beside_a_healthy_sync() {
    let runtime = Runtime::new().expect("runtime");
    let ws = Workspace::new();
    let connection = Connection::new(json!({})).max_memory_bytes(32 << 20);
    let (kind, message) =
        failure(beside_neighbour(&runtime, HOSTILE_OOM_COMPONENT, &connection, &ws).await);
    assert_eq!(kind, "memory_limit_exceeded", "{message}");
    assert!(message.contains(&(32_u64 << 20).to_string()), "{message}");
}

#[tokio::test(flavor = "multi_thread")]
async fn hostile_panic_beside_a_healthy_sync() {
    let runtime = Runtime::new().expect("runtime");
    let ws = Workspace::new();
    let (kind, message) = failure(
        beside_neighbour(
            &runtime,
            HOSTILE_PANIC_COMPONENT,
            &Connection::new(json!({})),
            &ws,
        )
        .await,
    );
    assert_eq!(kind, "guest_trapped", "{message}");
}

/// Requests outside the policy are refused and nothing reaches the network: another host than
/// the declared one, loopback without `allow_private_networks`, and every spelling of the
/// cloud metadata service (refused even with `allow_private_networks`).
#[tokio::test(flavor = "multi_thread")]
async fn hostile_egress_is_denied() {
    let runtime = Runtime::new().expect("runtime");
    let declared = MockApi::start(5);
    let other = MockApi::start(5);
    let mut cases = vec![
        // Another host than the declared one.
        (declared.host_port(), other.url("/none/items"), true),
        // The declared host itself, but loopback is not allowed.
        (declared.host_port(), declared.url("/none/items"), false),
    ];
    for url in [
        "http://169.254.169.254/latest/meta-data/",
        "http://[fd00:ec2::254]/latest/meta-data/",
        "http://metadata.google.internal/computeMetadata/v1/",
        "http://2852039166/latest/meta-data/",
        "http://0xa9.0xfe.0xa9.0xfe/latest/meta-data/",
    ] {
        let host = url::Url::parse(url)
            .expect("a valid URL")
            .host_str()
            .expect("a host")
            .to_owned();
        cases.push((host, url.to_owned(), true));
    }
    for (declared_host, url, allow_private) in cases {
        let ws = Workspace::new();
        let mut connection = Connection::new(json!({ "declared": declared_host, "url": url }));
        if allow_private {
            connection = connection.allow_private_networks();
        }
        let (kind, message) = failure(
            beside_neighbour(
                &runtime,
                HOSTILE_DISALLOWED_HOST_COMPONENT,
                &connection,
                &ws,
            )
            .await,
        );
        assert_eq!(kind, "denied", "{url}: {message}");
        assert!(!ws.output_file("items").exists() || ws.records("items").is_empty());
    }
    assert_eq!(declared.request_count(), 0);
    assert_eq!(other.request_count(), 0);
}

/// A component of `imports`, each an empty instance, and nothing else: hand-encoded, since
/// no Rust guest can import what the host does not provide.
fn component_importing(imports: &[&str]) -> Vec<u8> {
    let mut bytes = vec![0x00, 0x61, 0x73, 0x6d, 0x0d, 0x00, 0x01, 0x00];
    // Type section: one instance type with no declarations.
    bytes.extend([0x07, 0x03, 0x01, 0x42, 0x00]);
    let mut section = vec![u8::try_from(imports.len()).expect("few imports")];
    for name in imports {
        section.push(0x00);
        section.push(u8::try_from(name.len()).expect("short name"));
        section.extend(name.as_bytes());
        section.extend([0x05, 0x00]);
    }
    bytes.push(0x0a);
    bytes.push(u8::try_from(section.len()).expect("small section"));
    bytes.extend(section);
    bytes
}

/// A component whose one core instance has two linear memories of `pages` pages each.
fn component_with_two_memories(pages: u16) -> Vec<u8> {
    let mut limits = Vec::new();
    let mut value = pages;
    loop {
        let byte = u8::try_from(value & 0x7f).expect("seven bits");
        value >>= 7;
        if value == 0 {
            limits.push(byte);
            break;
        }
        limits.push(byte | 0x80);
    }
    let mut memories = vec![0x02];
    for _ in 0..2 {
        memories.push(0x00);
        memories.extend(&limits);
    }
    let mut module = vec![0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, 0x05];
    module.push(u8::try_from(memories.len()).expect("small section"));
    module.extend(memories);
    let mut bytes = vec![0x00, 0x61, 0x73, 0x6d, 0x0d, 0x00, 0x01, 0x00, 0x01];
    bytes.push(u8::try_from(module.len()).expect("small module"));
    bytes.extend(module);
    // Core instance section: instantiate module 0 with no arguments.
    bytes.extend([0x02, 0x04, 0x01, 0x00, 0x00, 0x00]);
    bytes
}

/// A component whose one core module loops forever in its start function, i.e. during
/// instantiation.
fn component_looping_at_start() -> Vec<u8> {
    let module = [
        0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, // core module, version 1
        0x01, 0x04, 0x01, 0x60, 0x00, 0x00, // type 0: [] -> []
        0x03, 0x02, 0x01, 0x00, // function 0 has type 0
        0x08, 0x01, 0x00, // start: function 0
        0x0a, 0x09, 0x01, 0x07, 0x00, 0x03, 0x40, 0x0c, 0x00, 0x0b, 0x0b, // loop { br 0 }
    ];
    let mut bytes = vec![0x00, 0x61, 0x73, 0x6d, 0x0d, 0x00, 0x01, 0x00, 0x01];
    bytes.push(u8::try_from(module.len()).expect("small module"));
    bytes.extend(module);
    bytes.extend([0x02, 0x04, 0x01, 0x00, 0x00, 0x00]);
    bytes
}

/// An endless loop at instantiation (a start function; a Rust `cdylib` cannot have one, so the
/// component is hand-encoded) ends at the CPU deadline, while a neighbour syncs normally.
#[tokio::test(flavor = "multi_thread")]
async fn hostile_loop_at_instantiation() {
    let runtime = Runtime::new().expect("runtime");
    let component =
        wasmtime::component::Component::new(runtime.engine(), component_looping_at_start())
            .expect("the looping component compiles");
    let limits = Limits {
        guest_call_timeout_ms: 300,
        ..Limits::default()
    };
    let instantiate = async {
        let mut store = runtime.new_store("loop-at-start", &limits, 0);
        let outcome = tokio::time::timeout(
            sandbox::outer_timeout(&limits),
            runtime.linker().instantiate_async(&mut store, &component),
        )
        .await;
        sandbox::classify(&store, &limits, "instantiate", outcome).map(drop)
    };
    let (outcome, ()) = tokio::join!(instantiate, assert_healthy_sync(&runtime));
    let Err(error) = outcome else {
        panic!("an endless start function cannot finish");
    };
    assert_eq!(error.kind(), "cpu_deadline_exceeded", "{error}");
    assert!(error.to_string().contains("300 ms"), "{error}");
}

/// A component importing interfaces the host does not provide is refused at load, and the
/// error lists exactly those imports.
#[test]
fn forbidden_imports_are_listed() {
    let runtime = Runtime::new().expect("runtime");
    let bytes = component_importing(&[
        "wasi:io/error@0.2.0",
        "evil:net/socket",
        "wasi:http/types@0.2.0",
    ]);
    let Err(error) = Connector::from_bytes(&runtime, "forbidden", &bytes) else {
        panic!("a component with forbidden imports loaded");
    };
    assert_eq!(error.kind(), "forbidden_imports", "{error}");
    match &error {
        sandbox::Error::ForbiddenImports { imports, .. } => {
            assert_eq!(imports, &["evil:net/socket", "wasi:http/types@0.2.0"]);
        }
        other => panic!("{other:?}"),
    }

    // The CLI says the same, through `inspect` and `run`.
    let dir = Workspace::new();
    let path = dir.path().join("forbidden.wasm");
    std::fs::write(&path, &bytes).expect("write the component");
    let output = crate::sluice()
        .cmd(["inspect", path.to_str().expect("UTF-8 path")])
        .output();
    let message = output.assert_error();
    assert!(
        message.contains("`evil:net/socket`") && message.contains("`wasi:http/types@0.2.0`"),
        "{output}"
    );
}

/// Every linear memory counts toward `max_memory_bytes`: two memories, each under the limit,
/// together over it, cannot be instantiated.
#[tokio::test(flavor = "multi_thread")]
async fn several_memories_are_summed() {
    let runtime = Runtime::new().expect("runtime");
    // 2 × 320 pages of 64 KiB = 2 × 20 MiB, against a 32 MiB limit.
    let bytes = component_with_two_memories(320);
    let component = wasmtime::component::Component::new(runtime.engine(), &bytes)
        .expect("the two-memory component compiles");
    let limits = Limits {
        max_memory_bytes: 32 << 20,
        ..Limits::default()
    };
    let mut store = runtime.new_store("two-memories", &limits, 0);
    let outcome = tokio::time::timeout(
        sandbox::outer_timeout(&limits),
        runtime.linker().instantiate_async(&mut store, &component),
    )
    .await;
    let Err(error) = sandbox::classify(&store, &limits, "instantiate", outcome) else {
        panic!("two 20 MiB memories exceed a 32 MiB limit");
    };
    assert_eq!(error.kind(), "memory_limit_exceeded", "{error}");

    // Under a 64 MiB limit the same component instantiates: the limit, not the shape, refused it.
    let limits = Limits {
        max_memory_bytes: 64 << 20,
        ..Limits::default()
    };
    let mut store = runtime.new_store("two-memories", &limits, 0);
    let outcome = tokio::time::timeout(
        sandbox::outer_timeout(&limits),
        runtime.linker().instantiate_async(&mut store, &component),
    )
    .await;
    sandbox::classify(&store, &limits, "instantiate", outcome).expect("40 MiB fits in 64 MiB");
}

/// `sluice inspect` says what a connector is, what it imports and, with a connection, what it
/// declares.
#[test]
fn inspect_describes_a_connector() {
    let output = crate::sluice().cmd(["inspect", "rest", "--json"]).output();
    output.assert_success();
    let inspection: Value = output.json();
    assert_eq!(inspection["spec"]["name"], json!("rest"), "{output}");
    let imports = inspection["imports"].as_array().expect("imports");
    assert!(
        imports.iter().any(|name| name
            .as_str()
            .is_some_and(|n| n.starts_with("sluice:connector/"))),
        "{output}"
    );
    assert!(
        imports.iter().all(|name| name
            .as_str()
            .is_some_and(sluice_host::connector::is_allowed_import)),
        "{output}"
    );
    assert!(inspection["catalog"].is_null(), "{output}");

    let mock = MockApi::start(3);
    let ws = Workspace::new();
    let path = ws.write(&rest_connection(
        &mock,
        vec![rest_stream("items", Style::Offset, 10)],
    ));
    let output = crate::sluice()
        .cmd([
            "inspect",
            "rest",
            "--config",
            path.to_str().expect("UTF-8 path"),
        ])
        .output();
    output.assert_success();
    let text = &output.stdout;
    assert!(text.contains("Declared hosts: 127.0.0.1:"), "{output}");
    assert!(text.contains("Streams:\n  items"), "{output}");
    assert_eq!(mock.request_count(), 0, "inspect sends nothing");
}

/// The egress policy over arbitrary addresses: whatever the spelling of an IPv4 literal
/// (dotted, one decimal number, dotted hex), a private or metadata address is refused without
/// `allow_private_networks`, and a metadata address even with it.
mod egress_properties {
    use super::*;
    use proptest::prelude::*;

    fn spellings(ip: [u8; 4]) -> Vec<String> {
        let [a, b, c, d] = ip;
        vec![
            format!("http://{a}.{b}.{c}.{d}/x"),
            format!("http://{}/x", u32::from_be_bytes(ip)),
            format!("http://0x{a:x}.0x{b:x}.0x{c:x}.0x{d:x}/x"),
        ]
    }

    fn policy(host: &str, allow_private: bool) -> EgressPolicy {
        let declared = AllowedHosts::parse(&[host.to_owned()]).expect("a literal host parses");
        EgressPolicy::new(declared, None, allow_private)
    }

    fn private(ip: [u8; 4]) -> bool {
        let ip = std::net::Ipv4Addr::from(ip);
        ip.is_private() || ip.is_loopback() || ip.is_link_local() || ip.is_unspecified()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn private_literals_are_refused(ip in prop_oneof![
            any::<[u8; 3]>().prop_map(|[b, c, d]| [10, b, c, d]),
            any::<[u8; 3]>().prop_map(|[b, c, d]| [127, b, c, d]),
            (16_u8..32, any::<[u8; 2]>()).prop_map(|(b, [c, d])| [172, b, c, d]),
            any::<[u8; 2]>().prop_map(|[c, d]| [192, 168, c, d]),
            any::<[u8; 2]>().prop_map(|[c, d]| [169, 254, c, d]),
        ]) {
            prop_assert!(private(ip));
            for spelling in spellings(ip) {
                let url = url::Url::parse(&spelling).expect("an IPv4 literal URL");
                let host = url.host_str().expect("a host").to_owned();
                prop_assert!(policy(&host, false).check_url(&url).is_err(), "{spelling}");
            }
        }

        #[test]
        fn metadata_is_refused_in_every_spelling(port in 1_u16..) {
            for spelling in spellings([169, 254, 169, 254]) {
                let spelling = spelling.replace("/x", &format!(":{port}/x"));
                let url = url::Url::parse(&spelling).expect("a URL");
                let host = url.host_str().expect("a host").to_owned();
                prop_assert!(policy(&host, true).check_url(&url).is_err(), "{spelling}");
            }
        }

        #[test]
        fn arbitrary_urls_never_panic(text in "\\PC{0,64}", allow_private: bool) {
            if let Ok(url) = url::Url::parse(&format!("http://{text}")) {
                let host = url.host_str().unwrap_or("example.com").to_owned();
                if let Ok(declared) = AllowedHosts::parse(&[host]) {
                    let _ = EgressPolicy::new(declared, None, allow_private).check_url(&url);
                }
            }
        }
    }
}

#[test]
fn compiled_guests_exist() {
    assert!(Path::new(HOSTILE_ABUSE_COMPONENT).is_file());
}
