//! `sluice serve` (issue 6): tenants isolated from each other's failures, state and secrets;
//! fair scheduling; the control API over real HTTP; SIGTERM mid-sync and an exact restart.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Value, json};
use sluice_host::Runtime;
use sluice_host::serve::Deployment;
use sluice_host::serve::engine::{ConnectionView, Engine};
use sluice_tests::connection::{Connection, Style, rest_connection, rest_stream};
use sluice_tests::dataset;
use sluice_tests::files::read_jsonl;
use sluice_tests::mock::MockApi;
use sluice_tests::wait;
use sluice_tests::{HOSTILE_ABUSE_COMPONENT, HOSTILE_ILOOP_COMPONENT, HOSTILE_OOM_COMPONENT};
use tempfile::TempDir;

use crate::{HANG_GUARD, sluice};

const OPERATOR_TOKEN: &str = "operator-token-for-tests";

/// A deployment file being built in a temporary directory.
struct DeploymentFile {
    dir: TempDir,
    doc: toml::Table,
}

impl DeploymentFile {
    fn new(listen: &str) -> Self {
        let doc: toml::Table = toml::from_str(&format!(
            "shutdown_grace_secs = 1\n[control]\nlisten = \"{listen}\"\ntoken = \"{OPERATOR_TOKEN}\"\n"
        ))
        .expect("deployment head");
        Self {
            dir: tempfile::Builder::new()
                .prefix("sluice-serve-")
                .tempdir()
                .expect("temporary directory"),
            doc,
        }
    }

    fn table(&mut self, path: &[&str]) -> &mut toml::Table {
        let mut table = &mut self.doc;
        for key in path {
            table = table
                .entry(*key)
                .or_insert_with(|| toml::Value::Table(toml::Table::new()))
                .as_table_mut()
                .expect("a table");
        }
        table
    }

    fn set(&mut self, path: &[&str], key: &str, value: impl Into<toml::Value>) -> &mut Self {
        self.table(path).insert(key.to_owned(), value.into());
        self
    }

    /// Adds connection `name` of `tenant`, running `connector` with `connection`.
    fn connection(
        &mut self,
        tenant: &str,
        name: &str,
        connector: &str,
        connection: &Connection,
    ) -> &mut Self {
        let mut table: toml::Table = toml::from_str(&connection.to_toml()).expect("connection");
        table.insert("connector".into(), connector.into());
        *self.table(&["tenants", tenant, "connections", name]) = table;
        self
    }

    fn write(&self) -> PathBuf {
        let path = self.dir.path().join("deployment.toml");
        std::fs::write(&path, toml::to_string(&self.doc).expect("render")).expect("write");
        path
    }

    fn output(&self, tenant: &str, connection: &str, stream: &str) -> Vec<Value> {
        read_jsonl(
            &self
                .dir
                .path()
                .join(".sluice/serve/output")
                .join(tenant)
                .join(connection)
                .join(format!("{stream}.jsonl")),
        )
    }
}

/// Waits until `tenant/name` has ended `runs` syncs and none runs; returns its view.
async fn ended(engine: &Engine, tenant: &str, name: &str, runs: usize) -> ConnectionView {
    let done = wait::until_async(HANG_GUARD, || {
        engine
            .get(tenant, name)
            .is_ok_and(|view| view.running.is_none() && view.last_runs.len() >= runs)
    })
    .await;
    let view = engine.get(tenant, name).expect("the connection exists");
    assert!(done, "{tenant}/{name} did not end {runs} syncs: {view:#?}");
    view
}

fn offset_connection(mock: &MockApi, page_size: u64) -> Connection {
    rest_connection(mock, vec![rest_stream("items", Style::Offset, page_size)])
}

/// One tenant's connectors loop, bomb memory and flood requests while another tenant's syncs
/// run beside them: the good tenant's syncs finish with exact output, each hostile one fails
/// with its own limit, and the breaches show in the metrics.
#[tokio::test(flavor = "multi_thread")]
async fn a_hostile_tenant_does_not_hurt_another() {
    let mock = MockApi::start(120);
    let mut file = DeploymentFile::new("127.0.0.1:0");
    file.set(&["tenants", "evil"], "max_concurrent_syncs", 3)
        .connection(
            "evil",
            "loop",
            HOSTILE_ILOOP_COMPONENT,
            &Connection::new(json!({ "loop_in": "next_page", "url": mock.url("/none/items") }))
                .allow_private_networks()
                .guest_call_timeout_ms(300),
        )
        .connection(
            "evil",
            "bomb",
            HOSTILE_OOM_COMPONENT,
            &Connection::new(json!({})).max_memory_bytes(32 << 20),
        )
        .connection(
            "evil",
            "flood",
            HOSTILE_ABUSE_COMPONENT,
            &Connection::new(json!({ "abuse": "never_done", "url": mock.url("/none/items") }))
                .allow_private_networks()
                .set("limits", "max_requests_per_sync", json!(40))
                .set("limits", "max_empty_pages", json!(1_000)),
        )
        .connection("good", "a", "rest", &offset_connection(&mock, 20))
        .connection("good", "b", "rest", &offset_connection(&mock, 7));
    let deployment = Deployment::load(&file.write()).expect("valid deployment");
    let engine = Engine::start(Runtime::new().expect("runtime"), deployment).expect("engine");
    assert_eq!(engine.compiled_connectors(), 4, "`rest` is compiled once");

    for name in ["loop", "bomb", "flood"] {
        engine.trigger("evil", name).expect("trigger");
    }
    engine.trigger("good", "a").expect("trigger");
    engine.trigger("good", "b").expect("trigger");

    for name in ["a", "b"] {
        let view = ended(&engine, "good", name, 1).await;
        let run = &view.last_runs[0];
        assert_eq!(run.outcome, "succeeded", "{run:#?}");
        assert_eq!(run.records, 120);
        assert_eq!(file.output("good", name, "items"), dataset::records(120));
    }
    let expected = [
        ("loop", "cpu_deadline_exceeded"),
        ("bomb", "memory_limit_exceeded"),
        ("flood", "max_requests_per_sync"),
    ];
    for (name, kind) in expected {
        let view = ended(&engine, "evil", name, 1).await;
        let run = &view.last_runs[0];
        assert_eq!(run.outcome, "failed", "{run:#?}");
        assert_eq!(run.error_kind, Some(kind), "{run:#?}");
    }
    let metrics = engine.metrics_text();
    for (name, kind) in expected {
        let line = format!(
            "sluice_limit_breaches_total{{tenant=\"evil\",connection=\"{name}\",limit=\"{kind}\"}} 1"
        );
        assert!(metrics.contains(&line), "missing {line} in\n{metrics}");
    }
    assert!(
        metrics.contains("sluice_records_total{tenant=\"good\",connection=\"a\"} 120"),
        "{metrics}"
    );
    assert!(
        metrics.contains(
            "sluice_syncs_total{tenant=\"good\",connection=\"b\",outcome=\"succeeded\"} 1"
        ),
        "{metrics}"
    );
    // Each tenant's state is its own namespace: the good tenant's checkpoint is invisible
    // under the other tenant, even for a connection name it does not have.
    assert!(
        engine
            .checkpoints("good", "a")
            .expect("state")
            .contains_key("items")
    );
    assert_eq!(engine.checkpoints("evil", "a").unwrap_err().status, 404);
    engine.shutdown().await;
}

/// With one slot for everybody, a tenant with six queued connections does not make a tenant
/// with one wait for all six: turns alternate between tenants.
#[tokio::test(flavor = "multi_thread")]
async fn tenants_take_turns_for_slots() {
    let mock = MockApi::start(5);
    let mut file = DeploymentFile::new("127.0.0.1:0");
    file.set(&[], "max_concurrent_syncs", 1);
    let big: Vec<String> = (1..=6).map(|n| format!("c{n}")).collect();
    for name in &big {
        file.connection("big", name, "rest", &offset_connection(&mock, 10));
    }
    file.connection("small", "only", "rest", &offset_connection(&mock, 10));
    let deployment = Deployment::load(&file.write()).expect("valid deployment");
    let engine = Engine::start(Runtime::new().expect("runtime"), deployment).expect("engine");
    // Hold the first request so that everything is queued before anything ends.
    mock.hold_from(1);
    for name in &big {
        engine.trigger("big", name).expect("trigger");
    }
    assert!(
        wait::until_async(HANG_GUARD, || mock.request_count() >= 1).await,
        "the first sync never sent a request"
    );
    engine.trigger("small", "only").expect("trigger");
    mock.release();
    let small = ended(&engine, "small", "only", 1).await;
    let mut ids = Vec::new();
    for name in &big {
        ids.push(ended(&engine, "big", name, 1).await.last_runs[0].id);
    }
    ids.sort_unstable();
    let small_id = small.last_runs[0].id;
    assert!(
        small_id <= ids[1],
        "the small tenant ran as run {small_id}, after the big tenant's runs {ids:?}"
    );
    engine.shutdown().await;
}

/// A free port on 127.0.0.1 for the control API of a `sluice serve` process.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port()
}

/// The control API of one `sluice serve` process.
struct Control {
    client: reqwest::Client,
    base: String,
}

impl Control {
    async fn call(&self, method: &str, path: &str, token: Option<&str>) -> (u16, Value) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut request = self.client.request(method, format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.expect("the control API answers");
        let status = response.status().as_u16();
        #[expect(
            clippy::disallowed_methods,
            reason = "a test reading its own server's answer"
        )]
        let text = response.text().await.expect("a body");
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, body)
    }

    async fn operator(&self, method: &str, path: &str) -> Value {
        let (status, body) = self.call(method, path, Some(OPERATOR_TOKEN)).await;
        assert!(
            (200..300).contains(&status),
            "{method} {path}: {status} {body}"
        );
        body
    }

    /// Waits until the connection has ended `runs` syncs; returns its latest run.
    async fn ended(&self, path: &str, runs: usize) -> Value {
        for _ in 0..1200 {
            let view = self.operator("GET", path).await;
            let count = view["last_runs"].as_array().map_or(0, Vec::len);
            if view["running"].is_null() && count >= runs {
                return view["last_runs"][0].clone();
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("{path} did not end {runs} syncs");
    }
}

/// Starts `sluice serve` on `file` and waits for its control API.
async fn start_serve(path: &Path, port: u16) -> (sluice_tests::cli::Running, Control) {
    let process = sluice()
        .cmd(["serve", "--deployment", &path.to_string_lossy()])
        .timeout(HANG_GUARD)
        .spawn();
    let control = Control {
        client: reqwest::Client::new(),
        base: format!("http://127.0.0.1:{port}"),
    };
    let mut up = false;
    for _ in 0..600 {
        if control.client.get(&control.base).send().await.is_ok() {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        up,
        "sluice serve did not open its control API on port {port}"
    );
    (process, control)
}

/// The control API end to end over real HTTP, then SIGTERM in the middle of a sync, then a
/// restart that finishes the sync with every record exactly once.
#[tokio::test(flavor = "multi_thread")]
async fn control_api_sigterm_mid_sync_and_exact_restart() {
    let mock = MockApi::start(200);
    let port = free_port();
    let mut file = DeploymentFile::new(&format!("127.0.0.1:{port}"));
    file.set(&["tenants", "acme"], "control_token", "acme-token")
        .set(&["tenants", "globex"], "control_token", "globex-token")
        .connection("acme", "shop", "rest", &offset_connection(&mock, 10))
        .connection("globex", "crm", "rest", &offset_connection(&mock, 50));
    let path = file.write();
    let shop = "/v1/tenants/acme/connections/shop";
    let (process, api) = start_serve(&path, port).await;

    // Tokens: none is refused, a tenant sees only its own, another tenant's look absent.
    let (status, body) = api.call("GET", "/v1/connections", None).await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["error"]["kind"], "unauthorized");
    let (status, body) = api.call("GET", "/v1/connections", Some("acme-token")).await;
    assert_eq!(status, 200);
    let names: Vec<&str> = body["connections"]
        .as_array()
        .expect("a list")
        .iter()
        .map(|c| c["name"].as_str().expect("a name"))
        .collect();
    assert_eq!(names, ["shop"]);
    for (method, what) in [("GET", "/state"), ("POST", "/sync"), ("GET", "")] {
        let (status, body) = api
            .call(method, &format!("{shop}{what}"), Some("globex-token"))
            .await;
        assert_eq!(status, 404, "globex reached acme's {what}: {body}");
    }
    let (status, _) = api.call("GET", "/metrics", Some("acme-token")).await;
    assert_eq!(status, 403, "metrics need the operator's token");
    let (status, body) = api
        .call("POST", &format!("{shop}/cancel"), Some("acme-token"))
        .await;
    assert_eq!(
        (status, body["error"]["kind"].as_str()),
        (409, Some("not_running"))
    );

    // Hold the 6th request: five pages are committed, the sixth is in flight at SIGTERM.
    mock.hold_from(6);
    let body = api.operator("POST", &format!("{shop}/sync")).await;
    assert_eq!(body["result"], "queued");
    assert!(
        wait::until_async(HANG_GUARD, || mock.request_count() >= 6).await,
        "the sync did not reach its sixth page"
    );
    let view = api.operator("GET", shop).await;
    assert_eq!(view["running"]["outcome"], "running", "{view}");
    process.signal("TERM");
    let output = process.wait();
    output.assert_success();
    assert!(output.stdout.contains("sluice serve: stopped"), "{output}");
    mock.release();
    let committed = file.output("acme", "shop", "items");
    assert_eq!(
        committed,
        dataset::records(50),
        "five pages of ten were committed"
    );

    // Restart: the sync resumes after the fifth page and ends with every record once.
    let (process, api) = start_serve(&path, port).await;
    let state = api.operator("GET", &format!("{shop}/state")).await;
    assert_eq!(
        state["streams"]["items"]["output"]["records"], 50,
        "{state}"
    );
    api.operator("POST", &format!("{shop}/sync")).await;
    let run = api.ended(shop, 1).await;
    assert_eq!(run["outcome"], "succeeded", "{run}");
    assert_eq!(run["records"], 150, "{run}");
    assert_eq!(run["streams"][0]["start"], "resumed", "{run}");
    assert_eq!(file.output("acme", "shop", "items"), dataset::records(200));
    let metrics = api.operator("GET", "/metrics").await;
    let metrics = metrics.as_str().expect("metrics are text");
    assert!(
        metrics.contains("sluice_records_total{tenant=\"acme\",connection=\"shop\"} 150"),
        "{metrics}"
    );

    // Reset and cancel through the API.
    let body = api.operator("DELETE", &format!("{shop}/state/items")).await;
    assert_eq!(body["reset"], true);
    let state = api.operator("GET", &format!("{shop}/state")).await;
    assert_eq!(state["streams"], json!({}));
    let held = mock.request_count() + 2;
    mock.hold_from(held);
    api.operator("POST", &format!("{shop}/sync")).await;
    assert!(wait::until_async(HANG_GUARD, || mock.request_count() >= held).await);
    let body = api.operator("POST", &format!("{shop}/cancel")).await;
    assert_eq!(body["result"], "running");
    let run = api.ended(shop, 2).await;
    assert_eq!(run["outcome"], "cancelled", "{run}");
    mock.release();

    // Reload: a removed connection disappears, a new one appears.
    let mut file2 = toml::from_str::<toml::Table>(&std::fs::read_to_string(&path).expect("read"))
        .expect("parse");
    let tenants = file2["tenants"].as_table_mut().expect("tenants");
    tenants.remove("globex");
    std::fs::write(&path, toml::to_string(&file2).expect("render")).expect("write");
    let report = api.operator("POST", "/v1/reload").await;
    assert_eq!(report["removed"], json!(["globex/crm"]), "{report}");
    let list = api.operator("GET", "/v1/connections").await;
    assert_eq!(list["connections"].as_array().map(Vec::len), Some(1));
    std::fs::write(&path, "not = [valid").expect("write");
    let (status, body) = api.call("POST", "/v1/reload", Some(OPERATOR_TOKEN)).await;
    assert_eq!(status, 422, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("previous deployment stays")),
        "{body}"
    );
    process.signal("TERM");
    process.wait().assert_success();
}
